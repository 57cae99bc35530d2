/**
 * What simple mode's one-page form shows of a graph: the parameters its nodes expose (`exposed` in the
 * graph JSON), one section per node in the graph's order, each field in the order it was exposed; the
 * results of its output nodes; and the picture the graph starts from (the "before" of the comparison).
 */
import type { Catalog, CatalogParam } from '../../../server/protocol/catalog.ts';
import type { Graph } from '../../../server/protocol/graph.ts';

export interface SimpleSection {
  nodeId: string;
  /** The node's own title, else its type's. */
  title: string;
  fields: CatalogParam[];
}

export interface SimpleForm {
  sections: SimpleSection[];
  /** Output nodes (Save Image, …) whose results the form shows, in the graph's order. */
  outputs: { nodeId: string; title: string }[];
  /** The Load Image node the graph starts from, when it has one. */
  source: { nodeId: string; image: string | undefined } | null;
}

export function simpleForm(graph: Pick<Graph, 'nodes'>, catalog: Pick<Catalog, 'nodes'>): SimpleForm {
  const specs = new Map(catalog.nodes.map((n) => [n.type, n]));
  const titleOf = (n: Graph['nodes'][number]) => n.title || specs.get(n.type)?.title || n.type;
  const sections = graph.nodes.flatMap((n): SimpleSection[] => {
    const spec = specs.get(n.type);
    // A name the type does not have (a hand-edited file) is left out; validation names it.
    const fields = (n.exposed ?? []).map((name) => spec?.params.find((p) => p.name === name)).filter((p): p is CatalogParam => p !== undefined);
    return fields.length && n.mode !== 'mute' ? [{ nodeId: n.id, title: titleOf(n), fields }] : [];
  });
  const outputs = graph.nodes.filter((n) => specs.get(n.type)?.output && !n.mode).map((n) => ({ nodeId: n.id, title: titleOf(n) }));
  const loader = graph.nodes.find((n) => n.type === 'LoadImage');
  const source = loader ? { nodeId: loader.id, image: typeof loader.params.image === 'string' ? loader.params.image : undefined } : null;
  return { sections, outputs, source };
}

/**
 * Bypassed and muted nodes (GraphNode.mode): the graph a run actually executes. A bypassed node does
 * not run; each of its outputs is fed by its first connected input of the same type (followed
 * through further bypassed nodes), so its consumers get what came in. A muted node does not run, and
 * neither does a node that needs its output; an optional input fed by it counts as unconnected.
 */
import type { Graph, GraphEdge } from '../protocol/graph.ts';
import { concreteInputs, type AnyNodeDefinition, type OutputSpec } from '../../nodes/types.ts';
import type { NodeCatalog } from '../catalog.ts';
import { topoOrder } from './topo.ts';

type Shape = Pick<Graph, 'nodes' | 'edges'>;

export interface ModeResolution<G extends Shape> {
  /** The graph without the nodes that do not run, edges rewired around bypassed nodes. */
  graph: G;
  /** Nodes that do not run: muted, bypassed, and those that need a muted node's output. */
  skipped: Set<string>;
  /** Outputs of bypassed nodes that something consumes but that no input of their type can feed. */
  unmatched: { nodeId: string; output: string; type: string }[];
}

type Source = { node: string; output: string };

export function resolveModes<G extends Shape>(graph: G, catalog: NodeCatalog): ModeResolution<G> {
  if (!graph.nodes.some((n) => n.mode)) return { graph, skipped: new Set(), unmatched: [] };
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const defOf = (id: string): AnyNodeDefinition | undefined => {
    const n = byId.get(id);
    return n ? catalog.get(n.type) : undefined;
  };
  const into = new Map<string, GraphEdge>();
  for (const e of graph.edges) into.set(`${e.to.node}\u0000${e.to.input}`, e);
  const unmatched: ModeResolution<G>['unmatched'] = [];

  /** Where the value of an output really comes from; null when nothing will produce it. */
  const resolve = (src: Source, depth = 0): Source | null => {
    const node = byId.get(src.node);
    if (!node || node.mode === 'mute' || depth > graph.nodes.length) return null;
    if (node.mode !== 'bypass') return src;
    const def = defOf(src.node);
    const type = (def?.outputs as Record<string, OutputSpec> | undefined)?.[src.output]?.type;
    for (const spec of def ? concreteInputs(def, node.params) : []) {
      const edge = spec.type === type ? into.get(`${src.node}\u0000${spec.name}`) : undefined;
      if (edge) return resolve(edge.from, depth + 1);
    }
    if (type && !unmatched.some((u) => u.nodeId === src.node && u.output === src.output)) unmatched.push({ nodeId: src.node, output: src.output, type });
    return null;
  };

  const skipped = new Set(graph.nodes.filter((n) => n.mode).map((n) => n.id));
  const edges: GraphEdge[] = [];
  for (const id of topoOrder(graph).order) {
    if (skipped.has(id)) continue;
    const def = defOf(id);
    const inputs = def ? concreteInputs(def, byId.get(id)!.params) : [];
    for (const e of graph.edges.filter((x) => x.to.node === id)) {
      const from = resolve(e.from);
      if (from && !skipped.has(from.node)) edges.push({ ...e, from });
      else if (!inputs.find((i) => i.name === e.to.input)?.optional) skipped.add(id);
    }
  }
  return {
    graph: { ...graph, nodes: graph.nodes.filter((n) => !skipped.has(n.id)), edges: edges.filter((e) => !skipped.has(e.to.node)) },
    skipped,
    unmatched,
  };
}

/** Files the studio hands to the user: graph JSON, and result PNGs that carry their graph. */
import type { Graph } from '../../../server/protocol/graph.ts';
import { fetchBytes } from '../api.ts';
import { GRAPH_KEYWORD, isPng, PARAMETERS_KEYWORD, writePngText } from '../png-graph.ts';

export function downloadBlob(blob: Blob, fileName: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** A file-name-safe form of a label ("Epsilon merge: Van Gogh…" → "Epsilon-merge-Van-Gogh"). */
export function fileStem(label: string): string {
  return (
    label
      .replace(/[^A-Za-z0-9_.-]+/g, '-')
      .replace(/^[-.]+|[-.]+$/g, '')
      .slice(0, 60) || 'graph'
  );
}

/**
 * The settings in words, for people and tools that read a PNG's "parameters" text: one line per
 * node with its settings. The JSON chunk stays the source of truth.
 */
export function graphSummary(graph: Graph, graphLabel: string): string {
  const lines = [`Dual Style Studio graph “${graphLabel}” (drop this PNG on the editor to open it)`];
  for (const n of graph.nodes) {
    const params = Object.entries(n.params ?? {})
      .map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`)
      .join('; ');
    lines.push(`${n.title ?? n.type} [${n.id}]${params ? ` — ${params}` : ''}`);
  }
  return lines.join('\n');
}

/**
 * Downloads a result image as `<graph>-<node>.png` with the graph embedded, so dropping the file
 * on the editor restores the graph. Done here rather than on the server: the server's result files
 * are named by content and shared by every graph that produces the same picture.
 */
export async function downloadResultPng(image: { url: string }, nodeId: string, graph: Graph, graphLabel: string): Promise<void> {
  const bytes = await fetchBytes(image.url);
  if (!isPng(bytes)) throw new Error('the result is not a PNG, so the graph cannot be embedded in it');
  const withGraph = writePngText(bytes, {
    [GRAPH_KEYWORD]: JSON.stringify(graph),
    [PARAMETERS_KEYWORD]: graphSummary(graph, graphLabel),
    Software: 'Dual Style Studio',
  });
  downloadBlob(new Blob([withGraph as BlobPart], { type: 'image/png' }), `${fileStem(graphLabel)}-${fileStem(nodeId)}.png`);
}

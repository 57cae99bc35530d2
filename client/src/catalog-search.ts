/** Finding node types: the catalog grouped by category, and the search of the Add-node dialogs. */
import type { CatalogNode } from '../../server/protocol/catalog.ts';
import { socketsCompatible } from './graph-io.ts';

/** Catalog nodes grouped by category, categories and nodes in a stable, readable order. */
export function groupByCategory(nodes: CatalogNode[]): [string, CatalogNode[]][] {
  const groups = new Map<string, CatalogNode[]>();
  for (const n of nodes) {
    const cat = n.category || 'Other';
    if (!groups.has(cat)) groups.set(cat, []);
    groups.get(cat)!.push(n);
  }
  return [...groups.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([cat, list]) => [cat, [...list].sort((a, b) => a.title.localeCompare(b.title))]);
}

/**
 * Palette search: every word of the query must appear in the title, type, category or description;
 * title matches rank first, then title prefixes.
 */
export function searchCatalog(nodes: CatalogNode[], query: string): CatalogNode[] {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0) return [...nodes].sort((a, b) => a.category.localeCompare(b.category) || a.title.localeCompare(b.title));
  const scored: { node: CatalogNode; score: number }[] = [];
  for (const node of nodes) {
    const title = node.title.toLowerCase();
    const hay = `${title} ${node.type.toLowerCase()} ${node.category.toLowerCase()} ${node.description.toLowerCase()}`;
    if (!words.every((w) => hay.includes(w))) continue;
    let score = 0;
    for (const w of words) {
      if (title.startsWith(w)) score += 3;
      else if (title.includes(w)) score += 2;
      else if (node.type.toLowerCase().includes(w)) score += 1;
    }
    scored.push({ node, score });
  }
  return scored.sort((a, b) => b.score - a.score || a.node.title.localeCompare(b.node.title)).map((s) => s.node);
}

/** The loose end of a connection dragged out of a socket: which side it left from, and its socket type. */
export interface WireEnd {
  nodeId: string;
  side: 'input' | 'output';
  key: string;
  type: string;
}

/**
 * Node types that can take the loose end of a connection: an input of the wire's type for a wire
 * dragged out of an output, an output of it for one dragged out of an input (the editor's own rule,
 * `socketsCompatible`, decides).
 */
export function nodesForWire(nodes: CatalogNode[], wire: Pick<WireEnd, 'side' | 'type'>): CatalogNode[] {
  return nodes.filter((n) =>
    wire.side === 'output' ? n.inputs.some((s) => socketsCompatible(wire.type, s.type)) : n.outputs.some((s) => socketsCompatible(s.type, wire.type)),
  );
}

/**
 * Copy and paste of nodes, in this tab and between tabs: the copied nodes (with the connections
 * between them, and those coming in from outside for "paste with connections") are kept in
 * localStorage, which every tab of the studio shares, and put on the system clipboard as text.
 * Pure apart from the storage: the editor turns a plan into nodes.
 */
import { uniqueNodeId, type EditorConnectionDTO, type EditorNodeDTO, type EditorSnapshot, type Position } from './graph-io.ts';

export const CLIPBOARD_FORMAT = 'dualstyle-clipboard';
const KEY = 'dualstyle.clipboard.v1';

export interface ClipboardData {
  format: typeof CLIPBOARD_FORMAT;
  version: 1;
  nodes: EditorNodeDTO[];
  /** Between copied nodes, and into them from nodes that were not copied. */
  connections: EditorConnectionDTO[];
}

/** The nodes `ids` of a snapshot, ready to paste elsewhere. */
export function copyOf(snapshot: EditorSnapshot, ids: Iterable<string>): ClipboardData | null {
  const picked = new Set(ids);
  const nodes = snapshot.nodes.filter((n) => picked.has(n.id));
  if (nodes.length === 0) return null;
  const connections = snapshot.connections.filter((c) => picked.has(c.target));
  return JSON.parse(JSON.stringify({ format: CLIPBOARD_FORMAT, version: 1, nodes, connections })) as ClipboardData;
}

export interface PastePlan {
  nodes: EditorNodeDTO[];
  connections: EditorConnectionDTO[];
}

/**
 * New ids and places for pasted nodes: their top-left corner goes to `at` (or they move by
 * `offset`). With `keepInputs`, connections from nodes that were not copied are kept when those
 * nodes exist here (`present`); connections between copied nodes always are.
 */
export function pastePlan(data: ClipboardData, present: ReadonlySet<string>, place: { at?: Position; offset?: Position }, keepInputs = false): PastePlan {
  const taken = new Set(present);
  const ids = new Map<string, string>();
  for (const n of data.nodes) {
    const id = uniqueNodeId(n.type, taken);
    taken.add(id);
    ids.set(n.id, id);
  }
  const left = Math.min(...data.nodes.map((n) => n.position.x));
  const top = Math.min(...data.nodes.map((n) => n.position.y));
  const d = place.at ? { x: place.at.x - left, y: place.at.y - top } : (place.offset ?? { x: 40, y: 40 });
  const shift = (p: Position) => ({ x: Math.round(p.x + d.x), y: Math.round(p.y + d.y) });
  const nodes = data.nodes.map((n) => ({ ...n, id: ids.get(n.id)!, position: shift(n.position), params: structuredClone(n.params) }));
  const connections: EditorConnectionDTO[] = [];
  for (const c of data.connections) {
    const inside = ids.has(c.source);
    if (!inside && !(keepInputs && present.has(c.source))) continue;
    connections.push({
      source: ids.get(c.source) ?? c.source,
      sourceOutput: c.sourceOutput,
      target: ids.get(c.target)!,
      targetInput: c.targetInput,
      // Reroute points move with the nodes only when both ends did.
      ...(c.points?.length && inside ? { points: c.points.map(shift) } : {}),
    });
  }
  return { nodes, connections };
}

export function parseClipboard(text: string | null | undefined): ClipboardData | null {
  if (!text) return null;
  try {
    const data = JSON.parse(text) as Partial<ClipboardData>;
    if (data.format !== CLIPBOARD_FORMAT || !Array.isArray(data.nodes) || !Array.isArray(data.connections) || data.nodes.length === 0) return null;
    const ok = data.nodes.every(
      (n) => n && typeof n.id === 'string' && typeof n.type === 'string' && n.position && typeof n.position.x === 'number' && typeof n.position.y === 'number',
    );
    return ok ? (data as ClipboardData) : null;
  } catch {
    return null;
  }
}

/** Keeps the copy for every tab, and offers it to other programs as text (where the browser lets us). */
export function writeClipboard(data: ClipboardData): void {
  const text = JSON.stringify(data);
  try {
    localStorage.setItem(KEY, text);
  } catch {
    /* storage disabled: the system clipboard may still take it */
  }
  void navigator.clipboard?.writeText(text).catch(() => undefined);
}

export function readClipboard(): ClipboardData | null {
  try {
    return parseClipboard(localStorage.getItem(KEY));
  } catch {
    return null;
  }
}

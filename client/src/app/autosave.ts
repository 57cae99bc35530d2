/**
 * Never lose work: the current graph and what it was opened from are mirrored to localStorage on
 * every change and restored on reload.
 */
import type { Graph } from '../../../server/protocol/graph.ts';
import { parseGraphJson } from '../graph-io.ts';

const KEY = 'dualstyle.autosave.v1';

export interface DocInfo {
  /** Name on the server, when the graph came from (or was saved to) there. */
  name: string | null;
  source: 'template' | 'user' | null;
  /** Fingerprint of the graph as last opened or saved: differs from the current one = unsaved. */
  baseline: string;
}

export interface Autosave {
  graph: Graph;
  doc: DocInfo;
  savedAt: number;
}

export function writeAutosave(graph: Graph, doc: DocInfo): void {
  try {
    localStorage.setItem(KEY, JSON.stringify({ graph, doc, savedAt: Date.now() } satisfies Autosave));
  } catch {
    // Storage full or disabled: the beforeunload warning still protects the user.
  }
}

export function readAutosave(): Autosave | null {
  try {
    const raw = localStorage.getItem(KEY);
    if (!raw) return null;
    const data = JSON.parse(raw) as Partial<Autosave>;
    const parsed = parseGraphJson(data.graph);
    if (!parsed.ok || !data.doc) return null;
    return { graph: parsed.graph, doc: data.doc, savedAt: data.savedAt ?? 0 };
  } catch {
    return null;
  }
}

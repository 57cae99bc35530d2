/**
 * Never lose work, and never another tab's: each browser tab mirrors its graph (and what it was
 * opened from) to its own autosave slot in localStorage on every change. The tab finds its slot
 * again after a reload through an id kept in sessionStorage (which lives as long as the tab, reloads
 * included); a fresh tab, or a tab reopened after closing, restores the most recent slot of any tab,
 * and from then on writes to a slot of its own. So tab B opening a template never overwrites tab A's
 * unsaved edits.
 */
import type { Graph } from '../../../server/protocol/graph.ts';
import { parseGraphJson } from '../graph-io.ts';

/** localStorage: one slot per tab, `${SLOT_PREFIX}${tabId}`. */
export const SLOT_PREFIX = 'dualstyle.autosave.v2.';
/** sessionStorage: this tab's id (kept across reloads of the tab, not shared with other tabs). */
export const TAB_ID_KEY = 'dualstyle.tab-id';
/** The single slot of earlier versions: read once by a fresh tab when it is the newest work. */
const LEGACY_KEY = 'dualstyle.autosave.v1';
/** Slots kept: the most recently written ones (closed tabs' slots are forgotten beyond that). */
const MAX_SLOTS = 12;

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

function newTabId(): string {
  return typeof crypto.randomUUID === 'function' ? crypto.randomUUID() : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

/** Whether this page load found its tab id from before (a reload), read once at startup. */
let reloaded = false;

/** This tab's id: made at its first load, kept by sessionStorage through reloads. */
let tabId: string = (() => {
  try {
    const known = sessionStorage.getItem(TAB_ID_KEY);
    if (known) {
      reloaded = true;
      return known;
    }
    const id = newTabId();
    sessionStorage.setItem(TAB_ID_KEY, id);
    return id;
  } catch {
    return newTabId();
  }
})();

function slotKey(id: string): string {
  return `${SLOT_PREFIX}${id}`;
}

/**
 * A duplicated tab (the browser's "Duplicate") starts with a copy of its original's sessionStorage,
 * so with its id: it asks the other tabs whether the id is taken, and takes a new one when it is.
 */
function watchForTwin(): void {
  if (typeof BroadcastChannel !== 'function') return;
  const channel = new BroadcastChannel('dualstyle.tabs');
  channel.onmessage = (e: MessageEvent<{ type: 'who' | 'mine'; id: string }>) => {
    if (e.data.id !== tabId) return;
    if (e.data.type === 'who') channel.postMessage({ type: 'mine', id: tabId });
    else if (e.data.type === 'mine' && reloaded) {
      tabId = newTabId();
      try {
        sessionStorage.setItem(TAB_ID_KEY, tabId);
      } catch {
        /* not kept: this page load still writes its own slot */
      }
    }
  };
  channel.postMessage({ type: 'who', id: tabId });
}
watchForTwin();

export function writeAutosave(graph: Graph, doc: DocInfo): void {
  try {
    localStorage.setItem(slotKey(tabId), JSON.stringify({ graph, doc, savedAt: Date.now() } satisfies Autosave));
    forgetOldSlots();
  } catch {
    // Storage full or disabled: the beforeunload warning still protects the user.
  }
}

function parseSlot(raw: string | null): Autosave | null {
  if (!raw) return null;
  try {
    const data = JSON.parse(raw) as Partial<Autosave>;
    const parsed = parseGraphJson(data.graph);
    if (!parsed.ok || !data.doc) return null;
    return { graph: parsed.graph, doc: data.doc, savedAt: data.savedAt ?? 0 };
  } catch {
    return null;
  }
}

/** Every slot's key with its write time, newest first. */
function slotsByAge(): { key: string; savedAt: number }[] {
  const out: { key: string; savedAt: number }[] = [];
  for (let i = 0; i < localStorage.length; i++) {
    const key = localStorage.key(i);
    if (!key || (!key.startsWith(SLOT_PREFIX) && key !== LEGACY_KEY)) continue;
    try {
      out.push({ key, savedAt: (JSON.parse(localStorage.getItem(key) ?? '{}') as Partial<Autosave>).savedAt ?? 0 });
    } catch {
      out.push({ key, savedAt: 0 });
    }
  }
  return out.sort((a, b) => b.savedAt - a.savedAt);
}

function forgetOldSlots(): void {
  const slots = slotsByAge();
  for (const { key } of slots.slice(MAX_SLOTS)) if (key !== slotKey(tabId)) localStorage.removeItem(key);
}

/**
 * What this tab starts with: after a reload, its own slot; in a fresh tab (or when its slot is gone),
 * the most recent work of any tab.
 */
export function readAutosave(): Autosave | null {
  try {
    if (reloaded) {
      const own = parseSlot(localStorage.getItem(slotKey(tabId)));
      if (own) return own;
    }
    for (const { key } of slotsByAge()) {
      const slot = parseSlot(localStorage.getItem(key));
      if (slot) return slot;
    }
    return null;
  } catch {
    return null;
  }
}

/**
 * Never lose work, and never another tab's: every open graph (a graph tab of the editor) mirrors its
 * graph (and what it was opened from) to its own autosave slot in localStorage on every change, and
 * each browser tab keeps its session (which graph tabs are open, which one is active, which were
 * closed and can be reopened) under its own key. The browser tab finds its session again after a
 * reload through an id kept in sessionStorage (which lives as long as the tab, reloads included); a
 * fresh tab, or a tab reopened after closing, starts from a copy of the most recent session of any tab
 * (its graphs copied to slots of its own). So tab B opening a template never overwrites tab A's
 * unsaved edits, and two graph tabs never share a slot.
 */
import type { Graph } from '../../../server/protocol/graph.ts';
import { graphFingerprint, parseGraphJson } from '../graph-io.ts';

/** localStorage: one slot per open graph, `${SLOT_PREFIX}${graphId}`. */
export const SLOT_PREFIX = 'dualstyle.autosave.v3.';
/** localStorage: one session per browser tab, `${SESSION_PREFIX}${tabId}`. */
export const SESSION_PREFIX = 'dualstyle.session.v1.';
/** The one-graph slots of the version before graph tabs: a fresh tab takes the newest as its one graph. */
const V2_PREFIX = 'dualstyle.autosave.v2.';
/** sessionStorage: this tab's id (kept across reloads of the tab, not shared with other tabs). */
export const TAB_ID_KEY = 'dualstyle.tab-id';
/** The single slot of earlier versions: read once by a fresh tab when it is the newest work. */
const LEGACY_KEY = 'dualstyle.autosave.v1';
/** Sessions kept: the most recently written ones (closed browser tabs' sessions, and their graphs, are forgotten beyond that). */
const MAX_SESSIONS = 12;
/** Closed graph tabs a session remembers for "Reopen closed tab". */
const MAX_CLOSED = 10;

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

/** An open graph tab: its slot's id, and the name the user gave the tab (else the document's label shows). */
export interface GraphTabEntry {
  id: string;
  title?: string;
}

/** The graph tabs of one browser tab. */
export interface TabSession {
  tabs: GraphTabEntry[];
  active: string;
  /** Closed graph tabs, the last closed first: their slots are kept until they fall off this list. */
  closed: GraphTabEntry[];
}

export function newTabId(): string {
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

function slotKey(graphId: string): string {
  return `${SLOT_PREFIX}${graphId}`;
}

function sessionKey(id: string): string {
  return `${SESSION_PREFIX}${id}`;
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

function read<T>(key: string): Partial<T> | null {
  try {
    const raw = localStorage.getItem(key);
    return raw ? (JSON.parse(raw) as Partial<T>) : null;
  } catch {
    return null;
  }
}

function write(key: string, value: unknown): void {
  try {
    localStorage.setItem(key, JSON.stringify(value));
  } catch {
    // Storage full or disabled: the beforeunload warning still protects the user.
  }
}

/** Mirrors one open graph to its slot. */
export function writeAutosave(graphId: string, graph: Graph, doc: DocInfo): void {
  write(slotKey(graphId), { graph, doc, savedAt: Date.now() } satisfies Autosave);
}

/** The graph a graph tab last autosaved, or null (a new tab, or its slot was forgotten). */
export function readAutosave(graphId: string): Autosave | null {
  return parseSlot(localStorage.getItem(slotKey(graphId)));
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

function validSession(data: Partial<TabSession> | null): TabSession | null {
  if (!data || !Array.isArray(data.tabs) || data.tabs.length === 0 || typeof data.active !== 'string') return null;
  const tabs = data.tabs.filter((t): t is GraphTabEntry => typeof t?.id === 'string');
  if (tabs.length === 0) return null;
  const closed = Array.isArray(data.closed) ? data.closed.filter((t): t is GraphTabEntry => typeof t?.id === 'string') : [];
  return { tabs, active: tabs.some((t) => t.id === data.active) ? data.active : tabs[0]!.id, closed };
}

/** Keys in localStorage that start with `prefix`. */
function keysWith(prefix: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < localStorage.length; i++) {
    const key = localStorage.key(i);
    if (key?.startsWith(prefix)) out.push(key);
  }
  return out;
}

/** When a session was last worked on: its own write, or its graphs' latest autosave. */
function lastWork(session: TabSession, savedAt: number): number {
  return Math.max(savedAt, ...session.tabs.map((t) => read<Autosave>(slotKey(t.id))?.savedAt ?? 0));
}

/** Every browser tab's session with when it was last worked on, newest first. */
function sessionsByAge(): { key: string; session: TabSession; at: number }[] {
  const out: { key: string; session: TabSession; at: number }[] = [];
  for (const key of keysWith(SESSION_PREFIX)) {
    const data = read<TabSession & { savedAt: number }>(key);
    const session = validSession(data);
    if (session) out.push({ key, session, at: lastWork(session, data?.savedAt ?? 0) });
  }
  return out.sort((a, b) => b.at - a.at);
}

/** Copies a session's open graphs to slots of this browser tab's own (closed ones stay behind). */
function adopt(session: TabSession): TabSession {
  const tabs = session.tabs.map((t) => {
    const id = newTabId();
    const slot = localStorage.getItem(slotKey(t.id));
    if (slot) localStorage.setItem(slotKey(id), slot);
    return { ...t, id, was: t.id };
  });
  const active = tabs.find((t) => t.was === session.active)?.id ?? tabs[0]!.id;
  return { tabs: tabs.map(({ was: _was, ...t }) => t), active, closed: [] };
}

/** The newest one-graph slot of the version before graph tabs, as a session of one tab. */
function fromOneGraphSlots(): TabSession | null {
  let newest: Autosave | null = null;
  for (const key of [...keysWith(V2_PREFIX), LEGACY_KEY]) {
    const slot = parseSlot(localStorage.getItem(key));
    if (slot && (!newest || slot.savedAt > newest.savedAt)) newest = slot;
  }
  if (!newest) return null;
  const id = newTabId();
  writeAutosave(id, newest.graph, newest.doc);
  return { tabs: [{ id }], active: id, closed: [] };
}

/**
 * What this browser tab starts with: after a reload, its own session; in a fresh tab (or when its
 * session is gone), a copy of the most recently worked-on session of any tab; null on a first visit.
 */
export function readSession(): TabSession | null {
  try {
    if (reloaded) {
      const own = validSession(read<TabSession>(sessionKey(tabId)));
      if (own) return own;
    }
    const newest = sessionsByAge()[0];
    return newest ? adopt(newest.session) : fromOneGraphSlots();
  } catch {
    return null;
  }
}

/** Keeps this browser tab's session (on every change of its tabs), and forgets what no session needs any more. */
export function writeSession(session: TabSession): void {
  const kept = { ...session, closed: session.closed.slice(0, MAX_CLOSED) };
  write(sessionKey(tabId), { ...kept, savedAt: Date.now() });
  try {
    forgetOld();
  } catch {
    /* storage unreadable: nothing to tidy */
  }
}

function forgetOld(): void {
  const sessions = sessionsByAge();
  const own = sessionKey(tabId);
  for (const { key } of sessions.slice(MAX_SESSIONS)) if (key !== own) localStorage.removeItem(key);
  const needed = new Set(sessions.slice(0, MAX_SESSIONS).flatMap(({ session }) => [...session.tabs, ...session.closed].map((t) => slotKey(t.id))));
  for (const key of keysWith(SLOT_PREFIX)) if (!needed.has(key)) localStorage.removeItem(key);
}

/** What a tab not yet shown says of its autosaved graph: its label, and whether it has unsaved changes. */
export function slotSummary(graphId: string): { label: string; dirty: boolean } | null {
  const slot = readAutosave(graphId);
  if (!slot) return null;
  return {
    label: slot.doc.name ?? ((slot.graph.meta.title as string | undefined) || 'Untitled graph'),
    dirty: graphFingerprint(slot.graph) !== slot.doc.baseline,
  };
}

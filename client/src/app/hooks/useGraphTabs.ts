/**
 * The graph tabs of this browser tab (ComfyUI's workflow tabs): which graphs are open, which one is
 * shown, which were closed (to reopen), and the names the user gave them. Kept in the browser tab's
 * session (autosave.ts) on every change, so a reload brings back every tab and the active one.
 */
import { useEffect, useState } from 'react';
import { newTabId, readSession, slotSummary, writeSession, type GraphTabEntry } from '../autosave.ts';
import type { Opening } from './useDocument.ts';

/** An open graph tab; `start`: what it holds before anything is autosaved (a graph being opened, the welcome template). */
export interface OpenTab extends GraphTabEntry {
  start: Opening | 'welcome' | null;
}

/** What a tab's label and dirty mark say. */
export interface TabMeta {
  label: string;
  dirty: boolean;
}

interface TabsState {
  tabs: OpenTab[];
  active: string;
  closed: GraphTabEntry[];
}

function initialTabs(): TabsState {
  const session = readSession();
  if (session) return { tabs: session.tabs.map((t) => ({ ...t, start: null })), active: session.active, closed: session.closed };
  // First visit of this browser: one tab, with the welcome template.
  const id = newTabId();
  return { tabs: [{ id, start: 'welcome' }], active: id, closed: [] };
}

export function useGraphTabs() {
  const [state, setState] = useState(initialTabs);
  const [metas, setMetas] = useState<Record<string, TabMeta>>({});
  const { tabs, active, closed } = state;

  useEffect(() => {
    writeSession({ tabs: tabs.map(({ id, title }) => (title ? { id, title } : { id })), active, closed });
  }, [tabs, active, closed]);

  /** A new tab after the active one, shown at once: empty, or with a graph being opened. */
  const add = (start: Opening | null = null) => {
    const tab: OpenTab = { id: newTabId(), start };
    setState((s) => {
      const at = s.tabs.findIndex((t) => t.id === s.active) + 1;
      return { ...s, tabs: [...s.tabs.slice(0, at), tab, ...s.tabs.slice(at)], active: tab.id };
    });
  };
  /** Closes a tab (its autosave stays, for reopening); the last tab closed leaves an empty one. */
  const close = (id: string) =>
    setState((s) => {
      const at = s.tabs.findIndex((t) => t.id === id);
      if (at < 0) return s;
      const rest = s.tabs.filter((t) => t.id !== id);
      const tabs = rest.length ? rest : [{ id: newTabId(), start: null }];
      const nextActive = s.active === id ? tabs[Math.min(at, tabs.length - 1)]!.id : s.active;
      const { start: _start, ...entry } = s.tabs[at]!;
      return { tabs, active: nextActive, closed: [entry, ...s.closed] };
    });
  /** Opens the tab closed last again, from its autosave. */
  const reopen = (): boolean => {
    if (!closed.length) return false;
    setState((s) => {
      const [entry, ...rest] = s.closed;
      if (!entry) return s;
      return { tabs: [...s.tabs, { ...entry, start: null }], active: entry.id, closed: rest };
    });
    return true;
  };
  const select = (id: string) => setState((s) => (s.tabs.some((t) => t.id === id) ? { ...s, active: id } : s));
  const rename = (id: string, title: string) =>
    setState((s) => ({ ...s, tabs: s.tabs.map((t) => (t.id === id ? { ...t, title: title.trim() || undefined } : t)) }));
  const report = (id: string, meta: TabMeta) => setMetas((m) => (m[id]?.label === meta.label && m[id]?.dirty === meta.dirty ? m : { ...m, [id]: meta }));
  /** A tab's label and dirty mark: as its document says, or (a tab not shown since the reload) as its autosave says. */
  const metaOf = (id: string): TabMeta => metas[id] ?? slotSummary(id) ?? { label: 'Untitled graph', dirty: false };

  return { tabs, active, closed, add, close, reopen, select, rename, report, metaOf };
}

export type GraphTabs = ReturnType<typeof useGraphTabs>;

/**
 * The document of one graph tab: the graph as its editor holds it, what it was opened from, whether it
 * changed since (dirty), mirrored to the tab's own autosave slot on every change and restored at the
 * next visit. Opening, saving and starting anew live here too; a graph opened over a tab with work in
 * it goes to a tab of its own.
 */
import { useEffect, useMemo, useReducer, type Dispatch } from 'react';
import type { Graph } from '../../../../server/protocol/graph.ts';
import { api, ApiError, type GraphListEntry } from '../../api.ts';
import type { StudioEditor } from '../../editor/create-editor.tsx';
import { GRAPH_FORMAT, GRAPH_VERSION, graphFingerprint, graphNameProblem, parseGraphJson } from '../../graph-io.ts';
import { readAutosave, writeAutosave, type DocInfo } from '../autosave.ts';
import type { SetDialog } from '../dialog-state.ts';
import { useStableCallback } from './useLatest.ts';
import type { Notify } from './useToasts.ts';

/** Opened when this browser has no autosaved graph; an empty canvas when the server lacks it. */
const FIRST_VISIT_TEMPLATE = 'epsilon-merge';

export const EMPTY_GRAPH: Graph = { format: GRAPH_FORMAT, version: GRAPH_VERSION, nodes: [], edges: [], meta: {} };

interface DocState {
  doc: DocInfo;
  /** The editor's graph after the latest change, with the document's meta. */
  graph: Graph;
  /** False until the first graph is in the editor: nothing is autosaved before. */
  ready: boolean;
  /** This browser had nothing saved: the studio opened its welcome graph. */
  firstVisit: boolean;
}

type DocAction =
  /** A graph replaced the editor's content (open, new, import), or the document was saved. */
  | { type: 'replaced'; doc: DocInfo; graph: Graph; firstVisit?: boolean }
  /** The user changed the graph; meta stays the document's. */
  | { type: 'edited'; graph: Graph }
  /** The studio moved nodes by itself: a clean document stays clean. */
  | { type: 'relaid'; graph: Graph };

function reducer(s: DocState, a: DocAction): DocState {
  switch (a.type) {
    case 'replaced':
      return { doc: a.doc, graph: a.graph, ready: true, firstVisit: a.firstVisit ?? s.firstVisit };
    case 'edited':
      return { ...s, graph: { ...a.graph, meta: s.graph.meta } };
    case 'relaid': {
      const graph = { ...a.graph, meta: s.graph.meta };
      const clean = graphFingerprint(s.graph) === s.doc.baseline;
      return { ...s, graph, doc: clean ? { ...s.doc, baseline: graphFingerprint(graph) } : s.doc };
    }
  }
}

/** A graph to put in a tab, and what it came from. */
export interface Opening {
  graph: Graph;
  name: string | null;
  source: DocInfo['source'];
}

export interface DocumentOptions {
  /** The graph tab: its autosave slot. */
  tabId: string;
  /** What a tab without an autosave starts with: a graph being opened, the welcome template (first visit), or nothing. */
  start: Opening | 'welcome' | null;
  /** This tab is the one shown (it names the browser tab). */
  active: boolean;
  editor: StudioEditor | null;
  notify: Notify;
  setDialog: SetDialog;
  /** Before another graph replaces the editor's content. */
  onBeforeReplace(): void;
  /** After a graph replaced the editor's content (at boot too). */
  onReplaced(graph: Graph): void;
  /** A graph opened while this tab holds work: it goes to a new tab. */
  onOpenElsewhere(opening: Opening): void;
}

const INITIAL: DocState = { doc: { name: null, source: null, baseline: graphFingerprint(EMPTY_GRAPH) }, graph: EMPTY_GRAPH, ready: false, firstVisit: false };

export function useDocument(o: DocumentOptions) {
  const { editor, notify, setDialog } = o;
  const [state, dispatch] = useReducer(reducer, INITIAL);
  const { doc, graph, ready, firstVisit } = state;
  const meta = graph.meta;
  const dirty = useMemo(() => graphFingerprint(graph) !== doc.baseline, [graph, doc.baseline]);
  const docLabel = doc.name ?? ((meta.title as string | undefined) || 'Untitled graph');

  /** The graph as the editor holds it now, with the document's meta (what runs, saves and exports). */
  const currentGraph = useStableCallback((): Graph => editor?.toGraph(meta) ?? EMPTY_GRAPH);
  /** The editor changed: take its graph (the dirty flag and autosave follow); `byStudio`: a layout fix, not an edit. */
  const edited = useStableCallback((byStudio = false) => {
    if (editor) dispatch({ type: byStudio ? 'relaid' : 'edited', graph: editor.toGraph() });
  });
  useDocumentMirrors(o.tabId, state, dirty, o.active ? docLabel : null);

  /** Puts a graph in the editor; `doc` gets the baseline of the graph as loaded (defaults filled in). */
  const replace: Replace = useStableCallback(
    async (ed: StudioEditor, next: Graph, docOf: (baseline: string) => DocInfo, first?: boolean): Promise<string[]> => {
      const problems = await ed.load(next);
      const loaded = ed.toGraph(next.meta ?? {});
      dispatch({ type: 'replaced', doc: docOf(graphFingerprint(loaded)), graph: loaded, firstVisit: first ?? false });
      o.onReplaced(loaded);
      return problems;
    },
  );
  useDocumentBoot({ ...o, replace, dispatch });

  const opening = useOpening({ ...o, dirty, docLabel, replace, untouched: !dirty && (graph.nodes.length === 0 || doc.source === 'template') });
  const saving = useSaving({ editor, notify, setDialog, doc, meta, dispatch });
  return { doc, meta, dirty, ready, firstVisit, docLabel, nodeCount: graph.nodes.length, currentGraph, edited, ...opening, ...saving };
}

/**
 * What follows the document: its autosave slot, and (for the tab shown) the browser tab's title. The
 * warning before leaving with unsaved changes is the studio's (App.tsx), over every graph tab.
 */
function useDocumentMirrors(tabId: string, state: DocState, dirty: boolean, shownLabel: string | null): void {
  const { ready, graph, doc } = state;
  useEffect(() => {
    if (ready) writeAutosave(tabId, graph, doc);
  }, [tabId, ready, graph, doc]);

  useEffect(() => {
    if (shownLabel !== null) document.title = `${dirty ? '● ' : ''}${shownLabel} — Dual Style Studio`;
  }, [dirty, shownLabel]);
}

type Replace = (ed: StudioEditor, next: Graph, docOf: (baseline: string) => DocInfo, first?: boolean) => Promise<string[]>;

/** Boot, once per editor: the tab's autosaved graph, else what it was opened with (the welcome template on a first visit), else an empty canvas. */
function useDocumentBoot(o: DocumentOptions & { replace: Replace; dispatch: Dispatch<DocAction> }): void {
  const { editor, notify, replace, dispatch } = o;
  const boot = useStableCallback(async (ed: StudioEditor, cancelled: () => boolean) => {
    const saved = readAutosave(o.tabId);
    if (saved) {
      const problems = await replace(ed, saved.graph, () => saved.doc);
      for (const p of problems) notify('error', p);
      if (graphFingerprint(ed.toGraph()) !== saved.doc.baseline) notify('info', 'Restored your unsaved work from this browser.');
      return;
    }
    // First visit: a working pipeline that runs as is teaches more than an empty canvas.
    const start =
      o.start === 'welcome'
        ? await api.getGraph(FIRST_VISIT_TEMPLATE).then(
            (r) => {
              const parsed = parseGraphJson(r.graph);
              return parsed.ok ? { graph: parsed.graph, name: FIRST_VISIT_TEMPLATE, source: 'template' as const } : null;
            },
            () => null,
          )
        : o.start;
    if (cancelled()) return;
    if (start) {
      const problems = await replace(ed, start.graph, (baseline) => ({ name: start.name, source: start.source, baseline }), o.start === 'welcome');
      for (const p of problems) notify('error', p);
    } else {
      await ed.zoomToFit();
      const empty = ed.toGraph();
      dispatch({ type: 'replaced', doc: { name: null, source: null, baseline: graphFingerprint(empty) }, graph: empty });
      o.onReplaced(empty);
    }
  });
  // Once per editor: later graphs come through loadGraph.
  useEffect(() => {
    if (!editor) return;
    let cancelled = false;
    void boot(editor, () => cancelled);
    return () => {
      cancelled = true;
    };
  }, [editor, boot]);
}

/** Opening: a graph replaces this tab's (asking first when it has unsaved changes), or goes to a tab of its own. */
function useOpening(o: DocumentOptions & { dirty: boolean; docLabel: string; replace: Replace; untouched: boolean }) {
  const { editor, notify, setDialog, dirty, docLabel } = o;
  const loadGraph = useStableCallback(async (next: Graph, name: string | null, source: DocInfo['source']) => {
    if (!editor) return;
    o.onBeforeReplace();
    const problems = await o.replace(editor, next, (baseline) => ({ name, source, baseline }));
    for (const p of problems) notify('error', p);
  });

  /** Runs `action` at once on a clean document, else after the user agrees to discard the changes. */
  const guardDirty = useStableCallback((what: string, action: () => void) => {
    if (!dirty) {
      action();
      return;
    }
    setDialog({
      kind: 'confirm',
      title: 'Discard unsaved changes?',
      message: `“${docLabel}” has changes that are not saved. ${what} replaces them. Save first if you want to keep them.`,
      confirmLabel: 'Discard changes',
      onConfirm: () => {
        setDialog(null);
        action();
      },
    });
  });

  /** Opens a graph: in this tab when it holds nothing of the user's (empty, or a template as opened), else in a new tab. */
  const openGraph = useStableCallback(async (opening: Opening) => {
    if (o.untouched) await loadGraph(opening.graph, opening.name, opening.source);
    else o.onOpenElsewhere(opening);
  });

  const newGraph = useStableCallback(() => guardDirty('A new graph', () => void loadGraph(EMPTY_GRAPH, null, null)));

  const openEntry = useStableCallback(async (entry: GraphListEntry) => {
    setDialog(null);
    try {
      const { graph: raw } = await api.getGraph(entry.name);
      const parsed = parseGraphJson(raw);
      if (!parsed.ok) {
        notify('error', `Cannot open “${entry.name}”: ${parsed.message}`);
        return;
      }
      await openGraph({ graph: parsed.graph, name: entry.name, source: entry.source });
    } catch (err) {
      notify('error', `Cannot open “${entry.name}”: ${(err as Error).message}`);
    }
  });
  return { loadGraph, guardDirty, openGraph, newGraph, openEntry };
}

/** Saving under the document's name, or under a new one (never over a template). */
function useSaving(o: { editor: StudioEditor | null; notify: Notify; setDialog: SetDialog; doc: DocInfo; meta: Graph['meta']; dispatch: Dispatch<DocAction> }) {
  const { editor, notify, setDialog, doc, meta, dispatch } = o;
  const saveAs = useStableCallback(async (name: string): Promise<boolean> => {
    const problem = graphNameProblem(name);
    if (problem) {
      setDialog({ kind: 'saveAs', initial: name, error: problem });
      return false;
    }
    try {
      const list = await api.listGraphs().catch(() => [] as GraphListEntry[]);
      if (list.some((e) => e.name === name && e.source === 'template')) {
        setDialog({ kind: 'saveAs', initial: name, error: `“${name}” is a shipped template, and templates are read-only. Choose another name.` });
        return false;
      }
      if (
        name !== doc.name &&
        list.some((e) => e.name === name && e.source === 'user') &&
        !window.confirm(`A saved graph named “${name}” exists. Replace it?`)
      ) {
        return false;
      }
      // Saved under a name, the graph is called by it (a copy of a template no longer shows the template's title).
      const saved = editor?.toGraph({ ...meta, title: name }) ?? EMPTY_GRAPH;
      await api.saveGraph(name, saved);
      dispatch({ type: 'replaced', doc: { name, source: 'user', baseline: graphFingerprint(saved) }, graph: saved });
      setDialog(null);
      notify('success', `Saved “${name}”.`);
      return true;
    } catch (err) {
      const message =
        err instanceof ApiError && err.status === 409
          ? `“${name}” is a template, and templates are read-only. Choose another name.`
          : `Could not save: ${(err as Error).message}`;
      setDialog({ kind: 'saveAs', initial: name, error: message });
      return false;
    }
  });

  const save = useStableCallback(() => {
    if (doc.name && doc.source === 'user') void saveAs(doc.name);
    else setDialog({ kind: 'saveAs', initial: doc.source === 'template' && doc.name ? `my-${doc.name}` : '' });
  });
  return { saveAs, save };
}

export type StudioDocument = ReturnType<typeof useDocument>;

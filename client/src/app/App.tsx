/** The studio: boot (health + catalog), then the editor with its document, validation and runs. */
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import type { Catalog } from '../../../server/protocol/catalog.ts';
import type { Graph, ValidationIssue } from '../../../server/protocol/graph.ts';
import { accessToken } from '../access-token.ts';
import { api, ApiError, type GraphListEntry } from '../api.ts';
import { healthState, modelsState, setResultActions } from '../editor/bridge.ts';
import { createStudioEditor, type ChangeKind, type StudioEditor } from '../editor/create-editor.tsx';
import { GRAPH_FORMAT, GRAPH_VERSION, graphFingerprint, graphNameProblem, parseGraphJson, type Position } from '../graph-io.ts';
import { graphJsonFromPng } from '../png-graph.ts';
import { nodeRuntime, useObservable } from '../runtime.ts';
import { readAutosave, writeAutosave, type DocInfo } from './autosave.ts';
import { ConfirmDialog, OpenDialog, Palette, PromptDialog } from './dialogs.tsx';
import { downloadBlob, downloadResultPng, fileStem } from './downloads.ts';
import { gallery, type GalleryImage, type JobRecord } from './gallery.ts';
import { CompareView, GalleryPanel } from './Gallery.tsx';
import { JobTracker, jobView, queueView, setNodeIdSource, socketConnected } from './jobs.ts';
import { ProblemsPanel, StatusBar, Toasts, Toolbar, type Toast } from './panels.tsx';

const VALIDATE_DEBOUNCE_MS = 300;
/** Opened when this browser has no autosaved graph; an empty canvas when the server lacks it. */
const FIRST_VISIT_TEMPLATE = 'epsilon-merge';

export function App() {
  const [catalog, setCatalog] = useState<Catalog | null>(null);
  const [error, setError] = useState<string | null>(null);
  const boot = useCallback(() => {
    setError(null);
    api.health().then((h) => healthState.set(h), () => undefined);
    api.catalog().then(setCatalog, (err: Error) =>
      setError(
        err instanceof ApiError && err.status === 401
          ? `${accessToken() ? 'The access token this tab was opened with is wrong.' : 'This studio is protected by an access token.'} Open it as ${window.location.origin}/?token=<token>, with the token the server was started with (--token or DUALSTYLE_TOKEN).`
          : err.message,
      ),
    );
  }, []);
  useEffect(boot, [boot]);
  if (error) {
    return (
      <div className="sd-splash">
        <h1>Dual Style Studio</h1>
        <p className="sd-error">Cannot load the node catalog: {error}</p>
        <button type="button" onClick={boot}>
          Try again
        </button>
      </div>
    );
  }
  if (!catalog) return <div className="sd-splash">Loading the node catalog…</div>;
  return <Studio catalog={catalog} />;
}

type Dialog =
  | { kind: 'open' }
  | { kind: 'palette'; at?: Position }
  | { kind: 'saveAs'; initial: string; error?: string | null }
  | { kind: 'confirm'; title: string; message: string; confirmLabel: string; onConfirm: () => void }
  | { kind: 'compare'; images: GalleryImage[] };

const EMPTY_GRAPH: Graph = { format: GRAPH_FORMAT, version: GRAPH_VERSION, nodes: [], edges: [], meta: {} };

function isTextEditing(t: EventTarget | null): boolean {
  if (!(t instanceof HTMLElement)) return false;
  if (t.isContentEditable || t.tagName === 'TEXTAREA') return true;
  if (t.tagName !== 'INPUT') return false;
  return !['checkbox', 'radio', 'button', 'submit', 'range', 'file', 'color'].includes((t as HTMLInputElement).type);
}

function Studio({ catalog }: { catalog: Catalog }) {
  const canvasRef = useRef<HTMLDivElement>(null);
  const importRef = useRef<HTMLInputElement>(null);
  const editorRef = useRef<StudioEditor | null>(null);
  const [ready, setReady] = useState(false);
  const [doc, setDocState] = useState<DocInfo>({ name: null, source: null, baseline: graphFingerprint(EMPTY_GRAPH) });
  const docRef = useRef(doc);
  const metaRef = useRef<Graph['meta']>({});
  const [dirty, setDirty] = useState(false);
  const dirtyRef = useRef(false);
  const [nodeCount, setNodeCount] = useState(0);
  const [issues, setIssues] = useState<ValidationIssue[]>([]);
  const [validating, setValidating] = useState(false);
  const [validationError, setValidationError] = useState<string | null>(null);
  const [showProblems, setShowProblems] = useState(true);
  const [showResults, setShowResults] = useState(false);
  const [dialog, setDialog] = useState<Dialog | null>(null);
  const [toasts, setToasts] = useState<Toast[]>([]);
  const [dropping, setDropping] = useState(false);
  const [healthError, setHealthError] = useState<string | null>(null);
  const health = useObservable(healthState);
  const queue = useObservable(queueView);
  const connected = useObservable(socketConnected);
  const models = useObservable(modelsState);

  const notify = useCallback((kind: Toast['kind'], message: string) => {
    const id = Date.now() + Math.random();
    setToasts((t) => [...t.slice(-4), { id, kind, message }]);
    setTimeout(() => setToasts((t) => t.filter((x) => x.id !== id)), kind === 'error' ? 8000 : 4000);
  }, []);
  // The gallery lists the server's history: read it now, and again whenever any tab's job ends.
  const tracker = useMemo(() => new JobTracker((k, m) => notify(k, m), () => void gallery.refresh()), [notify]);
  useEffect(() => void gallery.refresh(), []);
  // The results button lights up when results arrive while the panel is closed.
  const galleryImages = useObservable(gallery.images);
  const [seenResult, setSeenResult] = useState(galleryImages[0]?.key);
  useEffect(() => {
    if (showResults) setSeenResult(galleryImages[0]?.key);
  }, [showResults, galleryImages]);
  useEffect(() => () => tracker.close(), [tracker]);

  const setDoc = (d: DocInfo) => {
    docRef.current = d;
    setDocState(d);
  };

  // --- change tracking: dirty flag, autosave, validation ---------------------------------------
  const currentGraph = (): Graph => editorRef.current?.toGraph(metaRef.current) ?? EMPTY_GRAPH;

  const refreshDocState = () => {
    const graph = currentGraph();
    const isDirty = graphFingerprint(graph) !== docRef.current.baseline;
    dirtyRef.current = isDirty;
    setDirty(isDirty);
    setNodeCount(graph.nodes.length);
    writeAutosave(graph, docRef.current);
  };

  const validateSeq = useRef(0);
  const validateTimer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const applyIssues = (list: ValidationIssue[]) => {
    const byNode = new Map<string, ValidationIssue[]>();
    for (const i of list) {
      if (!i.nodeId) continue;
      if (!byNode.has(i.nodeId)) byNode.set(i.nodeId, []);
      byNode.get(i.nodeId)!.push(i);
    }
    const ids = editorRef.current?.snapshot().nodes.map((n) => n.id) ?? [];
    nodeRuntime.setIssues(byNode, ids);
    setIssues(list);
  };
  const validateNow = async () => {
    const seq = ++validateSeq.current;
    setValidating(true);
    try {
      const res = await api.validate(currentGraph());
      if (seq !== validateSeq.current) return;
      applyIssues(res.issues ?? []);
      setValidationError(null);
    } catch (err) {
      if (seq !== validateSeq.current) return;
      if (err instanceof ApiError && err.issues.length) {
        applyIssues(err.issues);
        setValidationError(null);
      } else {
        setValidationError((err as Error).message);
      }
    } finally {
      if (seq === validateSeq.current) setValidating(false);
    }
  };
  /** Drops a pending or in-flight check: its answer would be about the graph before this edit. */
  const invalidateValidation = () => {
    validateSeq.current++;
    clearTimeout(validateTimer.current);
  };
  const scheduleValidate = () => {
    invalidateValidation();
    setValidating(true);
    validateTimer.current = setTimeout(() => void validateNow(), VALIDATE_DEBOUNCE_MS);
  };

  const changeTimer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const pendingKinds = useRef(new Set<ChangeKind>());
  const onChange = (kind: ChangeKind) => {
    // Many events arrive per gesture (a load, a delete with its connections): handle them once.
    pendingKinds.current.add(kind);
    clearTimeout(changeTimer.current);
    changeTimer.current = setTimeout(() => {
      const kinds = pendingKinds.current;
      pendingKinds.current = new Set();
      refreshDocState();
      if (kinds.has('structure') || kinds.has('params')) scheduleValidate();
    }, 0);
  };
  const onChangeRef = useRef(onChange);
  onChangeRef.current = onChange;

  // --- editor lifecycle ----------------------------------------------------------------------
  useEffect(() => {
    let disposed = false;
    let created: StudioEditor | null = null;
    void (async () => {
      const editor = await createStudioEditor(canvasRef.current!, catalog, {
        onChange: (k) => onChangeRef.current(k),
        onRejectedConnection: (m) => notify('error', m),
        onCanvasDoubleClick: (at) => setDialog({ kind: 'palette', at }),
        uploadImage: (file) => api.upload(file),
      });
      created = editor;
      if (disposed) {
        editor.destroy();
        return;
      }
      editorRef.current = editor;
      setNodeIdSource(() => editor.snapshot().nodes.map((n) => n.id));
      const saved = readAutosave();
      if (saved) {
        metaRef.current = saved.graph.meta ?? {};
        const problems = await editor.load(saved.graph);
        setDoc(saved.doc);
        for (const p of problems) notify('error', p);
        if (graphFingerprint(editor.toGraph(metaRef.current)) !== saved.doc.baseline) notify('info', 'Restored your unsaved work from this browser.');
      } else {
        // First visit: a working pipeline that runs as is teaches more than an empty canvas.
        const welcome = await api.getGraph(FIRST_VISIT_TEMPLATE).then((r) => parseGraphJson(r.graph), () => null);
        if (disposed) return;
        if (welcome?.ok) {
          metaRef.current = welcome.graph.meta ?? {};
          const problems = await editor.load(welcome.graph);
          setDoc({ name: FIRST_VISIT_TEMPLATE, source: 'template', baseline: graphFingerprint(editor.toGraph(metaRef.current)) });
          for (const p of problems) notify('error', p);
        } else {
          await editor.zoomToFit();
          setDoc({ name: null, source: null, baseline: graphFingerprint(editor.toGraph()) });
        }
      }
      refreshDocState();
      void validateNow();
      setReady(true);
    })();
    return () => {
      disposed = true;
      created?.destroy();
      editorRef.current = null;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [catalog]);

  // Server health, refreshed so the status bar notices a server that went away.
  useEffect(() => {
    const poll = () =>
      api.health().then(
        (h) => {
          healthState.set(h);
          setHealthError(null);
        },
        (err: Error) => setHealthError(err.message),
      );
    const t = setInterval(poll, 10_000);
    void api.queue().then((q) => queueView.set(q), () => undefined);
    // Suggestions for Load Model; an older server without /api/models just offers "demo".
    void api.models().then((m) => modelsState.set(m), () => undefined);
    return () => clearInterval(t);
  }, []);

  // Warn before closing the tab with unsaved changes (the autosave keeps them, but say so).
  useEffect(() => {
    const onBeforeUnload = (e: BeforeUnloadEvent) => {
      if (!dirtyRef.current) return;
      e.preventDefault();
      e.returnValue = '';
    };
    window.addEventListener('beforeunload', onBeforeUnload);
    return () => window.removeEventListener('beforeunload', onBeforeUnload);
  }, []);

  const docLabel = doc.name ?? ((metaRef.current.title as string | undefined) || 'Untitled graph');
  useEffect(() => {
    document.title = `${dirty ? '● ' : ''}${docLabel} — Dual Style Studio`;
  }, [dirty, docLabel]);

  // --- document actions ----------------------------------------------------------------------
  const guardDirty = (what: string, action: () => void) => {
    if (!dirtyRef.current) {
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
  };

  const loadGraph = async (graph: Graph, name: string | null, source: DocInfo['source']) => {
    const editor = editorRef.current;
    if (!editor) return;
    // A run of the previous graph may still be going: it stays cancellable from the toolbar, but
    // its events must not paint this graph's nodes (templates share node ids).
    tracker.detachNodes();
    if (!tracker.activeJobId()) jobView.set(null);
    metaRef.current = graph.meta ?? {};
    const problems = await editor.load(graph);
    // The baseline is the graph as the editor holds it (defaults filled in), so opening is clean.
    setDoc({ name, source, baseline: graphFingerprint(editor.toGraph(metaRef.current)) });
    refreshDocState();
    void validateNow();
    for (const p of problems) notify('error', p);
  };

  const newGraph = () => guardDirty('A new graph', () => void loadGraph(EMPTY_GRAPH, null, null));

  const openEntry = async (entry: GraphListEntry) => {
    setDialog(null);
    try {
      const { graph: raw } = await api.getGraph(entry.name);
      const parsed = parseGraphJson(raw);
      if (!parsed.ok) {
        notify('error', `Cannot open “${entry.name}”: ${parsed.message}`);
        return;
      }
      guardDirty(`Opening “${entry.name}”`, () => void loadGraph(parsed.graph, entry.name, entry.source));
    } catch (err) {
      notify('error', `Cannot open “${entry.name}”: ${(err as Error).message}`);
    }
  };

  const saveAs = async (name: string): Promise<boolean> => {
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
      if (name !== docRef.current.name && list.some((e) => e.name === name && e.source === 'user') && !window.confirm(`A saved graph named “${name}” exists. Replace it?`)) {
        return false;
      }
      metaRef.current = { ...metaRef.current, title: (metaRef.current.title as string | undefined) ?? name };
      const graph = currentGraph();
      await api.saveGraph(name, graph);
      setDoc({ name, source: 'user', baseline: graphFingerprint(graph) });
      setDialog(null);
      refreshDocState();
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
  };

  const save = () => {
    const d = docRef.current;
    if (d.name && d.source === 'user') void saveAs(d.name);
    else setDialog({ kind: 'saveAs', initial: d.source === 'template' && d.name ? `my-${d.name}` : '' });
  };

  const exportJson = () => {
    const graph = currentGraph();
    const name = fileStem(docRef.current.name ?? (metaRef.current.title as string | undefined) ?? 'graph');
    downloadBlob(new Blob([JSON.stringify(graph, null, 2)], { type: 'application/json' }), `${name}.json`);
  };

  /** A result as PNG with the graph of the run that made it (the current graph if this tab did not run it). */
  /** A result as PNG with the graph of the run that made it (from the server's history; else the current graph). */
  const downloadPng = (nodeId: string, image: { url: string; name: string }, known?: JobRecord) => {
    const fallback = { graph: currentGraph(), graphLabel: docLabel };
    (async () => {
      const job = known ?? (await gallery.jobOf(image.url)) ?? fallback;
      await downloadResultPng(image, nodeId, job.graph, job.graphLabel);
    })().catch((err: Error) => notify('error', `Cannot download ${image.name}: ${err.message}`));
  };
  const downloadPngRef = useRef(downloadPng);
  downloadPngRef.current = downloadPng;
  useEffect(() => {
    setResultActions({ downloadPng: (nodeId, image) => downloadPngRef.current(nodeId, image) });
    return () => setResultActions(null);
  }, []);
  const downloadGalleryImage = (img: GalleryImage) => void gallery.jobOfImage(img).then((job) => downloadPng(img.nodeId, img, job));

  const importText = (text: string, fileName: string) => {
    const parsed = parseGraphJson(text);
    if (!parsed.ok) {
      notify('error', `Cannot import ${fileName}: ${parsed.message}`);
      return;
    }
    const graph = parsed.graph;
    if (!graph.meta.title) graph.meta = { ...graph.meta, title: fileName.replace(/\.(json|png)$/i, '') };
    guardDirty(`Importing ${fileName}`, () => void loadGraph(graph, null, null).then(() => notify('info', `Imported ${fileName}. Save it to keep it on the server.`)));
  };

  const importFile = async (file: File) => {
    if (/\.png$/i.test(file.name) || file.type === 'image/png') {
      // A PNG downloaded from the studio carries its graph in a text chunk.
      const read = await graphJsonFromPng(new Uint8Array(await file.arrayBuffer()));
      if (read.ok) importText(read.json, file.name);
      else notify('error', `Cannot open ${file.name}: ${read.message}.`);
      return;
    }
    if (!/\.json$/i.test(file.name) && file.type !== 'application/json') {
      notify('error', `${file.name} is neither a .json graph file nor a PNG downloaded from the studio.`);
      return;
    }
    importText(await file.text(), file.name);
  };

  // --- runs ----------------------------------------------------------------------------------
  const run = async () => {
    const editor = editorRef.current;
    if (!editor) return;
    if (tracker.activeJobId()) {
      notify('info', 'A run is already in progress. Press Esc to cancel it.');
      return;
    }
    // The server checks the graph it is given: that answer replaces any check still pending.
    invalidateValidation();
    const seq = validateSeq.current;
    const graph = currentGraph();
    const graphLabel = docLabel;
    try {
      const { job: submitted } = await api.submitJob(graph);
      gallery.recordJob(submitted.id, { graph, graphLabel });
      nodeRuntime.resetRun(graph.nodes.map((n) => n.id), 'idle');
      tracker.follow(submitted.id, submitted.position);
      if (seq === validateSeq.current) {
        applyIssues([]);
        setValidationError(null);
        setValidating(false);
      }
    } catch (err) {
      if (seq === validateSeq.current) setValidating(false);
      if (err instanceof ApiError && err.issues.length) {
        if (seq === validateSeq.current) applyIssues(err.issues);
        setShowProblems(true);
        notify('error', `Cannot run yet: ${err.issues.length} problem${err.issues.length === 1 ? '' : 's'} to fix (see Problems).`);
      } else {
        notify('error', `Cannot run: ${(err as Error).message}`);
      }
    }
  };

  const cancel = async () => {
    const id = tracker.activeJobId();
    if (!id) return;
    try {
      await api.cancelJob(id);
    } catch (err) {
      notify('error', `Cannot cancel: ${(err as Error).message}`);
    }
  };

  // --- keyboard ------------------------------------------------------------------------------
  const keyHandler = useRef<(e: KeyboardEvent) => void>(() => undefined);
  keyHandler.current = (e: KeyboardEvent) => {
    if (dialog) return;
    const mod = e.ctrlKey || e.metaKey;
    const key = e.key.toLowerCase();
    // In a node's parameter field, Ctrl+Z goes to the graph history too: typing there is recorded
    // (coalesced per field), and the browser's own undo does not survive React's re-renders.
    const typing = isTextEditing(e.target);
    const inParam = e.target instanceof Element && e.target.closest('.sd-param') !== null;
    const editing = typing && !inParam;
    if (mod && e.key === 'Enter') {
      e.preventDefault();
      void run();
    } else if (e.key === 'Escape') {
      if (tracker.activeJobId()) {
        e.preventDefault();
        void cancel();
      }
    } else if (mod && key === 'z' && !e.shiftKey && !editing) {
      e.preventDefault();
      void editorRef.current?.undo();
    } else if (mod && ((key === 'z' && e.shiftKey) || key === 'y') && !editing) {
      e.preventDefault();
      void editorRef.current?.redo();
    } else if ((e.key === 'Delete' || e.key === 'Backspace') && !typing && !mod) {
      // Never while typing, not even in a node's own field: Backspace there deletes a character.
      e.preventDefault();
      void editorRef.current?.deleteSelected();
    } else if (mod && key === 's') {
      e.preventDefault();
      save();
    } else if (mod && key === 'o') {
      e.preventDefault();
      setDialog({ kind: 'open' });
    }
  };
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => keyHandler.current(e);
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);

  const labelOf = (nodeId: string) => {
    const n = editorRef.current?.snapshot().nodes.find((x) => x.id === nodeId);
    if (!n) return nodeId;
    const spec = catalog.nodes.find((s) => s.type === n.type);
    return n.title ?? spec?.title ?? n.type;
  };

  const closeDialog = useCallback(() => setDialog(null), []);

  return (
    <div className="sd-app">
      <Toolbar
        docLabel={docLabel}
        isTemplate={doc.source === 'template'}
        dirty={dirty}
        problemCount={issues.length}
        resultCount={galleryImages.length}
        freshResults={!showResults && galleryImages.length > 0 && galleryImages[0].key !== seenResult}
        onNew={newGraph}
        onOpen={() => setDialog({ kind: 'open' })}
        onSave={save}
        onSaveAs={() => setDialog({ kind: 'saveAs', initial: doc.name && doc.source === 'user' ? doc.name : '' })}
        onExport={exportJson}
        onImport={() => importRef.current?.click()}
        onAddNode={() => setDialog({ kind: 'palette' })}
        onUndo={() => void editorRef.current?.undo()}
        onRedo={() => void editorRef.current?.redo()}
        onFit={() => void editorRef.current?.zoomToFit()}
        onRun={() => void run()}
        onCancel={() => void cancel()}
        onToggleProblems={() => setShowProblems((s) => !s)}
        onToggleResults={() => setShowResults((s) => !s)}
      />
      <main className="sd-main">
        <div
          className={`sd-canvas-wrap${dropping ? ' dropping' : ''}`}
          onDragOver={(e) => {
            if (![...e.dataTransfer.types].includes('Files')) return;
            e.preventDefault();
            setDropping(true);
          }}
          onDragLeave={() => setDropping(false)}
          onDrop={(e) => {
            setDropping(false);
            const file = e.dataTransfer.files[0];
            if (!file) return;
            e.preventDefault();
            void importFile(file);
          }}
        >
          <div ref={canvasRef} className="sd-canvas" data-testid="canvas" data-ready={ready ? 'true' : 'false'} />
          {ready && nodeCount === 0 ? (
            <div className="sd-empty-hint">
              <p>Empty graph.</p>
              <p>Double-click or right-click the canvas to add a node, or open a template.</p>
              <button type="button" onClick={() => setDialog({ kind: 'open' })}>
                Open a template…
              </button>
            </div>
          ) : null}
          {dropping ? <div className="sd-drop-overlay">Drop a graph .json file, or a PNG downloaded from the studio, to open its graph</div> : null}
        </div>
        {showProblems ? (
          <ProblemsPanel
            issues={issues}
            validating={validating}
            error={validationError}
            labelOf={labelOf}
            onPick={(id) => void editorRef.current?.focusNode(id)}
            onClose={() => setShowProblems(false)}
          />
        ) : null}
        {showResults ? (
          <GalleryPanel onCompare={(images) => setDialog({ kind: 'compare', images })} onDownload={downloadGalleryImage} onClose={() => setShowResults(false)} />
        ) : null}
      </main>
      <StatusBar health={health} healthError={healthError} connected={connected} queue={queue} nodeCount={nodeCount} />
      <input
        ref={importRef}
        type="file"
        accept=".json,application/json,.png,image/png"
        data-testid="import-input"
        style={{ display: 'none' }}
        onChange={(e) => {
          const f = e.target.files?.[0];
          e.target.value = '';
          if (f) void importFile(f);
        }}
      />
      <datalist id="model-suggestions">
        {models.length === 0 ? <option value="demo" /> : models.map((m) => <option key={m.model} value={m.model} label={m.demo ? `${m.label} (random weights)` : m.label} />)}
      </datalist>
      {dialog?.kind === 'open' ? (
        <OpenDialog load={api.listGraphs} onOpen={(e) => void openEntry(e)} onDelete={(e) => api.deleteGraph(e.name).then(() => undefined)} onCancel={closeDialog} />
      ) : null}
      {dialog?.kind === 'palette' ? (
        <Palette
          nodes={catalog.nodes}
          onCancel={closeDialog}
          onPick={(type) => {
            setDialog(null);
            void editorRef.current?.addNode(type, dialog.at).catch((err: Error) => notify('error', err.message));
          }}
        />
      ) : null}
      {dialog?.kind === 'saveAs' ? (
        <PromptDialog
          key={`${dialog.initial}|${dialog.error ?? ''}`}
          title="Save graph as"
          label="Name"
          initial={dialog.initial}
          confirmLabel="Save"
          validate={graphNameProblem}
          error={dialog.error}
          onSubmit={(name) => void saveAs(name)}
          onCancel={closeDialog}
        />
      ) : null}
      {dialog?.kind === 'compare' ? <CompareView images={dialog.images} onDownload={downloadGalleryImage} onClose={closeDialog} /> : null}
      {dialog?.kind === 'confirm' ? (
        <ConfirmDialog title={dialog.title} message={dialog.message} confirmLabel={dialog.confirmLabel} danger onConfirm={dialog.onConfirm} onCancel={closeDialog} />
      ) : null}
      <Toasts toasts={toasts} onDismiss={(id) => setToasts((t) => t.filter((x) => x.id !== id))} />
    </div>
  );
}

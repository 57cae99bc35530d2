/**
 * One graph tab: its own canvas and editor (so its own undo history, selection and view), its own
 * document and autosave slot, validation and node run states. Every open tab stays mounted, so its
 * state lives on while another is shown; only the shown tab draws the toolbar, the canvas and the
 * panels. Hooks are built in order, each from what exists before it: editor → validation → paint
 * target → document → change events → runs → files.
 */
import { useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import type { Catalog } from '../../../server/protocol/catalog.ts';
import { api } from '../api.ts';
import type { StudioEditor } from '../editor/create-editor.tsx';
import { readClipboard, writeClipboard } from '../clipboard.ts';
import type { Position } from '../graph-io.ts';
import { NodeRuntimeStore, Observable } from '../runtime.ts';
import { CanvasArea } from './CanvasArea.tsx';
import { EditorMenu } from './EditorMenu.tsx';
import type { Dialog } from './dialog-state.ts';
import { DialogHost } from './DialogHost.tsx';
import { GalleryPanel } from './Gallery.tsx';
import { useDocument, type Opening } from './hooks/useDocument.ts';
import { useEditorChanges } from './hooks/useEditorChanges.ts';
import type { OpenTab, TabMeta } from './hooks/useGraphTabs.ts';
import { useImportExport } from './hooks/useImportExport.ts';
import { useOpenRun } from './hooks/useOpenRun.ts';
import { useKeyboardShortcuts } from './hooks/useKeyboardShortcuts.ts';
import { usePaintTarget } from './hooks/usePaintTarget.ts';
import { nodeLabel, useRuns } from './hooks/useRuns.ts';
import type { useServerStatus } from './hooks/useServerStatus.ts';
import { useStudioEditor } from './hooks/useStudioEditor.ts';
import type { Notify } from './hooks/useToasts.ts';
import { useValidation } from './hooks/useValidation.ts';
import type { OpenMenu } from './menus.ts';
import { ProblemsPanel, StatusBar } from './panels.tsx';
import { QueuePanel } from './QueuePanel.tsx';
import type { SeedControl } from './seeds.ts';
import { useStudio } from './studio-store.ts';
import { Toolbar, type StudioView } from './Toolbar.tsx';
import { SimpleView } from './SimpleView.tsx';
import { useTokenCounts } from './hooks/useTokenCounts.ts';
import { NodeEnvContext, type TokenCounts } from '../editor/bridge.ts';

export type SidePanel = 'problems' | 'results' | 'queue';

/** What the studio gives every graph tab: shared settings and panels, and how to reach the other tabs. */
export interface StudioUi {
  catalog: Catalog;
  notify: Notify;
  server: ReturnType<typeof useServerStatus>;
  results: { count: number; fresh: boolean };
  panel: SidePanel | null;
  setPanel(panel: SidePanel | null): void;
  minimap: boolean;
  toggleMinimap(): void;
  seedControl: SeedControl;
  setSeedControl(control: SeedControl): void;
  batch: number;
  setBatch(batch: number): void;
  /** The graph, or simple mode's one-page form of what the graph exposes. */
  view: StudioView;
  setView(view: StudioView): void;
  /** The strip of graph tabs, drawn by the shown tab between its toolbar and its canvas. */
  tabStrip: ReactNode;
  /** A graph opened while this tab holds work: to a new tab. */
  openInNewTab(opening: Opening): void;
  reopenTab(): void;
  reportMeta(tabId: string, meta: TabMeta): void;
}

function makeCanvas(): HTMLDivElement {
  const canvas = document.createElement('div');
  canvas.className = 'sd-canvas';
  canvas.dataset.testid = 'canvas';
  canvas.dataset.ready = 'false';
  return canvas;
}

/** Everything of one graph tab, built in order. */
function useGraphTab(tab: OpenTab, active: boolean, ui: StudioUi) {
  const { catalog, notify } = ui;
  const studio = useStudio();
  const [canvas] = useState(makeCanvas);
  const [runtime] = useState(() => new NodeRuntimeStore());
  const [tokenCounts] = useState(() => new Observable<TokenCounts>({}));
  const env = useMemo(() => ({ runtime, tokenCounts, shared: studio }), [runtime, tokenCounts, studio]);
  // The editor is made the first time the tab is shown (a graph is laid out by measuring its nodes).
  const [shown, setShown] = useState(active);
  if (active && !shown) setShown(true);
  const [dialog, setDialog] = useState<Dialog | null>(null);
  const [menu, setMenu] = useState<OpenMenu | null>(null);
  const editor = useStudioEditor(
    shown ? canvas : null,
    catalog,
    {
      onRejectedConnection: (m) => notify('error', m),
      onEditFailed: (m) => notify('error', m),
      onCanvasDoubleClick: (at) => setDialog({ kind: 'palette', at }),
      onContextMenu: (target, client, at) => setMenu({ target, client, at }),
      onWireDropped: (wire, client, at) => setMenu({ target: { kind: 'canvas' }, client, at, wire }),
      uploadImage: (file) => api.upload(file),
    },
    env,
  );
  useEffect(() => editor?.setMinimap(ui.minimap), [editor, ui.minimap]);
  const validation = useValidation(editor, runtime);
  const paint = usePaintTarget(editor, runtime);
  const countTokens = useTokenCounts(editor, tokenCounts);
  const graphDoc = useDocument({
    ...{ tabId: tab.id, start: tab.start, active, editor, notify, setDialog },
    onBeforeReplace: paint.detach,
    onReplaced: (graph) => {
      void validation.validateNow(graph);
      countTokens();
    },
    onOpenElsewhere: ui.openInNewTab,
  });
  useEditorChanges(editor, {
    edited: graphDoc.edited,
    revalidate: () => {
      validation.schedule();
      countTokens();
    },
  });
  const runs = useRuns({
    ...{ editor, target: paint.target, catalog, notify, validation },
    currentGraph: graphDoc.currentGraph,
    docLabel: graphDoc.docLabel,
    onProblems: () => ui.setPanel('problems'),
  });
  const files = useImportExport(graphDoc, notify, editor, catalog, active);
  const runGraphs = useOpenRun(graphDoc, notify);
  return { canvas, editor, validation, graphDoc, runs, files, runGraphs, dialog, setDialog, menu, setMenu, ...useClipboard(editor, notify) };
}

type GraphTabState = ReturnType<typeof useGraphTab>;

/** Copy and paste of nodes, through the clipboard every tab shares. */
function useClipboard(editor: StudioEditor | null, notify: Notify) {
  const pointerInGraph = useRef<Position | undefined>(undefined);
  const copy = () => {
    const data = editor?.copy();
    if (!data) return;
    writeClipboard(data);
    notify('info', `Copied ${data.nodes.length} node${data.nodes.length === 1 ? '' : 's'}: paste with Ctrl+V, here or in another tab.`);
  };
  const paste = (at?: Position, keepInputs = false) => {
    const data = readClipboard();
    if (!editor || !data) {
      notify('info', 'Nothing to paste: select nodes and press Ctrl+C first.');
      return;
    }
    void editor.paste(data, { at, keepInputs }).catch((err: Error) => notify('error', err.message));
  };
  return { pointerInGraph, copy, paste };
}

export function Workspace({ tab, active, ui }: { tab: OpenTab; active: boolean; ui: StudioUi }) {
  const w = useGraphTab(tab, active, ui);
  const { graphDoc, editor } = w;
  const { reportMeta } = ui;
  useEffect(() => {
    if (graphDoc.ready) reportMeta(tab.id, { label: graphDoc.docLabel, dirty: graphDoc.dirty });
  }, [reportMeta, tab.id, graphDoc.ready, graphDoc.docLabel, graphDoc.dirty]);
  const startRun = (front: boolean) => void w.runs.run({ front, count: ui.batch, seedControl: ui.seedControl });
  useKeyboardShortcuts(
    {
      run: startRun,
      hasActiveJob: w.runs.hasActiveJob,
      cancel: () => void w.runs.cancel(),
      undo: () => void editor?.undo(),
      redo: () => void editor?.redo(),
      // In simple mode the canvas (and what is selected on it) is out of sight: Delete there must not remove nodes.
      deleteSelected: () => void (ui.view === 'graph' && editor?.deleteSelected()),
      save: graphDoc.save,
      open: () => w.setDialog({ kind: 'open' }),
      copy: w.copy,
      paste: (keepInputs) => w.paste(w.pointerInGraph.current, keepInputs),
      duplicate: () => void editor?.duplicate(),
      bypass: () => editor?.toggleMode('bypass'),
      mute: () => editor?.toggleMode('mute'),
      frame: () => (editor?.selectedIds().length ? editor.addFrame() : ui.notify('info', 'Select the nodes to frame first (click, Ctrl+click).')),
      selectAll: () => void editor?.select(editor.snapshot().nodes.map((n) => n.id)),
      fit: () => void editor?.zoomToFit(),
      arrange: () => void editor?.arrange(),
      help: () => w.setDialog({ kind: 'help' }),
      reopenTab: ui.reopenTab,
    },
    active && w.dialog === null && w.menu === null,
  );
  if (!active) return null;
  return (
    <>
      <WorkspaceToolbar w={w} ui={ui} startRun={startRun} />
      {ui.tabStrip}
      <WorkspaceMain w={w} ui={ui} startRun={startRun} />
      <StatusBar
        health={ui.server.health}
        healthError={ui.server.healthError}
        connected={ui.server.connected}
        queue={ui.server.queue}
        nodeCount={graphDoc.nodeCount}
        minimap={ui.minimap}
        onToggleMinimap={ui.toggleMinimap}
      />
      <WorkspaceOverlays w={w} ui={ui} />
    </>
  );
}

function WorkspaceToolbar({ w, ui, startRun }: { w: GraphTabState; ui: StudioUi; startRun(front: boolean): void }) {
  const { graphDoc, editor, setDialog } = w;
  const { doc } = graphDoc;
  const queue = ui.server.queue;
  const togglePanel = (p: SidePanel) => ui.setPanel(ui.panel === p ? null : p);
  return (
    <Toolbar
      docLabel={graphDoc.docLabel}
      isTemplate={doc.source === 'template'}
      dirty={graphDoc.dirty}
      problemCount={w.validation.issues.length}
      resultCount={ui.results.count}
      freshResults={ui.results.fresh}
      queueCount={queue ? queue.pending.length + queue.active.length : 0}
      labelOf={(id) => (editor?.snapshot().nodes.some((n) => n.id === id) ? nodeLabel(editor, ui.catalog, id) : null)}
      onNew={graphDoc.newGraph}
      onOpen={() => setDialog({ kind: 'open' })}
      onSave={graphDoc.save}
      onSaveAs={() => setDialog({ kind: 'saveAs', initial: doc.name && doc.source === 'user' ? doc.name : '' })}
      onExport={w.files.exportJson}
      onImport={() => document.querySelector<HTMLInputElement>('[data-testid="import-input"]')?.click()}
      onAddNode={() => setDialog({ kind: 'palette' })}
      onUndo={() => void editor?.undo()}
      onRedo={() => void editor?.redo()}
      onFit={() => void editor?.zoomToFit()}
      onArrange={() => void editor?.arrange()}
      onRun={startRun}
      seedControl={ui.seedControl}
      onSeedControl={ui.setSeedControl}
      batch={ui.batch}
      onBatch={ui.setBatch}
      onCancel={() => void w.runs.cancel()}
      onToggleProblems={() => togglePanel('problems')}
      onToggleResults={() => togglePanel('results')}
      onToggleQueue={() => togglePanel('queue')}
      onHelp={() => setDialog({ kind: 'help' })}
      view={ui.view}
      onView={ui.setView}
    />
  );
}

function WorkspaceMain({ w, ui, startRun }: { w: GraphTabState; ui: StudioUi; startRun(front: boolean): void }) {
  const { graphDoc, editor, validation, files, runs, setDialog } = w;
  const close = () => ui.setPanel(null);
  return (
    <main
      className="sd-main"
      onPointerMove={(e) => {
        if (editor && (e.target as Element).closest('.sd-canvas')) w.pointerInGraph.current = editor.graphPoint({ x: e.clientX, y: e.clientY });
      }}
    >
      <CanvasArea
        canvas={w.canvas}
        ready={graphDoc.ready}
        empty={graphDoc.nodeCount === 0}
        welcome={graphDoc.firstVisit}
        onOpenTemplates={() => setDialog({ kind: 'open' })}
        onDropFile={(file, at) => void files.dropFile(file, at)}
      />
      {ui.view === 'simple' && graphDoc.ready && editor ? (
        <NodeEnvContext.Provider value={editor.nodeEnv}>
          <SimpleView
            graph={graphDoc.currentGraph()}
            catalog={ui.catalog}
            labelOf={(id) => (editor.snapshot().nodes.some((n) => n.id === id) ? nodeLabel(editor, ui.catalog, id) : null)}
            onRun={() => startRun(false)}
            onShowGraph={() => ui.setView('graph')}
          />
        </NodeEnvContext.Provider>
      ) : null}
      {ui.panel === 'problems' ? (
        <ProblemsPanel
          issues={validation.issues}
          warnings={validation.warnings}
          validating={validation.validating}
          error={validation.error}
          labelOf={(id) => nodeLabel(editor, ui.catalog, id)}
          onPick={(id) => void editor?.focusNode(id)}
          onClose={close}
        />
      ) : null}
      {ui.panel === 'results' ? (
        <GalleryPanel
          onCompare={(images) => setDialog({ kind: 'compare', images })}
          onDownload={files.downloadGalleryImage}
          onOpenRun={(id) => void w.runGraphs.openRun(id)}
          onClose={close}
        />
      ) : null}
      {ui.panel === 'queue' ? (
        <QueuePanel
          onWatch={runs.watch}
          onOpenGraph={(id) => void w.runGraphs.openRun(id)}
          onCancel={(id) => void runs.cancel(id)}
          onMove={(id, position) => void api.moveJob(id, position).catch((err: Error) => ui.notify('error', `Cannot move the job: ${err.message}`))}
          onPause={(paused) =>
            void api.pauseQueue(paused).catch((err: Error) => ui.notify('error', `Cannot ${paused ? 'pause' : 'resume'} the queue: ${err.message}`))
          }
          onClose={close}
        />
      ) : null}
    </main>
  );
}

/** The file input, the context menu and the dialogs of the shown tab. */
function WorkspaceOverlays({ w, ui }: { w: GraphTabState; ui: StudioUi }) {
  const { editor, menu, files, graphDoc, setDialog } = w;
  const notifyError = (err: Error) => ui.notify('error', err.message);
  return (
    <>
      <input
        type="file"
        accept=".json,application/json,.png,image/png"
        data-testid="import-input"
        style={{ display: 'none' }}
        onChange={(e) => {
          const f = e.target.files?.[0];
          e.target.value = '';
          if (f) void files.importFile(f);
        }}
      />
      {menu && editor ? (
        <EditorMenu
          menu={menu}
          editor={editor}
          catalog={ui.catalog}
          copy={w.copy}
          paste={(at) => w.paste(at)}
          notify={ui.notify}
          onClose={() => w.setMenu(null)}
        />
      ) : null}
      <DialogHost
        dialog={w.dialog}
        catalog={ui.catalog}
        onClose={() => setDialog(null)}
        onOpenEntry={(e) => void graphDoc.openEntry(e)}
        onAddNode={(type, at) => {
          setDialog(null);
          void editor?.addNode(type, at).catch(notifyError);
        }}
        onSaveAs={(name) => void graphDoc.saveAs(name)}
        onDownload={files.downloadGalleryImage}
      />
    </>
  );
}

/** The studio: boot (health + catalog), then the editor with its document, validation and runs. */
import { useCallback, useEffect, useRef, useState } from 'react';
import type { Catalog } from '../../../server/protocol/catalog.ts';
import { accessToken } from '../access-token.ts';
import { api, ApiError } from '../api.ts';
import { healthState } from '../editor/bridge.ts';
import type { ChangeKind } from '../editor/schemes.ts';
import { CanvasArea } from './CanvasArea.tsx';
import type { Dialog } from './dialog-state.ts';
import { DialogHost } from './DialogHost.tsx';
import { GalleryPanel } from './Gallery.tsx';
import { useDocument } from './hooks/useDocument.ts';
import { useFreshResults } from './hooks/useFreshResults.ts';
import { useImportExport } from './hooks/useImportExport.ts';
import { useOpenRun } from './hooks/useOpenRun.ts';
import { useKeyboardShortcuts } from './hooks/useKeyboardShortcuts.ts';
import { useStableCallback } from './hooks/useLatest.ts';
import { nodeLabel, useRuns } from './hooks/useRuns.ts';
import { useServerStatus } from './hooks/useServerStatus.ts';
import { useStudioEditor } from './hooks/useStudioEditor.ts';
import { useToasts } from './hooks/useToasts.ts';
import { useValidation } from './hooks/useValidation.ts';
import { ProblemsPanel, StatusBar, Toasts } from './panels.tsx';
import { PackageNotice } from './PackageNotice.tsx';
import { QueuePanel } from './QueuePanel.tsx';
import { Toolbar } from './Toolbar.tsx';
import type { SeedControl } from './seeds.ts';
import { EditorMenu } from './EditorMenu.tsx';
import type { OpenMenu } from './menus.ts';
import { readClipboard, writeClipboard } from '../clipboard.ts';
import type { Position } from '../graph-io.ts';

export function App() {
  const [catalog, setCatalog] = useState<Catalog | null>(null);
  const [error, setError] = useState<string | null>(null);
  const boot = useCallback(() => {
    setError(null);
    api.health().then(
      (h) => healthState.set(h),
      () => undefined,
    );
    api
      .catalog()
      .then(setCatalog, (err: Error) =>
        setError(
          err instanceof ApiError && err.status === 401
            ? `${accessToken() ? 'The access token this tab was opened with is wrong.' : 'This studio is protected by an access token.'} ` +
                `Open it as ${window.location.origin}/?token=<token>, with the token the server was started with (--token or DUALSTYLE_TOKEN).`
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

type SidePanel = 'problems' | 'results' | 'queue';

const MINIMAP_KEY = 'dualstyle.minimap';

function readFlag(key: string): boolean {
  try {
    return localStorage.getItem(key) === 'on';
  } catch {
    return false;
  }
}

function writeFlag(key: string, on: boolean): void {
  try {
    localStorage.setItem(key, on ? 'on' : 'off');
  } catch {
    /* not kept: fine */
  }
}

const SEED_KEY = 'dualstyle.seed-control';

function readSetting(key: string): string | null {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

function Studio({ catalog }: { catalog: Catalog }) {
  const canvasRef = useRef<HTMLDivElement>(null);
  const importRef = useRef<HTMLInputElement>(null);
  const [dialog, setDialog] = useState<Dialog | null>(null);
  const closeDialog = useCallback(() => setDialog(null), []);
  const [menu, setMenu] = useState<OpenMenu | null>(null);
  const [panel, setPanel] = useState<SidePanel | null>(null);
  const togglePanel = (p: SidePanel) => setPanel((open) => (open === p ? null : p));
  // Off until asked for (status bar): over the canvas it would cover nodes.
  const [minimap, setMinimap] = useState(() => readFlag(MINIMAP_KEY));
  const { toasts, notify, dismiss } = useToasts();
  const [seedControl, setSeedControl] = useState<SeedControl>(() => (readSetting(SEED_KEY) as SeedControl | null) ?? 'fixed');
  const [batch, setBatch] = useState(1);
  const server = useServerStatus();
  const results = useFreshResults(panel === 'results');

  // Many change events arrive per gesture (a load, a delete with its connections): handled once.
  const pendingChange = useRef<{ kinds: Set<ChangeKind>; timer?: ReturnType<typeof setTimeout> }>({ kinds: new Set() });
  const onEditorChange = useStableCallback((kind: ChangeKind) => {
    const pending = pendingChange.current;
    pending.kinds.add(kind);
    clearTimeout(pending.timer);
    pending.timer = setTimeout(() => {
      const kinds = pending.kinds;
      pending.kinds = new Set();
      graphDoc.edited(kinds.size === 1 && kinds.has('layout'));
      if (kinds.has('structure') || kinds.has('params')) validation.schedule();
    }, 0);
  });
  const editor = useStudioEditor(canvasRef, catalog, {
    onChange: onEditorChange,
    onRejectedConnection: (m) => notify('error', m),
    onEditFailed: (m) => notify('error', m),
    onCanvasDoubleClick: (at) => setDialog({ kind: 'palette', at }),
    onContextMenu: (target, client, at) => setMenu({ target, client, at }),
    onWireDropped: (wire, client, at) => setMenu({ target: { kind: 'canvas' }, client, at, wire }),
    uploadImage: (file) => api.upload(file),
  });
  useEffect(() => editor?.setMinimap(minimap), [editor, minimap]);

  const currentGraph = useStableCallback(() => graphDoc.currentGraph());
  const validation = useValidation(editor, currentGraph);
  const onReplaced = useStableCallback(() => void validation.validateNow());
  const onBeforeReplace = useStableCallback(() => runs.detach());
  const graphDoc = useDocument({ editor, notify, setDialog, onBeforeReplace, onReplaced });
  const runs = useRuns({ editor, catalog, notify, validation, currentGraph, docLabel: graphDoc.docLabel, onProblems: () => setPanel('problems') });
  const startRun = (front: boolean) => void runs.run({ front, count: batch, seedControl });
  const files = useImportExport(graphDoc, notify, editor, catalog);
  const runGraphs = useOpenRun(graphDoc, notify);
  const labelOf = (nodeId: string) => nodeLabel(editor, catalog, nodeId);
  const labelOnCanvas = (nodeId: string) => (editor?.snapshot().nodes.some((n) => n.id === nodeId) ? labelOf(nodeId) : null);

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
  const pointerInGraph = useRef<Position | undefined>(undefined);

  useKeyboardShortcuts(
    {
      run: (front) => startRun(front),
      hasActiveJob: runs.hasActiveJob,
      cancel: () => void runs.cancel(),
      undo: () => void editor?.undo(),
      redo: () => void editor?.redo(),
      deleteSelected: () => void editor?.deleteSelected(),
      save: graphDoc.save,
      open: () => setDialog({ kind: 'open' }),
      copy,
      paste: (keepInputs) => paste(pointerInGraph.current, keepInputs),
      duplicate: () => void editor?.duplicate(),
      bypass: () => editor?.toggleMode('bypass'),
      mute: () => editor?.toggleMode('mute'),
      frame: () => (editor?.selectedIds().length ? editor.addFrame() : notify('info', 'Select the nodes to frame first (click, Ctrl+click).')),
      selectAll: () => void editor?.select(editor.snapshot().nodes.map((n) => n.id)),
      fit: () => void editor?.zoomToFit(),
      arrange: () => void editor?.arrange(),
      help: () => setDialog({ kind: 'help' }),
    },
    dialog === null && menu === null,
  );

  const { doc } = graphDoc;
  const queueCount = server.queue ? server.queue.pending.length + server.queue.active.length : 0;
  return (
    <div className="sd-app">
      <Toolbar
        docLabel={graphDoc.docLabel}
        isTemplate={doc.source === 'template'}
        dirty={graphDoc.dirty}
        problemCount={validation.issues.length}
        resultCount={results.count}
        freshResults={results.fresh}
        queueCount={queueCount}
        labelOf={labelOnCanvas}
        onNew={graphDoc.newGraph}
        onOpen={() => setDialog({ kind: 'open' })}
        onSave={graphDoc.save}
        onSaveAs={() => setDialog({ kind: 'saveAs', initial: doc.name && doc.source === 'user' ? doc.name : '' })}
        onExport={files.exportJson}
        onImport={() => importRef.current?.click()}
        onAddNode={() => setDialog({ kind: 'palette' })}
        onUndo={() => void editor?.undo()}
        onRedo={() => void editor?.redo()}
        onFit={() => void editor?.zoomToFit()}
        onArrange={() => void editor?.arrange()}
        onRun={startRun}
        seedControl={seedControl}
        onSeedControl={(c) => {
          setSeedControl(c);
          try {
            localStorage.setItem(SEED_KEY, c);
          } catch {
            /* not kept: fine */
          }
        }}
        batch={batch}
        onBatch={setBatch}
        onCancel={() => void runs.cancel()}
        onToggleProblems={() => togglePanel('problems')}
        onToggleResults={() => togglePanel('results')}
        onToggleQueue={() => togglePanel('queue')}
        onHelp={() => setDialog({ kind: 'help' })}
      />
      <main
        className="sd-main"
        onPointerMove={(e) => {
          if (editor && (e.target as Element).closest('.sd-canvas')) pointerInGraph.current = editor.graphPoint({ x: e.clientX, y: e.clientY });
        }}
      >
        <CanvasArea
          canvasRef={canvasRef}
          ready={graphDoc.ready}
          empty={graphDoc.nodeCount === 0}
          welcome={graphDoc.firstVisit}
          onOpenTemplates={() => setDialog({ kind: 'open' })}
          onDropFile={(file, at) => void files.dropFile(file, at)}
        />
        {panel === 'problems' ? (
          <ProblemsPanel
            issues={validation.issues}
            warnings={validation.warnings}
            validating={validation.validating}
            error={validation.error}
            labelOf={labelOf}
            onPick={(id) => void editor?.focusNode(id)}
            onClose={() => setPanel(null)}
          />
        ) : null}
        {panel === 'results' ? (
          <GalleryPanel
            onCompare={(images) => setDialog({ kind: 'compare', images })}
            onDownload={files.downloadGalleryImage}
            onOpenRun={(id) => void runGraphs.openRun(id)}
            onClose={() => setPanel(null)}
          />
        ) : null}
        {panel === 'queue' ? (
          <QueuePanel
            onWatch={runs.watch}
            onOpenGraph={(id) => void runGraphs.openRun(id)}
            onCancel={(id) => void runs.cancel(id)}
            onMove={(id, position) => void api.moveJob(id, position).catch((err: Error) => notify('error', `Cannot move the job: ${err.message}`))}
            onPause={(paused) =>
              void api.pauseQueue(paused).catch((err: Error) => notify('error', `Cannot ${paused ? 'pause' : 'resume'} the queue: ${err.message}`))
            }
            onClose={() => setPanel(null)}
          />
        ) : null}
      </main>
      <StatusBar
        health={server.health}
        healthError={server.healthError}
        connected={server.connected}
        queue={server.queue}
        nodeCount={graphDoc.nodeCount}
        minimap={minimap}
        onToggleMinimap={() => {
          writeFlag(MINIMAP_KEY, !minimap);
          setMinimap(!minimap);
        }}
      />
      <input
        ref={importRef}
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
        <EditorMenu menu={menu} editor={editor} catalog={catalog} copy={copy} paste={(at) => paste(at)} notify={notify} onClose={() => setMenu(null)} />
      ) : null}
      <DialogHost
        dialog={dialog}
        catalog={catalog}
        onClose={closeDialog}
        onOpenEntry={(e) => void graphDoc.openEntry(e)}
        onAddNode={(type, at) => {
          setDialog(null);
          void editor?.addNode(type, at).catch((err: Error) => notify('error', err.message));
        }}
        onSaveAs={(name) => void graphDoc.saveAs(name)}
        onDownload={files.downloadGalleryImage}
      />
      <Toasts toasts={toasts} onDismiss={dismiss} />
      <PackageNotice catalog={catalog} />
    </div>
  );
}

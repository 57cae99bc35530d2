/** The studio: boot (health + catalog), then the editor with its document, validation and runs. */
import { useCallback, useEffect, useRef, useState } from 'react';
import type { Catalog } from '../../../server/protocol/catalog.ts';
import { accessToken } from '../access-token.ts';
import { api, ApiError } from '../api.ts';
import { healthState } from '../editor/bridge.ts';
import type { ChangeKind } from '../editor/create-editor.tsx';
import { CanvasArea } from './CanvasArea.tsx';
import type { Dialog } from './dialog-state.ts';
import { DialogHost } from './DialogHost.tsx';
import { GalleryPanel } from './Gallery.tsx';
import { useDocument } from './hooks/useDocument.ts';
import { useFreshResults } from './hooks/useFreshResults.ts';
import { useImportExport } from './hooks/useImportExport.ts';
import { useKeyboardShortcuts } from './hooks/useKeyboardShortcuts.ts';
import { useStableCallback } from './hooks/useLatest.ts';
import { nodeLabel, useRuns } from './hooks/useRuns.ts';
import { useServerStatus } from './hooks/useServerStatus.ts';
import { useStudioEditor } from './hooks/useStudioEditor.ts';
import { useToasts } from './hooks/useToasts.ts';
import { useValidation } from './hooks/useValidation.ts';
import { ModelSuggestions, ProblemsPanel, StatusBar, Toasts, Toolbar } from './panels.tsx';

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

function Studio({ catalog }: { catalog: Catalog }) {
  const canvasRef = useRef<HTMLDivElement>(null);
  const importRef = useRef<HTMLInputElement>(null);
  const [dialog, setDialog] = useState<Dialog | null>(null);
  const closeDialog = useCallback(() => setDialog(null), []);
  const [showProblems, setShowProblems] = useState(true);
  const [showResults, setShowResults] = useState(false);
  const { toasts, notify, dismiss } = useToasts();
  const server = useServerStatus();
  const results = useFreshResults(showResults);

  // Many change events arrive per gesture (a load, a delete with its connections): handled once.
  const pendingChange = useRef<{ kinds: Set<ChangeKind>; timer?: ReturnType<typeof setTimeout> }>({ kinds: new Set() });
  const onEditorChange = useStableCallback((kind: ChangeKind) => {
    const pending = pendingChange.current;
    pending.kinds.add(kind);
    clearTimeout(pending.timer);
    pending.timer = setTimeout(() => {
      const kinds = pending.kinds;
      pending.kinds = new Set();
      graphDoc.edited();
      if (kinds.has('structure') || kinds.has('params')) validation.schedule();
    }, 0);
  });
  const editor = useStudioEditor(canvasRef, catalog, {
    onChange: onEditorChange,
    onRejectedConnection: (m) => notify('error', m),
    onCanvasDoubleClick: (at) => setDialog({ kind: 'palette', at }),
    uploadImage: (file) => api.upload(file),
  });

  const currentGraph = useStableCallback(() => graphDoc.currentGraph());
  const validation = useValidation(editor, currentGraph);
  const onReplaced = useStableCallback(() => void validation.validateNow());
  const onBeforeReplace = useStableCallback(() => runs.detach());
  const graphDoc = useDocument({ editor, notify, setDialog, onBeforeReplace, onReplaced });
  const runs = useRuns({ editor, catalog, notify, validation, currentGraph, docLabel: graphDoc.docLabel, onProblems: () => setShowProblems(true) });
  const files = useImportExport(graphDoc, notify);
  const labelOf = (nodeId: string) => nodeLabel(editor, catalog, nodeId);

  useKeyboardShortcuts(
    {
      run: () => void runs.run(),
      hasActiveJob: runs.hasActiveJob,
      cancel: () => void runs.cancel(),
      undo: () => void editor?.undo(),
      redo: () => void editor?.redo(),
      deleteSelected: () => void editor?.deleteSelected(),
      save: graphDoc.save,
      open: () => setDialog({ kind: 'open' }),
    },
    dialog === null,
  );

  const { doc } = graphDoc;
  return (
    <div className="sd-app">
      <Toolbar
        docLabel={graphDoc.docLabel}
        isTemplate={doc.source === 'template'}
        dirty={graphDoc.dirty}
        problemCount={validation.issues.length}
        resultCount={results.count}
        freshResults={results.fresh}
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
        onRun={() => void runs.run()}
        onCancel={() => void runs.cancel()}
        onToggleProblems={() => setShowProblems((s) => !s)}
        onToggleResults={() => setShowResults((s) => !s)}
      />
      <main className="sd-main">
        <CanvasArea
          canvasRef={canvasRef}
          ready={graphDoc.ready}
          empty={graphDoc.nodeCount === 0}
          onOpenTemplates={() => setDialog({ kind: 'open' })}
          onDropFile={(file) => void files.importFile(file)}
        />
        {showProblems ? (
          <ProblemsPanel
            issues={validation.issues}
            validating={validation.validating}
            error={validation.error}
            labelOf={labelOf}
            onPick={(id) => void editor?.focusNode(id)}
            onClose={() => setShowProblems(false)}
          />
        ) : null}
        {showResults ? (
          <GalleryPanel onCompare={(images) => setDialog({ kind: 'compare', images })} onDownload={files.downloadGalleryImage} onClose={() => setShowResults(false)} />
        ) : null}
      </main>
      <StatusBar health={server.health} healthError={server.healthError} connected={server.connected} queue={server.queue} nodeCount={graphDoc.nodeCount} />
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
      <ModelSuggestions models={server.models} />
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
    </div>
  );
}

/** Toolbar, problems panel, status bar and toasts: the chrome around the canvas. */
import type { ValidationIssue } from '../../../server/protocol/graph.ts';
import type { QueueState } from '../../../server/protocol/events.ts';
import type { Health, ModelEntry } from '../api.ts';
import { useObservable } from '../runtime.ts';
import { jobView, type JobView } from './jobs.ts';

export interface ToolbarProps {
  docLabel: string;
  isTemplate: boolean;
  dirty: boolean;
  problemCount: number;
  resultCount: number;
  /** Results arrived that the user has not looked at (the panel is closed). */
  freshResults: boolean;
  onNew(): void;
  onOpen(): void;
  onSave(): void;
  onSaveAs(): void;
  onExport(): void;
  onImport(): void;
  onAddNode(): void;
  onUndo(): void;
  onRedo(): void;
  onFit(): void;
  onRun(): void;
  onCancel(): void;
  onToggleProblems(): void;
  onToggleResults(): void;
}

export function Toolbar(p: ToolbarProps) {
  // Subscribed here, not in the app: progress events change the job view many times a second, and
  // only the toolbar shows it.
  const job = useObservable(jobView);
  const active = job && (job.state === 'queued' || job.state === 'running');
  return (
    <header className="sd-toolbar">
      <div className="sd-brand">Dual Style Studio</div>
      <div className="sd-group">
        <button type="button" data-testid="btn-new" onClick={p.onNew} title="New empty graph">New</button>
        <button type="button" data-testid="btn-open" onClick={p.onOpen} title="Open a template or saved graph (Ctrl+O)">Open…</button>
        <button type="button" data-testid="btn-save" onClick={p.onSave} title="Save on the server (Ctrl+S)">Save</button>
        <button type="button" data-testid="btn-save-as" onClick={p.onSaveAs} title="Save under a new name">Save As…</button>
        <button type="button" data-testid="btn-export" onClick={p.onExport} title="Download the graph as JSON">Export</button>
        <button type="button" data-testid="btn-import" onClick={p.onImport} title="Open a graph JSON file or a PNG downloaded from the studio (or drop it on the canvas)">Import…</button>
      </div>
      <div className="sd-group">
        <button type="button" data-testid="btn-add-node" onClick={p.onAddNode} title="Add a node (or double-click the canvas, or right-click)">+ Add node</button>
        <button type="button" data-testid="btn-undo" onClick={p.onUndo} title="Undo (Ctrl+Z)">Undo</button>
        <button type="button" data-testid="btn-redo" onClick={p.onRedo} title="Redo (Ctrl+Shift+Z / Ctrl+Y)">Redo</button>
        <button type="button" data-testid="btn-fit" onClick={p.onFit} title="Zoom to fit">Fit</button>
      </div>
      <div className="sd-doc" data-testid="doc-label" title={`${p.docLabel}${p.isTemplate ? ' (template, read-only: Save makes a copy)' : ''} · ${p.dirty ? 'unsaved changes, kept in this browser until you save' : 'no unsaved changes'}`}>
        <span className="sd-doc-name">{p.docLabel}</span>
        {p.isTemplate ? <span className="sd-tag">template</span> : null}
        {p.dirty ? (
          <span className="sd-dirty" data-testid="dirty">
            ●<span className="sd-wide-only"> unsaved</span>
          </span>
        ) : null}
      </div>
      <div className="sd-group right">
        <button
          type="button"
          className={`sd-problems-btn${p.problemCount ? ' has' : ''}`}
          data-testid="btn-problems"
          onClick={p.onToggleProblems}
          title="Show or hide the problems panel"
        >
          {p.problemCount ? `⚠ ${p.problemCount} problem${p.problemCount === 1 ? '' : 's'}` : '✓ No problems'}
        </button>
        <button
          type="button"
          className={`sd-results-btn${p.freshResults ? ' fresh' : ''}`}
          data-testid="btn-results"
          onClick={p.onToggleResults}
          title="Show or hide the results of your runs (compare them side by side)"
        >
          Results{p.resultCount ? ` · ${p.resultCount}` : ''}
        </button>
        <QueueIndicator job={job} />
        {/* One run at a time: while it runs, its Cancel takes the Run button's place. */}
        {active ? (
          <button type="button" className="danger" data-testid="btn-cancel" onClick={p.onCancel} title="Cancel the running job (Esc)">
            ■ Cancel
          </button>
        ) : (
          <button type="button" className="primary" data-testid="btn-run" onClick={p.onRun} title="Run the graph (Ctrl+Enter)">
            ▶ Run
          </button>
        )}
      </div>
    </header>
  );
}

function QueueIndicator({ job }: { job: JobView | null }) {
  if (!job) return null;
  let text: string;
  if (job.state === 'queued') text = job.position && job.position > 0 ? `Queued · position ${job.position}` : 'Queued';
  else if (job.state === 'running') text = job.step !== undefined && job.total ? `Running · ${job.currentNode} ${job.step}/${job.total}` : `Running${job.currentNode ? ` · ${job.currentNode}` : ''}`;
  else if (job.state === 'done') text = `✓ ${job.message ?? 'Done'}`;
  else if (job.state === 'failed') text = '✕ Failed';
  else text = 'Cancelled';
  return (
    <span className={`sd-queue state-${job.state}`} data-testid="queue-indicator" data-state={job.state} title={job.message}>
      {text}
    </span>
  );
}

export function ProblemsPanel(props: {
  issues: ValidationIssue[];
  validating: boolean;
  error: string | null;
  labelOf: (nodeId: string) => string;
  onPick: (nodeId: string) => void;
  onClose: () => void;
}) {
  return (
    <aside className="sd-problems" data-testid="problems">
      <header>
        <span>Problems {props.validating ? <span className="muted">· checking…</span> : null}</span>
        <button type="button" className="sd-link" onClick={props.onClose} title="Hide">
          ✕
        </button>
      </header>
      {props.error ? <div className="sd-error">Cannot check the graph: {props.error}</div> : null}
      {props.issues.length === 0 && !props.error ? <p className="muted">No problems found.</p> : null}
      <ul>
        {props.issues.map((i, k) => (
          <li key={k}>
            <button
              type="button"
              className="sd-problem"
              data-testid="problem"
              data-node-id={i.nodeId ?? ''}
              disabled={!i.nodeId}
              onClick={() => i.nodeId && props.onPick(i.nodeId)}
              title={i.nodeId ? 'Show this node' : undefined}
            >
              {i.nodeId ? <span className="sd-problem-node">{props.labelOf(i.nodeId)}</span> : <span className="sd-problem-node">Graph</span>}
              <span className="sd-problem-msg">{i.message}</span>
              <span className="sd-problem-code">{i.code}</span>
            </button>
          </li>
        ))}
      </ul>
    </aside>
  );
}

export function StatusBar(props: { health: Health | null; healthError: string | null; connected: boolean; queue: QueueState | null; nodeCount: number }) {
  const h = props.health;
  const pending = props.queue ? props.queue.pending.length + (props.queue.running ? 1 : 0) : 0;
  return (
    <footer className="sd-status" data-testid="status-bar">
      <span className={`sd-dot ${h?.ok && !props.healthError ? 'ok' : 'bad'}`} />
      <span data-testid="health">
        {props.healthError ? `Server unreachable: ${props.healthError}` : h ? `Server ${h.ok ? 'OK' : 'not ready'}${h.version ? ` · v${h.version}` : ''}` : 'Connecting…'}
      </span>
      {h?.executionProvider ? <span data-testid="execution-provider">Execution provider: {h.executionProvider}</span> : null}
      {h?.demo ? <span className="sd-demo">Demo model: random weights</span> : null}
      <span className={props.connected ? '' : 'sd-warn'}>{props.connected ? 'Live updates on' : 'Live updates off (reconnecting…)'}</span>
      <span className="spacer" />
      <span>{props.nodeCount} node{props.nodeCount === 1 ? '' : 's'}</span>
      <span>Queue: {pending === 0 ? 'idle' : `${pending} job${pending === 1 ? '' : 's'}`}</span>
    </footer>
  );
}

export interface Toast {
  id: number;
  kind: 'error' | 'info' | 'success';
  message: string;
}

export function Toasts({ toasts, onDismiss }: { toasts: Toast[]; onDismiss: (id: number) => void }) {
  return (
    <div className="sd-toasts">
      {toasts.map((t) => (
        <div key={t.id} className={`sd-toast ${t.kind}`} data-testid="toast" role={t.kind === 'error' ? 'alert' : 'status'} onClick={() => onDismiss(t.id)}>
          {t.message}
        </div>
      ))}
    </div>
  );
}

/** Suggestions for Load Model's model field (an <input list="model-suggestions">). */
export function ModelSuggestions({ models }: { models: ModelEntry[] }) {
  return (
    <datalist id="model-suggestions">
      {models.length === 0 ? <option value="demo" /> : models.map((m) => <option key={m.model} value={m.model} label={m.demo ? `${m.label} (random weights)` : m.label} />)}
    </datalist>
  );
}

/** Problems panel, status bar and toasts: the chrome around the canvas. */
import type { ValidationIssue } from '../../../server/protocol/graph.ts';
import type { QueueState } from '../../../server/protocol/events.ts';
import type { Health } from '../api.ts';

/** What kind of problem, in words (the API's codes are for programs). */
export function problemKind(code: ValidationIssue['code']): string {
  switch (code) {
    case 'missing_input':
      return 'Missing input';
    case 'type_mismatch':
    case 'unknown_input':
    case 'unknown_output':
    case 'multiple_edges':
    case 'dangling_edge':
      return 'Connection';
    case 'cycle':
      return 'Loop';
    case 'param_invalid':
    case 'param_out_of_range':
    case 'param_wrong_type':
      return 'Setting';
    case 'no_outputs':
      return 'Nothing to run';
    case 'bypass_unmatched':
      return 'Bypass';
    case 'unknown_node_type':
      return 'Unknown node';
    case 'custom':
      return 'Check';
    default:
      return 'Graph file';
  }
}

export function ProblemsPanel(props: {
  issues: ValidationIssue[];
  /** Problems of nodes a run leaves out (no output needs them). */
  warnings?: ValidationIssue[];
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
      <ProblemList issues={props.issues} labelOf={props.labelOf} onPick={props.onPick} />
      {props.warnings?.length ? (
        <>
          <h4 className="sd-queue-sub" data-testid="left-out-heading">
            Left out of runs: no output needs these nodes
          </h4>
          <ProblemList issues={props.warnings} labelOf={props.labelOf} onPick={props.onPick} warning />
        </>
      ) : null}
    </aside>
  );
}

function ProblemList(props: { issues: ValidationIssue[]; labelOf: (nodeId: string) => string; onPick: (nodeId: string) => void; warning?: boolean }) {
  return (
    <ul>
      {props.issues.map((i, k) => (
        <li key={k}>
          <button
            type="button"
            className={`sd-problem${props.warning ? ' warning' : ''}`}
            data-testid={props.warning ? 'problem-warning' : 'problem'}
            data-node-id={i.nodeId ?? ''}
            disabled={!i.nodeId}
            onClick={() => i.nodeId && props.onPick(i.nodeId)}
            title={i.nodeId ? 'Show this node' : undefined}
          >
            {i.nodeId ? <span className="sd-problem-node">{props.labelOf(i.nodeId)}</span> : <span className="sd-problem-node">Graph</span>}
            <span className="sd-problem-msg">{i.message}</span>
            <span className="sd-problem-kind">{problemKind(i.code)}</span>
          </button>
        </li>
      ))}
    </ul>
  );
}

/**
 * Where runs go, and why when that is not what was asked: the one item of the status bar that can be
 * long (a CUDA reason), so it alone gives way, with the whole line in its tooltip.
 */
function ExecutionProvider(props: { provider: string; used: string | undefined; note: string | undefined }) {
  const { provider, used, note } = props;
  const text = `Runs on ${used ? used.toUpperCase() : provider}${used && used !== provider ? ` (${provider}${note ? `: ${note.replace(/^[a-z]+: /, '')}` : ''})` : ''}`;
  return (
    <span data-testid="execution-provider" className="sd-status-long" title={note ? `${text}\n${note}` : text}>
      {text}
    </span>
  );
}

export function StatusBar(props: {
  health: Health | null;
  healthError: string | null;
  /** null: not connected yet. */
  connected: boolean | null;
  queue: QueueState | null;
  nodeCount: number;
  minimap: boolean;
  onToggleMinimap(): void;
}) {
  const h = props.health;
  const pending = props.queue ? props.queue.pending.length + props.queue.active.length : 0;
  // The live connection drops at once when the server goes away; the health check says why.
  const down = props.healthError !== null || props.connected === false;
  const used = h?.executionProviderUsed;
  return (
    <footer className="sd-status" data-testid="status-bar">
      <span className={`sd-dot ${h?.ok && !down ? 'ok' : 'bad'}`} data-testid="health-dot" />
      <span data-testid="health" className={down ? 'sd-status-long sd-bad' : ''} title={props.healthError ?? undefined}>
        {props.healthError
          ? `Server unreachable: ${props.healthError}`
          : down
            ? 'Server unreachable (reconnecting…)'
            : h
              ? `Server ${h.ok ? 'OK' : 'not ready'}${h.version ? ` · v${h.version}` : ''}`
              : 'Connecting…'}
      </span>
      {h?.executionProvider ? <ExecutionProvider provider={h.executionProvider} used={used} note={h.executionProviderNote} /> : null}
      {h?.demo ? <span className="sd-demo">Demo model: random weights</span> : null}
      {!down ? <span>{props.connected ? 'Live updates on' : 'Connecting live updates…'}</span> : null}
      <span className="spacer" />
      <span>
        {props.nodeCount} node{props.nodeCount === 1 ? '' : 's'}
      </span>
      <span data-testid="status-queue">
        Queue: {pending === 0 ? 'idle' : `${pending} job${pending === 1 ? '' : 's'}`}
        {props.queue?.paused ? ' · paused' : ''}
      </span>
      <button type="button" className="sd-link" data-testid="btn-minimap" onClick={props.onToggleMinimap} title="Show or hide the minimap">
        Minimap: {props.minimap ? 'on' : 'off'}
      </button>
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

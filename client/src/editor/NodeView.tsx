/**
 * How a node looks: rendered from the catalog entry alone. Sockets sit at the top and the runtime
 * area (progress, preview, results, issues) at the bottom, so a growing preview never moves a socket
 * away from where its connections were drawn.
 */
import { useEffect, useRef } from 'react';
import { Presets, type RenderEmit } from 'rete-react-plugin';
import type { ValidationIssue } from '../../../server/protocol/graph.ts';
import type { ResultTable } from '../../../server/protocol/events.ts';
import { useNodeRuntime, useObservable, type NodeRuntime } from '../runtime.ts';
import { withToken } from '../access-token.ts';
import { currentResultActions, healthState, modelsState } from './bridge.ts';
import { ParamField, stopCanvas } from './ParamField.tsx';
import type { Schemes, StudioNode, TypedSocket } from './schemes.ts';

const { RefSocket } = Presets.classic;

export const DEMO_MODEL_NOTE = 'DEMO model — random weights, pictures mean nothing';

function issuesFor(issues: ValidationIssue[], field: string): string[] {
  return issues.filter((i) => i.field === field).map((i) => i.message);
}

export function NodeView(props: { data: StudioNode; emit: RenderEmit<Schemes> }) {
  const node = props.data;
  const rt = useNodeRuntime(node.id);
  const root = useRef<HTMLDivElement>(null);

  // Keep the node's size current for the minimap and zoom-to-fit.
  useEffect(() => {
    const el = root.current;
    if (!el) return;
    const measure = () => {
      node.width = el.offsetWidth;
      node.height = el.offsetHeight;
    };
    measure();
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    return () => ro.disconnect();
  }, [node]);

  const inputs = Object.entries(node.inputs);
  const outputs = Object.entries(node.outputs);
  const params = node.spec?.params ?? [];
  // Parameter issues show under their control; everything else (inputs, node-wide) in the list.
  const paramNames = new Set(params.map((p) => p.name));
  const nodeLevelIssues = rt.issues.filter((i) => !i.field || !paramNames.has(i.field));
  const classes = ['sd-node', `status-${rt.status}`];
  if (node.selected) classes.push('selected');
  if (rt.issues.length > 0) classes.push('has-issues');
  if (rt.status === 'failed') classes.push('failed');
  if (!node.spec) classes.push('placeholder');

  return (
    <div
      ref={root}
      className={classes.join(' ')}
      data-testid="node"
      data-node-id={node.id}
      data-node-type={node.type}
      data-status={rt.status}
      style={{ width: node.width }}
    >
      <header className="sd-node-header" title={node.spec?.description ?? `Unknown node type "${node.type}"`}>
        <span className="sd-node-title" data-testid="title">
          {node.label}
        </span>
        <span className="sd-node-category">{node.spec?.category ?? 'unknown type'}</span>
        <StatusBadge rt={rt} />
      </header>
      <div className="sd-node-ports">
        <div className="sd-inputs">
          {inputs.map(([key, input]) =>
            input ? (
              <div
                key={key}
                className={`sd-port input${issuesFor(rt.issues, key).length ? ' invalid' : ''}`}
                data-testid={`input-${key}`}
                title={[node.socketInfo.get(`in:${key}`)?.description, ...issuesFor(rt.issues, key)].filter(Boolean).join('\n') || undefined}
              >
                <RefSocket name="input-socket" side="input" socketKey={key} nodeId={node.id} emit={props.emit} payload={input.socket} data-testid="input-socket" />
                <span className="sd-port-label">
                  {input.label}
                  {node.socketInfo.get(`in:${key}`)?.optional ? <span className="muted"> (optional)</span> : null}
                </span>
              </div>
            ) : null,
          )}
        </div>
        <div className="sd-outputs">
          {outputs.map(([key, output]) =>
            output ? (
              <div key={key} className="sd-port output" data-testid={`output-${key}`} title={node.socketInfo.get(`out:${key}`)?.description}>
                <span className="sd-port-label">{output.label}</span>
                <RefSocket name="output-socket" side="output" socketKey={key} nodeId={node.id} emit={props.emit} payload={output.socket} data-testid="output-socket" />
              </div>
            ) : null,
          )}
        </div>
      </div>
      {params.length > 0 ? (
        <div className="sd-node-params">
          {params.map((p) => (
            <ParamField key={p.name} nodeId={node.id} param={p} value={node.params[p.name]} issues={issuesFor(rt.issues, p.name)} />
          ))}
        </div>
      ) : null}
      {!node.spec ? <div className="sd-node-note warn">This server has no node type “{node.type}”. Its settings are kept, but it cannot run.</div> : null}
      <DemoNote node={node} warnings={rt.warnings} />
      <RuntimeArea node={node} rt={rt} nodeLevelIssues={nodeLevelIssues} />
    </div>
  );
}

function StatusBadge({ rt }: { rt: NodeRuntime }) {
  if (rt.status === 'cached') return <span className="sd-badge cached" data-testid="badge-cached">cached</span>;
  if (rt.status === 'running') return <span className="sd-badge running">running</span>;
  if (rt.status === 'pending') return <span className="sd-badge pending">waiting</span>;
  if (rt.status === 'failed') return <span className="sd-badge failed">failed</span>;
  if (rt.status === 'cancelled') return <span className="sd-badge pending">cancelled</span>;
  if (rt.status === 'done' && rt.ms !== undefined) return <span className="sd-badge done">{formatMs(rt.ms)}</span>;
  return null;
}

/** A node's text result often repeats its warning (the demo model says both): show it once. */
function repeatsWarning(text: string, warnings: string[]): boolean {
  const head = text.trim().slice(0, 24).toLowerCase();
  return warnings.some((w) => w.toLowerCase().startsWith(head));
}

function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** The demo model has random weights: say so on the node, so nobody judges the method by its pictures. */
function DemoNote({ node, warnings }: { node: StudioNode; warnings: string[] }) {
  const health = useObservable(healthState);
  const models = useObservable(modelsState);
  // Once the server has said it (as a node warning), do not say it twice.
  if (warnings.some((w) => /demo model/i.test(w))) return null;
  const modelParams = node.spec?.params.filter((p) => p.kind === 'model') ?? [];
  if (modelParams.length === 0) return null;
  const demoNames = new Set(['demo', ...models.filter((m) => m.demo).map((m) => m.model.toLowerCase())]);
  const usesDemo = modelParams.some((p) => {
    const v = node.params[p.name];
    return v === undefined || v === '' || (typeof v === 'string' && demoNames.has(v.trim().toLowerCase()));
  });
  if (!usesDemo && health?.demo !== true) return null;
  return (
    <div className="sd-node-note demo" data-testid="demo-note">
      {DEMO_MODEL_NOTE}
    </div>
  );
}

function RuntimeArea({ node, rt, nodeLevelIssues }: { node: StudioNode; rt: NodeRuntime; nodeLevelIssues: ValidationIssue[] }) {
  const images = rt.result?.images ?? [];
  const showProgress = rt.status === 'running' && rt.progress;
  const empty = !showProgress && !rt.previewUrl && images.length === 0 && rt.warnings.length === 0 && !rt.error && nodeLevelIssues.length === 0 && !rt.result?.text && !rt.result?.table;
  if (empty) return null;
  return (
    <div className="sd-node-runtime" {...stopCanvas}>
      {showProgress ? (
        <div className="sd-progress" data-testid="node-progress">
          <div className="sd-progress-bar" style={{ width: `${(100 * rt.progress!.step) / Math.max(1, rt.progress!.total)}%` }} />
          <span className="sd-progress-text">
            step {rt.progress!.step} of {rt.progress!.total}
          </span>
        </div>
      ) : null}
      {rt.previewUrl && images.length === 0 ? (
        <img className="sd-preview" data-testid="node-preview" src={rt.previewUrl} alt={`step preview of ${node.label}`} draggable={false} />
      ) : null}
      {images.map((img) => (
        <figure key={img.url} className={`sd-result${node.spec?.output ? '' : ' small'}`} data-testid="node-result">
          <img src={withToken(img.url)} alt={img.name} width={img.width} height={img.height} draggable={false} />
          <figcaption>
            {img.width}×{img.height}{' '}
            {/* The link itself is the plain file (open in a new tab, copy the address); a click
                downloads the PNG with the graph embedded. */}
            <a
              href={withToken(img.url)}
              download={img.name}
              data-testid="download"
              title="Download as PNG with this graph embedded (drop it on the editor to reopen the graph)"
              onClick={(e) => {
                const actions = currentResultActions();
                if (!actions || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey) return;
                e.preventDefault();
                actions.downloadPng(node.id, img);
              }}
            >
              Download PNG
            </a>
          </figcaption>
        </figure>
      ))}
      {rt.result?.table ? <ResultTableView table={rt.result.table} /> : null}
      {rt.result?.text && !rt.result.table && !repeatsWarning(rt.result.text, rt.warnings) ? (
        <p className="sd-result-text" title={rt.result.text} data-testid="node-result-text">
          {rt.result.text.split('\n')[0]}
        </p>
      ) : null}
      {rt.error ? (
        <div className="sd-node-error" data-testid="node-error">
          {rt.error}
        </div>
      ) : null}
      {rt.warnings.map((w, i) => (
        <div key={i} className="sd-node-warning" data-testid="node-warning" title={w}>
          ⚠ {w}
        </div>
      ))}
      {nodeLevelIssues.length > 0 ? (
        <ul className="sd-node-issues" data-testid="node-issues">
          {nodeLevelIssues.map((i, k) => (
            <li key={k}>{i.message}</li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}

/** A node's small result table (e.g. metrics: one row per metric, one column per method). */
function ResultTableView({ table }: { table: ResultTable }) {
  const cell = { padding: '1px 6px', textAlign: 'right' as const, whiteSpace: 'nowrap' as const };
  return (
    <table className="sd-result-table" data-testid="node-result-table" style={{ fontSize: 11, borderCollapse: 'collapse', fontVariantNumeric: 'tabular-nums' }}>
      {table.columns.length > 1 ? (
        <thead>
          <tr>
            <th />
            {table.columns.map((c) => (
              <th key={c} style={cell}>{c}</th>
            ))}
          </tr>
        </thead>
      ) : null}
      <tbody>
        {table.rows.map((r) => (
          <tr key={r.label}>
            <th style={{ ...cell, textAlign: 'left', fontWeight: 'normal', opacity: 0.75 }}>{r.label}</th>
            {r.cells.map((c, i) => (
              <td key={i} style={cell}>{c}</td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Sockets coloured by type; `data-type` lets the stylesheet dim incompatible ones while dragging. */
export function SocketView(props: { data: TypedSocket }) {
  return <div className="sd-socket" data-type={props.data.type} title={props.data.type} style={{ background: props.data.color }} />;
}

/**
 * How a node looks: rendered from the catalog entry alone. Sockets sit at the top and the runtime
 * area at the bottom, so nothing that arrives during a run moves a socket. Nodes that show pictures
 * keep the room for them from the start (a sampler its step previews, an output node its result, a
 * mask its thumbnail), so a run does not make them grow over their neighbours; what still grows (a
 * warning, an error) pushes the nodes below out of the way (the editor does that).
 */
import { useEffect, useRef, useState, type RefObject } from 'react';
import { Presets, type RenderEmit } from 'rete-react-plugin';
import type { ValidationIssue } from '../../../server/protocol/graph.ts';
import { useNodeRuntime, type NodeRuntime } from '../runtime.ts';
import { countParams } from '../graph-io.ts';
import { useNodeEnv, type EditorBridge } from './bridge.ts';
import { DemoNote, MediaBox, mediaOf, RuntimeArea } from './NodeParts.tsx';
import { FamilyControl, StyleChip } from './FamilyControl.tsx';
import { paramVisible } from './param-visibility.ts';
import { ParamField } from './ParamField.tsx';
import { MaskPresets } from './MaskPresets.tsx';
import { NODE_WIDTH, type Schemes, type StudioNode, type TypedSocket } from './schemes.ts';

const { RefSocket } = Presets.classic;

function issuesFor(issues: ValidationIssue[], field: string): string[] {
  return issues.filter((i) => i.field === field).map((i) => i.message);
}

export function NodeView(props: { data: StudioNode; emit: RenderEmit<Schemes> }) {
  const node = props.data;
  const env = useNodeEnv();
  const rt = useNodeRuntime(env.runtime, node.id);
  const { bridge } = env;
  const root = useRef<HTMLDivElement>(null);

  useMeasuredSize(root, node, bridge);

  // A count of sockets is set by its family's own control (+ style / − style), not as a field; and a
  // parameter that does not apply to the node's other settings (the angle of a painted mask) is hidden.
  const counts = node.spec ? countParams(node.spec) : new Set<string>();
  const params = (node.spec?.params ?? []).filter((p) => !counts.has(p.name) && paramVisible(p, node.params, node.spec!.params));
  // Parameter issues show under their control; everything else (inputs, node-wide) in the list.
  const paramNames = new Set(params.map((p) => p.name));
  const nodeLevelIssues = rt.issues.filter((i) => !i.field || !paramNames.has(i.field));
  const media = mediaOf(node.spec);
  const classes = ['sd-node', `status-${rt.status}`];
  if (node.selected) classes.push('selected');
  if (rt.issues.length > 0) classes.push('has-issues');
  else if (rt.leftOut?.length) classes.push('left-out');
  if (rt.status === 'failed') classes.push('failed');
  if (!node.spec) classes.push('placeholder');
  if (node.mode) classes.push(`mode-${node.mode}`);
  // A result table (metrics) widens its node to fit, up to a limit; other nodes keep one width.
  const table = Boolean(rt.result?.table);
  if (table) classes.push('has-table');

  return (
    <div
      ref={root}
      className={classes.join(' ')}
      data-testid="node"
      data-node-id={node.id}
      data-node-type={node.type}
      data-status={rt.status}
      data-mode={node.mode ?? ''}
      style={table ? undefined : { width: NODE_WIDTH }}
    >
      <header className="sd-node-header" title={node.spec?.description ?? `Unknown node type "${node.type}"`}>
        <NodeTitle node={node} />
        <span className="sd-node-category">{node.spec?.category ?? 'unknown type'}</span>
        {node.mode ? (
          <span className={`sd-badge mode-${node.mode}`} data-testid="badge-mode">
            {node.mode === 'bypass' ? 'bypassed' : 'muted'}
          </span>
        ) : (
          <StatusBadge rt={rt} />
        )}
      </header>
      <NodePorts node={node} rt={rt} emit={props.emit} />
      {params.length > 0 ? (
        <div className="sd-node-params">
          {params.map((p) => (
            <ParamField key={p.name} nodeId={node.id} param={p} value={node.params[p.name]} issues={issuesFor(rt.issues, p.name)} />
          ))}
        </div>
      ) : null}
      {node.type === 'Mask' && node.spec ? <MaskPresets node={node} /> : null}
      {!node.spec ? <div className="sd-node-note warn">This server has no node type “{node.type}”. Its settings are kept, but it cannot run.</div> : null}
      <DemoNote node={node} warnings={rt.warnings} />
      {media ? <MediaBox node={node} rt={rt} media={media} /> : null}
      <RuntimeArea node={node} rt={rt} media={media} nodeLevelIssues={nodeLevelIssues} />
    </div>
  );
}

/** The input sockets (with their families' controls) and the output sockets. */
function NodePorts({ node, rt, emit }: { node: StudioNode; rt: NodeRuntime; emit: RenderEmit<Schemes> }) {
  const inputs = Object.entries(node.inputs);
  const outputs = Object.entries(node.outputs);
  const families = (node.spec?.inputs ?? []).filter((s) => s.variadic);
  return (
    <div className="sd-node-ports">
      <div className="sd-inputs">
        {inputs.map(([key, input], i) => {
          if (!input) return null;
          const info = node.socketInfo.get(`in:${key}`);
          const family = info?.family !== undefined ? families.find((f) => f.name === info.family) : undefined;
          // A family's control sits under its last member.
          const last = family && node.socketInfo.get(`in:${inputs[i + 1]?.[0]}`)?.family !== family.name;
          return (
            <div key={key} className="sd-port-group">
              <div
                className={`sd-port input${issuesFor(rt.issues, key).length ? ' invalid' : ''}`}
                data-testid={`input-${key}`}
                title={[info?.description, ...issuesFor(rt.issues, key)].filter(Boolean).join('\n') || undefined}
              >
                <RefSocket name="input-socket" side="input" socketKey={key} nodeId={node.id} emit={emit} payload={input.socket} data-testid="input-socket" />
                <span className="sd-port-label">
                  {info?.index !== undefined ? <StyleChip index={info.index} /> : null}
                  {input.label}
                  {info?.optional ? <span className="muted"> (optional)</span> : null}
                </span>
              </div>
              {last ? <FamilyControl node={node} family={family} /> : null}
            </div>
          );
        })}
      </div>
      <div className="sd-outputs">
        {outputs.map(([key, output]) =>
          output ? (
            <div key={key} className="sd-port output" data-testid={`output-${key}`} title={node.socketInfo.get(`out:${key}`)?.description}>
              <span className="sd-port-label">{output.label}</span>
              <RefSocket name="output-socket" side="output" socketKey={key} nodeId={node.id} emit={emit} payload={output.socket} data-testid="output-socket" />
            </div>
          ) : null,
        )}
      </div>
    </div>
  );
}

/** Keeps the node's size current for the minimap and fitting; a change may push neighbours. */
function useMeasuredSize(root: RefObject<HTMLDivElement | null>, node: StudioNode, bridge: EditorBridge): void {
  useEffect(() => {
    const el = root.current;
    if (!el) return;
    const measure = () => {
      const grew = Math.abs(el.offsetHeight - node.height) > 1 || Math.abs(el.offsetWidth - node.width) > 1;
      node.width = el.offsetWidth;
      node.height = el.offsetHeight;
      if (grew) bridge.nodeResized(node.id);
    };
    measure();
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    return () => ro.disconnect();
  }, [root, node, bridge]);
}

/** The title; double-click renames the node (empty gives it its type's title back). */
function NodeTitle({ node }: { node: StudioNode }) {
  const { bridge } = useNodeEnv();
  const [editing, setEditing] = useState(false);
  // The area captures the pointer on press (to drag the node), so no click or dblclick reaches the
  // title: two presses in quick succession are the double-click.
  const lastPress = useRef(0);
  if (editing) {
    return (
      <input
        className="sd-node-title-input"
        data-testid="title-input"
        autoFocus
        defaultValue={node.customTitle ?? node.label}
        onPointerDown={(e) => e.stopPropagation()}
        onFocus={(e) => e.currentTarget.select()}
        onKeyDown={(e) => {
          e.stopPropagation();
          if (e.key === 'Enter') e.currentTarget.blur();
          if (e.key === 'Escape') setEditing(false);
        }}
        onBlur={(e) => {
          if (editing) bridge.setTitle(node.id, e.currentTarget.value === (node.spec?.title ?? node.type) ? undefined : e.currentTarget.value);
          setEditing(false);
        }}
      />
    );
  }
  return (
    <span
      className="sd-node-title"
      data-testid="title"
      title="Double-click to rename"
      onPointerDown={(e) => {
        if (e.button !== 0) return;
        // After the press's own default action, which would take the focus back from the field.
        if (e.timeStamp - lastPress.current < 450) setTimeout(() => setEditing(true), 0);
        lastPress.current = e.timeStamp;
      }}
    >
      {node.label}
    </span>
  );
}

function StatusBadge({ rt }: { rt: NodeRuntime }) {
  if (rt.status === 'cached')
    return (
      <span className="sd-badge cached" data-testid="badge-cached">
        cached
      </span>
    );
  if (rt.status === 'running') return <span className="sd-badge running">running</span>;
  if (rt.status === 'pending') return <span className="sd-badge pending">waiting</span>;
  if (rt.status === 'failed') return <span className="sd-badge failed">failed</span>;
  if (rt.status === 'cancelled') return <span className="sd-badge pending">cancelled</span>;
  if (rt.status === 'done' && rt.ms !== undefined) return <span className="sd-badge done">{formatMs(rt.ms)}</span>;
  return null;
}

function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** Sockets coloured by type; `data-type` lets the stylesheet dim incompatible ones while dragging. */
export function SocketView(props: { data: TypedSocket }) {
  return <div className="sd-socket" data-type={props.data.type} title={props.data.type} style={{ background: props.data.color }} />;
}

/**
 * Simple mode (ComfyUI's App Mode, InvokeAI's linear view): one page with just the fields the graph
 * exposes (picture, prompts, the mask painter, strength…), Run, and the result beside its picture
 * (before/after). The canvas stays loaded underneath: every field edits the same graph, with the same
 * undo, autosave and validation as on the canvas.
 */
import { useMemo, useState } from 'react';
import type { Catalog, CatalogParam } from '../../../server/protocol/catalog.ts';
import type { Graph } from '../../../server/protocol/graph.ts';
import { withToken } from '../access-token.ts';
import { uploadUrl } from '../api.ts';
import { MaskPainter } from '../editor/MaskPainter.tsx';
import { ParamField } from '../editor/ParamField.tsx';
import { useNodeEnv } from '../editor/bridge.ts';
import { useNodeRuntime, useObservable } from '../runtime.ts';
import { isActive } from './jobs.ts';
import { useStudio } from './studio-store.ts';
import { simpleForm, type SimpleForm, type SimpleSection } from './simple-form.ts';
import { useNow } from './time.ts';
import { jobText } from './Toolbar.tsx';

/** Width of the mask painter in the form, in CSS pixels. */
const PAINTER_WIDTH = 360;

export interface SimpleViewProps {
  graph: Graph;
  catalog: Catalog;
  labelOf(nodeId: string): string | null;
  onRun(): void;
  onShowGraph(): void;
}

export function SimpleView({ graph, catalog, labelOf, onRun, onShowGraph }: SimpleViewProps) {
  const form = useMemo(() => simpleForm(graph, catalog), [graph, catalog]);
  const nodes = useMemo(() => new Map(graph.nodes.map((n) => [n.id, n])), [graph]);
  return (
    <div className="sd-simple" data-testid="simple-view">
      <div className="sd-simple-form" data-testid="simple-form">
        <h2 className="sd-simple-title">{graph.meta.title ?? 'Simple mode'}</h2>
        {form.sections.length === 0 ? (
          <div className="sd-simple-empty" data-testid="simple-empty">
            This graph shows nothing in simple mode yet. In the graph, click ○ beside a parameter to show it here.{' '}
            <button type="button" className="sd-link" onClick={onShowGraph}>
              Open the graph
            </button>
          </div>
        ) : (
          form.sections.map((s) => <SimpleSectionView key={s.nodeId} section={s} params={nodes.get(s.nodeId)?.params ?? {}} />)
        )}
      </div>
      <aside className="sd-simple-side">
        <RunBar labelOf={labelOf} onRun={onRun} />
        <SimpleResults form={form} />
      </aside>
    </div>
  );
}

/** One node's exposed fields under its title. */
function SimpleSectionView({ section, params }: { section: SimpleSection; params: Record<string, unknown> }) {
  const { runtime } = useNodeEnv();
  const rt = useNodeRuntime(runtime, section.nodeId);
  return (
    <section className="sd-simple-section" data-testid="simple-section" data-node-id={section.nodeId}>
      <h3>{section.title}</h3>
      {section.fields.map((p) => (
        <SimpleField
          key={p.name}
          nodeId={section.nodeId}
          param={p}
          params={params}
          issues={rt.issues.filter((i) => i.field === p.name).map((i) => i.message)}
        />
      ))}
      {rt.warnings.map((w, i) => (
        <div key={i} className="sd-param-hint" data-testid="simple-warning">
          {w}
        </div>
      ))}
    </section>
  );
}

function SimpleField({ nodeId, param, params, issues }: { nodeId: string; param: CatalogParam; params: Record<string, unknown>; issues: string[] }) {
  const { runtime } = useNodeEnv();
  const rt = useNodeRuntime(runtime, nodeId);
  if (param.kind === 'painting') return <MaskPainter target={{ nodeId, params }} rt={rt} param={param} width={PAINTER_WIDTH} />;
  return <ParamField nodeId={nodeId} param={param} value={params[param.name]} issues={issues} exposable={false} />;
}

/** Run, and what the job this tab watches is doing. */
function RunBar({ labelOf, onRun }: { labelOf(nodeId: string): string | null; onRun(): void }) {
  const job = useObservable(useStudio().jobs.jobView);
  const now = useNow(isActive(job));
  return (
    <div className="sd-simple-run">
      <button type="button" className="primary" data-testid="simple-run" onClick={onRun} title="Queue a run (Ctrl+Enter)">
        ▶ Run
      </button>
      {job ? (
        <span className={`sd-queue state-${job.state}`} data-testid="simple-status" data-state={job.state}>
          {jobText(job, now, labelOf)}
        </span>
      ) : null}
    </div>
  );
}

/** The output nodes' pictures, the first over the picture it was made from (before/after). */
function SimpleResults({ form }: { form: SimpleForm }) {
  const [first, ...rest] = form.outputs;
  return (
    <div className="sd-simple-results">
      {first && form.source ? <BeforeAfter source={form.source} output={first} /> : null}
      {(form.source ? rest : form.outputs).map((o) => (
        <OutputResult key={o.nodeId} nodeId={o.nodeId} title={o.title} />
      ))}
    </div>
  );
}

function OutputResult({ nodeId, title }: { nodeId: string; title: string }) {
  const { runtime } = useNodeEnv();
  const images = useNodeRuntime(runtime, nodeId).result?.images ?? [];
  return (
    <figure className="sd-simple-result" data-testid="simple-result" data-node-id={nodeId}>
      {images.length ? (
        images.map((img) => <img key={img.url} data-testid="simple-result-img" src={withToken(img.url)} alt={title} draggable={false} />)
      ) : (
        <div className="sd-simple-placeholder">Run to see it</div>
      )}
      <figcaption>{title}</figcaption>
    </figure>
  );
}

/** The picture and the result over it, split by a slider: left of the line the result, right the picture. */
function BeforeAfter({ source, output }: { source: NonNullable<SimpleForm['source']>; output: SimpleForm['outputs'][number] }) {
  const { runtime } = useNodeEnv();
  const [split, setSplit] = useState(50);
  const picture = useNodeRuntime(runtime, source.nodeId).result?.images?.[0]?.url ?? (source.image ? uploadUrl(source.image) : null);
  const result = useNodeRuntime(runtime, output.nodeId).result?.images?.[0]?.url;
  // Until there is a result (or with no picture to compare), the output as the others are shown.
  if (!picture || !result) return <OutputResult nodeId={output.nodeId} title={output.title} />;
  return (
    <div className="sd-before-after" data-testid="before-after" data-node-id={output.nodeId}>
      <div className="sd-before-after-frame">
        <img src={withToken(picture)} alt="before" draggable={false} />
        <img className="after" src={withToken(result)} alt="after" draggable={false} style={{ clipPath: `inset(0 ${100 - split}% 0 0)` }} />
        <div className="sd-before-after-line" style={{ left: `${split}%` }} />
      </div>
      <input
        type="range"
        data-testid="compare-slider"
        min={0}
        max={100}
        value={split}
        onChange={(e) => setSplit(Number(e.target.value))}
        aria-label="Result on the left, picture on the right"
      />
      <div className="sd-before-after-labels">
        <span>{output.title}</span>
        <span>the picture</span>
      </div>
    </div>
  );
}

/** The parts of a node below its parameters: the demo note, the picture box, and what a run says. */
import type { CatalogNode } from '../../../server/protocol/catalog.ts';
import type { ResultTable } from '../../../server/protocol/events.ts';
import type { ValidationIssue } from '../../../server/protocol/graph.ts';
import { withToken } from '../access-token.ts';
import { useObservable, type NodeRuntime } from '../runtime.ts';
import { useNodeEnv } from './bridge.ts';
import { ResultImage } from './Lightbox.tsx';
import { MaskPainter } from './MaskPainter.tsx';
import { picksOf } from './ModelPicker.tsx';
import { paramVisible } from './param-visibility.ts';
import { stopCanvas } from './ParamField.tsx';
import type { StudioNode } from './schemes.ts';

export const DEMO_MODEL_NOTE = 'DEMO model — random weights, pictures mean nothing';

/**
 * Which picture a node shows, so it can keep the room for it: an output node of an image its result, a node
 * of the diffusion loop (it takes or makes an inversion) its step previews, a mask maker its mask.
 */
export type Media = 'result' | 'steps' | 'thumb';

export function mediaOf(spec: CatalogNode | null): Media | null {
  if (!spec) return null;
  // An output node of a picture (a table-showing output, like the Metrics Table, has no picture).
  if (spec.output && spec.inputs.some((s) => s.type === 'Image')) return 'result';
  // A mask first: a words mask takes an inversion, but shows a mask, not step previews.
  if (spec.outputs.some((s) => s.type === 'Mask')) return 'thumb';
  if ([...spec.inputs, ...spec.outputs].some((s) => s.type === 'Inversion')) return 'steps';
  return null;
}

/** The demo model has random weights: say so on the node, so nobody judges the method by its pictures. */
export function DemoNote({ node, warnings }: { node: StudioNode; warnings: string[] }) {
  const { shared } = useNodeEnv();
  const health = useObservable(shared.health);
  const models = useObservable(shared.models);
  // Once the server has said it (as a node warning), do not say it twice.
  if (warnings.some((w) => /demo model/i.test(w))) return null;
  // Fields that name a model (not a LoRA's or a VAE's file).
  const modelParams = node.spec?.params.filter((p) => p.kind === 'model' && picksOf(p).includes('demo')) ?? [];
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

/** A picture box of fixed size: it is there before the run, and the run fills it. A mask being painted shows its painter. */
export function MediaBox({ node, rt, media }: { node: StudioNode; rt: NodeRuntime; media: Media }) {
  const { shared } = useNodeEnv();
  const params = node.spec?.params ?? [];
  const painting = params.find((p) => p.kind === 'painting' && paramVisible(p, node.params, params));
  if (painting) return <MaskPainter target={{ nodeId: node.id, params: node.params }} rt={rt} param={painting} />;
  const image = rt.result?.images?.[0];
  const progress = rt.status === 'running' && rt.progress ? rt.progress : undefined;
  return (
    <div className={`sd-media ${media}`} data-testid="node-media" {...stopCanvas}>
      <div className="sd-media-frame" data-testid={image && !(media === 'steps' && rt.previewUrl) ? 'node-result' : undefined}>
        {media === 'steps' && rt.previewUrl ? (
          <img className="sd-preview" data-testid="node-preview" src={rt.previewUrl} alt={`step preview of ${node.label}`} draggable={false} />
        ) : image ? (
          <ResultImage image={image} />
        ) : (
          <span className="sd-media-empty">
            {media === 'steps' ? 'Step previews appear here while it runs' : media === 'result' ? 'The picture appears here after Run' : 'Appears after Run'}
          </span>
        )}
        {progress ? <StepProgress step={progress.step} total={progress.total} /> : null}
      </div>
      {media === 'result' ? (
        <div className="sd-media-caption">
          {image ? (
            <>
              <span>
                {image.width}×{image.height}
              </span>
              {/* The link itself is the plain file (open in a new tab, copy the address); a click
                  downloads the PNG with the graph embedded. */}
              <a
                href={withToken(image.url)}
                download={image.name}
                data-testid="download"
                title="Download as PNG with this graph embedded (drop it on the editor to reopen the graph)"
                onClick={(e) => {
                  const actions = shared.resultActions.get();
                  if (!actions || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey) return;
                  e.preventDefault();
                  actions.downloadPng(node.id, image);
                }}
              >
                Download PNG
              </a>
            </>
          ) : (
            <span className="muted">no result yet</span>
          )}
        </div>
      ) : null}
      {media === 'thumb' ? (
        // A mask's true size (the picture it is drawn for), not its thumbnail's; its line is there
        // before the run, so the run does not grow the node.
        <div className="sd-media-caption">{image && rt.result?.text ? <span data-testid="media-size">{rt.result.text}</span> : null}</div>
      ) : null}
    </div>
  );
}

/** A node's text result often repeats its warning (the demo model says both): those lines are shown once. */
function newLines(text: string, warnings: string[]): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !warnings.some((w) => w.trim().toLowerCase().startsWith(l.slice(0, 24).toLowerCase())));
}

/** What a run and the checks say: errors, warnings, text results and problems (these may grow the node). */
export function RuntimeArea({ rt, media, nodeLevelIssues }: { node: StudioNode; rt: NodeRuntime; media: Media | null; nodeLevelIssues: ValidationIssue[] }) {
  // Pictures of nodes without a box of their own (none in the catalog today) still show.
  const loose = media ? [] : (rt.result?.images ?? []);
  const progress = !media && rt.status === 'running' && rt.progress ? rt.progress : undefined;
  const table = rt.result?.table;
  // A table says what its text would (the text is for logs and the command line).
  // A thumbnail's text is its caption (a mask's size), shown in its box.
  const lines = rt.result?.text && !table && media !== 'thumb' ? newLines(rt.result.text, rt.warnings) : [];
  const leftOut = rt.leftOut ?? [];
  if (
    !progress &&
    loose.length === 0 &&
    !table &&
    lines.length === 0 &&
    rt.warnings.length === 0 &&
    !rt.error &&
    nodeLevelIssues.length === 0 &&
    leftOut.length === 0
  )
    return null;
  return (
    <div className="sd-node-runtime" {...stopCanvas}>
      {progress ? <StepProgress step={progress.step} total={progress.total} /> : null}
      {loose.map((img) => (
        <img key={img.url} className="sd-media-img" src={withToken(img.url)} alt={img.name} draggable={false} />
      ))}
      {table ? <ResultTableView table={table} /> : null}
      {lines.length ? (
        <div className="sd-result-text" data-testid="node-result-text">
          {lines.map((l, i) => (
            <p key={i}>{l}</p>
          ))}
        </div>
      ) : null}
      {rt.error ? (
        <div className="sd-node-error" data-testid="node-error">
          {rt.error}
        </div>
      ) : null}
      {rt.warnings.map((w, i) => (
        <div key={i} className="sd-node-warning" data-testid="node-warning">
          ⚠ {w}
        </div>
      ))}
      {leftOut.length > 0 ? (
        <div className="sd-node-warning" data-testid="node-left-out">
          ⚠ Left out of runs: no output needs this node. {leftOut.map((i) => i.message).join(' ')}
        </div>
      ) : null}
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
  return (
    <table className="sd-result-table" data-testid="node-result-table">
      {table.columns.length > 1 ? (
        <thead>
          <tr>
            <th />
            {table.columns.map((c) => (
              <th key={c}>{c}</th>
            ))}
          </tr>
        </thead>
      ) : null}
      <tbody>
        {table.rows.map((r) => (
          <tr key={r.label}>
            <th>{r.label}</th>
            {r.cells.map((c, i) => (
              <td key={i}>{c}</td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** A node's step bar: "step 12 of 90". */
function StepProgress({ step, total }: { step: number; total: number }) {
  return (
    <div className="sd-progress" data-testid="node-progress">
      <div className="sd-progress-bar" style={{ width: `${(100 * step) / Math.max(1, total)}%` }} />
      <span className="sd-progress-text">
        step {step} of {total}
      </span>
    </div>
  );
}

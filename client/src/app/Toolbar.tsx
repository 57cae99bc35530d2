/** The toolbar: document actions, editing, the document's name, panels, and the run controls. */
import { useEffect, useRef, useState, type ReactNode } from 'react';
import { useObservable } from '../runtime.ts';
import { isActive, type JobView } from './jobs.ts';
import { useStudio } from './studio-store.ts';
import { MAX_BATCH, SEED_CONTROLS, type SeedControl } from './seeds.ts';
import { clock, useNow } from './time.ts';

export interface ToolbarProps {
  docLabel: string;
  isTemplate: boolean;
  dirty: boolean;
  problemCount: number;
  resultCount: number;
  /** Results arrived that the user has not looked at (the panel is closed). */
  freshResults: boolean;
  queueCount: number;
  /** Title of a node of the canvas by id (null when the canvas has no such node). */
  labelOf(nodeId: string): string | null;
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
  onArrange(): void;
  onRun(front: boolean): void;
  /** What the seeds do after each run, and how many runs one click queues. */
  seedControl: SeedControl;
  onSeedControl(control: SeedControl): void;
  batch: number;
  onBatch(count: number): void;
  onCancel(): void;
  onToggleProblems(): void;
  onToggleResults(): void;
  onToggleQueue(): void;
  onHelp(): void;
  /** The graph on the canvas, or simple mode's one-page form of what it exposes. */
  view: StudioView;
  onView(view: StudioView): void;
}

export type StudioView = 'graph' | 'simple';

/** The "Simple | Graph" switch. */
function ViewSwitch({ view, onView }: { view: StudioView; onView(view: StudioView): void }) {
  const option = (v: StudioView, label: string, title: string) => (
    <button
      type="button"
      className={view === v ? 'active' : undefined}
      data-testid={`view-${v}`}
      aria-pressed={view === v}
      title={title}
      onClick={() => onView(v)}
    >
      {label}
    </button>
  );
  return (
    <div className="sd-view-switch" role="group" aria-label="View">
      {option('simple', 'Simple', 'Simple mode: one page with the fields this graph exposes, Run and the result')}
      {option('graph', 'Graph', 'The node graph')}
    </div>
  );
}

export function Toolbar(p: ToolbarProps) {
  // Subscribed here, not in the app: progress events change the job view many times a second, and
  // only the toolbar shows it.
  const job = useObservable(useStudio().jobs.jobView);
  const active = isActive(job);
  return (
    <header className="sd-toolbar">
      <div className="sd-brand">Dual Style Studio</div>
      <ViewSwitch view={p.view} onView={p.onView} />
      <FileButtons p={p} />
      <EditButtons p={p} />
      <DocumentName p={p} />
      <div className="sd-group right">
        <PanelButtons p={p} />
        <QueueIndicator job={job} labelOf={p.labelOf} />
        {active ? (
          <button type="button" className="danger" data-testid="btn-cancel" onClick={p.onCancel} title="Cancel the job shown beside (Esc)">
            ■<span className="sd-wide-only"> Cancel</span>
          </button>
        ) : null}
        <RunControls p={p} />
      </div>
    </header>
  );
}

/** New, Open, Save, and the rest of a document's actions in the ⋯ menu. */
function FileButtons({ p }: { p: ToolbarProps }) {
  return (
    <div className="sd-group">
      <button type="button" data-testid="btn-new" onClick={p.onNew} title="New empty graph">
        New
      </button>
      <button type="button" data-testid="btn-open" onClick={p.onOpen} title="Open a template or saved graph (Ctrl+O)">
        Open…
      </button>
      <button type="button" data-testid="btn-save" onClick={p.onSave} title="Save on the server (Ctrl+S)">
        Save
      </button>
      <MoreMenu>
        <button type="button" data-testid="btn-save-as" onClick={p.onSaveAs} title="Save under a new name">
          Save as…
        </button>
        <button type="button" data-testid="btn-export" onClick={p.onExport} title="Download the graph as JSON">
          Export JSON
        </button>
        <button
          type="button"
          data-testid="btn-import"
          onClick={p.onImport}
          title="Open a graph JSON file or a PNG downloaded from the studio (or drop it on the canvas)"
        >
          Import…
        </button>
      </MoreMenu>
    </div>
  );
}

/** Adding nodes, undo and redo, the view, and the shortcuts. */
function EditButtons({ p }: { p: ToolbarProps }) {
  return (
    <div className="sd-group">
      <button type="button" data-testid="btn-add-node" onClick={p.onAddNode} title="Add a node (or double-click the canvas, or right-click)">
        + Node
      </button>
      <button type="button" data-testid="btn-undo" onClick={p.onUndo} title="Undo (Ctrl+Z)" aria-label="Undo">
        ↶
      </button>
      <button type="button" data-testid="btn-redo" onClick={p.onRedo} title="Redo (Ctrl+Shift+Z / Ctrl+Y)" aria-label="Redo">
        ↷
      </button>
      <button type="button" data-testid="btn-fit" onClick={p.onFit} title="Show the whole graph (F)">
        Fit
      </button>
      <button type="button" data-testid="btn-arrange" onClick={p.onArrange} title="Arrange the nodes left to right, without overlaps (Ctrl+Shift+A)">
        Arrange
      </button>
      <button type="button" data-testid="btn-help" onClick={p.onHelp} title="Keyboard shortcuts (?)">
        ?
      </button>
    </div>
  );
}

/** The document's name, whether it is a template, and whether it has unsaved changes. */
function DocumentName({ p }: { p: ToolbarProps }) {
  return (
    <div
      className="sd-doc"
      data-testid="doc-label"
      title={`${p.docLabel}${p.isTemplate ? ' (template, read-only: Save makes a copy)' : ''} · ${p.dirty ? 'unsaved changes, kept in this browser until you save' : 'no unsaved changes'}`}
    >
      <span className="sd-doc-name" data-testid="doc-name">
        {p.docLabel}
      </span>
      {p.isTemplate ? <span className="sd-tag">template</span> : null}
      {p.dirty ? (
        <span className="sd-dirty" data-testid="dirty">
          ●<span className="sd-wide-only"> unsaved</span>
        </span>
      ) : null}
    </div>
  );
}

/** The Problems, Results and Queue panels' buttons. */
function PanelButtons({ p }: { p: ToolbarProps }) {
  return (
    <>
      <button
        type="button"
        className={`sd-problems-btn${p.problemCount ? ' has' : ''}`}
        data-testid="btn-problems"
        onClick={p.onToggleProblems}
        title="Show or hide the problems panel"
      >
        {p.problemCount ? `⚠ ${p.problemCount}` : '✓'}
        <span className="sd-wide-only">{p.problemCount ? ` problem${p.problemCount === 1 ? '' : 's'}` : ' No problems'}</span>
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
      <button
        type="button"
        data-testid="btn-queue"
        onClick={p.onToggleQueue}
        title="Every job of the server, from every tab: position, progress, time left, cancel"
      >
        Queue{p.queueCount ? ` · ${p.queueCount}` : ''}
      </button>
    </>
  );
}

/** What the seeds do after a run, the batch count, and Run. */
function RunControls({ p }: { p: ToolbarProps }) {
  return (
    <>
      <select
        className="sd-seed-control"
        data-testid="seed-control"
        value={p.seedControl}
        onChange={(e) => p.onSeedControl(e.target.value as SeedControl)}
        title={`${SEED_CONTROLS.find((c) => c.value === p.seedControl)?.title ?? ''} (the seed parameters of the graph)`}
      >
        {SEED_CONTROLS.map((c) => (
          <option key={c.value} value={c.value} title={c.title}>
            {c.label}
          </option>
        ))}
      </select>
      <label className="sd-batch" title={`Batch count: how many runs one click queues, each with the next seed (1–${MAX_BATCH})`}>
        ×
        <input
          type="number"
          data-testid="batch-count"
          min={1}
          max={MAX_BATCH}
          value={p.batch}
          onChange={(e) => {
            const n = Math.floor(Number(e.target.value));
            if (Number.isFinite(n)) p.onBatch(Math.max(1, Math.min(MAX_BATCH, n)));
          }}
        />
      </label>
      <button
        type="button"
        className="primary"
        data-testid="btn-run"
        onClick={(e) => p.onRun(e.shiftKey)}
        title="Queue a run of this graph (Ctrl+Enter); Shift+click or Ctrl+Shift+Enter puts it first in line"
      >
        ▶ Run
      </button>
    </>
  );
}

/** What the job this tab looks at is doing, with its elapsed time and how long it has left. */
export function jobText(job: JobView, now: number, labelOf: (id: string) => string | null): string {
  const eta = job.etaAt !== undefined ? ` · ETA ${clock(job.etaAt - now)}` : '';
  const whose = job.mine ? '' : ' (another tab)';
  if (job.state === 'queued') return `Queued${job.position ? ` · #${job.position}` : ''}${eta}${whose}`;
  if (job.state === 'running') {
    const node = job.currentNode ? (labelOf(job.currentNode) ?? job.currentTitle ?? job.currentNode) : null;
    const steps = node && job.step !== undefined && job.total ? ` ${job.step}/${job.total}` : '';
    const elapsed = job.startedAt !== undefined ? ` · ${clock(now - job.startedAt)}` : '';
    return `${node ? `${node}${steps}` : 'Running'}${elapsed}${eta}${whose}`;
  }
  if (job.state === 'done') return `✓ ${job.message ?? 'Done'}`;
  if (job.state === 'failed') return '✕ Failed';
  return 'Cancelled';
}

function QueueIndicator({ job, labelOf }: { job: JobView | null; labelOf: (id: string) => string | null }) {
  const now = useNow(isActive(job));
  if (!job) return null;
  const text = jobText(job, now, labelOf);
  return (
    <span
      className={`sd-queue state-${job.state}`}
      data-testid="queue-indicator"
      data-state={job.state}
      data-job-id={job.id}
      title={`${text}${job.message ? `\n${job.message}` : ''}`}
    >
      {text}
    </span>
  );
}

/** Less frequent document actions, behind "⋯": the toolbar keeps room for the graph's name and the run. */
function MoreMenu({ children }: { children: ReactNode }) {
  const [open, setOpen] = useState(false);
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!open) return;
    const close = (e: Event) => {
      if (e instanceof KeyboardEvent ? e.key === 'Escape' : !box.current?.contains(e.target as Node)) setOpen(false);
    };
    window.addEventListener('pointerdown', close, true);
    window.addEventListener('keydown', close, true);
    return () => {
      window.removeEventListener('pointerdown', close, true);
      window.removeEventListener('keydown', close, true);
    };
  }, [open]);
  return (
    <div className="sd-more" ref={box}>
      <button type="button" data-testid="btn-more" aria-expanded={open} onClick={() => setOpen(!open)} title="Save as, export, import">
        ⋯
      </button>
      {open ? (
        <div className="sd-more-menu" role="menu" onClick={() => setOpen(false)}>
          {children}
        </div>
      ) : null}
    </div>
  );
}

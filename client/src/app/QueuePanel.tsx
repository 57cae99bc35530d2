/**
 * The Queue panel: every job of the server, whichever tab queued it, with its position, progress,
 * elapsed time, time left and a Cancel; then the jobs that finished while this tab was open.
 * Clicking a job makes this tab look at it (its progress in the toolbar; its nodes when the canvas
 * holds its graph). Waiting jobs change places by dragging them, or with their ↑ ↓ buttons; Pause
 * holds every waiting job (the running one goes on) until Resume.
 */
import { useState, type MouseEvent } from 'react';
import type { JobProgress, JobSummary, QueueState } from '../../../server/protocol/events.ts';
import { useObservable } from '../runtime.ts';
import { useStudio } from './studio-store.ts';
import { clock, useNow } from './time.ts';

/** How far a running job is, 0–1: by time when the server has an estimate, else by nodes and steps. */
export function fractionDone(job: JobSummary, now: number, receivedAt: number): number {
  const elapsed = (job.elapsedMs ?? 0) + (now - receivedAt);
  if (job.etaMs !== undefined && job.elapsedMs !== undefined) {
    const left = Math.max(0, job.etaMs - (now - receivedAt));
    return Math.min(1, elapsed / Math.max(1, elapsed + left));
  }
  const p = job.progress;
  if (!p || p.nodesTotal === 0) return 0;
  const step = p.step && p.steps ? p.step / p.steps : 0;
  return Math.min(1, (p.nodesDone + step) / p.nodesTotal);
}

/** The running node's steps: "12/30", or a labelled phase as a percentage ("converting 42%"). */
export function stepText(p: JobProgress): string {
  if (p.step === undefined || !p.steps) return '';
  return p.stepLabel ? ` ${p.stepLabel} ${Math.floor((100 * p.step) / p.steps)}%` : ` ${p.step}/${p.steps}`;
}

export function QueuePanel(props: {
  onWatch(jobId: string): void;
  onCancel(jobId: string): void;
  /** Moves a waiting job to `position` (1 = next to start). */
  onMove(jobId: string, position: number): void;
  onPause(paused: boolean): void;
  /** Opens the graph a job runs (or ran), as a new graph in the editor. */
  onOpenGraph(jobId: string): void;
  onClose(): void;
}) {
  const { queueView, finishedJobs } = useStudio().jobs;
  const queue = useObservable(queueView);
  const finished = useObservable(finishedJobs);
  const active = queue ? [...queue.active, ...queue.pending] : [];
  return (
    <aside className="sd-queue-panel" data-testid="queue-panel">
      <header>
        <span>
          Queue <span className="muted">{active.length ? `${active.length} job${active.length === 1 ? '' : 's'}` : 'idle'}</span>
          {queue?.paused ? (
            <span className="sd-tag paused" data-testid="queue-paused">
              paused
            </span>
          ) : null}
        </span>
        <button type="button" className="sd-link" onClick={props.onClose} title="Hide">
          ✕
        </button>
      </header>
      <QueueActions queue={queue} onCancel={props.onCancel} onPause={props.onPause} />
      {active.length === 0 ? <p className="muted">Nothing is running. Run (Ctrl+Enter) queues the graph; Ctrl+Shift+Enter puts it first in line.</p> : null}
      <ActiveJobs queue={queue} active={active} onWatch={props.onWatch} onCancel={props.onCancel} onMove={props.onMove} onOpenGraph={props.onOpenGraph} />
      {finished.length ? (
        <>
          <h4 className="sd-queue-sub">Finished</h4>
          <ol className="sd-queue-list">
            {finished.map((job) => (
              <li key={job.id} className="sd-queue-item done" data-testid="queue-finished" data-job-id={job.id} data-state={job.state}>
                <div className="sd-queue-row">
                  <span className="sd-queue-pos">{job.state === 'done' ? '✓' : job.state === 'failed' || job.state === 'interrupted' ? '✕' : '■'}</span>
                  <span className="sd-queue-title">{job.title || 'Untitled graph'}</span>
                  {job.mine ? <span className="sd-tag">this tab</span> : null}
                </div>
                <div className="sd-queue-foot">
                  <span className="sd-queue-meta muted">{job.ms !== undefined ? `${job.state} in ${clock(job.ms)}` : job.state}</span>
                  <OpenGraphButton jobId={job.id} onOpenGraph={props.onOpenGraph} />
                </div>
              </li>
            ))}
          </ol>
        </>
      ) : null}
    </aside>
  );
}

type Queue = QueueState | null;

/** Pause / Resume, Clear waiting, and how to reorder. */
function QueueActions(props: { queue: Queue; onCancel(jobId: string): void; onPause(paused: boolean): void }) {
  const { queue } = props;
  const waiting = queue?.pending.length ?? 0;
  return (
    <div className="sd-queue-actions">
      <button
        type="button"
        data-testid="queue-pause"
        className={queue?.paused ? 'primary' : ''}
        onClick={() => props.onPause(!queue?.paused)}
        title={queue?.paused ? 'Let waiting jobs start again' : 'Start no waiting job until Resume (the running one goes on)'}
      >
        {queue?.paused ? '▶ Resume' : '⏸ Pause'}
      </button>
      {queue && waiting > 1 ? (
        <button
          type="button"
          data-testid="queue-clear"
          onClick={() => queue.pending.forEach((j) => props.onCancel(j.id))}
          title="Take every waiting job out of the queue (the running one goes on)"
        >
          Clear waiting
        </button>
      ) : null}
      {waiting > 1 ? <span className="muted">Drag a waiting job to change its place.</span> : null}
    </div>
  );
}

function OpenGraphButton(props: { jobId: string; onOpenGraph(jobId: string): void }) {
  return (
    <button
      type="button"
      className="sd-link"
      data-testid="queue-open-graph"
      title="Open the graph of this job, as a new graph"
      onClick={(e) => {
        e.stopPropagation();
        props.onOpenGraph(props.jobId);
      }}
    >
      Open graph
    </button>
  );
}

/** The running and waiting jobs; a waiting one moves by dragging it onto another's place. */
function ActiveJobs(props: {
  queue: Queue;
  active: JobSummary[];
  onWatch(jobId: string): void;
  onCancel(jobId: string): void;
  onMove(jobId: string, position: number): void;
  onOpenGraph(jobId: string): void;
}) {
  const { myJobs, jobView } = useStudio().jobs;
  const mine = useObservable(myJobs);
  const looking = useObservable(jobView);
  // The queue state is as of its arrival; time runs on from there.
  const receivedAt = useReceivedAt(props.queue);
  const now = useNow(props.active.length > 0);
  const [dragged, setDragged] = useState<string | null>(null);
  const [dropAt, setDropAt] = useState<number | null>(null);
  const endDrag = () => {
    setDragged(null);
    setDropAt(null);
  };
  return (
    <ol className="sd-queue-list">
      {props.active.map((job) => {
        const running = job.state === 'running';
        const pos = job.position ?? 0;
        const drop = !running && dragged !== null && dragged !== job.id && dropAt === pos;
        return (
          <li
            key={job.id}
            className={`sd-queue-item${looking?.id === job.id ? ' looking' : ''}${dragged === job.id ? ' dragged' : ''}${drop ? ' drop-here' : ''}`}
            draggable={!running}
            onDragStart={(e) => {
              e.dataTransfer.setData('text/plain', job.id);
              e.dataTransfer.effectAllowed = 'move';
              setDragged(job.id);
            }}
            onDragEnd={endDrag}
            onDragOver={(e) => {
              if (running || dragged === null) return;
              e.preventDefault();
              setDropAt(pos);
            }}
            onDrop={(e) => {
              e.preventDefault();
              const id = e.dataTransfer.getData('text/plain') || dragged;
              endDrag();
              if (id && id !== job.id && !running) props.onMove(id, pos);
            }}
            data-testid="queue-item"
            data-job-id={job.id}
            data-state={job.state}
            data-mine={mine.has(job.id) ? 'true' : 'false'}
            onClick={() => props.onWatch(job.id)}
            title="Show this job's progress in the toolbar"
          >
            <ActiveJob
              job={job}
              mine={mine.has(job.id)}
              paused={props.queue?.paused === true}
              waiting={props.queue?.pending.length ?? 0}
              now={now}
              receivedAt={receivedAt}
              onCancel={props.onCancel}
              onMove={props.onMove}
              onOpenGraph={props.onOpenGraph}
            />
          </li>
        );
      })}
    </ol>
  );
}

/** A running or waiting job: title, progress, times, and its buttons. */
function ActiveJob(props: {
  job: JobSummary;
  mine: boolean;
  paused: boolean;
  waiting: number;
  now: number;
  receivedAt: number;
  onCancel(jobId: string): void;
  onMove(jobId: string, position: number): void;
  onOpenGraph(jobId: string): void;
}) {
  const { job, now, receivedAt } = props;
  const running = job.state === 'running';
  const left = job.etaMs !== undefined ? Math.max(0, job.etaMs - (now - receivedAt)) : undefined;
  const p = job.progress;
  const pos = job.position ?? 0;
  const move = (to: number) => (e: MouseEvent<HTMLButtonElement>) => {
    e.stopPropagation();
    props.onMove(job.id, to);
  };
  return (
    <>
      <div className="sd-queue-row">
        <span className="sd-queue-pos">{running ? '▶' : `#${job.position}`}</span>
        <span className="sd-queue-title">{job.title || 'Untitled graph'}</span>
        {props.mine ? <span className="sd-tag">this tab</span> : null}
        {job.worker && job.worker !== 'local' ? (
          <span className="muted" title="The worker that runs it">
            {job.worker}
          </span>
        ) : null}
      </div>
      {running ? (
        <div className="sd-progress small" data-testid="queue-progress">
          <div className="sd-progress-bar" style={{ width: `${Math.round(100 * fractionDone(job, now, receivedAt))}%` }} />
        </div>
      ) : null}
      <div className="sd-queue-foot">
        <div className="sd-queue-meta muted" data-testid="queue-meta">
          {running
            ? [
                p?.nodeTitle ? `${p.nodeTitle}${stepText(p)}` : null,
                p ? `node ${Math.min(p.nodesDone + 1, p.nodesTotal)} of ${p.nodesTotal}` : null,
                job.elapsedMs !== undefined ? `${clock(job.elapsedMs + (now - receivedAt))} elapsed` : null,
                left !== undefined ? `ETA ${clock(left)}` : 'ETA after a first run',
              ]
                .filter(Boolean)
                .join(' · ')
            : [props.paused ? 'paused' : 'waiting', left !== undefined && !props.paused ? `done in ~${clock(left)}` : null].filter(Boolean).join(' · ')}
        </div>
        <OpenGraphButton jobId={job.id} onOpenGraph={props.onOpenGraph} />
        <button
          type="button"
          className="sd-link"
          data-testid="queue-cancel"
          title={running ? 'Stop this job' : 'Take this job out of the queue'}
          onClick={(e) => {
            e.stopPropagation();
            props.onCancel(job.id);
          }}
        >
          Cancel
        </button>
        {!running ? (
          <span className="sd-queue-moves">
            <button
              type="button"
              className="sd-link"
              data-testid="queue-up"
              disabled={pos <= 1}
              title="Start it one place earlier (or drag it)"
              onClick={move(pos - 1)}
            >
              ↑
            </button>
            <button
              type="button"
              className="sd-link"
              data-testid="queue-down"
              disabled={pos >= props.waiting}
              title="Start it one place later (or drag it)"
              onClick={move(pos + 1)}
            >
              ↓
            </button>
          </span>
        ) : null}
      </div>
    </>
  );
}

/** When the value last changed (this browser's clock), kept per value. */
function useReceivedAt(value: unknown): number {
  const [seen, setSeen] = useState<{ value: unknown; at: number }>(() => ({ value, at: Date.now() }));
  if (seen.value !== value) {
    const next = { value, at: Date.now() };
    setSeen(next);
    return next.at;
  }
  return seen.at;
}

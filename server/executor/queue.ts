/**
 * The job queue: one GPU, so one job at a time, first in first out (a job may be put first in line).
 * Positions are reported (0 = running),
 * a queued job can be withdrawn and the running one aborted; a job that fails or is cancelled never
 * stops the jobs behind it.
 */
import { randomUUID } from 'node:crypto';
import type { JobState, JobSummary, QueueState } from '../protocol/events.ts';
import { CancelledError } from '../../nodes/types.ts';

export interface Job<T = unknown> {
  id: string;
  payload: T;
  state: JobState;
  createdAt: number;
  title?: string;
  /** Why it failed, for the user. */
  error?: string;
  /** The node that failed, when a node did. */
  failedNode?: string;
  startedAt?: number;
  finishedAt?: number;
}

export class QueueFullError extends Error {
  constructor(readonly maxPending: number) {
    super(`The queue is full (${maxPending} jobs waiting); try again when some have finished.`);
    this.name = 'QueueFullError';
  }
}

export type JobRunner<T> = (job: Job<T>, signal: AbortSignal) => Promise<void>;

export interface JobQueueOptions {
  /** Most jobs waiting (not counting the running one); default 100. */
  maxPending?: number;
  /** Finished jobs kept for `get`; default 200. */
  historySize?: number;
}

export class JobQueue<T> {
  private readonly maxPending: number;
  private readonly historySize: number;
  private readonly pending: Job<T>[] = [];
  private running: { job: Job<T>; controller: AbortController } | null = null;
  private readonly history = new Map<string, Job<T>>();
  private readonly changeListeners = new Set<(q: QueueState) => void>();
  private readonly finishListeners = new Set<(job: Job<T>) => void>();
  private idleWaiters: (() => void)[] = [];
  private pumpScheduled = false;

  constructor(
    private readonly runner: JobRunner<T>,
    opts: JobQueueOptions = {},
  ) {
    this.maxPending = opts.maxPending ?? 100;
    this.historySize = opts.historySize ?? 200;
  }

  /**
   * Queues a job at the end of the line, or first in line with `front` (after the running job, which
   * is never interrupted); it starts on a later microtask, so the caller can announce it first.
   */
  submit(payload: T, title?: string, opts: { front?: boolean } = {}): Job<T> {
    if (this.pending.length >= this.maxPending) throw new QueueFullError(this.maxPending);
    const job: Job<T> = { id: randomUUID(), payload, state: 'queued', createdAt: Date.now(), ...(title !== undefined ? { title } : {}) };
    if (opts.front) this.pending.unshift(job);
    else this.pending.push(job);
    this.changed();
    this.schedulePump();
    return job;
  }

  /** Withdraws a queued job or aborts the running one; false when the job is unknown or finished. */
  cancel(id: string): boolean {
    if (this.running?.job.id === id) {
      if (this.running.controller.signal.aborted) return true;
      this.running.controller.abort(new CancelledError());
      return true;
    }
    const i = this.pending.findIndex((j) => j.id === id);
    if (i < 0) return false;
    const [job] = this.pending.splice(i, 1);
    this.finish(job, 'cancelled');
    this.checkIdle();
    return true;
  }

  get(id: string): Job<T> | undefined {
    if (this.running?.job.id === id) return this.running.job;
    return this.pending.find((j) => j.id === id) ?? this.history.get(id);
  }

  /** 0 = running, 1 = next, ...; undefined once finished or unknown. */
  position(id: string): number | undefined {
    if (this.running?.job.id === id) return 0;
    const i = this.pending.findIndex((j) => j.id === id);
    return i < 0 ? undefined : i + 1;
  }

  state(): QueueState {
    return {
      running: this.running ? summary(this.running.job, 0) : null,
      pending: this.pending.map((j, i) => summary(j, i + 1)),
    };
  }

  on(event: 'change', fn: (q: QueueState) => void): () => void;
  on(event: 'finished', fn: (job: Job<T>) => void): () => void;
  on(event: 'change' | 'finished', fn: ((q: QueueState) => void) | ((job: Job<T>) => void)): () => void {
    const set = (event === 'change' ? this.changeListeners : this.finishListeners) as Set<typeof fn>;
    set.add(fn);
    return () => {
      set.delete(fn);
    };
  }

  /** Resolves once nothing is running or waiting. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private isIdle(): boolean {
    return this.running === null && this.pending.length === 0;
  }

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    queueMicrotask(() => {
      this.pumpScheduled = false;
      void this.pump();
    });
  }

  private async pump(): Promise<void> {
    if (this.running || this.pending.length === 0) return;
    const job = this.pending.shift()!;
    const controller = new AbortController();
    this.running = { job, controller };
    job.state = 'running';
    job.startedAt = Date.now();
    this.changed();

    let final: JobState = 'done';
    try {
      await Promise.resolve().then(() => this.runner(job, controller.signal));
    } catch (err) {
      if (err instanceof CancelledError || (controller.signal.aborted && isAbortLike(err))) {
        final = 'cancelled';
      } else {
        final = 'failed';
        job.error = err instanceof Error ? err.message : String(err);
        const nodeId = (err as { nodeId?: unknown } | null)?.nodeId;
        if (typeof nodeId === 'string') job.failedNode = nodeId;
      }
    }
    this.running = null;
    this.finish(job, final);
    if (this.pending.length > 0) this.schedulePump();
    else this.checkIdle();
  }

  private finish(job: Job<T>, state: JobState): void {
    job.state = state;
    job.finishedAt = Date.now();
    this.history.set(job.id, job);
    while (this.history.size > this.historySize) this.history.delete(this.history.keys().next().value as string);
    this.changed();
    for (const fn of [...this.finishListeners]) safeCall(() => fn(job));
  }

  private checkIdle(): void {
    if (!this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private changed(): void {
    if (this.changeListeners.size === 0) return;
    const q = this.state();
    for (const fn of [...this.changeListeners]) safeCall(() => fn(q));
  }
}

function summary(job: Job<unknown>, position: number): JobSummary {
  return {
    id: job.id,
    state: job.state,
    position,
    createdAt: job.createdAt,
    ...(job.title !== undefined ? { title: job.title } : {}),
    ...(job.startedAt !== undefined ? { startedAt: job.startedAt } : {}),
  };
}

/** An error raised by the abort itself (AbortError from fetch/timers) counts as a cancel. */
function isAbortLike(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || err.name === 'CancelledError');
}

/** A listener that throws must not break the queue (or the server around it). */
function safeCall(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    console.error('job queue listener failed:', err);
  }
}

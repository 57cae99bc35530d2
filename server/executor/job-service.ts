/**
 * The job service: the one interface the HTTP and socket layers use for jobs, with two implementations
 * behind it. Embedded (embedded-jobs.ts): one process, the queue and history in SQLite under the data
 * folder, one job at a time in process. Distributed (redis-jobs.ts): web servers enqueue into BullMQ on
 * Redis, `dualstyle worker` processes run the jobs (one per GPU), history lives in Redis, and every
 * event reaches every web server over Redis pub/sub.
 *
 * Both keep jobs across restarts: a queued job stays queued, a finished one stays in the history (with
 * its graph, timings, warnings and result files) until the history is cleared or retention drops it.
 */
import { randomUUID } from 'node:crypto';
import type { Graph } from '../protocol/graph.ts';
import type { HistoryPage, JobDetail, JobSummary, OutgoingEvent, QueueState, WorkerStatus } from '../protocol/events.ts';
import { planOf, type PlannedNode } from './eta.ts';
import type { GraphRunner } from './graph-runner.ts';

export interface SubmitOptions {
  /** Run only these output nodes and their ancestors (default: every output node). */
  outputs?: string[];
  /** First in line (after the running jobs) instead of last. */
  front?: boolean;
}

export type CancelOutcome = 'cancelled' | 'finished' | 'not_found';
export type RemoveOutcome = 'removed' | 'not_finished' | 'not_found';

/** What /api/health says about the job queue: its backend, and whether jobs can be queued now. */
export interface QueueHealth {
  backend: 'embedded' | 'redis';
  ok: boolean;
  /** Why not, when not. */
  message?: string;
}

export interface JobService {
  readonly mode: 'embedded' | 'distributed';
  /** Queues a validated graph; throws QueueFullError past the limit. */
  submit(graph: Graph, opts?: SubmitOptions): Promise<JobSummary>;
  /** Withdraws a queued job or stops a running one (wherever it runs) between two steps. */
  cancel(id: string): Promise<CancelOutcome>;
  /** Moves a queued job to `position` (1 = next to start); positions past the end mean last. */
  move(id: string, position: number): Promise<'moved' | 'not_queued' | 'not_found'>;
  /** Running jobs with progress and ETA, then the waiting ones in order. */
  queue(): Promise<QueueState>;
  /** Pauses the queue (no waiting job starts; a running one goes on) or resumes it. */
  setPaused(paused: boolean): Promise<void>;
  /** Finished jobs, newest first. */
  history(offset: number, limit: number): Promise<HistoryPage>;
  /** Removes every finished job from the history (result files stay on disk); returns how many. */
  clearHistory(): Promise<number>;
  /** Removes one finished job from the history. */
  remove(id: string): Promise<RemoveOutcome>;
  /** Who runs jobs: the live workers (distributed), or this server (embedded). */
  workers(): Promise<WorkerStatus[]>;
  /** Everything about a job, its graph included; undefined when unknown (or dropped by retention). */
  describe(id: string): Promise<JobDetail | undefined>;
  /** Every socket event of every job, and `queue` whenever the queue changes. */
  subscribe(listener: (event: OutgoingEvent) => void): () => void;
  /** The state of the queue's backend (distributed: Redis); absent: always usable (embedded). */
  health?(): Promise<QueueHealth>;
  /** Stops taking work; the embedded service stops its running job (it is re-queued on the next start). */
  close(): Promise<void>;
}

export class QueueFullError extends Error {
  constructor(readonly maxPending: number) {
    super(`The queue is full (${maxPending} jobs waiting); try again when some have finished.`);
    this.name = 'QueueFullError';
  }
}

/** What happens on start to a job that was running when its server stopped. */
export type RestartPolicy = 'requeue' | 'interrupt';

/** How long finished jobs are kept in the history (the oldest go first past either bound). */
export interface Retention {
  maxJobs: number;
  maxAgeMs: number;
}

/** The queue view is re-sent at most this often while jobs move. */
export const QUEUE_PROGRESS_MS = 500;

export const DEFAULT_RETENTION: Retention = { maxJobs: 1000, maxAgeMs: 30 * 24 * 3600 * 1000 };

/** The model a graph loads: the `model` parameter of its first node that has one (a Load Model). */
export function modelOf(graph: Graph): string | undefined {
  for (const node of graph.nodes) {
    const model = (node.params as Record<string, unknown> | undefined)?.model;
    if (typeof model === 'string' && model.trim() !== '') return model;
  }
  return undefined;
}

/** A job as it is submitted, whichever service queues it: its id and time, its plan (what the ETA counts), the title and model it shows. */
export interface NewJobRecord {
  id: string;
  createdAt: number;
  plan: PlannedNode[];
  title?: string;
  model?: string;
}

export function newJobRecord(graph: Graph, outputs: string[] | undefined, runner: Pick<GraphRunner, 'plan' | 'catalog'>): NewJobRecord {
  const plan = planOf(graph, runner.plan(graph, outputs), (type) => runner.catalog.get(type)?.title);
  // The editor names each run (the graph's saved name, its seed); a graph file sent as is shows its title.
  const named = graph.meta?.runTitle ?? graph.meta?.title;
  const title = typeof named === 'string' ? named : undefined;
  const model = modelOf(graph);
  return { id: randomUUID(), createdAt: Date.now(), plan, ...(title !== undefined ? { title } : {}), ...(model ? { model } : {}) };
}

/** A listener that throws must not break the service (or the server around it). */
export function safeCall(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    console.error('job event listener failed:', err);
  }
}

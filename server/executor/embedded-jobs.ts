/**
 * The embedded job service: one process, the queue and history in SQLite (<data>/studio.db), one job
 * at a time in process, first in line first (a job may be put first or moved). Nothing is lost on a
 * restart: queued jobs stay queued, and a job that was running (the process was killed, or stopped
 * while it ran) is re-queued first in line, or marked interrupted when the server was started with
 * `--on-restart interrupt`. A job the server stopped during MAX_ATTEMPTS times (killed or crashed; a
 * shutdown does not count) is then failed, saying so, instead of bringing the server down on every start.
 * A job that fails or is cancelled never stops the jobs behind it.
 *
 * Whose a running job is, is recorded as host, PID, the process's start time and the service's
 * random instance id: a PID alone would keep a job "running" forever once the PID is reused, or while
 * the killed server is an unreaped zombie (see util/process-identity.ts).
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../util/log.ts';
import type { Graph } from '../protocol/graph.ts';
import type { HistoryPage, JobDetail, JobSummary, OutgoingEvent, QueueState, WorkerStatus } from '../protocol/events.ts';
import { JobDb, studioDbPath } from '../store/job-db.ts';
import { learnNodeTime, planMs, progressOf, queueEtas, remainingMs, type LiveState, type NodeTime, type PlannedNode } from './eta.ts';
import type { GraphRunner } from './graph-runner.ts';
import { isOrphaned, ownerId, serviceClosed, serviceOpened } from './job-owner.ts';
import { cancelledEnd, endEvent, runJob, type JobEnd } from './job-execution.ts';
import {
  DEFAULT_RETENTION,
  newJobRecord,
  QueueFullError,
  QUEUE_PROGRESS_MS,
  safeCall,
  type CancelOutcome,
  type JobService,
  type RemoveOutcome,
  type RestartPolicy,
  type Retention,
  type SubmitOptions,
} from './job-service.ts';

export interface EmbeddedJobsOptions {
  dataDir: string;
  /** Validates and runs each job's graph, with the output cache shared by all jobs. */
  runner: GraphRunner;
  log: Logger;
  /** Most jobs waiting (not counting the running one); default 100. */
  maxPending?: number;
  onRestart?: RestartPolicy;
  retention?: Retention;
  /** How often a node may send a preview frame (the executor's previewDue throttle). */
  previewIntervalMs?: number;
  previewMaxSide?: number;
  /** How often jobs recorded as running by another process are checked for a runner that died (default 5 s). */
  orphanCheckMs?: number;
}

const WORKER = 'local';

/** Runs of a job the server may stop during (killed, crashed) before it gives up, as distributed mode does. */
export const MAX_ATTEMPTS = 3;

interface Running {
  id: string;
  controller: AbortController;
  live: LiveState;
  /** A user cancelled it: it ends cancelled, even if its last node finished meanwhile. */
  cancelled: boolean;
}

export class EmbeddedJobService implements JobService {
  readonly mode = 'embedded';
  private readonly db: JobDb;
  private readonly listeners = new Set<(e: OutgoingEvent) => void>();
  private readonly times: Map<string, NodeTime>;
  private running: Running | null = null;
  /** A job that ended but whose end the store could not write yet (full disk). */
  private unrecorded: { id: string; end: JobEnd } | undefined;
  private pumpScheduled = false;
  private stopping = false;
  /** Paused by a user: no job starts. Not kept across a restart (a restarted studio runs its queue). */
  private paused = false;
  private idleWaiters: (() => void)[] = [];
  private lastQueueSent = 0;
  private readonly instance = randomUUID();
  private readonly owner = ownerId(process.pid, this.instance);
  private readonly orphanTimer: NodeJS.Timeout;

  constructor(private readonly opts: EmbeddedJobsOptions) {
    this.db = new JobDb(studioDbPath(opts.dataDir));
    serviceOpened(this.instance);
    this.times = this.db.nodeTimes();
    this.recoverOrphans();
    // A job another process was running when this one started (a server still shutting down) is taken
    // over once that process is gone.
    this.orphanTimer = setInterval(() => {
      if (this.stopping) return;
      try {
        if (this.unrecorded) {
          this.record(this.unrecorded.id, this.unrecorded.end);
          this.schedulePump();
        }
        if (this.db.hasRunningNotOwnedBy(this.owner)) this.recoverOrphans();
        // A job the store could not start (full disk) is tried again.
        if (!this.running) this.schedulePump();
      } catch (err) {
        // A store that cannot be read or written now (full disk, locked) is tried again next time.
        opts.log.warn(`job store check failed; trying again in a moment: ${(err as Error).message}`);
      }
    }, opts.orphanCheckMs ?? 5000);
    this.orphanTimer.unref();
    this.schedulePump();
  }

  /** Jobs recorded as running whose runner is gone: re-queued (or failed past MAX_ATTEMPTS), or interrupted. */
  private recoverOrphans(): void {
    const { log, onRestart } = this.opts;
    const now = Date.now();
    const plural = (n: number) => `${n} job${n > 1 ? 's' : ''} that ran when the server stopped ${n > 1 ? 'were' : 'was'}`;
    if (onRestart === 'interrupt') {
      const interrupted = this.db.interruptRunning(isOrphaned, now);
      if (interrupted.length > 0) log.info(`${plural(interrupted.length)} marked interrupted`);
      for (const id of interrupted) this.emit({ name: 'job:failed', args: { jobId: id, message: 'interrupted: the server stopped while this job ran' } });
      if (interrupted.length > 0) this.queueChanged();
      return;
    }
    const { requeued, failed } = this.db.requeueRunning(isOrphaned, MAX_ATTEMPTS, now);
    if (requeued.length > 0) log.info(`${plural(requeued.length)} re-queued first in line`);
    if (failed.length > 0) log.warn(`${plural(failed.length)} failed: the server stopped during ${failed.length > 1 ? 'each' : 'it'} ${MAX_ATTEMPTS} times`);
    for (const id of requeued) this.emit({ name: 'job:requeued', args: { jobId: id, reason: 'the server stopped while it ran' } });
    for (const id of failed) this.emit({ name: 'job:failed', args: { jobId: id, message: this.db.get(id)?.outcome?.error?.message ?? 'failed' } });
    if (requeued.length + failed.length > 0) {
      this.queueChanged();
      this.schedulePump();
    }
  }

  async submit(graph: Graph, opts: SubmitOptions = {}): Promise<JobSummary> {
    if (this.stopping) throw new Error('the server is stopping; submit the job again once it is back');
    const maxPending = this.opts.maxPending ?? 100;
    if (this.db.countQueued() >= maxPending) throw new QueueFullError(maxPending);
    const job = newJobRecord(graph, opts.outputs, this.opts.runner);
    const id = job.id;
    this.db.insert({ ...job, graph, ...(opts.outputs ? { outputs: opts.outputs } : {}) }, opts.front === true);
    const summary = this.summaryOf(id)!;
    this.emit({ name: 'job:queued', args: { jobId: id, position: summary.position ?? 1 } });
    this.queueChanged();
    this.schedulePump();
    return summary;
  }

  async cancel(id: string): Promise<CancelOutcome> {
    if (this.running?.id === id) {
      this.running.cancelled = true;
      this.running.controller.abort();
      return 'cancelled';
    }
    const job = this.db.get(id);
    if (!job) return 'not_found';
    if (job.summary.state === 'running') {
      // Recorded as running by another runner: one that died (cancel it here) or another server on this
      // data folder (it is cancelled in the store; that server's run then ends as cancelled).
      if (this.db.ownerOf(id) === this.owner) return 'finished';
    } else if (job.summary.state !== 'queued') return 'finished';
    // No run of this service will report it: do it here.
    if (!this.db.finish(id, 'cancelled', Date.now(), {})) return 'finished';
    this.emit({ name: 'job:cancelled', args: { jobId: id } });
    this.queueChanged();
    this.checkIdle();
    return 'cancelled';
  }

  async move(id: string, position: number): Promise<'moved' | 'not_queued' | 'not_found'> {
    if (!this.db.move(id, position)) return this.db.get(id) ? 'not_queued' : 'not_found';
    this.queueChanged();
    return 'moved';
  }

  async queue(): Promise<QueueState> {
    return this.queueState();
  }

  async setPaused(paused: boolean): Promise<void> {
    if (this.paused === paused) return;
    this.paused = paused;
    this.queueChanged();
    if (!paused) this.schedulePump();
    this.checkIdle();
  }

  async history(offset: number, limit: number): Promise<HistoryPage> {
    return { ...this.db.history(offset, limit), offset };
  }

  async clearHistory(): Promise<number> {
    const n = this.db.clearHistory();
    this.emit({ name: 'history:removed', args: { jobIds: [], all: true } });
    return n;
  }

  async remove(id: string): Promise<RemoveOutcome> {
    const outcome = this.db.remove(id);
    if (outcome === 'removed') this.emit({ name: 'history:removed', args: { jobIds: [id], all: false } });
    return outcome;
  }

  async workers(): Promise<WorkerStatus[]> {
    return [{ name: WORKER, models: [], seen: Date.now(), ...(this.running ? { jobId: this.running.id } : {}) }];
  }

  async describe(id: string): Promise<JobDetail | undefined> {
    const stored = this.db.get(id);
    if (!stored) return undefined;
    const live = this.summaryOf(id) ?? stored.summary;
    return { job: live, graph: stored.graph, ...(stored.outputs ? { outputs: stored.outputs } : {}), ...stored.outcome };
  }

  subscribe(listener: (event: OutgoingEvent) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Resolves once nothing is running or waiting. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Stops the running job and waits for it at most `graceMs` (a node stuck in one long inference call
   * cannot check for cancellation). It stays recorded as running, so the next start re-queues it (a run
   * that ended within the grace is marked as stopped by a shutdown, not counted against the attempt
   * limit); queued jobs stay queued.
   */
  async close(graceMs = 5000): Promise<void> {
    this.stopping = true;
    clearInterval(this.orphanTimer);
    serviceClosed(this.instance);
    const running = this.running;
    if (running) {
      running.controller.abort();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.idle(), new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
      clearTimeout(timer);
    }
    this.db.close();
    for (const w of this.idleWaiters.splice(0)) w();
  }

  private queueState(): QueueState {
    const now = Date.now();
    const lefts: (number | undefined)[] = [];
    const active = this.db.running().map(({ plan, ...job }) => {
      const live = this.running?.id === job.id ? this.running.live : { done: [] };
      const left = remainingMs(this.times, plan as PlannedNode[], live, now);
      lefts.push(left);
      return {
        ...job,
        ...(job.startedAt !== undefined ? { elapsedMs: Math.max(0, now - job.startedAt) } : {}),
        progress: progressOf(plan as PlannedNode[], live),
        ...(left !== undefined ? { etaMs: Math.round(left) } : {}),
      };
    });
    const queued = this.db.queued();
    const etas = queueEtas(
      lefts,
      queued.map((j) => planMs(this.times, j.plan as PlannedNode[])),
      1,
    );
    const pending = queued.map(({ plan: _plan, ...job }, i) => (etas[i] !== undefined ? { ...job, etaMs: etas[i] } : job));
    return { running: active[0] ?? null, active, pending, workers: 1, ...(this.paused ? { paused: true as const } : {}) };
  }

  private summaryOf(id: string): JobSummary | undefined {
    const q = this.queueState();
    return q.active.find((j) => j.id === id) ?? q.pending.find((j) => j.id === id);
  }

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    queueMicrotask(() => {
      this.pumpScheduled = false;
      void this.pump().catch((err: unknown) => this.opts.log.error('the job queue stopped on an unexpected error', err));
    });
  }

  private async pump(): Promise<void> {
    if (this.running || this.unrecorded) return;
    if (this.stopping || this.paused) return this.checkIdle();
    const job = this.db.claimNext(Date.now(), WORKER, this.owner);
    if (!job) {
      this.checkIdle();
      return;
    }
    const id = job.summary.id;
    const running: Running = { id, controller: new AbortController(), live: { done: [] }, cancelled: false };
    this.running = running;
    const plan = job.plan as PlannedNode[];
    this.emit({ name: 'job:started', args: { jobId: id, nodes: plan.map((n) => n.id), worker: WORKER, attempt: job.summary.attempts ?? 1 } });
    this.queueChanged();
    const run = await runJob({
      jobId: id,
      graph: job.graph,
      ...(job.outputs ? { outputs: job.outputs } : {}),
      runner: this.opts.runner,
      signal: running.controller.signal,
      live: running.live,
      emit: (e) => {
        this.emit(e);
        if (e.name === 'node:progress' || e.name === 'node:started' || e.name === 'node:done') this.queueMoved();
      },
      onNodeTime: (type, ms, steps) => {
        const t = learnNodeTime(this.times.get(type), ms, steps);
        this.times.set(type, t);
        if (!this.stopping) this.db.saveNodeTime(type, t);
      },
      previewIntervalMs: this.opts.previewIntervalMs,
      previewMaxSide: this.opts.previewMaxSide,
      log: this.opts.log,
    });
    this.running = null;
    // A cancel answered 'cancelled' while the job ran: so it ends, whatever the run got to.
    const end = running.cancelled ? cancelledEnd(run) : run;
    // Stopped by a shutdown, not a user: it stays "running" on record, so the next start resumes it (or
    // interrupts it), and this run does not count against the attempt limit. (A run that outlasts the
    // shutdown's grace is not marked: it counts, as a crash does.)
    if (this.stopping && end.state === 'cancelled') this.markShutdown(id);
    else this.record(id, end);
    this.schedulePump();
  }

  private markShutdown(id: string): void {
    try {
      this.db.markShutdown(id, Date.now());
    } catch (err) {
      this.opts.log.warn(`could not record that job ${id} was stopped by the shutdown (it counts as an attempt): ${(err as Error).message}`);
    }
  }

  /**
   * Records how a job ended and tells every client. When the store cannot write it (a full disk), the
   * job stays running on record, the next job waits, and recording is tried again on every orphan check
   * until it works: nothing is lost, and a stop meanwhile re-queues the job.
   */
  private record(id: string, end: JobEnd): void {
    const now = Date.now();
    let recorded: boolean;
    try {
      // Not recorded: it was cancelled in the store meanwhile (by another server on this data folder).
      recorded = this.db.finish(id, end.state, now, end.outcome);
    } catch (err) {
      this.unrecorded = { id, end };
      this.opts.log.error(`cannot record how job ${id} ended (${end.state}); the queue waits and tries again: ${(err as Error).message}`);
      return;
    }
    this.unrecorded = undefined;
    const retention = this.opts.retention ?? DEFAULT_RETENTION;
    let dropped: string[] = [];
    try {
      dropped = this.db.applyRetention(retention.maxJobs, retention.maxAgeMs, now);
    } catch (err) {
      this.opts.log.warn(`could not trim the history: ${(err as Error).message}`);
    }
    this.emit(endEvent(id, recorded ? end : cancelledEnd(end)));
    if (dropped.length > 0) this.emit({ name: 'history:removed', args: { jobIds: dropped, all: false } });
    this.queueChanged();
  }

  private isIdle(): boolean {
    return this.running === null && (this.stopping || (!this.unrecorded && this.db.countQueued() === 0));
  }

  private checkIdle(): void {
    if (!this.isIdle()) return;
    for (const w of this.idleWaiters.splice(0)) w();
  }

  private emit(event: OutgoingEvent): void {
    for (const fn of [...this.listeners]) safeCall(() => fn(event));
  }

  private queueChanged(): void {
    this.lastQueueSent = performance.now();
    if (this.listeners.size > 0 && !this.stopping) this.emit({ name: 'queue', args: this.queueState() });
  }

  /** Progress moves every tab's queue view: re-send it, at most every QUEUE_PROGRESS_MS. */
  private queueMoved(): void {
    if (performance.now() - this.lastQueueSent >= QUEUE_PROGRESS_MS) this.queueChanged();
  }
}

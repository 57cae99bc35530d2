/**
 * A distributed worker: takes jobs from the BullMQ queue one at a time (one worker per GPU), runs them
 * with its own GraphRunner (so model sessions, inversions and every node's outputs stay cached between
 * jobs, as in embedded mode), and publishes every event on Redis for the web servers to relay.
 *
 * A worker that dies mid-job stops renewing the job's lock; after the stall timeout another worker's
 * stall check puts the job back in line and it runs again from the start (BullMQ allows a job 2 stalls
 * before failing it). A job that fails outside any node is retried with exponential backoff; a node's
 * failure (the graph's fault) and a cancel are final. A lapsed lock (a worker that stopped answering,
 * or Redis away longer than the stall timeout) can leave two runs of one job going at once: the first
 * run to finish claims the job's ending (RedisRecords.claimEnd) and records and announces it once; the
 * other is stopped and records nothing, and a run handed out after the ending is not started. Every
 * run and how it ended is in the history (`runs`).
 */
import os from 'node:os';
import { DelayedError, UnrecoverableError, WaitingError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../util/log.ts';
import type { OutgoingEvent } from '../protocol/events.ts';
import type { LiveState } from './eta.ts';
import type { GraphRunner } from './graph-runner.ts';
import { cancelledEnd, endEvent, runJob, type JobEnd } from './job-execution.ts';
import { DEFAULT_RETENTION, QUEUE_PROGRESS_MS, type Retention } from './job-service.ts';
import { connectRedis, HEARTBEAT_MS, QUEUE_NAME, RedisRecords, type ControlMessage, type WorkerInfo } from './redis-records.ts';

export interface RedisWorkerOptions {
  url: string;
  prefix?: string;
  runner: GraphRunner;
  log: Logger;
  /** The GPU this worker uses (for its name; the CLI also sets CUDA_VISIBLE_DEVICES). */
  gpu?: number;
  /** How long a job's lock lasts without renewal: a dead worker's job is taken over after about this (default 30 s). */
  stallTimeoutMs?: number;
  retention?: Retention;
  previewIntervalMs?: number;
  previewMaxSide?: number;
}

/** One run of a job: the attempt and the worker running it. */
type Run = { attempt: number; worker: string };

function runName(run: Run): string {
  return `${run.worker} attempt ${run.attempt}`;
}

/** Sessions of this many models stay loaded (the pipeline registry's bound). */
/** States a job does not leave. */
const ENDED: ReadonlySet<string> = new Set(['done', 'failed', 'cancelled']);
const MODELS_HELD = 2;
/** How long a job set aside for a worker that holds its model waits; the worker that set it aside waits 5× longer. */
const DEFER_MS = 200;

export class RedisJobWorker {
  readonly name: string;
  private readonly models: string[] = [];
  private current: string | undefined;
  private stopping = false;
  private heartbeatTimer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly opts: RedisWorkerOptions,
    private readonly records: RedisRecords,
    private readonly sub: Redis,
    private worker: Worker | undefined,
  ) {
    this.name = `${os.hostname()}:${process.pid}${opts.gpu !== undefined ? ` gpu ${opts.gpu}` : ''}`;
  }

  static async start(opts: RedisWorkerOptions): Promise<RedisJobWorker> {
    const prefix = opts.prefix ?? 'dualstyle';
    const { redis, sub } = await connectRedis(opts.url, opts.log);
    const self = new RedisJobWorker(opts, new RedisRecords(redis, prefix), sub, undefined);
    const lockDuration = opts.stallTimeoutMs ?? 30_000;
    const worker = new Worker(QUEUE_NAME, (job, token, signal) => self.process(job, token, signal), {
      connection: { url: opts.url, maxRetriesPerRequest: null },
      prefix,
      concurrency: 1,
      lockDuration,
      stalledInterval: Math.max(500, Math.round(lockDuration / 2)),
      maxStalledCount: 2,
      autorun: false,
    });
    self.worker = worker;
    worker.on('stalled', (jobId) => void self.onStalled(jobId));
    worker.on('failed', (job, err) => void self.onFailed(job, err));
    worker.on('error', (err) => opts.log.warn(`worker: ${err.message}`));
    sub.on('message', (_channel: string, text: string) => self.onControl(text));
    await sub.subscribe(self.records.controlChannel);
    await self.heartbeat();
    self.heartbeatTimer = setInterval(() => void self.heartbeat(), HEARTBEAT_MS);
    void worker.run();
    await worker.waitUntilReady();
    return self;
  }

  /**
   * Stops taking jobs. The running job is stopped between two steps and put back in line for another
   * worker (or this one after a restart), unless `graceMs` passes first.
   */
  async close(graceMs = 5000): Promise<void> {
    this.stopping = true;
    clearInterval(this.heartbeatTimer);
    if (this.current) this.worker?.cancelJob(this.current, 'worker stopping');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.worker?.close(), new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
    await this.records.leave(this.name).catch(() => undefined);
    this.sub.disconnect();
    await this.records.redis.quit().catch(() => undefined);
  }

  private async process(job: Job, token: string | undefined, signal: AbortSignal | undefined): Promise<{ state: string }> {
    const id = job.id!;
    const { records, opts } = this;
    const record = await records.get(id, true);
    if (!record?.graph) throw new UnrecoverableError(`job ${id} has no record (removed from the history?)`);
    const attempt = (record.summary.attempts ?? 0) + 1;
    const run: Run = { attempt, worker: this.name };
    // Handed out again after another run of it already ended it (that run went on while its lock lapsed).
    const finisher = await records.endedByRun(id);
    if (finisher && ENDED.has(record.summary.state)) {
      opts.log.info(`job ${id}: already ended by ${finisher}; not run again`);
      return { state: 'superseded' };
    }
    // A run claimed the ending but never recorded it (Redis went away while it wrote, and its lock
    // lapsed long since): give the claim back, so this run can end the job.
    if (finisher) await records.releaseEnd(id, finisher);
    if (record.cancelRequested) {
      if ((await records.claimEnd(id, { run: runName(run) })) === 'cancelled') await this.finish(id, { state: 'cancelled', outcome: {} }, run);
      throw new UnrecoverableError('cancelled');
    }
    if (token && (await this.deferToHolder(job, token, record.summary.model))) throw new DelayedError();
    const started = await records.updateSummary(id, { state: 'running', startedAt: Date.now(), attempts: attempt, worker: this.name }, ['finishedAt'], {
      unlessEnded: true,
    });
    if (!started) return { state: 'superseded' };
    const live: LiveState = { done: [] };
    await records.setLive(id, live);
    this.current = id;
    void this.heartbeat();
    this.publish({ name: 'job:started', args: { jobId: id, nodes: record.plan.map((n) => n.id), worker: this.name, attempt } });
    await records.publish({ queueChanged: true });

    let lastLive = 0;
    const moved = () => {
      const now = performance.now();
      if (now - lastLive < QUEUE_PROGRESS_MS) return;
      lastLive = now;
      void records.setLive(id, live).then(() => records.publish({ queueChanged: true }));
    };
    let end: JobEnd;
    try {
      end = await runJob({
        jobId: id,
        graph: record.graph,
        ...(record.outputs ? { outputs: record.outputs } : {}),
        runner: opts.runner,
        signal: signal ?? new AbortController().signal,
        live,
        emit: (e) => {
          this.publish(e);
          if (e.name === 'node:progress' || e.name === 'node:started' || e.name === 'node:done') moved();
        },
        onNodeTime: (type, ms, steps) => void records.learnNodeTime(type, ms, steps),
        previewIntervalMs: opts.previewIntervalMs,
        previewMaxSide: opts.previewMaxSide,
        log: opts.log,
      });
    } finally {
      this.current = undefined;
    }
    if (record.summary.model && end.state === 'done') this.holds(record.summary.model);
    void this.heartbeat();

    if (end.state === 'cancelled' && this.stopping && !(await records.get(id))?.cancelRequested) {
      // This worker is stopping, not the user: the job waits for another worker.
      await this.requeue(id, 'its worker stopped', run);
      await job.moveToWait(token);
      throw new WaitingError();
    }
    const attemptsLeft = (job.opts.attempts ?? 1) - (job.attemptsMade + 1);
    if (end.state === 'failed' && end.retryable && attemptsLeft > 0) {
      await this.requeue(id, `${end.outcome.error?.message ?? 'failed'}; retrying (${attemptsLeft} attempt${attemptsLeft > 1 ? 's' : ''} left)`, run);
      throw new Error(end.outcome.error?.message ?? 'failed');
    }
    // The claim decides, not the lock: a run whose lock lapsed while Redis was away may still be the
    // first to finish, and then the run BullMQ handed out again must record nothing.
    const claim = await records.claimEnd(id, { run: runName(run) });
    if (claim === 'lost') {
      await records.logRun(id, { ...run, ended: `${end.state}, not recorded: another run ended the job first` });
      return { state: 'superseded' };
    }
    if (claim === 'cancelled') end = cancelledEnd(end);
    try {
      await this.finish(id, end, run);
    } catch (err) {
      // Not recorded (Redis went away): the claim goes back, so the run BullMQ hands out next can end it.
      if (claim === 'won') await records.releaseEnd(id, runName(run)).catch(() => undefined);
      throw err;
    }
    // Another run of this job may be going on (it was handed out again): it is stopped.
    if (((await records.get(id))?.summary.attempts ?? attempt) > attempt) await records.publishControl({ cancel: id });
    if (end.state !== 'done') throw new UnrecoverableError(end.outcome.error?.message ?? end.state);
    return { state: 'done' };
  }

  /**
   * Model affinity, as far as BullMQ allows (it has no routing to a chosen worker): a job whose model
   * this worker does not hold, while another worker is idle and holds it, is set aside once for a
   * moment, and this worker waits a little longer before taking work, so the holder takes the job.
   */
  private async deferToHolder(job: Job, token: string, model: string | undefined): Promise<boolean> {
    if (!model || this.models.includes(model) || (job.data as { deferred?: string }).deferred) return false;
    const holder = (await this.records.workers()).find((w) => w.name !== this.name && w.jobId === undefined && w.models.includes(model));
    if (!holder) return false;
    await job.updateData({ ...(job.data as object), deferred: this.name });
    await job.moveToDelayed(Date.now() + DEFER_MS, token);
    await new Promise((resolve) => setTimeout(resolve, 5 * DEFER_MS));
    return true;
  }

  private async finish(id: string, end: Pick<JobEnd, 'state' | 'outcome'>, run: Run): Promise<void> {
    await this.records.logRun(id, { ...run, ended: end.state });
    const dropped = await this.records.finish(id, end.state, end.outcome, this.opts.retention ?? DEFAULT_RETENTION);
    this.publish(endEvent(id, end));
    if (dropped.length > 0) this.publish({ name: 'history:removed', args: { jobIds: dropped, all: false } });
    await this.records.publish({ queueChanged: true });
  }

  /** Puts a job back in line, with why; not once a run ended it (a late stall check must not undo that). */
  private async requeue(id: string, reason: string, run: Run): Promise<void> {
    if (!(await this.records.updateSummary(id, { state: 'queued' }, ['startedAt', 'worker'], { unlessEnded: true }))) return;
    await this.records.logRun(id, { ...run, ended: `re-queued: ${reason}` });
    await this.records.setLive(id, null);
    this.publish({ name: 'job:requeued', args: { jobId: id, reason } });
    await this.records.publish({ queueChanged: true });
  }

  /** Another worker's job stopped renewing its lock (that worker died): BullMQ put it back in line. */
  private async onStalled(jobId: string): Promise<void> {
    try {
      const record = await this.records.get(jobId);
      if (record?.summary.state === 'running') {
        const run = { attempt: record.summary.attempts ?? 1, worker: record.summary.worker ?? 'unknown' };
        await this.requeue(jobId, 'its worker stopped answering (or Redis was away) longer than the stall timeout', run);
      }
    } catch (err) {
      this.opts.log.warn(`could not record stalled job ${jobId}`, err);
    }
  }

  /** BullMQ failed a job by itself (it stalled too often): the record must say so too. */
  private async onFailed(job: Job | undefined, err: Error): Promise<void> {
    if (!job?.id) return;
    try {
      const record = await this.records.get(job.id);
      if (!record || (record.summary.state !== 'queued' && record.summary.state !== 'running')) return;
      if ((await job.getState()) !== 'failed') return;
      const failed: JobEnd = { state: 'failed', retryable: false, outcome: { error: { message: err.message } } };
      const run: Run = { attempt: record.summary.attempts ?? 0, worker: `${this.name} (stall check)` };
      const claim = await this.records.claimEnd(job.id, { run: runName(run) });
      if (claim !== 'lost') await this.finish(job.id, claim === 'won' ? failed : cancelledEnd(failed), run);
    } catch (e) {
      this.opts.log.warn(`could not record failed job ${job.id}`, e);
    }
  }

  private onControl(text: string): void {
    try {
      const message = JSON.parse(text) as ControlMessage;
      if (typeof message.cancel === 'string') this.worker?.cancelJob(message.cancel, 'cancelled');
    } catch {
      /* not ours */
    }
  }

  private holds(model: string): void {
    const i = this.models.indexOf(model);
    if (i >= 0) this.models.splice(i, 1);
    this.models.push(model);
    while (this.models.length > MODELS_HELD) this.models.shift();
  }

  private async heartbeat(): Promise<void> {
    const info: WorkerInfo = {
      name: this.name,
      models: [...this.models],
      seen: Date.now(),
      ...(this.opts.gpu !== undefined ? { gpu: this.opts.gpu } : {}),
      ...(this.current ? { jobId: this.current } : {}),
    };
    if (this.stopping) return;
    await this.records.heartbeat(info).catch((err: unknown) => this.opts.log.warn('heartbeat to Redis failed', err));
  }

  private publish(event: OutgoingEvent): void {
    void this.records.publish({ event }).catch((err: unknown) => this.opts.log.warn(`could not publish ${event.name}`, err));
  }
}

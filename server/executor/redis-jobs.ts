/**
 * The distributed job service, as a web server sees it: jobs go into a BullMQ queue on Redis and
 * `dualstyle worker` processes run them (redis-worker.ts); records, history and events live in Redis
 * (redis-records.ts), so every web server lists the same queue and history and relays every job's
 * events, previews included, to its own sockets. Queue order is BullMQ's priority order: a new job
 * goes last (priority END); moving a job renumbers the waiting jobs 1, 2, … in the new order.
 */
import { Queue, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../util/log.ts';
import type { Graph } from '../protocol/graph.ts';
import {
  FINISHED_STATES,
  type HistoryPage,
  type JobDetail,
  type JobSummary,
  type OutgoingEvent,
  type QueueState,
  type WorkerStatus,
} from '../protocol/events.ts';
import { planMs, progressOf, queueEtas, remainingMs } from './eta.ts';
import type { GraphRunner } from './graph-runner.ts';
import {
  DEFAULT_RETENTION,
  newJobRecord,
  QueueFullError,
  safeCall,
  type CancelOutcome,
  type JobService,
  type QueueHealth,
  type RemoveOutcome,
  type Retention,
  type SubmitOptions,
} from './job-service.ts';
import { redacted } from '../util/redact.ts';
import { connectRedis, decodeMessage, FAIL_FAST_MS, QUEUE_NAME, RedisRecords, runsOf, type StoredRecord } from './redis-records.ts';

export interface RedisJobsOptions {
  url: string;
  /** Namespace of every Redis key (default "dualstyle"): one Redis can serve several studios. */
  prefix?: string;
  /** For validating plans and node titles (the web server runs no jobs). */
  runner: GraphRunner;
  log: Logger;
  maxPending?: number;
  retention?: Retention;
  /** Attempts of a job that fails outside any node (a worker's machinery, not the graph); default 3. */
  attempts?: number;
}

/** Priority of a job added at the end of the line (BullMQ's largest is 2^21). */
const END = 2_000_000;

export class RedisJobService implements JobService {
  readonly mode = 'distributed';
  private readonly listeners = new Set<(e: OutgoingEvent) => void>();
  private refreshTimer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly opts: RedisJobsOptions,
    private readonly queueOf: Queue,
    private readonly records: RedisRecords,
    private readonly sub: Redis,
  ) {}

  static async open(opts: RedisJobsOptions): Promise<RedisJobService> {
    const prefix = opts.prefix ?? 'dualstyle';
    const { redis, sub } = await connectRedis(opts.url, opts.log, { failFast: true });
    // Fails fast too (BullMQ's advice for producers): a request while Redis is away is answered at once.
    const queue = new Queue(QUEUE_NAME, {
      connection: { url: opts.url, enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: FAIL_FAST_MS },
      prefix,
    });
    queue.on('error', (err) => opts.log.warn(`job queue: ${err.message}`));
    const service = new RedisJobService(opts, queue, new RedisRecords(redis, prefix), sub);
    sub.on('message', (_channel: string, text: string) => service.onMessage(text));
    await sub.subscribe(service.records.eventsChannel);
    await queue.waitUntilReady();
    return service;
  }

  async submit(graph: Graph, opts: SubmitOptions = {}): Promise<JobSummary> {
    const maxPending = this.opts.maxPending ?? 100;
    if ((await this.queueOf.getJobCountByTypes('wait', 'prioritized', 'delayed')) >= maxPending) throw new QueueFullError(maxPending);
    const { plan, ...job } = newJobRecord(graph, opts.outputs, this.opts.runner);
    const { id, model } = job;
    const summary: JobSummary = { ...job, state: 'queued' };
    await this.records.create(summary, graph, plan, opts.outputs);
    const attempts = this.opts.attempts ?? 3;
    await this.queueOf.add(
      'run',
      { model: model ?? null },
      {
        jobId: id,
        priority: END,
        attempts,
        backoff: { type: 'exponential', delay: 2000 },
        // The history is ours (records); BullMQ's own lists of ended jobs stay short.
        removeOnComplete: { age: 3600, count: 200 },
        removeOnFail: { age: 24 * 3600, count: 200 },
      },
    );
    if (opts.front) await this.move(id, 1);
    const position = (await this.waiting()).findIndex((j) => j.id === id) + 1;
    await this.records.publish({ event: { name: 'job:queued', args: { jobId: id, position: Math.max(position, 1) } } });
    await this.records.publish({ queueChanged: true });
    return { ...summary, position: Math.max(position, 1) };
  }

  async cancel(id: string): Promise<CancelOutcome> {
    const record = await this.records.get(id);
    if (!record) return 'not_found';
    if (record.summary.state !== 'queued' && record.summary.state !== 'running') return 'finished';
    const job = await this.queueOf.getJob(id);
    const state = job ? await job.getState() : 'unknown';
    if (job && (state === 'waiting' || state === 'prioritized' || state === 'delayed')) {
      try {
        await job.remove();
        return await this.cancelHere(id);
      } catch {
        // A worker took it meanwhile: stop it where it runs.
      }
    } else if (!job || state === 'completed' || state === 'failed' || state === 'unknown') {
      // BullMQ has no live job for a record that says it waits or runs (its worker ended it without a record): close the record.
      return this.cancelHere(id);
    }
    return (await this.records.requestCancel(id)) ? 'cancelled' : 'finished';
  }

  /**
   * Cancels a job no worker runs, through the same claims as a worker's ending: a run of it that is
   * still going (its lock lapsed; BullMQ no longer lists it) must not record an ending after this one.
   */
  private async cancelHere(id: string): Promise<CancelOutcome> {
    if (!(await this.records.requestCancel(id))) return 'finished';
    if ((await this.records.claimEnd(id, { run: 'cancelled while no worker ran it' })) === 'cancelled') await this.finish(id, 'cancelled');
    return 'cancelled';
  }

  async move(id: string, position: number): Promise<'moved' | 'not_queued' | 'not_found'> {
    const waiting = (await this.waiting()).filter((j) => j.state !== 'delayed');
    const from = waiting.findIndex((j) => j.id === id);
    if (from < 0) return (await this.records.get(id)) ? 'not_queued' : 'not_found';
    const [moved] = waiting.splice(from, 1);
    waiting.splice(Math.min(position, waiting.length + 1) - 1, 0, moved!);
    for (const [i, entry] of waiting.entries()) {
      if (entry.job.priority === i + 1) continue;
      // A job a worker took meanwhile cannot change priority; the rest keep their new order.
      await entry.job.changePriority({ priority: i + 1 }).catch(() => undefined);
    }
    await this.records.publish({ queueChanged: true });
    return 'moved';
  }

  /** BullMQ's own pause: every worker stops taking jobs (the ones running go on). */
  async setPaused(paused: boolean): Promise<void> {
    if (paused) await this.queueOf.pause();
    else await this.queueOf.resume();
    await this.records.publish({ queueChanged: true });
  }

  async queue(): Promise<QueueState> {
    const paused = await this.queueOf.isPaused();
    const [activeJobs, waiting, workers, times] = await Promise.all([
      this.queueOf.getJobs(['active'], 0, -1, true),
      this.waiting(),
      this.records.workers(),
      this.records.nodeTimes(),
    ]);
    const now = Date.now();
    const activeRecords = await this.records.getMany(activeJobs.map((j) => j.id!));
    const lefts: (number | undefined)[] = [];
    const active: JobSummary[] = [];
    for (const r of activeRecords) {
      // A run that goes on after another run ended the job (it is being stopped) is not listed.
      if (!r || FINISHED_STATES.includes(r.summary.state)) continue;
      const live = r.live ?? { done: [] };
      const left = remainingMs(times, r.plan, live, now);
      lefts.push(left);
      active.push({
        ...r.summary,
        state: 'running',
        position: 0,
        ...(r.summary.startedAt !== undefined ? { elapsedMs: Math.max(0, now - r.summary.startedAt) } : {}),
        progress: progressOf(r.plan, live),
        ...(left !== undefined ? { etaMs: Math.round(left) } : {}),
      });
    }
    const pendingRecords = waiting.map((w) => w.record);
    const etas =
      workers.length > 0
        ? queueEtas(
            lefts,
            pendingRecords.map((r) => planMs(times, r.plan)),
            workers.length,
          )
        : [];
    const pending = pendingRecords.map((r, i) => ({
      ...r.summary,
      state: 'queued' as const,
      position: i + 1,
      ...(etas[i] !== undefined ? { etaMs: etas[i] } : {}),
    }));
    return { running: active[0] ?? null, active, pending, workers: workers.length, ...(paused ? { paused: true as const } : {}) };
  }

  async history(offset: number, limit: number): Promise<HistoryPage> {
    return { ...(await this.records.history(offset, limit)), offset };
  }

  async clearHistory(): Promise<number> {
    const n = await this.records.clearHistory();
    await this.records.publish({ event: { name: 'history:removed', args: { jobIds: [], all: true } } });
    return n;
  }

  async remove(id: string): Promise<RemoveOutcome> {
    const outcome = await this.records.removeFinished(id);
    if (outcome === 'removed') await this.records.publish({ event: { name: 'history:removed', args: { jobIds: [id], all: false } } });
    return outcome;
  }

  workers(): Promise<WorkerStatus[]> {
    return this.records.workers();
  }

  /** Whether Redis answers now (a PING within FAIL_FAST_MS), and if not, why. */
  async health(): Promise<QueueHealth> {
    const backend = 'redis';
    try {
      await this.records.redis.ping();
      return { backend, ok: true };
    } catch (err) {
      return {
        backend,
        ok: false,
        message: `Redis at ${redacted(this.opts.url)} cannot be reached (${(err as Error).message}): jobs cannot be queued, listed or cancelled until it is back`,
      };
    }
  }

  async describe(id: string): Promise<JobDetail | undefined> {
    const r = await this.records.get(id, true);
    if (!r || !r.graph) return undefined;
    let job = r.summary;
    if (job.state === 'queued' || job.state === 'running') {
      const q = await this.queue();
      job = q.active.find((j) => j.id === id) ?? q.pending.find((j) => j.id === id) ?? job;
    }
    return { job, graph: r.graph, ...(r.outputs ? { outputs: r.outputs } : {}), ...r.outcome, ...runsOf(r) };
  }

  subscribe(listener: (event: OutgoingEvent) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  async close(): Promise<void> {
    clearTimeout(this.refreshTimer);
    this.listeners.clear();
    await this.queueOf.close();
    this.sub.disconnect();
    await this.records.redis.quit().catch(() => undefined);
  }

  /** Waiting jobs in the order they will start (priority-less ones first, then by priority, then retries waiting out a backoff). */
  private async waiting(): Promise<{ id: string; job: Job; record: StoredRecord; state: string }[]> {
    const [plain, prioritized, delayed] = await Promise.all([
      this.queueOf.getJobs(['wait'], 0, -1, true),
      this.queueOf.getJobs(['prioritized'], 0, -1, true),
      this.queueOf.getJobs(['delayed'], 0, -1, true),
    ]);
    const jobs = [
      ...plain.map((j) => [j, 'wait'] as const),
      ...prioritized.map((j) => [j, 'prioritized'] as const),
      ...delayed.map((j) => [j, 'delayed'] as const),
    ];
    const records = await this.records.getMany(jobs.map(([j]) => j.id!));
    const out: { id: string; job: Job; record: StoredRecord; state: string }[] = [];
    jobs.forEach(([job, state], i) => {
      const record = records[i];
      // Handed out again after a run ended it: the worker that takes it will not run it.
      if (record && !FINISHED_STATES.includes(record.summary.state)) out.push({ id: job.id!, job: job as Job, record, state });
    });
    return out;
  }

  private async finish(id: string, state: 'cancelled'): Promise<void> {
    const dropped = await this.records.finish(id, state, {}, this.opts.retention ?? DEFAULT_RETENTION);
    await this.records.publish({ event: { name: 'job:cancelled', args: { jobId: id } } });
    if (dropped.length > 0) await this.records.publish({ event: { name: 'history:removed', args: { jobIds: dropped, all: false } } });
    await this.records.publish({ queueChanged: true });
  }

  private onMessage(text: string): void {
    let message;
    try {
      message = decodeMessage(text);
    } catch (err) {
      this.opts.log.warn('an unreadable message on the events channel was ignored', err);
      return;
    }
    if ('event' in message) this.emit(message.event);
    else this.refreshSoon();
  }

  /** Many changes in a burst make one look at the queue. */
  private refreshSoon(): void {
    if (this.refreshTimer || this.listeners.size === 0) return;
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined;
      this.queue().then(
        (q) => this.emit({ name: 'queue', args: q }),
        (err: unknown) => this.opts.log.warn('could not read the queue from Redis', err),
      );
    }, 50);
  }

  private emit(event: OutgoingEvent): void {
    for (const fn of [...this.listeners]) safeCall(() => fn(event));
  }
}

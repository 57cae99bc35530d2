/**
 * Runs queued jobs with the executor and turns executor events into socket.io events: previews are
 * encoded off the sampler's path (a frame is dropped while the previous one of that node is still
 * encoding), progress is coalesced to at most ~20 per second per node, and everything a job emits is
 * delivered in order. Finished jobs are remembered in memory (bounded) for GET /api/jobs/:id.
 */
import type { Logger, Services } from '../../nodes/types.ts';
import type { NodeCatalog } from '../catalog.ts';
import { OutputCache } from '../executor/cache.ts';
import { byNodeId, executeGraph, NodeFailedError, planRun, type ExecEvent } from '../executor/executor.ts';
import { JobQueue } from '../executor/queue.ts';
import { encodePreview } from '../executor/preview.ts';
import type { Graph } from '../protocol/graph.ts';
import type { JobState, JobSummary, NodeResult, QueueState, ServerToClientEvents } from '../protocol/events.ts';
import { CancelledError } from '../../nodes/types.ts';
import { OrderedOutbox } from './outbox.ts';

export interface JobPayload {
  graph: Graph;
  outputs?: string[];
  /** Node ids that will run, in execution order (sent with job:started). */
  nodes: string[];
}

/** A socket event ready to broadcast. */
export type OutgoingEvent = {
  [K in keyof ServerToClientEvents]: { name: K; args: Parameters<ServerToClientEvents[K]>[0] };
}[keyof ServerToClientEvents];

export type Broadcast = (event: OutgoingEvent) => void;

export interface JobDetail {
  job: JobSummary;
  error?: { nodeId?: string; message: string };
  results?: Record<string, NodeResult>;
  computed?: string[];
  cached?: string[];
  ms?: number;
}

export interface JobRunnerOptions {
  catalog: NodeCatalog;
  services: Services;
  broadcast: Broadcast;
  log: Logger;
  maxPending?: number;
  /** How often a node may send a preview frame (the executor's previewDue throttle). */
  previewIntervalMs?: number;
  previewMaxSide?: number;
  /** How many finished jobs GET /api/jobs/:id remembers. */
  keepFinished?: number;
}

const PROGRESS_INTERVAL_MS = 50;

export class JobRunner {
  readonly queue: JobQueue<JobPayload>;
  private readonly cache = new OutputCache();
  private readonly finished = new Map<string, JobDetail>();

  constructor(private readonly opts: JobRunnerOptions) {
    this.queue = new JobQueue<JobPayload>((job, signal) => this.run(job.id, job.payload, signal), {
      maxPending: opts.maxPending,
      // Finished jobs are remembered here (`finished`, without their graphs); a queue history would
      // hold up to 200 more copies of whole graphs that nothing reads.
      historySize: 0,
    });
  }

  submit(graph: Graph, outputs?: string[]): JobSummary {
    const title = typeof graph.meta?.title === 'string' ? graph.meta.title : undefined;
    const job = this.queue.submit({ graph, outputs, nodes: planRun(graph, this.opts.catalog, outputs) }, title);
    const summary = this.summaryOf(job.id)!;
    this.opts.broadcast({ name: 'job:queued', args: { jobId: job.id, position: summary.position ?? 0 } });
    return summary;
  }

  /** 'cancelled' when a queued or running job was told to stop; 'finished' when it was already over. */
  cancel(id: string): 'cancelled' | 'finished' | 'not_found' {
    const before = this.summaryOf(id);
    if (!before) return 'not_found';
    if (before.state !== 'queued' && before.state !== 'running') return 'finished';
    if (!this.queue.cancel(id)) return 'finished';
    if (before.state === 'queued') {
      // It never started, so no runner will report it: do it here.
      this.remember(id, { job: { ...before, state: 'cancelled', position: undefined } });
      this.opts.broadcast({ name: 'job:cancelled', args: { jobId: id } });
    }
    return 'cancelled';
  }

  describe(id: string): JobDetail | undefined {
    const done = this.finished.get(id);
    if (done) return done;
    const job = this.summaryOf(id);
    return job ? { job } : undefined;
  }

  state(): QueueState {
    return this.queue.state();
  }

  /**
   * Cancels everything and waits for the running job to stop, at most `graceMs`: a node stuck in one
   * long inference call cannot check for cancellation, and shutdown must not hang on it.
   */
  async close(graceMs = 5000): Promise<void> {
    const { running, pending } = this.queue.state();
    for (const job of pending) this.cancel(job.id);
    if (running) this.cancel(running.id);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.queue.idle(), new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
  }

  private summaryOf(id: string): JobSummary | undefined {
    const state = this.queue.state();
    if (state.running?.id === id) return { ...state.running, state: 'running', position: 0 };
    const pending = state.pending.find((j) => j.id === id);
    if (pending) return pending;
    return this.finished.get(id)?.job;
  }

  private remember(id: string, detail: JobDetail): void {
    this.finished.set(id, detail);
    const keep = this.opts.keepFinished ?? 200;
    while (this.finished.size > keep) this.finished.delete(this.finished.keys().next().value as string);
  }

  private finish(id: string, state: JobState, extra: Omit<JobDetail, 'job'>): void {
    const queued = this.queue.get(id);
    const job: JobSummary = {
      id,
      state,
      createdAt: queued?.createdAt ?? Date.now(),
      ...(queued?.title !== undefined ? { title: queued.title } : {}),
    };
    this.remember(id, { job, ...extra });
  }

  private async run(jobId: string, payload: JobPayload, signal: AbortSignal): Promise<void> {
    const { broadcast, catalog, services, log } = this.opts;
    const outbox = new OrderedOutbox<OutgoingEvent>(broadcast);
    const started = performance.now();
    const lastProgress = new Map<string, number>();
    const encoding = new Set<string>();
    const warnings = new Map<string, string[]>();
    const maxSide = this.opts.previewMaxSide ?? 256;

    const onEvent = (e: ExecEvent): void => {
      switch (e.type) {
        case 'node:started':
          outbox.push({ name: 'node:started', args: { jobId, nodeId: e.nodeId, type: e.nodeType } });
          break;
        case 'node:progress': {
          const now = performance.now();
          const last = lastProgress.get(e.nodeId) ?? -Infinity;
          if (e.step < e.total && now - last < PROGRESS_INTERVAL_MS) break;
          lastProgress.set(e.nodeId, now);
          outbox.push({ name: 'node:progress', args: { jobId, nodeId: e.nodeId, step: e.step, total: e.total } });
          break;
        }
        case 'node:preview': {
          if (encoding.has(e.nodeId)) break; // the previous frame is still encoding: drop this one
          encoding.add(e.nodeId);
          // encodePreview reads the source synchronously, so the sampler may reuse its buffer now.
          const frame = encodePreview(e.source, maxSide).then(
            (f): OutgoingEvent => ({
              name: 'node:preview',
              args: { jobId, nodeId: e.nodeId, step: e.step, total: e.total, mime: f.mime, width: f.width, height: f.height, data: f.data },
            }),
          );
          frame.then(
            () => encoding.delete(e.nodeId),
            (err: unknown) => {
              encoding.delete(e.nodeId);
              log.warn(`preview of node ${e.nodeId} could not be encoded`, err);
            },
          );
          outbox.push(frame);
          break;
        }
        case 'node:warning': {
          const list = warnings.get(e.nodeId) ?? [];
          list.push(e.message);
          warnings.set(e.nodeId, list);
          outbox.push({ name: 'node:warning', args: { jobId, nodeId: e.nodeId, message: e.message } });
          break;
        }
        case 'node:done':
          outbox.push({
            name: 'node:done',
            args: { jobId, nodeId: e.nodeId, cached: e.cached, ms: e.ms, ...(e.result ? { result: withWarnings(e.result, warnings.get(e.nodeId)) } : {}) },
          });
          break;
      }
    };

    outbox.push({ name: 'job:started', args: { jobId, nodes: payload.nodes } });
    try {
      const summary = await executeGraph({
        jobId,
        graph: payload.graph,
        catalog,
        services,
        cache: this.cache,
        signal,
        emit: onEvent,
        outputs: payload.outputs,
        previewIntervalMs: this.opts.previewIntervalMs,
        logger: log,
      });
      await outbox.flushed();
      const results = byNodeId<NodeResult>();
      // The summary's warnings include those replayed from the cache.
      for (const [nodeId, result] of Object.entries(summary.results)) {
        results[nodeId] = withWarnings(result, summary.warnings[nodeId] ?? warnings.get(nodeId));
      }
      const ms = Math.round(performance.now() - started);
      this.finish(jobId, 'done', { results, computed: summary.computed, cached: summary.cached, ms });
      broadcast({ name: 'job:done', args: { jobId, ms, computed: summary.computed, cached: summary.cached, results } });
    } catch (err) {
      await outbox.flushed();
      const ms = Math.round(performance.now() - started);
      if (err instanceof CancelledError || signal.aborted) {
        const nodeId = (err as { nodeId?: string }).nodeId;
        this.finish(jobId, 'cancelled', { ms, ...(nodeId ? { error: { nodeId, message: 'cancelled' } } : {}) });
        broadcast({ name: 'job:cancelled', args: { jobId, ...(nodeId ? { nodeId } : {}) } });
      } else if (err instanceof NodeFailedError) {
        this.finish(jobId, 'failed', { ms, error: { nodeId: err.nodeId, message: err.message } });
        broadcast({ name: 'job:failed', args: { jobId, nodeId: err.nodeId, message: err.message } });
      } else {
        const message = err instanceof Error ? err.message : String(err);
        log.error(`job ${jobId} failed outside any node`, err);
        this.finish(jobId, 'failed', { ms, error: { message } });
        broadcast({ name: 'job:failed', args: { jobId, message } });
      }
      throw err;
    }
  }
}

function withWarnings(result: NodeResult, warnings: string[] | undefined): NodeResult {
  return warnings && warnings.length > 0 ? { ...result, warnings } : result;
}


/**
 * Runs queued jobs with the executor and turns executor events into socket.io events: previews are
 * encoded off the sampler's path (a frame is dropped while the previous one of that node is still
 * encoding), progress is coalesced to at most ~20 per second per node, and everything a job emits is
 * delivered in order. Finished jobs are remembered in memory (bounded) for GET /api/jobs/:id.
 *
 * The queue state it reports carries the running job's progress and, for every job, an estimate of
 * when it will be done, from how long each node type took when it last computed; progress re-sends
 * the queue state at most every QUEUE_PROGRESS_MS, so every tab sees every job move.
 */
import type { Logger } from '../../nodes/types.ts';
import { byNodeId, NodeFailedError, type ExecEvent } from '../executor/executor.ts';
import type { GraphRunner } from '../executor/graph-runner.ts';
import { JobQueue } from '../executor/queue.ts';
import { encodePreview } from '../executor/preview.ts';
import type { Graph } from '../protocol/graph.ts';
import type { JobProgress, JobState, JobSummary, NodeResult, QueueState, ServerToClientEvents } from '../protocol/events.ts';
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
  /** The graph of a job still queued or running (other tabs compare it with theirs). */
  graph?: Graph;
  error?: { nodeId?: string; message: string };
  results?: Record<string, NodeResult>;
  computed?: string[];
  cached?: string[];
  ms?: number;
}

export interface JobRunnerOptions {
  /** Validates and runs each job's graph, with the output cache shared by all jobs. */
  graphs: GraphRunner;
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
const QUEUE_PROGRESS_MS = 500;

/** What the running job is doing, for the queue state. */
interface LiveJob {
  id: string;
  payload: JobPayload;
  done: Set<string>;
  current?: { nodeId: string; type: string; startedAt: number; step?: number; steps?: number };
}

export class JobRunner {
  readonly queue: JobQueue<JobPayload>;
  private readonly finished = new Map<string, JobDetail>();
  private live: LiveJob | null = null;
  /** Typical ms of a computed node, by node type (a moving average of the latest runs). */
  private readonly typeMs = new Map<string, number>();
  private lastQueueSent = 0;

  constructor(private readonly opts: JobRunnerOptions) {
    this.queue = new JobQueue<JobPayload>((job, signal) => this.run(job.id, job.payload, signal), {
      maxPending: opts.maxPending,
      // Finished jobs are remembered here (`finished`, without their graphs); a queue history would
      // hold up to 200 more copies of whole graphs that nothing reads.
      historySize: 0,
    });
  }

  /** `front`: first in line, after the running job. */
  submit(graph: Graph, outputs?: string[], opts: { front?: boolean } = {}): JobSummary {
    const title = typeof graph.meta?.title === 'string' ? graph.meta.title : undefined;
    const job = this.queue.submit({ graph, outputs, nodes: this.opts.graphs.plan(graph, outputs) }, title, opts);
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
    const graph = this.queue.get(id)?.payload.graph;
    return job ? { job, ...(graph ? { graph } : {}) } : undefined;
  }

  /** The queue with the running job's progress and every job's estimated time to finish. */
  state(): QueueState {
    const q = this.queue.state();
    const now = performance.now();
    let ahead: number | undefined = 0;
    let running = q.running;
    if (running) {
      const live = this.live?.id === running.id ? this.live : null;
      const remaining = live ? this.remainingMs(live, now) : undefined;
      running = {
        ...running,
        ...(running.startedAt !== undefined ? { elapsedMs: Math.max(0, Date.now() - running.startedAt) } : {}),
        ...(live ? { progress: this.progressOf(live) } : {}),
        ...(remaining !== undefined ? { etaMs: Math.round(remaining) } : {}),
      };
      ahead = remaining;
    }
    const pending = q.pending.map((j) => {
      const payload = this.queue.get(j.id)?.payload;
      const own = payload ? this.estimateMs(payload.nodes, payload.graph) : undefined;
      ahead = ahead !== undefined && own !== undefined ? ahead + own : undefined;
      return ahead !== undefined ? { ...j, etaMs: Math.round(ahead) } : j;
    });
    return { running, pending };
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

  private progressOf(live: LiveJob): JobProgress {
    const c = live.current;
    const node = c ? live.payload.graph.nodes.find((n) => n.id === c.nodeId) : undefined;
    const title = node ? node.title?.trim() || this.opts.graphs.catalog.get(node.type)?.title || node.type : undefined;
    return {
      nodesDone: live.done.size,
      nodesTotal: live.payload.nodes.length,
      ...(c ? { nodeId: c.nodeId, nodeTitle: title } : {}),
      ...(c?.steps ? { step: c.step, steps: c.steps } : {}),
    };
  }

  /** Sum of the typical times of these nodes; undefined when a type has never computed here. */
  private estimateMs(nodeIds: string[], graph: Graph, skip?: ReadonlySet<string>): number | undefined {
    let total = 0;
    for (const id of nodeIds) {
      if (skip?.has(id)) continue;
      const type = graph.nodes.find((n) => n.id === id)?.type;
      const ms = type ? this.typeMs.get(type) : undefined;
      if (ms === undefined) return undefined;
      total += ms;
    }
    return total;
  }

  /** The running job's remaining time: the current node (by its steps when it reports them) and the nodes after it. */
  private remainingMs(live: LiveJob, now: number): number | undefined {
    const c = live.current;
    const skip = new Set(live.done);
    let current = 0;
    if (c) {
      skip.add(c.nodeId);
      const spent = now - c.startedAt;
      if (c.step && c.steps) current = (spent * (c.steps - c.step)) / c.step;
      else {
        const typical = this.typeMs.get(c.type);
        if (typical === undefined) return undefined;
        current = Math.max(0, typical - spent);
      }
    }
    const rest = this.estimateMs(live.payload.nodes, live.payload.graph, skip);
    return rest === undefined ? undefined : current + rest;
  }

  /** Progress moves every tab's queue view: re-send the queue state, at most every QUEUE_PROGRESS_MS. */
  private queueMoved(force = false): void {
    const now = performance.now();
    if (!force && now - this.lastQueueSent < QUEUE_PROGRESS_MS) return;
    this.lastQueueSent = now;
    this.opts.broadcast({ name: 'queue', args: this.state() });
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
    const { broadcast, log } = this.opts;
    const outbox = new OrderedOutbox<OutgoingEvent>(broadcast);
    const started = performance.now();
    const lastProgress = new Map<string, number>();
    const encoding = new Set<string>();
    const warnings = new Map<string, string[]>();
    const maxSide = this.opts.previewMaxSide ?? 256;

    const live: LiveJob = { id: jobId, payload, done: new Set() };
    this.live = live;
    const onEvent = (e: ExecEvent): void => {
      switch (e.type) {
        case 'node:started':
          live.current = { nodeId: e.nodeId, type: e.nodeType, startedAt: performance.now() };
          outbox.push({ name: 'node:started', args: { jobId, nodeId: e.nodeId, type: e.nodeType } });
          this.queueMoved();
          break;
        case 'node:progress': {
          if (live.current?.nodeId === e.nodeId) Object.assign(live.current, { step: e.step, steps: e.total });
          this.queueMoved();
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
          live.done.add(e.nodeId);
          if (live.current?.nodeId === e.nodeId) {
            if (!e.cached) this.learn(live.current.type, e.ms);
            live.current = undefined;
          }
          this.queueMoved();
          outbox.push({
            name: 'node:done',
            args: { jobId, nodeId: e.nodeId, cached: e.cached, ms: e.ms, ...(e.result ? { result: withWarnings(e.result, warnings.get(e.nodeId)) } : {}) },
          });
          break;
      }
    };

    outbox.push({ name: 'job:started', args: { jobId, nodes: payload.nodes } });
    try {
      return await this.execute(jobId, payload, signal, outbox, onEvent, started, warnings);
    } finally {
      if (this.live === live) this.live = null;
    }
  }

  /** A moving average: recent runs count most (a model warming up, another model loaded). */
  private learn(type: string, ms: number): void {
    const before = this.typeMs.get(type);
    this.typeMs.set(type, before === undefined ? ms : 0.5 * before + 0.5 * ms);
  }

  private async execute(
    jobId: string,
    payload: JobPayload,
    signal: AbortSignal,
    outbox: OrderedOutbox<OutgoingEvent>,
    onEvent: (e: ExecEvent) => void,
    started: number,
    warnings: Map<string, string[]>,
  ): Promise<void> {
    const { broadcast, graphs, log } = this.opts;
    try {
      const summary = await graphs.run(payload.graph, {
        jobId,
        signal,
        emit: onEvent,
        outputs: payload.outputs,
        previewIntervalMs: this.opts.previewIntervalMs,
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


/**
 * Runs one job's graph and turns executor events into socket events: previews are encoded off the
 * sampler's path (a frame is dropped while the previous one of that node is still encoding), progress
 * is coalesced to at most ~20 per second per node, and everything a job emits is delivered in order.
 * It keeps the job's live state (node, step) for the queue view and reports each computed node's time
 * for the estimates. The ending (job:done / failed / cancelled) is the caller's to announce, once it
 * has recorded the outcome: the embedded queue and the distributed worker record it differently.
 */
import type { Logger } from '../util/log.ts';
import { CancelledError } from '../engine/errors.ts';
import type { Graph } from '../protocol/graph.ts';
import type { JobOutcome, NodeResult, OutgoingEvent } from '../protocol/events.ts';
import type { LiveState } from './eta.ts';
import { byNodeId, NodeFailedError, type ExecEvent } from './executor.ts';
import type { GraphRunner } from './graph-runner.ts';
import { OrderedOutbox } from './outbox.ts';
import { encodePreview } from './preview.ts';

export interface JobRun {
  jobId: string;
  graph: Graph;
  outputs?: string[];
  runner: GraphRunner;
  signal: AbortSignal;
  emit(event: OutgoingEvent): void;
  /** Updated as the job moves. */
  live: LiveState;
  /** A node computed (not from the cache): its type, time and the steps it reported. */
  onNodeTime?(type: string, ms: number, steps?: number): void;
  previewIntervalMs?: number;
  previewMaxSide?: number;
  log: Logger;
}

export interface JobEnd {
  state: 'done' | 'failed' | 'cancelled';
  outcome: JobOutcome;
  /** Failed outside any node (the machinery, not the graph): worth another attempt elsewhere. */
  retryable: boolean;
}

const PROGRESS_INTERVAL_MS = 50;

/**
 * The executor's events as the job's outgoing events, in order: progress throttled to one every
 * PROGRESS_INTERVAL_MS (the last step always), previews encoded off the sampler's path (a frame dropped
 * while the previous one still encodes), warnings in public words and kept for the results, and the
 * live state (current node, its steps, the nodes done) kept up to date.
 */
function eventForwarder(run: JobRun, outbox: OrderedOutbox<OutgoingEvent>) {
  const { jobId, live, log } = run;
  const lastProgress = new Map<string, number>();
  const encoding = new Set<string>();
  const warnings = new Map<string, string[]>();
  const reportedSteps = new Map<string, number>();
  const maxSide = run.previewMaxSide ?? 256;

  const onEvent = (e: ExecEvent): void => {
    switch (e.type) {
      case 'node:started':
        live.current = { nodeId: e.nodeId, type: e.nodeType, startedAt: Date.now() };
        outbox.push({ name: 'node:started', args: { jobId, nodeId: e.nodeId, type: e.nodeType } });
        break;
      case 'node:progress': {
        if (live.current?.nodeId === e.nodeId) Object.assign(live.current, { step: e.step, steps: e.total, label: e.label });
        // A labelled phase (a conversion) is not the node's steps: its step timing leaves it out.
        if (!e.label) reportedSteps.set(e.nodeId, e.total);
        const now = performance.now();
        const last = lastProgress.get(e.nodeId) ?? -Infinity;
        if (e.step < e.total && now - last < PROGRESS_INTERVAL_MS) break;
        lastProgress.set(e.nodeId, now);
        outbox.push({ name: 'node:progress', args: { jobId, nodeId: e.nodeId, step: e.step, total: e.total, ...(e.label ? { label: e.label } : {}) } });
        break;
      }
      case 'node:preview': {
        if (encoding.has(e.nodeId)) break; // the previous frame is still encoding: drop this one
        encoding.add(e.nodeId);
        // encodePreview reads the source synchronously, so the sampler may reuse its buffer now.
        const frame = encodePreview(e.source, maxSide).then((f): OutgoingEvent => ({
          name: 'node:preview',
          args: { jobId, nodeId: e.nodeId, step: e.step, total: e.total, mime: f.mime, width: f.width, height: f.height, data: f.data },
        }));
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
        const message = run.runner.publicMessage(e.message);
        const list = warnings.get(e.nodeId) ?? [];
        list.push(message);
        warnings.set(e.nodeId, list);
        outbox.push({ name: 'node:warning', args: { jobId, nodeId: e.nodeId, message } });
        break;
      }
      case 'node:done':
        live.done.push(e.nodeId);
        if (live.current?.nodeId === e.nodeId) {
          if (!e.cached) run.onNodeTime?.(live.current.type, e.ms, reportedSteps.get(e.nodeId));
          live.current = undefined;
        }
        outbox.push({
          name: 'node:done',
          args: { jobId, nodeId: e.nodeId, cached: e.cached, ms: e.ms, ...(e.result ? { result: withWarnings(e.result, warnings.get(e.nodeId)) } : {}) },
        });
        break;
    }
  };
  return { onEvent, warnings };
}

/** How a job that threw ends: cancelled, failed in a node, or failed outside any (then retryable unless the graph is invalid). */
function failedEnd(run: JobRun, err: unknown, started: number): JobEnd {
  const { jobId, log } = run;
  const ms = Math.round(performance.now() - started);
  if (err instanceof CancelledError || run.signal.aborted) {
    const nodeId = (err as { nodeId?: string }).nodeId;
    return { state: 'cancelled', retryable: false, outcome: { ms, ...(nodeId ? { error: { nodeId, message: 'cancelled' } } : {}) } };
  }
  if (err instanceof NodeFailedError) {
    return { state: 'failed', retryable: false, outcome: { ms, error: { nodeId: err.nodeId, message: run.runner.publicMessage(err.message) } } };
  }
  const message = run.runner.publicMessage(err instanceof Error ? err.message : String(err));
  // An invalid graph (InvalidGraphError) fails the same way everywhere: not worth another attempt.
  const retryable = !(err instanceof Error && err.name === 'InvalidGraphError');
  log.error(`job ${jobId} failed outside any node`, err);
  return { state: 'failed', retryable, outcome: { ms, error: { message } } };
}

export async function runJob(run: JobRun): Promise<JobEnd> {
  const { jobId } = run;
  const outbox = new OrderedOutbox<OutgoingEvent>(run.emit);
  const started = performance.now();
  const { onEvent, warnings } = eventForwarder(run, outbox);
  try {
    const summary = await run.runner.run(run.graph, {
      jobId,
      signal: run.signal,
      emit: onEvent,
      outputs: run.outputs,
      previewIntervalMs: run.previewIntervalMs,
    });
    await outbox.flushed();
    const results = byNodeId<NodeResult>();
    // The summary's warnings include those replayed from the cache.
    for (const [nodeId, result] of Object.entries(summary.results)) {
      results[nodeId] = withWarnings(result, summary.warnings[nodeId]?.map((m) => run.runner.publicMessage(m)) ?? warnings.get(nodeId));
    }
    const ms = Math.round(performance.now() - started);
    const outputTitles = titlesOf(run, Object.keys(results));
    return { state: 'done', retryable: false, outcome: { results, outputTitles, computed: summary.computed, cached: summary.cached, ms } };
  } catch (err) {
    await outbox.flushed();
    return failedEnd(run, err, started);
  }
}

/**
 * A job whose cancel was answered `cancelled` ends cancelled, even when its last node finished before the
 * cancel reached it: what the user was told holds. Results it already wrote stay listed with it.
 */
export function cancelledEnd(end: JobEnd): JobEnd {
  if (end.state === 'cancelled') return end;
  const { results, outputTitles, ms } = end.outcome;
  return {
    state: 'cancelled',
    retryable: false,
    outcome: { ...(ms !== undefined ? { ms } : {}), ...(results ? { results } : {}), ...(outputTitles ? { outputTitles } : {}) },
  };
}

/** The event that tells every client how a job ended. */
export function endEvent(jobId: string, end: Pick<JobEnd, 'state' | 'outcome'>): OutgoingEvent {
  const { outcome } = end;
  switch (end.state) {
    case 'done':
      return {
        name: 'job:done',
        args: { jobId, ms: outcome.ms ?? 0, computed: outcome.computed ?? [], cached: outcome.cached ?? [], results: outcome.results ?? {} },
      };
    case 'cancelled':
      return { name: 'job:cancelled', args: { jobId, ...(outcome.error?.nodeId ? { nodeId: outcome.error.nodeId } : {}) } };
    case 'failed':
      return {
        name: 'job:failed',
        args: { jobId, ...(outcome.error?.nodeId ? { nodeId: outcome.error.nodeId } : {}), message: outcome.error?.message ?? 'failed' },
      };
  }
}

function titlesOf(run: JobRun, nodeIds: string[]): Record<string, string> {
  const titles = byNodeId<string>();
  for (const id of nodeIds) {
    const node = run.graph.nodes.find((n) => n.id === id);
    const def = node ? run.runner.catalog.get(node.type) : undefined;
    if (node && def?.output) titles[id] = node.title?.trim() || def.title || node.type;
  }
  return titles;
}

function withWarnings(result: NodeResult, warnings: string[] | undefined): NodeResult {
  return warnings && warnings.length > 0 ? { ...result, warnings } : result;
}

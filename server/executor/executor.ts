/**
 * Runs a validated graph: the requested output nodes and their ancestors, in topological order, one
 * node at a time. Each node's content key is computed before it runs; a key already in the cache is
 * served without running, so editing a decoder prompt re-runs the decoder, not the inversion.
 * Progress, previews and warnings stream out as events; cancellation is checked between nodes and,
 * through ctx.signal, between a node's own steps. Result files go through ctx.saveResult.
 */
import type { Graph, GraphNode } from '../protocol/graph.ts';
import { gatherInputs, type AnyNodeDefinition, type NodeContext, type NodeRunResult, type PreviewSource } from '../../nodes/types.ts';
import { CancelledError, UserError } from '../engine/errors.ts';
import type { Services } from '../services/services.ts';
import type { Logger } from '../util/log.ts';
import type { NodeCatalog } from '../catalog.ts';
import { resolveModes, type ModeResolution } from '../graph/modes.ts';
import { ancestorsOf, topoOrder } from '../graph/topo.ts';
import type { CachedOutputs, OutputCache } from './cache.ts';
import { contentKey } from './keys.ts';
import type { ResultSink } from '../store/results.ts';

export type ExecEvent =
  | { type: 'node:started'; nodeId: string; nodeType: string }
  | { type: 'node:progress'; nodeId: string; step: number; total: number; label?: string }
  | { type: 'node:preview'; nodeId: string; step: number; total: number; source: PreviewSource }
  | { type: 'node:warning'; nodeId: string; message: string }
  | { type: 'node:done'; nodeId: string; cached: boolean; ms: number; result?: NodeRunResult };

export interface ExecuteOptions {
  jobId: string;
  /** Already validated (validateGraph(...).graph): params parsed, edges checked, no cycles. */
  graph: Graph;
  catalog: NodeCatalog;
  services: Services;
  cache: OutputCache;
  signal: AbortSignal;
  emit(e: ExecEvent): void;
  /** Run only these nodes and their ancestors (default: every output node). */
  outputs?: string[];
  /** Minimum time between preview frames, for ctx.previewDue() (default 250 ms). */
  previewIntervalMs?: number;
  /** Where ctx.saveResult stores output nodes' files. */
  saveResult: ResultSink;
  logger?: Logger;
}

export interface ExecuteSummary {
  /** Node ids that ran, in run order. */
  computed: string[];
  /** Node ids served from the cache, in order. */
  cached: string[];
  /** What each output node showed (computed or cached). */
  results: Record<string, NodeRunResult>;
  /** Warnings by node id (including those replayed from the cache). */
  warnings: Record<string, string[]>;
  /** The content key of every node that was needed, by node id. */
  keys: Record<string, string>;
}

/** A node threw: the job fails with the node's id and its message. */
export class NodeFailedError extends Error {
  readonly nodeId: string;
  readonly nodeType: string;
  /** The node's own message, without the "<title> (<id>) failed:" prefix. */
  readonly detail: string;

  constructor(nodeId: string, nodeType: string, nodeTitle: string, cause: unknown) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    super(`${nodeTitle} (${nodeId}) failed: ${detail}`, { cause });
    this.name = 'NodeFailedError';
    this.nodeId = nodeId;
    this.nodeType = nodeType;
    this.detail = detail;
  }
}

/**
 * The node ids a run needs, in run order: the requested output nodes (default: every output node of
 * the graph) and their ancestors. The job runner announces this list with job:started, so it is the
 * one place that decides what runs.
 */
export function planRun(graph: Graph, catalog: NodeCatalog, outputs?: string[]): string[] {
  return planResolved(graph, resolveModes(graph, catalog), catalog, outputs);
}

/** planRun on a graph whose modes are resolved already (`resolved` is resolveModes(graph)). */
function planResolved(graph: Graph, resolved: ModeResolution<Graph>, catalog: NodeCatalog, outputs?: string[]): string[] {
  for (const id of outputs ?? []) {
    if (!graph.nodes.some((n) => n.id === id)) throw new Error(`Cannot run node "${id}": there is no such node in the graph.`);
  }
  // Bypassed and muted nodes, and what needs a muted node, do not run.
  const { graph: runnable, skipped } = resolved;
  const targets = (outputs ?? runnable.nodes.filter((n) => catalog.get(n.type)?.output === true).map((n) => n.id)).filter((id) => !skipped.has(id));
  const needed = ancestorsOf(runnable, targets);
  const { order, cycle } = topoOrder(runnable);
  if (cycle) throw new Error(`The graph has a cycle (${cycle.join(' → ')}); validate the graph before running it.`);
  return order.filter((id) => needed.has(id));
}

const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

export async function executeGraph(opts: ExecuteOptions): Promise<ExecuteSummary> {
  const { catalog, cache, signal, emit } = opts;
  // The graph that runs: edges rewired around bypassed nodes (the plan leaves out what does not run).
  const resolved = resolveModes(opts.graph, catalog);
  const graph = resolved.graph;
  const logger = opts.logger ?? silentLogger;
  const previewInterval = opts.previewIntervalMs ?? 250;

  const nodes = new Map<string, GraphNode>();
  for (const n of graph.nodes) if (!nodes.has(n.id)) nodes.set(n.id, n);
  const order = planResolved(opts.graph, resolved, catalog, opts.outputs);
  const defOf = (node: GraphNode): AnyNodeDefinition => {
    const def = catalog.get(node.type);
    // validateGraph rules this out; guard anyway so a caller skipping validation gets a clear error.
    if (!def) throw new Error(`Node "${node.id}" has unknown type "${node.type}"; validate the graph before running it.`);
    return def;
  };
  // Before anything runs, so an unvalidated graph fails without half a run.
  for (const nodeId of order) defOf(nodes.get(nodeId)!);

  const incoming = new Map<string, { input: string; from: string; output: string }[]>();
  for (const e of graph.edges) {
    const list = incoming.get(e.to.node) ?? [];
    list.push({ input: e.to.input, from: e.from.node, output: e.from.output });
    incoming.set(e.to.node, list);
  }

  const summary: ExecuteSummary = { computed: [], cached: [], results: byNodeId(), warnings: byNodeId(), keys: byNodeId() };
  const values = new Map<string, Record<string, unknown>>();

  for (const nodeId of order) {
    if (signal.aborted) throw new CancelledError();
    const node = nodes.get(nodeId)!;
    const def = defOf(node);
    const title = node.title?.trim() || def.title;
    const params = node.params;

    const inputs: Record<string, unknown> = {};
    const inputKeys: Record<string, string> = {};
    for (const link of incoming.get(nodeId) ?? []) {
      inputs[link.input] = values.get(link.from)![link.output];
      inputKeys[link.input] = `${summary.keys[link.from]}:${link.output}`;
    }

    let identity: string | undefined;
    try {
      identity = def.identity ? await def.identity(params, opts.services) : undefined;
    } catch (err) {
      throw failure(err, signal, nodeId, def, title, logger);
    }
    const key = contentKey({ type: def.type, params, identity, inputs: inputKeys });
    summary.keys[nodeId] = key;

    const hit = cache.get(key);
    if (hit) {
      values.set(nodeId, hit.outputs);
      summary.cached.push(nodeId);
      record(summary, nodeId, hit);
      for (const message of hit.warnings) emit({ type: 'node:warning', nodeId, message });
      emit({ type: 'node:done', nodeId, cached: true, ms: 0, ...(hit.result ? { result: hit.result } : {}) });
      continue;
    }

    emit({ type: 'node:started', nodeId, nodeType: def.type });
    const started = performance.now();
    const warnings: string[] = [];
    const ctx = makeContext({ opts, nodeId, signal, logger, previewInterval, warnings });
    let out: Awaited<ReturnType<AnyNodeDefinition['run']>>;
    try {
      out = await def.run({ inputs: gatherInputs(def, params, inputs), params, ctx });
      checkOutputs(def, out);
    } catch (err) {
      throw failure(err, signal, nodeId, def, title, logger);
    }
    const entry: CachedOutputs = { outputs: out.outputs, warnings, ...(out.result ? { result: out.result } : {}) };
    cache.set(key, entry);
    values.set(nodeId, out.outputs);
    summary.computed.push(nodeId);
    record(summary, nodeId, entry);
    const ms = Math.round(performance.now() - started);
    emit({ type: 'node:done', nodeId, cached: false, ms, ...(out.result ? { result: out.result } : {}) });
  }
  // A node that ignored the signal may have finished after the cancel: the job is still cancelled.
  if (signal.aborted) throw new CancelledError();
  return summary;
}

/**
 * A record keyed by node id, without a prototype: node ids are user text, and on a plain object
 * "__proto__" would not store (two different upstream nodes would share a cache key) and
 * "constructor" would read back as Object.
 */
export function byNodeId<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

function record(summary: ExecuteSummary, nodeId: string, entry: CachedOutputs): void {
  if (entry.result) summary.results[nodeId] = entry.result;
  if (entry.warnings.length) summary.warnings[nodeId] = [...entry.warnings];
}

/** Every declared output must be present; a node that forgets one would break its consumers later. */
function checkOutputs(def: AnyNodeDefinition, out: unknown): void {
  if (
    typeof out !== 'object' ||
    out === null ||
    typeof (out as { outputs?: unknown }).outputs !== 'object' ||
    (out as { outputs?: unknown }).outputs === null
  ) {
    throw new Error(`node type "${def.type}" returned no outputs object`);
  }
  const outputs = (out as { outputs: Record<string, unknown> }).outputs;
  const missing = Object.keys(def.outputs as Record<string, unknown>).filter((name) => outputs[name] === undefined);
  if (missing.length) {
    throw new Error(`node type "${def.type}" did not produce output${missing.length > 1 ? 's' : ''} ${missing.map((m) => `"${m}"`).join(', ')}`);
  }
}

function failure(err: unknown, signal: AbortSignal, nodeId: string, def: AnyNodeDefinition, title: string, logger: Logger): Error {
  // Anything thrown after a cancel (an aborted session run, a half-read file) is the cancel's doing.
  if (err instanceof CancelledError) return err;
  if (signal.aborted) return new CancelledError();
  const failed = new NodeFailedError(nodeId, def.type, title, err);
  logger.error(failed.message, err instanceof Error && !(err instanceof UserError) ? err.stack : undefined);
  return failed;
}

function makeContext(args: {
  opts: ExecuteOptions;
  nodeId: string;
  signal: AbortSignal;
  logger: Logger;
  previewInterval: number;
  warnings: string[];
}): NodeContext {
  const { opts, nodeId, signal, logger, previewInterval, warnings } = args;
  let lastPreview = -Infinity;
  const previewDue = () => performance.now() - lastPreview >= previewInterval;
  const prefix = `[${opts.jobId} ${nodeId}] `;
  return {
    jobId: opts.jobId,
    nodeId,
    signal,
    services: opts.services,
    progress(step, total, label) {
      opts.emit({ type: 'node:progress', nodeId, step, total, ...(label ? { label } : {}) });
    },
    previewDue,
    preview(step, total, source) {
      // Frames offered faster than the interval are dropped, so a node that previews every step
      // cannot flood the socket.
      if (!previewDue()) return;
      lastPreview = performance.now();
      opts.emit({ type: 'node:preview', nodeId, step, total, source });
    },
    warn(message) {
      warnings.push(message);
      opts.emit({ type: 'node:warning', nodeId, message });
    },
    async saveResult(prefix, png, size) {
      const saved = await opts.saveResult(prefix, png);
      return { ...saved, ...size };
    },
    log: {
      debug: (msg, extra) => logger.debug(prefix + msg, extra),
      info: (msg, extra) => logger.info(prefix + msg, extra),
      warn: (msg, extra) => logger.warn(prefix + msg, extra),
      error: (msg, extra) => logger.error(prefix + msg, extra),
    },
  };
}

/**
 * The one way to run a graph: validate it (migrating older files, reporting every problem at once),
 * then execute it with an output cache that lives as long as the runner, and with the data folder's
 * uploads and results as the nodes' services. The job runner, the bench, the CLIs and the tests all
 * run graphs through this, so they run them the same way.
 */
import type { ExecutionProviderRequest } from '../engine/onnx/runtime.ts';
import type { Logger, Services } from '../../nodes/types.ts';
import type { NodeCatalog } from '../catalog.ts';
import { formatIssue, validateGraph } from '../graph/validate.ts';
import type { Graph, ValidationIssue } from '../protocol/graph.ts';
import { resultSink, type ResultSink } from '../store/results.ts';
import { readUpload } from '../store/uploads.ts';
import { OutputCache } from './cache.ts';
import { executeGraph, planRun, type ExecEvent, type ExecuteSummary } from './executor.ts';

/** A graph that does not validate; `issues` holds every problem, the message the first few. */
export class InvalidGraphError extends Error {
  constructor(readonly issues: ValidationIssue[]) {
    const n = issues.length;
    const first = issues[0] ? formatIssue(issues[0]) : 'the graph is invalid';
    super(n > 1 ? `${first} (and ${n - 1} more problem${n > 2 ? 's' : ''})` : first);
    this.name = 'InvalidGraphError';
  }
}

export interface GraphRunnerOptions {
  catalog: NodeCatalog;
  /** The data folder: uploads are read from it, results written to it. */
  dataDir: string;
  executionProvider: ExecutionProviderRequest;
  cache?: OutputCache;
  logger?: Logger;
  /** Where result files go (default: <dataDir>/results). */
  saveResult?: ResultSink;
}

export interface RunOptions {
  jobId?: string;
  /** Run only these output nodes and their ancestors (default: every output node). */
  outputs?: string[];
  signal?: AbortSignal;
  emit?(e: ExecEvent): void;
  /** Minimum time between preview frames of a node (default 250 ms). */
  previewIntervalMs?: number;
}

export class GraphRunner {
  readonly catalog: NodeCatalog;
  readonly services: Services;
  readonly cache: OutputCache;
  private readonly saveResult: ResultSink;
  private readonly logger?: Logger;

  constructor(opts: GraphRunnerOptions) {
    const { dataDir } = opts;
    this.catalog = opts.catalog;
    this.services = { dataDir, executionProvider: opts.executionProvider, readUpload: (name) => readUpload(dataDir, name) };
    this.cache = opts.cache ?? new OutputCache();
    this.saveResult = opts.saveResult ?? resultSink(dataDir);
    this.logger = opts.logger;
  }

  /** The graph parsed, migrated and checked; throws InvalidGraphError naming every problem. */
  validate(raw: unknown, opts: { requireOutput?: boolean } = {}): Graph {
    const v = validateGraph(raw, this.catalog, opts);
    if (!v.ok || !v.graph) throw new InvalidGraphError(v.issues);
    return v.graph;
  }

  /** The node ids a run of `graph` (validated) needs, in run order. */
  plan(graph: Graph, outputs?: string[]): string[] {
    return planRun(graph, this.catalog, outputs);
  }

  /** Validates and runs a graph; unchanged nodes come from the cache. */
  run(raw: unknown, opts: RunOptions = {}): Promise<ExecuteSummary> {
    const graph = this.validate(raw);
    return executeGraph({
      jobId: opts.jobId ?? 'run',
      graph,
      catalog: this.catalog,
      services: this.services,
      cache: this.cache,
      saveResult: this.saveResult,
      signal: opts.signal ?? new AbortController().signal,
      emit: opts.emit ?? (() => undefined),
      outputs: opts.outputs,
      previewIntervalMs: opts.previewIntervalMs,
      logger: this.logger,
    });
  }
}

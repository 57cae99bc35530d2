/**
 * The one way to run a graph: validate it (migrating older files, reporting every problem at once),
 * then execute it with an output cache that lives as long as the runner, and with the data folder's
 * uploads and results as the nodes' services. The job runner, the bench, the CLIs and the tests all
 * run graphs through this, so they run them the same way.
 */
import os from 'node:os';
import path from 'node:path';
import { PROJECT_ROOT } from '../util/project.ts';
import type { ExecutionProviderRequest } from '../engine/runtime/runtime.ts';
import { defaultModelRoots } from '../models/model-roots.ts';
import type { Logger } from '../util/log.ts';
import type { LatentPreviewDecoder, Services } from '../services/services.ts';
import { LoadedModels } from '../services/loaded-models.ts';
import type { NodeCatalog } from '../catalog.ts';
import { summarizeIssues } from '../graph/validate.ts';
import { ValidatedGraphs } from '../graph/validated-graphs.ts';
import type { Graph, ValidationIssue, ValidationResult } from '../protocol/graph.ts';
import { resultSink, type ResultSink } from '../store/results.ts';
import { readUpload } from '../store/uploads.ts';
import { OutputCache } from './cache.ts';
import { executeGraph, planRun, type ExecEvent, type ExecuteSummary } from './executor.ts';
import { checkMemory, defaultMemoryBudget, planJob } from './memory-plan.ts';
import type { MemoryEstimate } from '../engine/sd/memory.ts';
import { formatBytes } from '../util/bytes.ts';

function formatDuration(ms: number): string {
  return ms % 60_000 === 0 ? `${ms / 60_000} min` : ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

/** A graph that does not validate; `issues` holds every problem, the message the first few. */
export class InvalidGraphError extends Error {
  constructor(readonly issues: ValidationIssue[]) {
    super(summarizeIssues(issues));
    this.name = 'InvalidGraphError';
  }
}

export interface GraphRunnerOptions {
  catalog: NodeCatalog;
  /** The data folder: uploads are read from it, results written to it. */
  dataDir: string;
  executionProvider: ExecutionProviderRequest;
  /** CUDA device index (`--gpu N`). */
  gpu?: number;
  /** Decodes the samplers' preview frames (`--preview-decoder`); the latent→RGB projection without it. */
  previewDecoder?: LatentPreviewDecoder;
  cache?: OutputCache;
  logger?: Logger;
  /** Where result files go (default: <dataDir>/results). */
  saveResult?: ResultSink;
  /** Folders Load Model may read besides <dataDir>/models and the project's models/ (`--models-root`). */
  modelRoots?: readonly string[];
  /** Most memory one job may need, by the estimate (default: 3/4 of the machine's, defaultMemoryBudget). */
  maxJobMemoryBytes?: number;
  /**
   * After a job, loaded models are released (with the memory onnxruntime keeps for them) when the
   * process holds more than this (default: half the job budget); the next job loads them again.
   */
  releaseModelsAboveBytes?: number;
  /**
   * After this long without a run, every loaded model (SD pipelines, CLIP, LPIPS) is released and its
   * memory goes back to the system; the next job loads them again. 0: never (the default here: tools
   * such as the bench keep their models; the studio and the worker use DEFAULT_RELEASE_IDLE_MS).
   */
  releaseIdleMs?: number;
  /**
   * The models the nodes load (SD pipelines, CLIP, LPIPS): runners given the same object share them
   * (and their releases wait for each other's runs). Default: this runner's own.
   */
  models?: LoadedModels;
}

/** Loaded models given back: after a job above the limit (`memory`), or after a quiet period (`idle`). */
export interface ModelRelease {
  why: 'memory' | 'idle';
  /** How many models were released. */
  released: number;
  /** The process's resident memory before and after. */
  rssBefore: number;
  rssAfter: number;
}

/** The default quiet period before loaded models are released (`--release-idle`). */
export const DEFAULT_RELEASE_IDLE_MS = 60_000;

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
  readonly maxJobMemoryBytes: number;
  /** Server folders and how clients see them, longest first (see publicMessage). */
  private readonly shownFolders: (readonly [folder: string, shown: string])[];
  private readonly releaseModelsAboveBytes: number;
  private readonly saveResult: ResultSink;
  private readonly logger?: Logger;
  private readonly releaseIdleMs: number;
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly releaseListeners = new Set<(e: ModelRelease) => void>();
  /** Graphs that passed validation here (the job submission's, then the run's: one validation per run). */
  private readonly validated: ValidatedGraphs;

  constructor(opts: GraphRunnerOptions) {
    const { dataDir } = opts;
    this.catalog = opts.catalog;
    this.validated = new ValidatedGraphs(opts.catalog);
    this.services = {
      dataDir,
      executionProvider: opts.executionProvider,
      ...(opts.gpu !== undefined ? { gpu: opts.gpu } : {}),
      ...(opts.previewDecoder ? { previewDecoder: opts.previewDecoder } : {}),
      modelRoots: [...defaultModelRoots(dataDir), ...(opts.modelRoots ?? []).map((r) => path.resolve(r))],
      readUpload: (name) => readUpload(dataDir, name),
      models: opts.models ?? new LoadedModels(),
    };
    this.shownFolders = [
      [path.resolve(dataDir), '<data>'] as const,
      [PROJECT_ROOT.replace(/[\\/]$/, ''), '<studio>'] as const,
      ...(opts.modelRoots ?? []).map((r) => [path.resolve(r), `<models-root ${path.basename(r)}>`] as const),
      [os.homedir(), '~'] as const,
    ]
      // A home of "/" (service accounts) would replace every slash.
      .filter(([folder]) => folder.length > 1)
      .sort((a, b) => b[0].length - a[0].length);
    this.maxJobMemoryBytes = opts.maxJobMemoryBytes ?? defaultMemoryBudget();
    this.releaseModelsAboveBytes = opts.releaseModelsAboveBytes ?? Math.floor(this.maxJobMemoryBytes / 2);
    // Cached outputs (inversions, latents, images) get an eighth of the job budget.
    this.cache = opts.cache ?? new OutputCache({ maxBytes: Math.floor(this.maxJobMemoryBytes / 8) });
    this.saveResult = opts.saveResult ?? resultSink(dataDir);
    this.logger = opts.logger;
    this.releaseIdleMs = opts.releaseIdleMs ?? 0;
  }

  /** Calls `listener` whenever this runner gives loaded models back; returns the unsubscribe. */
  onRelease(listener: (e: ModelRelease) => void): () => void {
    this.releaseListeners.add(listener);
    return () => void this.releaseListeners.delete(listener);
  }

  /** Stops the quiet-period timer (a runner that will not run again). */
  close(): void {
    clearTimeout(this.idleTimer);
  }

  /**
   * A failure or warning message as clients may see it: the server's folders (data, the studio, models
   * roots, the home folder) shown by name, whatever a library put in the message.
   */
  publicMessage(message: string): string {
    for (const [folder, shown] of this.shownFolders) message = message.split(folder).join(shown);
    return message;
  }

  /**
   * Every problem of a graph, and the graph parsed, migrated and checked when it has none. A graph that
   * passed here before (say at the job submission) is not validated again when it comes back to run.
   */
  check(raw: unknown, opts: { requireOutput?: boolean } = {}): ValidationResult {
    return this.validated.validate(raw, opts);
  }

  /** The graph parsed, migrated and checked; throws InvalidGraphError naming every problem. */
  validate(raw: unknown, opts: { requireOutput?: boolean } = {}): Graph {
    const v = this.check(raw, opts);
    if (!v.ok || !v.graph) throw new InvalidGraphError(v.issues);
    return v.graph;
  }

  /** The node ids a run of `graph` (validated) needs, in run order. */
  plan(graph: Graph, outputs?: string[]): string[] {
    return planRun(graph, this.catalog, outputs);
  }

  /**
   * What a run of `graph` (validated) will take, checked before it starts: each node's plan (a missing
   * upload, a refused model path fail here, as NodeFailedError) and the memory estimate against the
   * budget (over it: NodeFailedError of the node of the largest call, caused by a JobMemoryError).
   */
  async preflight(graph: Graph, outputs?: string[]): Promise<MemoryEstimate> {
    return checkMemory(await planJob(graph, this.catalog, this.services, outputs), this.maxJobMemoryBytes, this.catalog, graph);
  }

  /** Validates, checks and runs a graph; unchanged nodes come from the cache. */
  async run(raw: unknown, opts: RunOptions = {}): Promise<ExecuteSummary> {
    clearTimeout(this.idleTimer);
    this.services.models.activeRuns++;
    try {
      const graph = this.validate(raw);
      await this.preflight(graph, opts.outputs);
      try {
        return await this.execute(graph, opts);
      } finally {
        await this.giveMemoryBack();
      }
    } finally {
      this.services.models.activeRuns--;
      this.scheduleIdleRelease();
    }
  }

  /**
   * onnxruntime keeps the memory of a job's largest call for its sessions (the CPU arena); after a job
   * that left the process above the limit, release the loaded models so that memory goes back to the
   * system (measured in engine/sd/memory.ts).
   */
  private async giveMemoryBack(): Promise<void> {
    const rss = process.memoryUsage.rss();
    // Another runner sharing these models may be mid-job: only the last run out releases them.
    if (rss <= this.releaseModelsAboveBytes || this.services.models.activeRuns > 1) return;
    const released = await this.services.models.releaseAll();
    if (released > 0) {
      this.logger?.info(
        `released ${released} loaded model(s) after a job that left the server at ${formatBytes(rss)} (limit ${formatBytes(this.releaseModelsAboveBytes)}); the next job loads them again`,
      );
      this.announce({ why: 'memory', released, rssBefore: rss, rssAfter: process.memoryUsage.rss() });
    }
  }

  /** An idle server gives its models back: after `releaseIdleMs` without a run, every loaded model is released. */
  private scheduleIdleRelease(): void {
    clearTimeout(this.idleTimer);
    if (this.releaseIdleMs <= 0) return;
    this.idleTimer = setTimeout(() => void this.releaseIdle(), this.releaseIdleMs);
    this.idleTimer.unref();
  }

  private async releaseIdle(): Promise<void> {
    if (this.services.models.activeRuns > 0) return;
    const rssBefore = process.memoryUsage.rss();
    const released = await this.services.models.releaseAll();
    if (released === 0) return;
    const rssAfter = process.memoryUsage.rss();
    this.logger?.info(
      `released ${released} loaded model(s) after ${formatDuration(this.releaseIdleMs)} without a job: ${formatBytes(rssBefore)} → ${formatBytes(rssAfter)}; ` +
        'the next job loads them again (--release-idle)',
    );
    this.announce({ why: 'idle', released, rssBefore, rssAfter });
  }

  private announce(e: ModelRelease): void {
    for (const listener of [...this.releaseListeners]) listener(e);
  }

  private execute(graph: Graph, opts: RunOptions): Promise<ExecuteSummary> {
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

/**
 * The project's bench: runs the comparison template (one CycleDiffusion inversion shared by an
 * epsilon-merge sampler, an attention-merge sampler and two single-prompt samplers, plus pixel merge)
 * through the real catalog and executor, and measures what the performance rules promise:
 * - per-step time and UNet calls per sampler step (must be exactly one), rows per call;
 * - attention-merge step time relative to epsilon-merge step time on the same model;
 * - the share of step time spent outside onnxruntime (our TypeScript math, callbacks, previews);
 * - whole-run time of the inversion and of each sampler, and peak memory;
 * - a re-run after changing only a decoder prompt: the inversion must come from cache;
 * - previews on vs off: step previews are encoded the way the server does (off the sampler's path,
 *   dropping a frame while the previous one is still encoding), and must cost under 5% of run time.
 *   Two measures. The work previews add: the time the event handler takes on the sampler's thread
 *   (measured in the run) plus, per frame, the encode of that frame timed alone on an idle machine;
 *   as a share of the run, the promise is checked on it. And the wall-clock difference of runs with
 *   previews on and off, reported but not asserted: on a shared 2-core machine its run-to-run jitter
 *   (±10%) is larger than the effect.
 * Beside the graph runs, on the loaded pipeline: one UNet call at batch 1, 2 and 3, session creation
 * with an empty and a filled optimized-graph cache (unet-timing.ts), and on CUDA the peak GPU memory
 * (device-memory.ts). report.ts prints the table, checks the targets and writes one JSON line per figure.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createCatalog } from '../catalog.ts';
import type { ExecEvent, ExecuteSummary } from '../executor/executor.ts';
import { GraphRunner } from '../executor/graph-runner.ts';
import { withParams } from '../graph/with-params.ts';
import { encodePreview } from '../executor/preview.ts';
import { nodeDefinitions } from '../../nodes/index.ts';
import { STYLE_PRESETS } from '../../nodes/lib/presets.ts';
import type { Graph } from '../protocol/graph.ts';
import type { PreviewSource } from '../../nodes/types.ts';
import type { ModelValue } from '../../nodes/values.ts';
import type { PipelineStats, SdPipeline } from '../engine/sd/pipeline.ts';
import { loadPreviewDecoder, type BudgetedPreviewDecoder } from '../engine/sd/preview-decoder.ts';
import type { ExecutionProviderRequest } from '../engine/runtime/runtime.ts';
import { modelMemoryProfile } from '../engine/sd/memory.ts';
import { openSessionCount } from '../engine/runtime/inference-thread.ts';
import { PROJECT_ROOT } from '../util/project.ts';
import { sampleDeviceMemory } from './device-memory.ts';
import { printReport, type BenchReport, type SamplerMeasure } from './report.ts';
import { benchRegionControls, printControlCosts } from './region-controls.ts';
import { benchBatches, printBatches } from './batches.ts';
import { benchLoraPerRegion, printWeightSets } from './weight-sets.ts';
import { median, timeOptimizer, timeSessionCreation, timeUnetCalls, type OptimizerTiming, type SessionCreation } from './unet-timing.ts';

const SAMPLERS = ['invert', 'eps_merge', 'attn_merge', 'single_style1', 'single_style2'] as const;

export interface BenchOptions {
  /** Model folder, or "demo". */
  model: string;
  executionProvider: ExecutionProviderRequest;
  steps: number;
  skip: number;
  /** Longest image side (the built-in sample picture is 4:3; Load Image fits the sides to what the model takes). */
  maxSide: number;
  /** Repetitions of the previews off / on / every-step runs (interleaved). */
  previewReps: number;
  /** CUDA device index. */
  gpu?: number;
  /** A folder with taesd_decoder.onnx: previews are decoded by it, and a frame's cost is compared with the projection's. */
  previewDecoder?: string;
  /** Timed UNet calls per batch size (after one warm-up call); default 3. */
  unetReps?: number;
  /** The job memory budget (`--max-job-memory`): jobs estimated above it are refused; default 3/4 of the machine's. */
  maxJobMemory?: number;
  /** Measure session creation with an empty and a filled optimized-graph cache (loads the model twice more); default true. */
  sessionTiming?: boolean;
  /** Time each regional control against the plain merge (default on). */
  regionControls?: boolean;
  /** Time the epsilon merge with region 2 on a second weight set (a LoRA per region; loads the UNet once more; default on). */
  weightSets?: boolean;
  /** Time the UNet loaded with the graph optimizer and as exported (loads the model twice more); default true. */
  optimizerTiming?: boolean;
  /** Batch sizes whose pictures per second are timed (batches.ts); default 1, 2, 4; empty: none. */
  batches?: number[];
  log?: (line: string) => void;
}

class BenchRunner {
  readonly graphs: GraphRunner;
  pipeline?: SdPipeline;
  /** `model`: the folder the operator named on the command line, allowed as a models folder of its own. */
  constructor(dataDir: string, opts: BenchOptions, gpu: number, previewDecoder?: BudgetedPreviewDecoder) {
    const modelRoots = opts.model === 'demo' ? [] : [path.resolve(opts.model)];
    this.graphs = new GraphRunner({
      catalog: createCatalog(nodeDefinitions),
      dataDir,
      executionProvider: opts.executionProvider,
      gpu,
      previewDecoder,
      modelRoots,
      ...(opts.maxJobMemory !== undefined ? { maxJobMemoryBytes: opts.maxJobMemory } : {}),
      // Sessions are created once and reused by every run, as the bench measures them: the server's release
      // of loaded models after a big job (an SD 1.5 run at 512 px) would reload them inside the timed runs
      // and release the pipeline the UNet timing holds. The bench reports peak RSS instead.
      releaseModelsAboveBytes: Number.POSITIVE_INFINITY,
    });
  }

  /**
   * Runs a graph; `onEvent` sees every executor event; previews are encoded like the server does.
   * `handlerMs` is the time the preview handler held the sampler's thread; `lastFrame` the last frame sent.
   */
  async run(
    graph: Graph,
    previewIntervalMs: number,
    onEvent?: (e: ExecEvent) => void,
  ): Promise<{ summary: ExecuteSummary; frames: number; offered: number; handlerMs: number; lastFrame?: PreviewSource }> {
    const encoding = new Set<string>();
    const pending: Promise<unknown>[] = [];
    let frames = 0;
    let offered = 0;
    let handlerMs = 0;
    let lastFrame: PreviewSource | undefined;
    const summary = await this.graphs.run(graph, {
      jobId: 'bench',
      previewIntervalMs,
      emit: (e) => {
        if (e.type === 'node:preview') offered++;
        if (e.type === 'node:preview' && !encoding.has(e.nodeId)) {
          const t = performance.now();
          encoding.add(e.nodeId);
          frames++;
          lastFrame = e.source;
          pending.push(encodePreview(e.source).finally(() => encoding.delete(e.nodeId)));
          handlerMs += performance.now() - t;
        }
        onEvent?.(e);
      },
    });
    await Promise.all(pending);
    const model = this.graphs.cache.get(summary.keys['model']!)?.outputs['model'] as ModelValue | undefined;
    this.pipeline ??= await model?.pipeline.acquire();
    return { summary, frames, offered, handlerMs, lastFrame };
  }
}

/** A preview-interval run of the epsilon-merge sampler alone (see previewRuns). */
interface TimedRun {
  ms: number;
  frames: number;
  offered: number;
  handlerMs: number;
}

/** The runs with previews off, at the server's interval and at every step, and the last frame any of them sent. */
interface PreviewRuns {
  off: TimedRun[];
  on: TimedRun[];
  every: TimedRun[];
  frame: PreviewSource;
}

/** The comparison template at the bench's model, image size and steps. */
async function comparisonGraph(opts: BenchOptions): Promise<Graph> {
  const template = JSON.parse(await readFile(path.join(PROJECT_ROOT, 'graphs', 'comparison.json'), 'utf8')) as Graph;
  return withParams(template, {
    LoadModel: { model: opts.model === 'demo' ? 'demo' : path.resolve(opts.model) },
    LoadImage: { max_side: opts.maxSide },
    Invert: { steps: opts.steps, skip: opts.skip },
  });
}

/** Warm-up outside the measurements: session creation, first-run graph optimisation, text encodings. */
async function warmUp(runner: BenchRunner, graph: Graph, opts: BenchOptions, log: (line: string) => void): Promise<SdPipeline> {
  const tw = performance.now();
  await runner.run(withParams(graph, { Invert: { steps: opts.skip + 2 } }), Infinity);
  log(`warm-up run done (${((performance.now() - tw) / 1000).toFixed(1)} s: sessions, attention-merge rewrite, first calls); measuring`);
  if (!runner.pipeline) throw new Error('the bench could not reach the loaded pipeline');
  return runner.pipeline;
}

/** 1) The first full run with previews as the server sends them, everything recomputed; per-sampler UNet accounting. */
async function firstRun(runner: BenchRunner, pipe: SdPipeline, graph: Graph, log: (line: string) => void) {
  runner.graphs.cache.clear(); // recompute everything but keep sessions
  const before = new Map<string, { stats: PipelineStats; t: number }>();
  const measures: SamplerMeasure[] = [];
  const progress = new Map<string, number>();
  const t0 = performance.now();
  const first = await runner.run(graph, 250, (e) => {
    if (e.type === 'node:started') before.set(e.nodeId, { stats: { ...pipe.stats }, t: performance.now() });
    if (e.type === 'node:progress') progress.set(e.nodeId, e.step);
    if (e.type === 'node:done' && !e.cached && (SAMPLERS as readonly string[]).includes(e.nodeId)) {
      const m = samplerMeasure(e.nodeId, before.get(e.nodeId)!, pipe.stats, progress.get(e.nodeId) ?? 0);
      measures.push(m);
      log(`  ${m.node}: ${m.steps} steps, ${m.msPerStep.toFixed(1)} ms/step (UNet ${m.ortMsPerStep.toFixed(1)} ms/step, ${m.rowsPerCall} rows/call)`);
    }
  });
  const firstRunMs = performance.now() - t0;
  const imageNode = first.summary.keys['image']
    ? (runner.graphs.cache.get(first.summary.keys['image'])?.outputs['image'] as { width: number; height: number })
    : undefined;
  const image = { width: imageNode?.width ?? 0, height: imageNode?.height ?? 0 };
  log(`first run done (${(firstRunMs / 1000).toFixed(1)} s); timing UNet calls at batch 1, 2, 3`);
  return { measures, firstRunMs, image };
}

/** What one sampler node cost, from the pipeline's counters when it started and now. */
function samplerMeasure(node: string, before: { stats: PipelineStats; t: number }, now: PipelineStats, steps: number): SamplerMeasure {
  const wallMs = performance.now() - before.t;
  const calls = now.unetCalls - before.stats.unetCalls;
  const rows = now.unetRows - before.stats.unetRows;
  const ortMs = now.unetMs - before.stats.unetMs;
  return {
    node,
    steps,
    wallMs,
    msPerStep: wallMs / steps,
    unetCalls: calls,
    unetCallsPerStep: calls / steps,
    rowsPerCall: rows / calls,
    ortMsPerStep: ortMs / steps,
    outsideOrtShare: Math.max(0, 1 - ortMs / wallMs),
  };
}

/** 2) A re-run after changing only a decoder prompt: the inversion must come from the cache. */
async function rerunWithNewPrompt(runner: BenchRunner, graph: Graph): Promise<BenchReport['rerun']> {
  const changed = withParams(graph, { style1: { text: STYLE_PRESETS.find((p) => p.label === 'Mosaic')!.value } });
  const t1 = performance.now();
  const rerun = await runner.run(changed, 250);
  const ms = performance.now() - t1;
  const { computed, cached } = rerun.summary;
  return { changed: 'style1 prompt', ms, computed, cached, inversionFromCache: cached.includes('invert') && !computed.includes('invert') };
}

/** 3) Previews off vs on vs every step: the epsilon-merge sampler alone, its inversion cached, repeated and interleaved. */
async function previewRuns(runner: BenchRunner, graph: Graph, reps: number): Promise<PreviewRuns> {
  const samplerOnly = (guidance: number) => withParams(graph, { eps_merge: { guidance } });
  const runs: Omit<PreviewRuns, 'frame'> = { off: [], on: [], every: [] };
  let frame: PreviewSource | undefined;
  let g = 20;
  const time = async (interval: number): Promise<TimedRun> => {
    g += 0.5; // a new guidance value: the sampler recomputes, everything upstream is cached
    const t = performance.now();
    const r = await runner.run(samplerOnly(g), interval);
    frame = r.lastFrame ?? frame;
    return { ms: performance.now() - t, frames: r.frames, offered: r.offered, handlerMs: r.handlerMs };
  };
  for (let i = 0; i < reps; i++) {
    runs.off.push(await time(Infinity));
    runs.on.push(await time(250));
    runs.every.push(await time(0));
  }
  if (!frame) throw new Error('the bench saw no preview frame');
  return { ...runs, frame };
}

/** Encode time of one preview frame, alone on the machine (ms, median of 20). */
async function timeEncodes(source: PreviewSource): Promise<number> {
  const encodes: number[] = [];
  for (let i = 0; i < 20; i++) {
    const t = performance.now();
    await encodePreview(source);
    encodes.push(performance.now() - t);
  }
  return median(encodes);
}

/**
 * What previews cost: the fastest runs off, on and every step, and the work they add (handler time plus
 * each frame's encode timed alone) as a share of the run; with a preview decoder, its frame against the projection's.
 */
async function previewFigures(runs: PreviewRuns, opts: BenchOptions, previewDecoder?: BudgetedPreviewDecoder): Promise<BenchReport['previews']> {
  const { frame } = runs;
  const encodeMs = await timeEncodes(frame);
  const decoded = frame.kind === 'latent' && frame.decoder !== undefined;
  const projected: PreviewSource = frame.kind === 'latent' ? { kind: 'latent', data: frame.data, width: frame.width, height: frame.height } : frame;
  const decoder =
    previewDecoder && opts.previewDecoder
      ? {
          dir: opts.previewDecoder,
          frameMs: decoded && previewDecoder.usable ? encodeMs : NaN,
          projectionFrameMs: await timeEncodes(projected),
          decodes: previewDecoder.decoder.stats.calls,
        }
      : null;
  const workOf = (r: TimedRun) => r.handlerMs + r.frames * encodeMs;
  const work = (timed: TimedRun[]) => median(timed.map(workOf));
  const share = (timed: TimedRun[]) => median(timed.map((r) => workOf(r) / r.ms));
  const fastest = (timed: TimedRun[]) => Math.min(...timed.map((r) => r.ms));
  const [offMs, onMs, everyStepMs] = [fastest(runs.off), fastest(runs.on), fastest(runs.every)];
  return {
    offMs,
    onMs,
    everyStepMs,
    overhead: onMs / offMs - 1,
    everyStepOverhead: everyStepMs / offMs - 1,
    framesOn: median(runs.on.map((r) => r.frames)),
    framesEveryStep: median(runs.every.map((r) => r.frames)),
    offeredEveryStep: median(runs.every.map((r) => r.offered)),
    encodeMs,
    decoder,
    workMs: work(runs.on),
    workShare: share(runs.on),
    everyStepWorkMs: work(runs.every),
    everyStepWorkShare: share(runs.every),
  };
}

/** 4) Loading figures, after the runs (their sessions freed first): the UNet optimized vs as exported, and session creation. */
async function loadTimings(
  runner: BenchRunner,
  pipe: SdPipeline,
  opts: BenchOptions,
  gpu: number,
  latent: { width: number; height: number },
  log: (line: string) => void,
) {
  let optimizer: OptimizerTiming | null = null;
  if (opts.optimizerTiming !== false) {
    log('timing the UNet optimized and as exported (each loaded fresh, one at a time)');
    await runner.graphs.services.models.releaseAll(); // free the runs' sessions before loading the UNet twice more
    optimizer = await timeOptimizer(pipe.info.dir, pipe.info.executionProvider, gpu, latent.width, latent.height, opts.unetReps ?? 3);
  }
  let sessionCreation: SessionCreation | null = null;
  if (opts.sessionTiming !== false) {
    log('timing session creation (cold, then from the optimized-graph cache)');
    await runner.graphs.services.models.releaseAll(); // the runs are done: free their sessions before loading the model twice more
    sessionCreation = await timeSessionCreation(pipe.info.dir, pipe.info.executionProvider, gpu);
  }
  return { optimizer, sessionCreation };
}

/** The epsilon-merge, attention-merge and inversion samplers' figures, and how the two merges compare. */
function samplerComparison(measures: SamplerMeasure[]) {
  const eps = measures.find((m) => m.node === 'eps_merge');
  const attn = measures.find((m) => m.node === 'attn_merge');
  const inv = measures.find((m) => m.node === 'invert');
  return {
    dualStyleRunMs: (inv?.wallMs ?? 0) + (eps?.wallMs ?? 0),
    attentionVsEpsilon: eps && attn ? { msPerStep: attn.msPerStep / eps.msPerStep, ortMsPerStep: attn.ortMsPerStep / eps.ortMsPerStep } : null,
  };
}

/**
 * Runs the bench: a warm-up, then the phases numbered in the file's header, in an order that keeps each
 * measurement apart from the others' loads (the model loaded fresh only after every run is timed).
 */
export async function runBench(opts: BenchOptions): Promise<BenchReport> {
  const log = opts.log ?? (() => {});
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'dualstyle-bench-'));
  const gpu = opts.gpu ?? 0;
  const previewDecoder = opts.previewDecoder ? await loadPreviewDecoder(opts.previewDecoder, opts.executionProvider, { deviceId: gpu }) : undefined;
  try {
    const runner = new BenchRunner(dataDir, opts, gpu, previewDecoder);
    const graph = await comparisonGraph(opts);
    const pipe = await warmUp(runner, graph, opts, log);
    const device = pipe.info.executionProvider === 'cuda' || pipe.info.executionProvider === 'tensorrt' ? sampleDeviceMemory() : null;
    const { measures, firstRunMs, image } = await firstRun(runner, pipe, graph, log);
    const f = pipe.info.vaeDownsample;
    const latent = { width: image.width / f, height: image.height / f };
    const unetCalls = await timeUnetCalls(pipe, latent.width, latent.height, [1, 2, 3], opts.unetReps ?? 3, log);
    // What each regional control costs per step (region-controls.ts).
    const regionControls = opts.regionControls === false ? null : await benchRegionControls(pipe, latent.width, latent.height, opts.unetReps ?? 3);
    // A LoRA per region: one UNet call per distinct weight set per step (weight-sets.ts).
    const weightSets = opts.weightSets === false ? null : await benchLoraPerRegion(pipe, gpu, latent.width, latent.height, opts.unetReps ?? 3);
    // Pictures per second at batch 1, 2, 4 (batches.ts).
    const batches = await benchBatches(pipe, latent.width, latent.height, opts.steps, opts.skip, opts.batches);
    const rerun = await rerunWithNewPrompt(runner, graph);
    const runs = await previewRuns(runner, graph, opts.previewReps);
    const previews = await previewFigures(runs, opts, previewDecoder);
    const peakDeviceMiB = device ? await device.stop() : null;
    const weightsMiB = (await modelMemoryProfile(pipe.info.dir, { label: opts.model })).weightsBytes / 2 ** 20;
    const sessionsOpen = openSessionCount();
    const { optimizer, sessionCreation } = await loadTimings(runner, pipe, opts, gpu, latent, log);
    const { dualStyleRunMs, attentionVsEpsilon } = samplerComparison(measures);
    const report: BenchReport = {
      model: opts.model,
      executionProvider: pipe.info.executionProvider,
      gpu,
      at: new Date().toISOString(),
      unetCalls,
      sessionCreation,
      optimizer,
      dualStyleRunMs,
      peakDeviceMiB,
      image,
      latent,
      steps: opts.steps,
      skip: opts.skip,
      samplers: measures,
      batches,
      weightSets,
      attentionVsEpsilon,
      firstRunMs,
      peakRssMiB: process.resourceUsage().maxRSS / 1024,
      weightsMiB,
      sessionsOpen,
      rerun,
      previews,
    };
    const medians = (timed: TimedRun[]) => median(timed.map((r) => r.ms));
    printReport(report, log, { medianOff: medians(runs.off), medianOn: medians(runs.on) });
    if (regionControls) printControlCosts(regionControls, log);
    if (weightSets) printWeightSets(weightSets, log);
    printBatches(batches, log);
    return report;
  } finally {
    await previewDecoder?.release();
    await rm(dataDir, { recursive: true, force: true });
  }
}

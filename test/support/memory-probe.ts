/**
 * Memory measurements in a process of their own (peak RSS is per process): prints one JSON line.
 *   call <unet|vae-decode|vae-encode> <latentSide> <rows>   one call of the demo model
 *   job <maxSide> <steps> <releaseAboveMiB>                 the epsilon-merge template on the demo model
 *   merge <latentSide> <styles>                             one call of the demo's attention-merge UNet of N
 *                                                           styles, rows [∅, merged] (the rewrite loaded first)
 *   idle <maxSide> <steps> <idleMs>                         the job of `job`, never released for its size; then
 *                                                           waits for the release after <idleMs> without a job
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { nodeDefinitions } from '../../nodes/index.ts';
import { createCatalog } from '../../server/catalog.ts';
import { GraphRunner } from '../../server/executor/graph-runner.ts';
import { withParams } from '../../server/graph/with-params.ts';
import { SdPipeline } from '../../server/engine/sd/pipeline.ts';
import { ensureDemoModel } from '../../server/models/demo/index.ts';
import { PROJECT_ROOT } from '../../server/util/project.ts';
import type { Graph } from '../../server/protocol/graph.ts';

const MiB = 1024 * 1024;
const peak = () => process.resourceUsage().maxRSS * 1024;
const rss = () => process.memoryUsage.rss();
/**
 * A full garbage collection (the probe runs with --expose-gc): the typed arrays a finished job dropped (its
 * 1024 px images, the tensors of its calls) are otherwise freed whenever V8 next collects, so a measure of
 * what the process kept would depend on when that happens.
 */
const collectGarbage = () => (globalThis as { gc?: () => void }).gc?.();

async function call(stage: string, side: number, rows: number): Promise<object> {
  // The graph as exported: the estimate bounds the unfused attention (the fused one, optimizer/, peaks lower: 216 against 472 MiB here).
  const pipe = await SdPipeline.load(await ensureDemoModel(), { executionProvider: 'cpu', optimize: false });
  const C = pipe.info.latentChannels;
  const loaded = rss();
  if (stage === 'unet') {
    const ehs = new Float32Array(rows * pipe.info.textLength * pipe.info.textDim);
    await pipe.unet(new Float32Array(rows * C * side * side).fill(0.1), rows, side, side, 500, ehs);
  } else if (stage === 'vae-decode') {
    await pipe.vaeDecode(new Float32Array(C * side * side), side, side);
  } else {
    const S = side * pipe.info.vaeDownsample;
    await pipe.vaeEncode({ width: S, height: S, data: new Float32Array(3 * S * S).fill(0.5) });
  }
  return { loaded, peak: peak() };
}

async function merge(side: number, styles: number): Promise<object> {
  // The graph as exported: the estimate bounds the unfused attention (the fused one, optimizer/, peaks lower: 216 against 472 MiB here).
  const pipe = await SdPipeline.load(await ensureDemoModel(), { executionProvider: 'cpu', optimize: false });
  const { latentChannels: C, textLength, textDim } = pipe.info;
  const rows = 2;
  const embedding = () => new Float32Array(rows * textLength * textDim).fill(0.01);
  const weights = new Float32Array((styles - 1) * side * side).fill(1 / styles);
  const extras = await pipe.attentionMergeExtras(Array.from({ length: styles - 1 }, embedding), rows, weights, side, side);
  const loaded = rss();
  await pipe.unet(new Float32Array(rows * C * side * side).fill(0.1), rows, side, side, 500, embedding(), extras);
  return { loaded, peak: peak() };
}

async function job(maxSide: number, steps: number, releaseAboveMiB: number): Promise<object> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'dualstyle-memprobe-'));
  try {
    const runner = new GraphRunner({
      catalog: createCatalog(nodeDefinitions),
      dataDir,
      executionProvider: 'cpu',
      releaseModelsAboveBytes: releaseAboveMiB * MiB,
    });
    const template = JSON.parse(await readFile(path.join(PROJECT_ROOT, 'graphs', 'epsilon-merge.json'), 'utf8')) as Graph;
    const small = withParams(template, { LoadImage: { max_side: 64 }, Invert: { steps: 3, skip: 1 } });
    const big = withParams(template, { LoadImage: { max_side: maxSide }, Invert: { steps, skip: 1 } });
    await runner.run(small); // the model loaded, everything warm: the baseline
    collectGarbage();
    const before = rss();
    const cachedBefore = runner.cache.bytes;
    let release: { released: number; rssBefore: number; rssAfter: number } | undefined;
    runner.onRelease((e) => e.why === 'memory' && (release = e));
    await runner.run(big); // the release (when the job left the process above the limit) is part of the run
    collectGarbage();
    // The output cache keeps the big job's outputs (its 1024 px images) on purpose: not the sessions' memory.
    const cached = runner.cache.bytes - cachedBefore;
    return { before, peak: peak(), held: release?.rssBefore ?? rss(), released: release?.released ?? 0, after: rss(), cached };
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function idle(maxSide: number, steps: number, idleMs: number): Promise<object> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'dualstyle-memprobe-'));
  try {
    const runner = new GraphRunner({
      catalog: createCatalog(nodeDefinitions),
      dataDir,
      executionProvider: 'cpu',
      releaseModelsAboveBytes: Number.MAX_SAFE_INTEGER,
      releaseIdleMs: idleMs,
    });
    const template = JSON.parse(await readFile(path.join(PROJECT_ROOT, 'graphs', 'epsilon-merge.json'), 'utf8')) as Graph;
    const small = withParams(template, { LoadImage: { max_side: 64 }, Invert: { steps: 3, skip: 1 } });
    const big = withParams(template, { LoadImage: { max_side: maxSide }, Invert: { steps, skip: 1 } });
    await runner.run(small);
    collectGarbage();
    const before = rss();
    const cachedBefore = runner.cache.bytes;
    const release = new Promise<{ released: number; rssBefore: number; rssAfter: number }>((resolve) =>
      runner.onRelease((e) => e.why === 'idle' && resolve(e)),
    );
    await runner.run(big);
    const held = rss();
    const loadedHeld = runner.services.models.pipelines.size;
    // The runner's timer does not keep a process alive (a server has its sockets for that); this does.
    const keepAlive = setInterval(() => undefined, 1000);
    const released = await release;
    clearInterval(keepAlive);
    collectGarbage();
    return {
      cached: runner.cache.bytes - cachedBefore,
      before,
      peak: peak(),
      held,
      loadedHeld,
      released: released.released,
      releasedFrom: released.rssBefore,
      after: rss(),
      loadedAfter: runner.services.models.pipelines.size,
    };
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

const [mode, ...args] = process.argv.slice(2);
const nums = args.map(Number);
const result =
  mode === 'call'
    ? await call(args[0]!, nums[1]!, nums[2]!)
    : mode === 'merge'
      ? await merge(nums[0]!, nums[1]!)
      : mode === 'idle'
        ? await idle(nums[0]!, nums[1]!, nums[2]!)
        : await job(nums[0]!, nums[1]!, nums[2]!);
console.log(JSON.stringify(result));
process.exit(0);

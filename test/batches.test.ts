/**
 * Batches (diffusion/batch.ts) on the built-in demo model: B seeds invert and decode in one UNet call per
 * step with rows × B, and picture k of a batch is the batch-of-one picture of seed + k (single prompt,
 * epsilon merge and attention merge), within the rounding of a larger call. A failing picture stops the
 * batch with its error. The same on the reference tiny-sd export. Through the nodes: Invert's batch gives Save Image one file per seed.
 */
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeBatch, inLockstep, invertBatch } from '../server/engine/diffusion/batch.ts';
import { decode, invert, type CycleCode } from '../server/engine/diffusion/cycle.ts';
import { CancelledError } from '../server/engine/errors.ts';
import { attentionMerge, epsilonMerge, singlePrompt, type EpsilonRule } from '../server/engine/diffusion/guidance.ts';
import { seededNoise } from '../server/engine/diffusion/noise.ts';
import { SdPipeline } from '../server/engine/sd/pipeline.ts';
import { ensureDemoModel } from '../server/models/demo/index.ts';
import { resultsDir } from '../server/store/paths.ts';
import type { ModelMemoryProfile } from '../server/engine/sd/memory.ts';
import { invertNode } from '../nodes/invert.ts';
import { epsilonMergeSampler, singlePromptSampler } from '../nodes/samplers.ts';
import { vaeDecode } from '../nodes/vae.ts';
import type { NodePlan, Services } from '../nodes/types.ts';
import { maxAbs, maxAbsDiff, seededValues } from './support/numeric.ts';
import { loadTemplate, Runner, shrink, tinySd, withParams } from './support/pipeline-harness.ts';

/** Left and right halves: style 1 on the left. */
function halves(w: number, h: number): Float32Array[] {
  const left = new Float32Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w / 2; x++) left[y * w + x] = 1;
  return [left, left.map((v) => 1 - v)];
}

describe('batches on the demo model', () => {
  let tmp: string;
  let pipe: SdPipeline;
  let source: Float32Array;
  let styles: Float32Array[];
  const [w, h] = [12, 8];
  const x0 = seededValues(4 * w * h, 3);
  const opts = { guidance: 1, steps: 10, skip: 4, eta: 0.1 };
  const R = opts.steps - opts.skip;
  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'dss-batches-'));
    const dir = path.join(tmp, 'demo');
    await cp(await ensureDemoModel(), dir, { recursive: true, filter: (src) => !/attention-merge/.test(path.basename(src)) });
    pipe = await SdPipeline.load(dir, { executionProvider: 'cpu' });
    const text = async (p: string) => (await pipe.encodeText(p)).embedding;
    source = await text('a photo of a house');
    styles = await Promise.all(['a swirling painting', 'a mosaic of tiles'].map(text));
  });
  afterAll(async () => {
    await pipe?.release();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  /** UNet calls and rows per call of `run`. */
  async function counted<T>(run: () => Promise<T>): Promise<{ result: T; calls: number; rows: number }> {
    const before = { ...pipe.stats };
    const result = await run();
    const calls = pipe.stats.unetCalls - before.unetCalls;
    return { result, calls, rows: (pipe.stats.unetRows - before.unetRows) / calls };
  }

  it('B seeds: one call per step with rows × B, and picture k is the inversion and decode of seed + k', async () => {
    const seed = 40;
    const B = 3;
    const one = await Promise.all(Array.from({ length: B }, (_, k) => invert(pipe, x0, w, h, { source, ...opts, noise: seededNoise(seed + k) })));
    const inverted = await counted(() =>
      invertBatch(
        pipe,
        x0,
        w,
        h,
        { source, ...opts },
        Array.from({ length: B }, (_, k) => seededNoise(seed + k)),
      ),
    );
    expect({ calls: inverted.calls, rows: inverted.rows }).toEqual({ calls: R, rows: B });
    const codes = inverted.result;
    for (let k = 0; k < B; k++) {
      expect(codes[k]!.z.length).toBe(R + 1);
      for (let i = 0; i <= R; i++) expect(maxAbsDiff(codes[k]!.z[i]!, one[k]!.z[i]!)).toBeLessThan(1e-3);
    }
    // Different seeds, different codes.
    expect(maxAbsDiff(codes[0]!.z[1]!, codes[1]!.z[1]!)).toBeGreaterThan(0.1);

    const rules: [EpsilonRule, number][] = [
      [singlePrompt(styles[0]!, 7.5), 2],
      [epsilonMerge(styles, 7.5, halves(w, h)), 3],
      [attentionMerge(styles, 7.5, halves(w, h)), 2],
    ];
    for (const [rule, rows] of rules) {
      const alone = await Promise.all(one.map((code) => decode(pipe, code, rule)));
      const batched = await counted(() => decodeBatch(pipe, one, rule));
      expect({ rule: rule.name, calls: batched.calls, rows: batched.rows }).toEqual({ rule: rule.name, calls: R, rows: rows * B });
      for (let k = 0; k < B; k++) {
        const tol = 1e-4 * Math.max(1, maxAbs(alone[k]!));
        expect(maxAbsDiff(batched.result[k]!, alone[k]!), `${rule.name} picture ${k}`).toBeLessThan(tol);
      }
    }
  });

  it('a batch of one is the plain sampler, bit for bit', async () => {
    const code = await invert(pipe, x0, w, h, { source, ...opts, noise: seededNoise(5) });
    const rule = epsilonMerge(styles, 7.5, halves(w, h));
    const [batched] = await decodeBatch(pipe, [code], rule);
    expect(batched).toEqual(await decode(pipe, code, rule));
  });

  it('a picture that fails stops the batch with its error', async () => {
    const code: CycleCode = await invert(pipe, x0, w, h, { source, ...opts, noise: seededNoise(6) });
    const broken: CycleCode = { ...code, z: code.z.slice(0, 2) };
    await expect(decodeBatch(pipe, [code, broken], singlePrompt(styles[0]!, 7.5))).rejects.toThrow(/latent code has 2 arrays/);
    await expect(inLockstep(pipe, 9, async () => 0)).rejects.toThrow(/1 to 8 pictures, got 9/);
    // Cancelled after the first step: every picture stops, none waits for a round that never comes.
    const controller = new AbortController();
    const before = pipe.stats.unetCalls;
    const cancelled = decodeBatch(pipe, [code, code], singlePrompt(styles[0]!, 7.5), { signal: controller.signal, onStep: () => controller.abort() });
    await expect(cancelled).rejects.toThrow(CancelledError);
    expect(pipe.stats.unetCalls - before).toBe(1);
  });
});

describe('a batch through the nodes', () => {
  it('Invert batch 2 → attention merge → VAE Decode → Save Image: two files, picture k the batch-of-one run of seed + k', async () => {
    const r = await Runner.create();
    const graph = shrink(await loadTemplate('attention-merge'), 'demo', 6, 2);
    const pixels = async (url: string) =>
      (
        await sharp(await readFile(path.join(resultsDir(r.services.dataDir), path.basename(url))))
          .raw()
          .toBuffer()
      ).valueOf();
    const run = async (seed: number, batch: number) => {
      const s = await r.run(withParams(graph, { Invert: { seed, batch } }));
      return Promise.all(s.results['save_attn']!.images!.map((i) => pixels(i.url)));
    };
    const batched = await run(21, 2);
    expect(batched).toHaveLength(2);
    const alone = [...(await run(21, 1)), ...(await run(22, 1))];
    expect(alone).toHaveLength(2);
    for (let k = 0; k < 2; k++) expect(maxAbsDiff(batched[k]!, alone[k]!), `picture ${k}`).toBeLessThanOrEqual(1);
    expect(maxAbsDiff(batched[0]!, batched[1]!)).toBeGreaterThan(1);
  });
});

describe('a batch in the plan', () => {
  it('Invert and the samplers plan rows × B UNet calls, and the batch travels to VAE Decode', async () => {
    const model = { model: { label: 'm', vaeDownsample: 8 } as unknown as ModelMemoryProfile };
    const services = {} as Services;
    const unetRows = (plan: NodePlan) => plan.work?.find((w) => w.stage === 'unet')?.rows;
    const planOf = (node: { plan?: unknown }, params: object, inputs: object) =>
      (node.plan as (a: object) => NodePlan | Promise<NodePlan>)({ params: { ...params }, inputs, services });
    const invertParams = { steps: 10, skip: 2, eta: 0.1, guidance: 1, seed: 0, attentionMaps: false };
    const inverted = await planOf(invertNode, { ...invertParams, batch: 4 }, { model, latent: { width: 8, height: 6 } });
    expect(unetRows(inverted)).toBe(4);
    expect(inverted.outputs!['inversion']).toEqual({ width: 8, height: 6, pictures: 4 });
    expect((await planOf(invertNode, { ...invertParams, batch: 1 }, { model, latent: { width: 8, height: 6 } })).outputs!['inversion']).toEqual({
      width: 8,
      height: 6,
    });
    const inversion = inverted.outputs!['inversion'];
    const merged = await planOf(epsilonMergeSampler, { styles: 2, guidance: 7.5, baseRatio: 0.2 }, { model, inversion });
    expect(unetRows(merged)).toBe(3 * 4);
    expect(unetRows(await planOf(singlePromptSampler, { guidance: 7.5 }, { model, inversion }))).toBe(2 * 4);
    const decoded = await planOf(vaeDecode, {}, { model, latent: merged.outputs!['latent'] });
    expect(decoded.outputs!['image']).toEqual({ width: 64, height: 48, pictures: 4 });
    expect(invertNode.check!({ ...invertParams, batch: 2, attentionMaps: true })).toEqual([{ field: 'batch', message: expect.stringMatching(/must be 1/) }]);
  });
});

const hasTinySd = existsSync(path.join(tinySd, 'reference/manifest.json'));
if (!hasTinySd) console.warn(`batches: fixture ${tinySd} not found; the tiny-sd test is skipped`);

describe.skipIf(!hasTinySd)('batches on the reference tiny-sd export', () => {
  it('two seeds decode in one call per step with rows × 2, each as alone (epsilon and attention merge)', async () => {
    const cache = await mkdtemp(path.join(os.tmpdir(), 'dss-batches-tiny-'));
    const pipe = await SdPipeline.load(tinySd, { executionProvider: 'cpu', attentionCacheDir: cache });
    try {
      const [w, h] = [8, 8];
      const text = async (p: string) => (await pipe.encodeText(p)).embedding;
      const [source, c1, c2] = await Promise.all(['a photo of a house', 'a painting', 'a mosaic'].map(text));
      const x0 = seededValues(pipe.info.latentChannels * w * h, 9);
      const codes = await invertBatch(pipe, x0, w, h, { source: source!, guidance: 1, steps: 6, skip: 2, eta: 0.1 }, [seededNoise(1), seededNoise(2)]);
      for (const rule of [epsilonMerge([c1!, c2!], 7.5, halves(w, h)), attentionMerge([c1!, c2!], 7.5, halves(w, h))]) {
        const alone = await Promise.all(codes.map((code) => decode(pipe, code, rule)));
        const before = { ...pipe.stats };
        const batched = await decodeBatch(pipe, codes, rule);
        expect(pipe.stats.unetCalls - before.unetCalls, rule.name).toBe(4);
        for (let k = 0; k < 2; k++) expect(maxAbsDiff(batched[k]!, alone[k]!), `${rule.name} picture ${k}`).toBeLessThan(1e-4 * Math.max(1, maxAbs(alone[k]!)));
      }
    } finally {
      await pipe.release();
      await rm(cache, { recursive: true, force: true });
    }
  });
});

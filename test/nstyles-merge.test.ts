/**
 * Both merge methods with N styles, on the built-in demo model and the reference tiny-sd export:
 * - one UNet call per step, N + 1 rows for epsilon merge (N at guidance 1; a prompt shared by regions is one
 *   row), 2 (1) for attention merge;
 * - one-hot regions: epsilon merge's ê is, region by region, each style's own ê, exactly;
 * - a mask of all one style is that style's single-prompt decode (epsilon merge exactly, attention merge
 *   within the rewritten graph's rounding);
 * - the attention-merge UNet of three styles: all weight on style k is the stock UNet with c_k, for each k;
 *   one-hot regions give each region its style's attention exactly where attention is all there is
 *   (one cross-attention block), and the nearest of the styles' outputs in a whole UNet;
 * - one rewritten file per number of styles, cached beside the UNet.
 */
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { conditioningInput, MASK_INPUT, rewriteOnnxBytes } from '../server/engine/attention/rewrite.ts';
import { prepareAttentionMergeUnet } from '../server/engine/attention/unet-cache.ts';
import { decode, invert, type CycleCode } from '../server/engine/diffusion/cycle.ts';
import { attentionMerge, epsilonMerge, singlePrompt } from '../server/engine/diffusion/guidance.ts';
import { seededNoise } from '../server/engine/diffusion/noise.ts';
import { readNpyFloat32 } from '../server/conformance/npy.ts';
import { ort } from '../server/engine/runtime/runtime.ts';
import { SdPipeline } from '../server/engine/sd/pipeline.ts';
import { ensureDemoModel } from '../server/models/demo/index.ts';
import { attentionBlockGraph } from './support/attention-block.ts';
import { maxAbs, maxAbsDiff, seededValues } from './support/numeric.ts';
import { tinySd } from './support/pipeline-harness.ts';

const hasFixture = existsSync(path.join(tinySd, 'reference/manifest.json'));
if (!hasFixture) console.warn(`nstyles-merge: fixture ${tinySd} not found; the tiny-sd tests are skipped`);

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'dss-nstyles-'));
});
afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** N weight planes of a w×h grid: one-hot vertical bands of equal width, style k in band k. */
function bands(n: number, w: number, h: number): Float32Array[] {
  return Array.from({ length: n }, (_, k) => {
    const plane = new Float32Array(w * h);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if (Math.floor((x * n) / w) === k) plane[y * w + x] = 1;
    return plane;
  });
}

/** Every weight on style k. */
function allOf(k: number, n: number, w: number, h: number): Float32Array[] {
  return Array.from({ length: n }, (_, j) => new Float32Array(w * h).fill(j === k ? 1 : 0));
}

/** Indices of the latent [C, h, w] in band k of n (every channel). */
function bandIndices(k: number, n: number, C: number, w: number, h: number): number[] {
  const out: number[] = [];
  for (let c = 0; c < C; c++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if (Math.floor((x * n) / w) === k) out.push(c * w * h + y * w + x);
  return out;
}

describe('N-style merging on the demo model', () => {
  let pipe: SdPipeline;
  let code: CycleCode;
  let styles: Float32Array[];
  const [w, h] = [12, 8];
  beforeAll(async () => {
    const dir = path.join(tmp, 'demo');
    await cp(await ensureDemoModel(), dir, { recursive: true, filter: (src) => !/attention-merge/.test(path.basename(src)) });
    pipe = await SdPipeline.load(dir, { executionProvider: 'cpu' });
    const text = async (p: string) => (await pipe.encodeText(p)).embedding;
    styles = await Promise.all(['a swirling painting', 'a mosaic of tiles', 'a blocky render'].map(text));
    const x0 = seededValues(pipe.info.latentChannels * w * h, 11);
    code = await invert(pipe, x0, w, h, { source: await text('a photo of a house'), guidance: 1, steps: 12, skip: 4, eta: 0.1, noise: seededNoise(7) });
  });
  afterAll(async () => {
    await pipe?.release();
  });

  it('one UNet call per step: N + 1 rows for epsilon merge (N at guidance 1), ∅ and merged for attention merge', async () => {
    const R = code.z.length - 1;
    const count = async (rule: Parameters<typeof decode>[2]) => {
      const before = { ...pipe.stats };
      await decode(pipe, code, rule);
      return { calls: pipe.stats.unetCalls - before.unetCalls, rows: (pipe.stats.unetRows - before.unetRows) / (pipe.stats.unetCalls - before.unetCalls) };
    };
    for (const n of [2, 3]) {
      const conds = styles.slice(0, n);
      expect(await count(epsilonMerge(conds, 7.5, bands(n, w, h)))).toEqual({ calls: R, rows: n + 1 });
      expect(await count(epsilonMerge(conds, 1, bands(n, w, h)))).toEqual({ calls: R, rows: n });
    }
    // Five regions with three distinct prompts: a prompt two regions share is one row.
    const five = Array.from({ length: 5 }, (_, k) => styles[k % 3]!);
    expect(await count(epsilonMerge(five, 7.5, bands(5, w, h)))).toEqual({ calls: R, rows: 3 + 1 });
    expect(await count(epsilonMerge(five, 1, bands(5, w, h)))).toEqual({ calls: R, rows: 3 });
    expect(await count(attentionMerge(styles, 7.5, bands(3, w, h)))).toEqual({ calls: R, rows: 2 });
    expect(await count(attentionMerge(styles, 1, bands(3, w, h)))).toEqual({ calls: R, rows: 1 });
  });

  it("epsilon merge with one-hot regions: each region's ê is its style's own ê, exactly", async () => {
    const C = pipe.info.latentChannels;
    const x = code.z[0]!;
    for (const s of [1, 7.5]) {
      const merged = await epsilonMerge(styles, s, bands(3, w, h)).bind(pipe, w, h);
      const eps = new Float32Array(x.length);
      await merged.evaluate(x, code.schedule.timesteps[3]!, eps, { step: 0, steps: 1 });
      const own = await Promise.all(
        styles.map(async (c) => {
          const e = new Float32Array(x.length);
          await (await singlePrompt(c, s).bind(pipe, w, h)).evaluate(x, code.schedule.timesteps[3]!, e, { step: 0, steps: 1 });
          return e;
        }),
      );
      for (let k = 0; k < 3; k++) {
        const region = bandIndices(k, 3, C, w, h);
        expect(
          region.filter((i) => eps[i] !== own[k]![i]),
          `s ${s}, style ${k + 1}`,
        ).toEqual([]);
        // Not vacuous: another style's ê differs there.
        expect(region.filter((i) => own[(k + 1) % 3]![i] !== own[k]![i]).length, `s ${s}, style ${k + 1}`).toBeGreaterThan(region.length / 2);
      }
    }
  });

  it('a mask of all one style: epsilon merge decodes exactly as the single-prompt sampler, for each of the styles', async () => {
    for (let k = 0; k < 3; k++) {
      const single = await decode(pipe, code, singlePrompt(styles[k]!, 7.5));
      const merged = await decode(pipe, code, epsilonMerge(styles, 7.5, allOf(k, 3, w, h)));
      expect(maxAbsDiff(merged, single), `style ${k + 1}`).toBe(0);
    }
    // And the styles decode differently, so the equality says something.
    const [a, b] = await Promise.all([decode(pipe, code, singlePrompt(styles[0]!, 7.5)), decode(pipe, code, singlePrompt(styles[2]!, 7.5))]);
    expect(maxAbsDiff(a, b)).toBeGreaterThan(1e-3);
  });

  it('a mask of all one style: attention merge of three styles decodes as the single-prompt sampler, within rounding', async () => {
    for (let k = 0; k < 3; k++) {
      const single = await decode(pipe, code, singlePrompt(styles[k]!, 7.5));
      const merged = await decode(pipe, code, attentionMerge(styles, 7.5, allOf(k, 3, w, h)));
      expect(maxAbsDiff(merged, single), `style ${k + 1}`).toBeLessThanOrEqual(1e-4 * Math.max(1, maxAbs(single)));
    }
  });

  it('the attention-merge UNet of three styles: all weight on style k is the stock UNet with c_k; one-hot bands are nearest their own style', async () => {
    const { latentChannels: C, textLength: L, textDim: D } = pipe.info;
    const [cw, ch] = [24, 8];
    const sample = seededValues(2 * C * ch * cw, 1);
    const c = [2, 3, 4].map((seed) => seededValues(2 * L * D, seed));
    const stock = await Promise.all(c.map((ck) => pipe.unet(sample, 2, ch, cw, 500, ck)));
    const merged = async (planes: Float32Array[]) => {
      const weights = new Float32Array(2 * cw * ch);
      weights.set(planes[0]!, 0);
      weights.set(planes[1]!, cw * ch);
      return pipe.unet(sample, 2, ch, cw, 500, c[0]!, await pipe.attentionMergeExtras([c[1]!, c[2]!], 2, weights, cw, ch));
    };
    for (let k = 0; k < 3; k++) {
      const out = await merged(allOf(k, 3, cw, ch));
      expect(maxAbsDiff(out, stock[k]!), `style ${k + 1}`).toBeLessThanOrEqual(1e-5 * Math.max(1, maxAbs(stock[k]!)));
      expect(maxAbsDiff(stock[k]!, stock[(k + 1) % 3]!)).toBeGreaterThan(1e-4);
    }
    // Convolutions and self-attention carry each band's style into its neighbours, so a whole UNet's
    // band k is not exactly stock(c_k); its interior is still nearest to it.
    const out = await merged(bands(3, cw, ch));
    for (let k = 0; k < 3; k++) {
      const interior = bandIndices(k, 3, C, cw, ch)
        .filter((i) => Math.abs((i % cw) - (k * 8 + 3.5)) < 2)
        .flatMap((i) => [i, i + C * cw * ch]);
      const distance = (j: number) => Math.max(...interior.map((i) => Math.abs(out[i]! - stock[j]![i]!)));
      const others = [0, 1, 2].filter((j) => j !== k).map(distance);
      expect(distance(k), `band ${k + 1}`).toBeLessThan(Math.min(...others));
    }
  });

  it("one rewritten UNet per number of styles, beside the original; each kept, reused, and never part of the model's identity", async () => {
    const dir = path.join(tmp, 'demo');
    const unet = path.join(dir, 'unet');
    const two = await prepareAttentionMergeUnet(dir);
    const three = await prepareAttentionMergeUnet(dir, { styles: 3 });
    expect(path.basename(two.path)).toMatch(/^model\.attention-merge\.[0-9a-f]{16}\.onnx$/);
    expect(path.basename(three.path)).toMatch(/^model\.attention-merge-3\.[0-9a-f]{16}\.onnx$/);
    expect(path.dirname(three.path)).toBe(unet);
    expect(await prepareAttentionMergeUnet(dir, { styles: 3 })).toMatchObject({ path: three.path, reused: true });
    // A stale rewrite of three styles (another source hash) goes when a new one is written; two styles' stays.
    const stale = path.join(unet, 'model.attention-merge-3.0123456789abcdef.onnx');
    await writeFile(stale, 'old');
    await rm(three.path);
    await prepareAttentionMergeUnet(dir, { styles: 3 });
    // (Rewrites of the optimized graph, which the pipeline runs, are files of their own: optimizer/optimize.ts.)
    expect((await readdir(unet)).filter((f) => /^model\.attention-merge(?:-\d+)?\.[0-9a-f]+\.onnx$/.test(f)).sort()).toEqual(
      [path.basename(two.path), path.basename(three.path)].sort(),
    );
    const session = await ort.InferenceSession.create(three.path);
    expect(session.inputNames).toEqual(expect.arrayContaining([conditioningInput(2), conditioningInput(3), MASK_INPUT]));
    await session.release();
    const again = await SdPipeline.load(dir, { executionProvider: 'cpu' });
    expect(again.info.id).toBe(pipe.info.id);
    await again.release();
  });
});

describe('attention merge where attention is all there is (one cross-attention block)', () => {
  it("three styles, one-hot bands: every token gets exactly its style's attention", async () => {
    const stockBytes = attentionBlockGraph('float32');
    const { bytes, layers, styles } = rewriteOnnxBytes(stockBytes, '', 3);
    expect([layers.length, styles]).toEqual([1, 3]);
    const [b, h, w] = [2, 4, 9];
    const f32 = (data: Float32Array, dims: number[]) => new ort.Tensor('float32', data, dims);
    const sample = f32(seededValues(b * 4 * h * w, 5), [b, 4, h, w]);
    const timestep = f32(new Float32Array(b), [b]);
    const c = [6, 7, 8].map((seed) => f32(seededValues(b * 77 * 8, seed), [b, 77, 8]));
    const planes = bands(3, w, h);
    const weights = new Float32Array(2 * h * w);
    weights.set(planes[0]!, 0);
    weights.set(planes[1]!, h * w);
    const [stock, merged] = await Promise.all([ort.InferenceSession.create(stockBytes), ort.InferenceSession.create(bytes)]);
    try {
      const run = async (s: ort.InferenceSession, feeds: Record<string, ort.Tensor>) => (await s.run(feeds))['out_sample']!.data as Float32Array;
      const own = await Promise.all(c.map((ck) => run(stock, { sample, timestep, encoder_hidden_states: ck })));
      const out = await run(merged, {
        sample,
        timestep,
        encoder_hidden_states: c[0]!,
        [conditioningInput(2)]: c[1]!,
        [conditioningInput(3)]: c[2]!,
        [MASK_INPUT]: f32(weights, [1, 2, h, w]),
      });
      for (let k = 0; k < 3; k++) {
        const region = bandIndices(k, 3, 4 * b, w, h);
        expect(Math.max(...region.map((i) => Math.abs(out[i]! - own[k]![i]!))), `band ${k + 1}`).toBeLessThanOrEqual(1e-6);
        expect(Math.max(...region.map((i) => Math.abs(own[(k + 1) % 3]![i]! - own[k]![i]!)))).toBeGreaterThan(1e-3);
      }
    } finally {
      await Promise.all([stock.release(), merged.release()]);
    }
  });
});

describe.skipIf(!hasFixture)('attention merge of three styles on the reference tiny-sd UNet', () => {
  it('all weight on style k equals the stock UNet with c_k, for each of the three (reference inputs)', async () => {
    const pipe = await SdPipeline.load(tinySd, { executionProvider: 'cpu', attentionCacheDir: path.join(tmp, 'tiny-cache') });
    try {
      const ref = (n: string) => readNpyFloat32(path.join(tinySd, 'reference', `${n}.npy`));
      const [sample, ehs, ehs2] = await Promise.all([ref('unet_in_sample'), ref('unet_in_ehs'), ref('unet_in_ehs2')]);
      const [batch, , h, w] = sample.shape as [number, number, number, number];
      // A third conditioning: the first's rows in reverse order (∅ and style 1 swapped).
      const rowLength = ehs.data.length / batch;
      const ehs3 = new Float32Array(ehs.data.length);
      for (let r = 0; r < batch; r++) ehs3.set(ehs.data.subarray((batch - 1 - r) * rowLength, (batch - r) * rowLength), r * rowLength);
      const conditionings = [ehs.data, ehs2.data, ehs3];
      const stock = await Promise.all(conditionings.map((c) => pipe.unet(sample.data, batch, h, w, 500, c)));
      for (let k = 0; k < 3; k++) {
        const weights = new Float32Array(2 * w * h);
        if (k < 2) weights.fill(1, k * w * h, (k + 1) * w * h);
        const out = await pipe.unet(sample.data, batch, h, w, 500, ehs.data, await pipe.attentionMergeExtras([ehs2.data, ehs3], batch, weights, w, h));
        expect(maxAbsDiff(out, stock[k]!), `style ${k + 1}`).toBeLessThanOrEqual(1e-5 * Math.max(1, maxAbs(stock[k]!)));
      }
      expect(maxAbsDiff(stock[0]!, stock[2]!)).toBeGreaterThan(1e-3);
      expect((await readdir(path.join(tinySd, 'unet'))).filter((f) => f.includes('attention-merge'))).toEqual([]);
    } finally {
      await pipe.release();
    }
  });
});

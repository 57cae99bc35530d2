/**
 * The metric math on inputs whose answers are known: Pillow's bicubic resize (bytes from Pillow,
 * test/fixtures/pillow-bicubic.json), TV and tv_seam of a ramp (closed form), PSNR/L2 edge cases,
 * CLIP scores of hand-made embeddings, and LPIPS through a small generated ONNX feature network
 * against the formula computed here by hand.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clipScores, cosine } from '../server/engine/metrics/clip-score.ts';
import { clipPixelValues, halves, parsePreprocessor, shortestEdgeSize, CLIP_DEFAULTS } from '../server/engine/metrics/clip-preprocess.ts';
import { l2, psnr, seamBand, totalVariation, tvSeam } from '../server/engine/metrics/image-metrics.ts';
import { resizeRgb8 } from '../server/engine/metrics/resample.ts';
import { ssim } from '../server/engine/metrics/ssim.ts';
import { LpipsModel } from '../server/engine/evaluation-models/lpips-model.ts';
import { LPIPS_SCALE, LPIPS_SHIFT } from '../server/engine/metrics/lpips.ts';
import type { ImageValue } from '../server/engine/values.ts';
import { GraphBuilder, WeightRandom } from '../server/models/demo/onnx-builder.ts';

const fixtures = path.resolve(import.meta.dirname, 'fixtures');

function image(w: number, h: number, f: (x: number, y: number, c: number) => number): ImageValue {
  const data = new Float32Array(3 * w * h);
  for (let c = 0; c < 3; c++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data[c * w * h + y * w + x] = f(x, y, c);
  return { width: w, height: h, data };
}

describe('Pillow-exact bicubic resize', () => {
  it('reproduces Pillow bit for bit, enlarging, shrinking (antialiased) and both at once', async () => {
    const ref = JSON.parse(await readFile(path.join(fixtures, 'pillow-bicubic.json'), 'utf8')) as {
      cases: { from: [number, number]; to: [number, number]; rgb: string }[];
    };
    expect(ref.cases.length).toBeGreaterThanOrEqual(5);
    for (const c of ref.cases) {
      const [w, h] = c.from;
      const src = new Uint8Array(3 * w * h);
      // The formula of scripts/pillow-bicubic-cases.py.
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) for (let k = 0; k < 3; k++) src[3 * (y * w + x) + k] = (x * 37 + y * 11 + k * 101 + ((x * y) % 7) * 29) % 256;
      const ours = resizeRgb8(src, w, h, c.to[0], c.to[1]);
      const theirs = Buffer.from(c.rgb, 'base64');
      const differing = ours.reduce((n, v, i) => n + (v !== theirs[i] ? 1 : 0), 0);
      expect(differing, `${w}×${h} → ${c.to.join('×')}`).toBe(0);
    }
  });

  it('sizes the shortest edge as HF does (the long side truncated) and centre-crops', () => {
    expect(shortestEdgeSize(64, 48, 224)).toEqual({ width: 298, height: 224 });
    expect(shortestEdgeSize(24, 40, 224)).toEqual({ width: 224, height: 373 });
    const pv = clipPixelValues(
      image(64, 48, () => 0.5),
      CLIP_DEFAULTS,
    );
    expect(pv.length).toBe(3 * 224 * 224);
    // A flat gray stays flat: round(0.5·255) = 128 everywhere.
    expect(pv[0]).toBeCloseTo((128 / 255 - CLIP_DEFAULTS.mean[0]) / CLIP_DEFAULTS.std[0], 6);
    expect(Math.max(...pv.subarray(0, 224 * 224)) - Math.min(...pv.subarray(0, 224 * 224))).toBe(0);
  });

  it('reads both preprocessor formats and refuses what it cannot reproduce', () => {
    const hf = parsePreprocessor({
      crop_size: { height: 224, width: 224 },
      size: { shortest_edge: 224 },
      image_mean: [0.5, 0.5, 0.5],
      image_std: [0.5, 0.5, 0.5],
      resample: 3,
      rescale_factor: 1 / 255,
    });
    expect(hf).toMatchObject({ size: 224, crop: 224, mean: [0.5, 0.5, 0.5] });
    expect(parsePreprocessor({ image_size: 336 })).toMatchObject({ size: 336, crop: 336, mean: CLIP_DEFAULTS.mean });
    expect(() => parsePreprocessor({ resample: 2 })).toThrow(/resample 2 is not supported/);
    expect(() => parsePreprocessor({ mean: [1, 2] })).toThrow(/mean must be a list of three numbers/);
  });

  it('splits halves at W/2, the middle column of an odd width going left', () => {
    const { left, right } = halves(image(5, 2, (x) => x / 10));
    expect([left.width, right.width]).toEqual([3, 2]);
    expect(right.data[0]).toBeCloseTo(0.3, 6);
  });
});

describe('pixel metrics', () => {
  // A horizontal ramp: every column 0.1 brighter than the last, all channels, 3 rows.
  const ramp = image(10, 3, (x) => x / 10);

  it('TV of a ramp: 9 steps of 0.1 per row and channel over H·W', () => {
    expect(totalVariation(ramp)).toBeCloseTo((9 * 3 * 3 * 0.1) / 30, 7);
  });

  it('tv_seam of a ramp: only the central 20% of the width, √(d² + 1e-6) per difference, per band pixel', () => {
    expect(seamBand(10)).toEqual({ c0: 4, c1: 6 });
    // Band = columns 4 and 5: one horizontal step per row and channel (9), vertical steps of 0 (2 row pairs × 2 columns × 3).
    const expected = (9 * Math.sqrt(0.01 + 1e-6) + 12 * Math.sqrt(1e-6)) / (3 * 2);
    expect(tvSeam(ramp)).toBeCloseTo(expected, 7);
    // A seam outside the band does not count; one inside does.
    const stepAt = (col: number) => image(10, 3, (x) => (x >= col ? 1 : 0));
    expect(tvSeam(stepAt(2))).toBeCloseTo((Math.sqrt(1e-6) * (9 + 12)) / 6, 12);
    expect(tvSeam(stepAt(5))).toBeGreaterThan(0.4);
  });

  it('L2, PSNR, SSIM of identical and of shifted images', () => {
    expect(l2(ramp, ramp)).toBe(0);
    expect(psnr(ramp, ramp)).toBe(Infinity);
    const brighter = image(10, 3, (x) => x / 10 + 0.1);
    expect(l2(brighter, ramp)).toBeCloseTo(Math.sqrt(90 * 0.01), 6);
    expect(psnr(brighter, ramp)).toBeCloseTo(20, 4); // MSE 0.01
    const big = image(20, 16, (x, y, c) => ((x * 7 + y * 3 + c) % 11) / 10);
    expect(ssim(big, big)).toBeCloseTo(1, 12);
    expect(
      ssim(
        big,
        image(20, 16, (x, y, c) => ((x * 5 + y * 3 + c) % 11) / 10),
      ),
    ).toBeLessThan(0.9);
    expect(() => ssim(ramp, ramp)).toThrow(/at least 11×11 pixels, got 10×3/);
    expect(() => l2(ramp, big)).toThrow(/differ in size: 10×3 and 20×16/);
  });
});

describe('CLIP scores from embeddings', () => {
  const e = (...v: number[]) => Float32Array.from(v);
  it("follow the fixture's definitions on hand-made vectors", () => {
    const prompts = { source: e(1, 0, 0), styles: [e(0, 1, 0), e(0, 0, 1)] };
    const original = { full: e(1, 0, 0), left: e(1, 0, 0), right: e(1, 0, 0) };
    // The left half became style 1, the right half style 2, the whole halfway.
    const generated = { full: e(0, 1, 1), left: e(0, 2, 0), right: e(0, 0, 3) };
    const s = clipScores(generated, original, prompts);
    expect(s.clip).toBeCloseTo(Math.SQRT1_2, 6);
    expect(s.clip_left).toBeCloseTo(1, 6);
    expect(s.clip_right).toBeCloseTo(1, 6);
    expect(s.dclip_left).toBeCloseTo(1, 6);
    expect(s.dclip_right).toBeCloseTo(1, 6);
    // An unchanged image has no direction: 0, not NaN.
    expect(clipScores(original, original, prompts).dclip).toBe(0);
    expect(cosine([1, 0], [0, 0])).toBe(0);
  });
});

describe('LPIPS through a generated ONNX feature network', () => {
  let dir: string;
  const C0 = 4,
    C1 = 6;
  const rnd = new WeightRandom(7);
  const w0 = rnd.normal('w0', C0 * 3, 0.5);
  const w1 = rnd.normal('w1', C1 * C0, 0.5);
  const heads = [Array.from(rnd.normal('h0', C0, 1), Math.abs), Array.from(rnd.normal('h1', C1, 1), Math.abs)];

  beforeAll(async () => {
    // features.onnx: 1×1 conv + ReLU → feat0; 2×2 average pool, 1×1 conv + ReLU → feat1.
    dir = await mkdtemp(path.join(os.tmpdir(), 'dss-lpips-'));
    const g = new GraphBuilder('lpips-features', rnd);
    const x = g.input('image', 'float32', ['batch', 3, 'height', 'width']);
    const f0 = g.op('Relu', [g.op('Conv', [x, g.initializer('w0', [C0, 3, 1, 1], w0)], '/l0')], '/l0');
    g.node('Identity', [f0], '/out0', {}, { outputs: ['feat0'] });
    const pooled = g.op('AveragePool', [f0], '/pool', { kernel_shape: [2, 2], strides: [2, 2] });
    g.node('Relu', [g.op('Conv', [pooled, g.initializer('w1', [C1, C0, 1, 1], w1)], '/l1')], '/l1', {}, { outputs: ['feat1'] });
    g.output('feat0', 'float32', ['batch', C0, 'height', 'width']);
    g.output('feat1', 'float32', ['batch', C1, 'h2', 'w2']);
    await writeFile(path.join(dir, 'features.onnx'), g.model('test LPIPS features').model);
    await writeFile(path.join(dir, 'lpips.json'), JSON.stringify({ heads }));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** LPIPS of the two images computed directly from the definition. */
  function reference(a: ImageValue, b: ImageValue): number {
    const { width: W, height: H } = a;
    const feats = (im: ImageValue) => {
      const x = (c: number, p: number) => (2 * im.data[c * W * H + p]! - 1 - LPIPS_SHIFT[c]!) / LPIPS_SCALE[c]!;
      const f0 = Array.from({ length: W * H }, (_, p) =>
        Array.from({ length: C0 }, (_, o) =>
          Math.max(
            0,
            [0, 1, 2].reduce((s, c) => s + w0[o * 3 + c]! * x(c, p), 0),
          ),
        ),
      );
      const f1: number[][] = [];
      for (let y = 0; y < H >> 1; y++)
        for (let xx = 0; xx < W >> 1; xx++) {
          const avg = Array.from(
            { length: C0 },
            (_, c) => [0, 1].flatMap((dy) => [0, 1].map((dx) => f0[(2 * y + dy) * W + 2 * xx + dx]![c]!)).reduce((s, v) => s + v, 0) / 4,
          );
          f1.push(
            Array.from({ length: C1 }, (_, o) =>
              Math.max(
                0,
                avg.reduce((s, v, c) => s + w1[o * C0 + c]! * v, 0),
              ),
            ),
          );
        }
      return [f0, f1];
    };
    const [fa, fb] = [feats(a), feats(b)];
    return [0, 1].reduce((sum, l) => {
      const unit = (v: number[]) => {
        const n = Math.sqrt(v.reduce((s, x) => s + x * x, 0)) + 1e-10;
        return v.map((x) => x / n);
      };
      const d = fa[l]!.map((va, p) => {
        const ua = unit(va),
          ub = unit(fb[l]![p]!);
        return ua.reduce((s, x, c) => s + heads[l]![c]! * (x - ub[c]!) ** 2, 0);
      });
      return sum + d.reduce((s, v) => s + v, 0) / d.length;
    }, 0);
  }

  it('matches the definition, is zero for identical images and symmetric', async () => {
    const lp = await LpipsModel.load(dir, 'cpu');
    try {
      const a = image(12, 8, (x, y, c) => ((x * 3 + y * 5 + c * 7) % 10) / 10);
      const b = image(12, 8, (x, y, c) => ((x * 2 + y * 7 + c * 3) % 9) / 9);
      const d = await lp.distance(a, b);
      expect(d).toBeGreaterThan(0.01);
      expect(Math.abs(d - reference(a, b))).toBeLessThan(1e-5);
      expect(await lp.distance(a, a)).toBeLessThan(1e-9);
      expect(Math.abs((await lp.distance(b, a)) - d)).toBeLessThan(1e-6);
    } finally {
      await lp.release();
    }
  });

  it('refuses a folder whose heads do not match the network, naming both', async () => {
    await writeFile(path.join(dir, 'lpips.json'), JSON.stringify({ heads: [heads[0]] }));
    try {
      await expect(LpipsModel.load(dir, 'cpu')).rejects.toThrow(/has outputs feat0, feat1; lpips.json needs 1/);
      await expect(LpipsModel.load(path.join(dir, 'nope'), 'cpu')).rejects.toThrow(/not an LPIPS ONNX folder/);
    } finally {
      await writeFile(path.join(dir, 'lpips.json'), JSON.stringify({ heads }));
    }
  });
});

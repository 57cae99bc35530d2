/**
 * Seams and bleed per region (issue 24): the seam TV along every border between the mask's regions
 * (image-metrics.ts borderTv) and the CLIP bleed of each region's crop against the other styles
 * (clip-score.ts regionBleedScores), alone and through evaluateImage.
 */
import { describe, expect, it } from 'vitest';
import { regionBleedScores, cosine } from '../server/engine/metrics/clip-score.ts';
import { evaluateImage, type ClipEncoder } from '../server/engine/metrics/evaluate.ts';
import { borderTv, regionLabels, tvSeam } from '../server/engine/metrics/image-metrics.ts';
import { makeMask } from '../server/engine/diffusion/mask.ts';
import type { ImageValue, MaskValue } from '../server/engine/values.ts';
import { seededValues } from './support/numeric.ts';

/** A W×H RGB image whose value at (x, y, c) is f(x, y, c). */
function image(W: number, H: number, f: (x: number, y: number, c: number) => number): ImageValue {
  const data = new Float32Array(3 * W * H);
  for (let c = 0; c < 3; c++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) data[c * W * H + y * W + x] = f(x, y, c);
  return { width: W, height: H, data };
}

/** One-hot vertical bands of N styles: style k owns the columns [k·W/N, (k+1)·W/N). */
function bands(N: number): MaskValue {
  return {
    styles: N,
    description: `${N} bands`,
    weights: (w, h) =>
      Array.from({ length: N }, (_, k) => {
        const m = new Float32Array(w * h);
        for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if (Math.floor((x * N) / w) === k) m[y * w + x] = 1;
        return m;
      }),
  };
}

describe('seam TV along region borders', () => {
  it('a square picture split down the middle: the border band is the centre band of tv_seam, exactly', () => {
    const W = 100;
    const noise = seededValues(3 * W * W, 5);
    const x = image(W, W, (i, j, c) => 0.5 + 0.25 * noise[c * W * W + j * W + i]!);
    const labels = regionLabels(bands(2).weights(W, W), W, W);
    const { all, regions } = borderTv(x, labels, 2);
    expect(all).toBeCloseTo(tvSeam(x), 12);
    expect(regions[0]).toBeCloseTo(all!, 12);
    expect(regions[1]).toBeCloseTo(all!, 12);
  });

  it('each region is scored on its own borders: a hard edge on the 1|2 border shows most in regions 1 and 2', () => {
    const [W, H] = [90, 60];
    // Three columns of regions, and region 3 also owns the top rows: borders 1|2 (x = 30), 2|3 (x = 60) and the top one.
    const mask: MaskValue = {
      styles: 3,
      description: 'three regions',
      weights: (w, h) => {
        const planes = bands(3).weights(w, h);
        for (let y = 0; y < 12; y++) for (let x = 0; x < w; x++) planes.forEach((m, k) => (m[y * w + x] = k === 2 ? 1 : 0));
        return planes;
      },
    };
    const labels = regionLabels(mask.weights(W, H), W, H);
    const smooth = image(W, H, (x, y) => (x + y) / (W + H));
    const edged = image(W, H, (x, y) => (x + y) / (W + H) + (x >= 30 && x < 60 && y >= 30 ? 0.4 : 0));
    const a = borderTv(smooth, labels, 3);
    const b = borderTv(edged, labels, 3);
    expect(b.regions[0]!).toBeGreaterThan(a.regions[0]! + 0.01);
    expect(b.regions[1]!).toBeGreaterThan(a.regions[1]! + 0.01);
    expect(b.all!).toBeGreaterThan(a.all! + 0.005);
    expect(b.regions[2]!).toBeGreaterThan(a.regions[2]!); // the 2|3 border's band reaches the step too...
    expect(b.regions[2]! - a.regions[2]!).toBeLessThan(b.regions[0]! - a.regions[0]!); // ...but region 1's is on it
    // One region only: no border.
    expect(borderTv(smooth, new Uint8Array(W * H), 3)).toEqual({ all: null, regions: [null, null, null] });
  });

  it('labels: the heaviest style, the first on a tie', () => {
    const planes = [Float32Array.of(0.5, 0.2, 0.4), Float32Array.of(0.5, 0.8, 0.2), Float32Array.of(0, 0, 0.4)];
    expect([...regionLabels(planes, 3, 1)]).toEqual([0, 1, 0]);
  });
});

describe('CLIP bleed per region', () => {
  it('the mean cosine of each region with the other styles, on hand-made vectors', () => {
    const styles = [Float32Array.of(1, 0, 0), Float32Array.of(0, 1, 0), Float32Array.of(0.6, 0.8, 0)];
    const r1 = Float32Array.of(2, 0, 0);
    const bleed = regionBleedScores([r1, null, Float32Array.of(0, 0, 1)], styles);
    expect(bleed[0]).toBeCloseTo((cosine(r1, styles[1]!) + cosine(r1, styles[2]!)) / 2, 12);
    expect(bleed[0]).toBeCloseTo(0.3, 6);
    expect(bleed[1]).toBeNull();
    expect(bleed[2]).toBeCloseTo(0, 12);
    expect(() => regionBleedScores([r1], styles)).toThrow(/1 regions for 3 styles/);
  });

  /** A CLIP port that sees colour: an image's embedding is its mean R, G, B; "red" is (1, 0, 0), "blue" (0, 0, 1). */
  const colourClip: ClipEncoder = {
    async imageEmbeddings(img) {
      const e = await this.embedImages([img]);
      return { full: e[0]!, left: e[0]!, right: e[0]! };
    },
    async embedImages(images) {
      return images.map((img) => {
        const n = img.width * img.height;
        return Float32Array.from([0, 1, 2], (c) => img.data.subarray(c * n, (c + 1) * n).reduce((a, b) => a + b, 0) / n + 1e-3);
      });
    },
    async textEmbedding(prompt) {
      return prompt === 'red' ? Float32Array.of(1, 0, 0) : prompt === 'blue' ? Float32Array.of(0, 0, 1) : Float32Array.of(0.5, 0.5, 0.5);
    },
  };

  it('through evaluateImage: a red | blue picture has no bleed; red spilling over the blue region does', async () => {
    const [W, H] = [40, 20];
    const mask = makeMask({ shape: 'logistic', direction: 'left-right', sharpness: 200 });
    const clean = image(W, H, (x, _y, c) => (x < W / 2 ? [1, 0, 0] : [0, 0, 1])[c]!);
    const spilled = image(W, H, (x, _y, c) => (x < (3 * W) / 4 ? [1, 0, 0] : [0, 0, 1])[c]!);
    const prompts = { source: 'a picture', styles: ['red', 'blue'] };
    const a = await evaluateImage(clean, clean, prompts, { clip: colourClip }, mask);
    const b = await evaluateImage(spilled, clean, prompts, { clip: colourClip }, mask);
    expect(a.clip_region1).toBeGreaterThan(0.99);
    expect(a.clip_bleed1).toBeLessThan(0.01);
    expect(a.clip_bleed2).toBeLessThan(0.01);
    expect(b.clip_bleed1).toBeLessThan(0.01);
    expect(b.clip_bleed2).toBeGreaterThan(0.5);
    expect(b.clip_bleed).toBeCloseTo((b.clip_bleed1! + b.clip_bleed2!) / 2, 12);
    // The border TV comes with the mask, CLIP or not; the sharp red|blue edge sits on the border.
    expect(a.tv_border).toBeGreaterThan(a.tv!);
    expect(b.tv_border).toBeLessThan(a.tv_border!);
    const plain = await evaluateImage(clean, clean, undefined, {});
    expect(plain.tv_border).toBeUndefined();
    expect(plain.clip_bleed).toBeUndefined();
  });
});

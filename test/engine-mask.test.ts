import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { makeMask, resizeBilinear } from '../server/engine/diffusion/mask.ts';
import { readNpyFloat32 } from '../server/conformance/npy.ts';
import { maxAbsDiff } from './support/numeric.ts';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const reference = path.resolve(projectRoot, '../shared/fixtures/tiny-sd/reference');
const hasFixture = existsSync(path.join(reference, 'mask_linear.npy'));
if (!hasFixture) console.warn(`engine-mask: fixture ${reference} not found; reference comparison skipped`);

describe('makeMask', () => {
  it.skipIf(!hasFixture)('matches mask_linear and mask_logistic at latent size', async () => {
    for (const shape of ['linear', 'logistic'] as const) {
      const ref = await readNpyFloat32(path.join(reference, `mask_${shape}.npy`));
      const [h, w] = ref.shape.slice(-2) as [number, number];
      const m = makeMask({ shape, direction: 'left-right', sharpness: 20 }).weights(w, h)[0]!;
      expect(maxAbsDiff(m, ref.data)).toBeLessThan(1e-6);
    }
  });

  it('linear left-right is 1 − u at pixel centres, constant down columns', () => {
    const m = makeMask({ shape: 'linear', direction: 'left-right', sharpness: 20 }).weights(4, 3)[0]!;
    for (let y = 0; y < 3; y++) expect(Array.from(m.subarray(y * 4, y * 4 + 4))).toEqual([0.875, 0.625, 0.375, 0.125]);
  });

  it('flips and transposes for the other directions', () => {
    const w = 5;
    const h = 7;
    const lr = makeMask({ shape: 'logistic', direction: 'left-right', sharpness: 8 }).weights(w, h)[0]!;
    const rl = makeMask({ shape: 'logistic', direction: 'right-left', sharpness: 8 }).weights(w, h)[0]!;
    const tb = makeMask({ shape: 'logistic', direction: 'top-bottom', sharpness: 8 }).weights(h, w)[0]!;
    const bt = makeMask({ shape: 'logistic', direction: 'bottom-top', sharpness: 8 }).weights(h, w)[0]!;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        expect(rl[y * w + x]).toBe(lr[y * w + (w - 1 - x)]);
        // top-bottom on an h×w grid is left-right transposed.
        expect(tb[x * h + y]).toBe(lr[y * w + x]);
        expect(bt[(w - 1 - x) * h + y]).toBe(lr[y * w + x]);
      }
    }
    // Style 1 (M near 1) sits at the named start side.
    expect(lr[0]!).toBeGreaterThan(0.9);
    expect(rl[0]!).toBeLessThan(0.1);
    expect(tb[0]!).toBeGreaterThan(0.9);
    expect(bt[0]!).toBeLessThan(0.1);
  });

  it('logistic sharpness controls the transition width and stays symmetric', () => {
    const soft = makeMask({ shape: 'logistic', direction: 'left-right', sharpness: 2 }).weights(10, 1)[0]!;
    const hard = makeMask({ shape: 'logistic', direction: 'left-right', sharpness: 200 }).weights(10, 1)[0]!;
    expect(soft[0]!).toBeCloseTo(1 / (1 + Math.exp(2 * (0.05 - 0.5))), 6);
    expect(soft[0]!).toBeLessThan(0.75);
    expect(hard[0]!).toBeGreaterThan(0.999);
    for (let j = 0; j < 10; j++) expect(soft[j]! + soft[9 - j]!).toBeCloseTo(1, 6);
  });

  it('samples an image mask bilinearly with half-pixel centres', () => {
    // 2×1 grayscale image [0, 1] upsampled to 4×1: centres at −0.25, 0.25, 0.75, 1.25 → clamp.
    const image = { width: 2, height: 1, data: new Float32Array([0, 1, 0, 1, 0, 1]) };
    const m = makeMask({ shape: 'image', direction: 'left-right', sharpness: 0, image }).weights(4, 1)[0]!;
    expect(Array.from(m).map((v) => Math.round(v * 1e6) / 1e6)).toEqual([0, 0.25, 0.75, 1]);
    // Downsampling by 2 averages neighbours exactly (no antialias needed at factor 2).
    const d = resizeBilinear(new Float32Array([0, 1, 2, 3]), 4, 1, 2, 1);
    expect(Array.from(d)).toEqual([0.5, 2.5]);
    expect(() => makeMask({ shape: 'image', direction: 'left-right', sharpness: 0 })).toThrow(/needs an image/);
  });
});

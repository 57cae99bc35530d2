/**
 * Pixel merge, the baseline of the paper: blend two finished single-style images with the mask at
 * image resolution, out = M·img1 + (1 − M)·img2. Shows the seam the latent-space merges avoid.
 */
import type { ImageValue, MaskValue } from '../../../nodes/values.ts';

export function pixelMerge(img1: ImageValue, img2: ImageValue, mask: MaskValue | Float32Array): ImageValue {
  const { width: w, height: h } = img1;
  if (img2.width !== w || img2.height !== h) {
    throw new Error(`pixel merge needs two images of the same size, got ${w}×${h} and ${img2.width}×${img2.height}`);
  }
  const plane = w * h;
  if (img1.data.length !== 3 * plane || img2.data.length !== 3 * plane) {
    throw new Error(`pixel merge needs RGB images (${3 * plane} values for ${w}×${h})`);
  }
  const M = mask instanceof Float32Array ? mask : mask.sample(w, h);
  if (M.length !== plane) throw new Error(`mask has ${M.length} values, the ${w}×${h} image needs ${plane}`);
  const out = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    const o = c * plane;
    for (let p = 0; p < plane; p++) {
      const m = M[p]!;
      out[o + p] = m * img1.data[o + p]! + (1 - m) * img2.data[o + p]!;
    }
  }
  return { width: w, height: h, data: out };
}

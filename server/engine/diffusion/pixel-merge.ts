/**
 * Pixel merge, the baseline of the paper: blend two finished single-style images with the mask at
 * image resolution, out = M·img1 + (1 − M)·img2. Shows the seam the latent-space merges avoid.
 */
import type { ImageValue, MaskValue } from '../values.ts';
import { blendInto, sampleMask } from './mask.ts';

export function pixelMerge(img1: ImageValue, img2: ImageValue, mask: MaskValue | Float32Array): ImageValue {
  const { width: w, height: h } = img1;
  if (img2.width !== w || img2.height !== h) {
    throw new Error(`pixel merge needs two images of the same size, got ${w}×${h} and ${img2.width}×${img2.height}`);
  }
  const plane = w * h;
  if (img1.data.length !== 3 * plane || img2.data.length !== 3 * plane) {
    throw new Error(`pixel merge needs RGB images (${3 * plane} values for ${w}×${h})`);
  }
  const out = new Float32Array(3 * plane);
  blendInto(out, img1.data, img2.data, sampleMask(mask, w, h));
  return { width: w, height: h, data: out };
}

/**
 * Pixel merge, the baseline of the paper: blend finished single-style images with the mask at image
 * resolution, out = Σ_k M_k·img_k (two styles: M·img1 + (1 − M)·img2). Shows the seam the latent-space
 * merges avoid.
 */
import type { ImageValue, MaskValue } from '../values.ts';
import { blendInto, maskWeights } from './mask.ts';

export function pixelMerge(images: readonly ImageValue[], mask: MaskValue | readonly Float32Array[]): ImageValue {
  if (images.length < 2) throw new Error(`pixel merge needs at least two images, got ${images.length}`);
  const { width: w, height: h } = images[0]!;
  const plane = w * h;
  for (const img of images) {
    if (img.width !== w || img.height !== h) {
      throw new Error(`pixel merge needs images of the same size, got ${images.map((i) => `${i.width}×${i.height}`).join(' and ')}`);
    }
    if (img.data.length !== 3 * plane) throw new Error(`pixel merge needs RGB images (${3 * plane} values for ${w}×${h})`);
  }
  const out = new Float32Array(3 * plane);
  blendInto(
    out,
    images.map((i) => i.data),
    maskWeights(mask, images.length, w, h),
  );
  return { width: w, height: h, data: out };
}

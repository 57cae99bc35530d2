/**
 * The picture arithmetic of Adjust Image, on images as the studio holds them (CHW float in [0,1]):
 * brightness adds, contrast scales around mid-grey, saturation scales each pixel's distance from its
 * grey (Rec. 601 luma), in that order, and the result is clamped to [0,1]. Plain functions, so the
 * package's test can check them without a studio.
 */
import type { ImageValue } from '../../nodes/api.ts';

export interface Adjustment {
  /** Added to every channel: -1 (black) … 1 (white); 0 leaves the image. */
  brightness: number;
  /** Scales the distance from mid-grey 0.5: 0 (flat grey) … 3; 1 leaves the image. */
  contrast: number;
  /** Scales the distance from the pixel's grey: 0 (greyscale) … 3; 1 leaves the image. */
  saturation: number;
}

/** Rec. 601 luma weights of R, G and B. */
const LUMA = [0.299, 0.587, 0.114] as const;

export function adjustImage(image: ImageValue, a: Adjustment): ImageValue {
  const { width, height, data } = image;
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  const clamp = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);
  for (let p = 0; p < plane; p++) {
    const rgb = [0, 1, 2].map((c) => (data[c * plane + p]! + a.brightness - 0.5) * a.contrast + 0.5);
    const grey = LUMA[0] * rgb[0]! + LUMA[1] * rgb[1]! + LUMA[2] * rgb[2]!;
    for (let c = 0; c < 3; c++) out[c * plane + p] = clamp(grey + (rgb[c]! - grey) * a.saturation);
  }
  return { width, height, data: out };
}

/** The built-in sample picture ("builtin:sample"): Load Image runs on it, the upload routes show its thumbnail. */
import type { ImageValue } from '../values.ts';

/**
 * The built-in sample picture, drawn procedurally so templates run on a fresh offline machine:
 * a sky gradient, a sun, hills and a house — enough structure to see an inversion keep its layout.
 */
export function sampleImage(width: number, height: number): ImageValue {
  const plane = width * height;
  const data = new Float32Array(3 * plane);
  for (let y = 0; y < height; y++) {
    const v = y / height;
    for (let x = 0; x < width; x++) {
      const u = x / width;
      let r = 0.35 + 0.3 * v,
        g = 0.55 + 0.25 * v,
        b = 0.95 - 0.2 * v; // sky
      const hill = 0.62 + 0.08 * Math.sin(u * 6.2 + 0.5);
      if ((u - 0.75) ** 2 + ((v - 0.22) * (height / width)) ** 2 < 0.008) {
        r = 1;
        g = 0.85;
        b = 0.3;
      } // sun
      if (v > hill) {
        r = 0.2 + 0.1 * u;
        g = 0.55 - 0.2 * (v - hill);
        b = 0.2;
      } // hills
      if (u > 0.22 && u < 0.42 && v > 0.55 && v < 0.78) {
        r = 0.75;
        g = 0.35;
        b = 0.25;
      } // house
      if (v > 0.42 && v <= 0.55 && Math.abs(u - 0.32) < (v - 0.42) * 0.85) {
        r = 0.45;
        g = 0.2;
        b = 0.15;
      } // roof
      if (u > 0.29 && u < 0.35 && v > 0.66 && v < 0.78) {
        r = 0.3;
        g = 0.2;
        b = 0.1;
      } // door
      const p = y * width + x;
      data[p] = r;
      data[plane + p] = g;
      data[2 * plane + p] = b;
    }
  }
  return { width, height, data };
}

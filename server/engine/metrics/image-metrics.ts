/**
 * Pixel metrics of a generated image g against the original o (both RGB, CHW float in [0,1], same
 * size), as the metrics fixture defines them (reference/metrics.json → definitions). Sums run in
 * float64: the references are NumPy float64 sums, and a float32 accumulator over 512² × 3 values
 * would drift past the 1e-3 tolerance.
 */
import type { ImageValue } from '../values.ts';

/** Throws naming both sizes when two images cannot be compared pixel by pixel. */
export function requireSameSize(g: ImageValue, o: ImageValue, what = 'the generated image and the original'): void {
  if (g.width !== o.width || g.height !== o.height) {
    throw new Error(`${what} differ in size: ${g.width}×${g.height} and ${o.width}×${o.height}`);
  }
  for (const img of [g, o]) {
    if (img.data.length !== 3 * img.width * img.height) {
      throw new Error(`an RGB ${img.width}×${img.height} image has ${3 * img.width * img.height} values, got ${img.data.length}`);
    }
  }
}

function sumSquaredDiff(g: ImageValue, o: ImageValue): number {
  requireSameSize(g, o);
  let s = 0;
  for (let i = 0; i < g.data.length; i++) {
    const d = g.data[i]! - o.data[i]!;
    s += d * d;
  }
  return s;
}

/** L2 = sqrt(Σ (g − o)²) over every pixel and channel. */
export function l2(g: ImageValue, o: ImageValue): number {
  return Math.sqrt(sumSquaredDiff(g, o));
}

/** PSNR = 10·log10(1 / MSE), data range 1; +Infinity for identical images. */
export function psnr(g: ImageValue, o: ImageValue): number {
  const mse = sumSquaredDiff(g, o) / g.data.length;
  return 10 * Math.log10(1 / mse);
}

/**
 * Total variation (smoothness): (Σ|x[i,j+1] − x[i,j]| + Σ|x[i+1,j] − x[i,j]|, over channels) / (H·W).
 * Lower is smoother.
 */
export function totalVariation(x: ImageValue): number {
  return bandVariation(x, 0, x.width) / (x.width * x.height);
}

/** Half-width of the seam band as a share of the image width (the band is 20% wide). */
export const SEAM_BAND = 0.1;
/** ε of the smoothed absolute value √(d² + ε) of the seed's code. */
export const SEAM_EPSILON = 1e-6;

/**
 * TV over the central band, where a seam between the two styles shows: columns
 * c0 = int(W/2 − 0.1·W) up to (not including) c1 = int(W/2 + 0.1·W), each difference taken as
 * √(d² + 1e-6) (the seed's code), horizontal differences between columns inside the band and
 * vertical ones within it, over channels, divided by the band's pixel count H·(c1 − c0).
 */
export function tvSeam(x: ImageValue): number {
  const { c0, c1 } = seamBand(x.width);
  if (c1 - c0 < 1) throw new Error(`image is ${x.width} pixels wide: too narrow for a seam band`);
  return bandVariation(x, c0, c1, SEAM_EPSILON) / (x.height * (c1 - c0));
}

/** The columns [c0, c1) of the seam band of an image `width` pixels wide. */
export function seamBand(width: number): { c0: number; c1: number } {
  return { c0: Math.trunc(width / 2 - SEAM_BAND * width), c1: Math.trunc(width / 2 + SEAM_BAND * width) };
}

/**
 * Σ f(difference) of horizontally and vertically adjacent pixels within columns [c0, c1), over
 * channels; f = |d|, or √(d² + ε) when `epsilon` is given.
 */
function bandVariation(x: ImageValue, c0: number, c1: number, epsilon?: number): number {
  const { width: W, height: H, data } = x;
  let s = 0;
  for (let c = 0; c < 3; c++) {
    const base = c * W * H;
    for (let i = 0; i < H; i++) {
      const row = base + i * W;
      const last = i + 1 < H;
      for (let j = c0; j < c1; j++) {
        const v = data[row + j]!;
        const dh = j + 1 < c1 ? data[row + j + 1]! - v : NaN;
        const dv = last ? data[row + W + j]! - v : NaN;
        if (epsilon === undefined) {
          if (dh === dh) s += dh < 0 ? -dh : dh;
          if (dv === dv) s += dv < 0 ? -dv : dv;
        } else {
          if (dh === dh) s += Math.sqrt(dh * dh + epsilon);
          if (dv === dv) s += Math.sqrt(dv * dv + epsilon);
        }
      }
    }
  }
  return s;
}

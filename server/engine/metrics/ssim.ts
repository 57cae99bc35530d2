/**
 * SSIM of Wang et al. (2004) as scikit-image computes it with gaussian_weights=True,
 * use_sample_covariance=False, data_range=1:
 *   μ, σ², σ_xy from a Gaussian window (σ = 1.5, truncated at 3.5σ → radius 5, an 11×11 window),
 *   S = (2μxμy + C1)(2σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2)), C1 = (0.01)², C2 = (0.03)²,
 *   averaged over the valid region (a 5-pixel border cropped), per channel, then over channels.
 * Only window positions that lie wholly inside the image are evaluated, so the border mode of the
 * reference filter (reflect) never matters: the cropped border is exactly where it would.
 */
import type { ImageValue } from '../values.ts';
import { requireSameSize } from './image-metrics.ts';

const SIGMA = 1.5;
const TRUNCATE = 3.5;
const K1 = 0.01;
const K2 = 0.03;

/** SciPy's 1-D Gaussian: radius int(truncate·σ + 0.5), weights exp(−x²/2σ²) normalised to sum 1. */
export function gaussianKernel(sigma = SIGMA, truncate = TRUNCATE): Float64Array {
  const r = Math.trunc(truncate * sigma + 0.5);
  const k = new Float64Array(2 * r + 1);
  let sum = 0;
  for (let x = -r; x <= r; x++) sum += k[x + r] = Math.exp((-0.5 * x * x) / (sigma * sigma));
  for (let i = 0; i < k.length; i++) k[i]! /= sum;
  return k;
}

export function ssim(g: ImageValue, o: ImageValue): number {
  requireSameSize(g, o);
  const { width: W, height: H } = g;
  const k = gaussianKernel();
  const win = k.length;
  const r = (win - 1) >> 1;
  if (W < win || H < win) throw new Error(`SSIM needs images of at least ${win}×${win} pixels, got ${W}×${H}`);
  const plane = W * H;
  const vw = W - 2 * r; // valid columns
  const vh = H - 2 * r; // valid rows
  // Horizontal pass of the five moments over every row, then the vertical pass at valid rows only.
  const rows = Array.from({ length: 5 }, () => new Float64Array(H * vw));
  const C1 = K1 * K1;
  const C2 = K2 * K2;
  let total = 0;
  for (let c = 0; c < 3; c++) {
    const x = g.data.subarray(c * plane, (c + 1) * plane);
    const y = o.data.subarray(c * plane, (c + 1) * plane);
    const [mx, my, mxx, myy, mxy] = rows as [Float64Array, Float64Array, Float64Array, Float64Array, Float64Array];
    for (let i = 0; i < H; i++) {
      for (let j = 0; j < vw; j++) {
        let a = 0,
          b = 0,
          aa = 0,
          bb = 0,
          ab = 0;
        for (let t = 0; t < win; t++) {
          const p = i * W + j + t;
          const u = x[p]!,
            v = y[p]!,
            w = k[t]!;
          a += w * u;
          b += w * v;
          aa += w * u * u;
          bb += w * v * v;
          ab += w * u * v;
        }
        const q = i * vw + j;
        mx[q] = a;
        my[q] = b;
        mxx[q] = aa;
        myy[q] = bb;
        mxy[q] = ab;
      }
    }
    let sum = 0;
    for (let i = 0; i < vh; i++) {
      for (let j = 0; j < vw; j++) {
        let ux = 0,
          uy = 0,
          uxx = 0,
          uyy = 0,
          uxy = 0;
        for (let t = 0; t < win; t++) {
          const q = (i + t) * vw + j;
          const w = k[t]!;
          ux += w * mx[q]!;
          uy += w * my[q]!;
          uxx += w * mxx[q]!;
          uyy += w * myy[q]!;
          uxy += w * mxy[q]!;
        }
        const vx = uxx - ux * ux;
        const vy = uyy - uy * uy;
        const vxy = uxy - ux * uy;
        sum += ((2 * ux * uy + C1) * (2 * vxy + C2)) / ((ux * ux + uy * uy + C1) * (vx + vy + C2));
      }
    }
    total += sum / (vw * vh);
  }
  return total / 3;
}

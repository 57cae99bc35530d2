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

/**
 * The region of every pixel: the style whose weight is largest there (the first on a tie), as the
 * region CLIP scores crop them (clip-preprocess.ts regionBoxes).
 */
export function regionLabels(weights: readonly Float32Array[], width: number, height: number): Uint8Array {
  const n = width * height;
  if (weights.some((m) => m.length !== n)) throw new Error(`mask planes must have ${width}×${height} values`);
  const labels = new Uint8Array(n);
  for (let p = 0; p < n; p++) {
    let best = 0;
    for (let k = 1; k < weights.length; k++) if (weights[k]![p]! > weights[best]![p]!) best = k;
    labels[p] = best;
  }
  return labels;
}

export interface BorderTv {
  /** Seam TV of the band around every border; null when the picture has one region only. */
  all: number | null;
  /** Seam TV of the band around the borders of region k with any other; null where region k has none. */
  regions: (number | null)[];
}

/**
 * Seam TV along the borders between regions, not only the centre band: border pixels are those with a
 * 4-neighbour in another region (both sides of the border); the band is every pixel within a Chebyshev
 * distance of round(SEAM_BAND·min(W, H)) − 1 of one, so on a square picture split down the middle it is
 * exactly the centre band of tvSeam. Over the band, √(d² + 1e-6) of the horizontal and vertical
 * differences between band pixels, over channels, per band pixel (tvSeam's formula). Region k's value
 * uses the band around the borders that region k is on.
 */
export function borderTv(x: ImageValue, labels: Uint8Array, regions: number): BorderTv {
  const { width: W, height: H } = x;
  if (labels.length !== W * H) throw new Error(`region labels have ${labels.length} values, the ${W}×${H} image needs ${W * H}`);
  const reach = Math.max(0, Math.round(SEAM_BAND * Math.min(W, H)) - 1);
  // on[k]: the border pixels of region k's borders (k = regions: all borders).
  const on = Array.from({ length: regions + 1 }, () => new Uint8Array(W * H));
  const mark = (p: number, a: number, b: number) => {
    on[a]![p] = on[b]![p] = on[regions]![p] = 1;
  };
  for (let y = 0; y < H; y++) {
    for (let xx = 0; xx < W; xx++) {
      const p = y * W + xx;
      const a = labels[p]!;
      for (const q of [xx + 1 < W ? p + 1 : -1, y + 1 < H ? p + W : -1]) {
        if (q < 0 || labels[q] === a) continue;
        const b = labels[q]!;
        mark(p, a, b);
        mark(q, a, b);
      }
    }
  }
  const tvOf = (border: Uint8Array): number | null => {
    if (!border.includes(1)) return null;
    const band = dilate(border, W, H, reach);
    let s = 0;
    let count = 0;
    for (let p = 0; p < W * H; p++) if (band[p]) count++;
    for (let c = 0; c < 3; c++) {
      const base = c * W * H;
      for (let y = 0; y < H; y++) {
        for (let xx = 0; xx < W; xx++) {
          const p = y * W + xx;
          if (!band[p]) continue;
          const v = x.data[base + p]!;
          if (xx + 1 < W && band[p + 1]) s += Math.sqrt((x.data[base + p + 1]! - v) ** 2 + SEAM_EPSILON);
          if (y + 1 < H && band[p + W]) s += Math.sqrt((x.data[base + p + W]! - v) ** 2 + SEAM_EPSILON);
        }
      }
    }
    return s / count;
  };
  return { all: tvOf(on[regions]!), regions: on.slice(0, regions).map(tvOf) };
}

/** Pixels within Chebyshev distance r of a set pixel: a max filter along rows, then along columns. */
function dilate(set: Uint8Array, W: number, H: number, r: number): Uint8Array {
  const rows = new Uint8Array(W * H);
  for (let y = 0; y < H; y++) {
    const nextOf = new Int32Array(W);
    let next = 2 ** 30;
    for (let xx = W - 1; xx >= 0; xx--) {
      if (set[y * W + xx]) next = xx;
      nextOf[xx] = next;
    }
    let last = -Infinity;
    for (let xx = 0; xx < W; xx++) {
      if (set[y * W + xx]) last = xx;
      if (xx - last <= r || nextOf[xx]! - xx <= r) rows[y * W + xx] = 1;
    }
  }
  const out = new Uint8Array(W * H);
  for (let xx = 0; xx < W; xx++) {
    let last = -Infinity;
    const nextOf = new Int32Array(H);
    let next = 2 ** 30;
    for (let y = H - 1; y >= 0; y--) {
      if (rows[y * W + xx]) next = y;
      nextOf[y] = next;
    }
    for (let y = 0; y < H; y++) {
      if (rows[y * W + xx]) last = y;
      if (y - last <= r || nextOf[y]! - y <= r) out[y * W + xx] = 1;
    }
  }
  return out;
}

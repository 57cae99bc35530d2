/**
 * Painted masks: the strokes a user paints on a Mask node (server/protocol/painting.ts), rasterised
 * at any grid size into N weight planes that sum to 1 at every pixel.
 *
 * How the weights are made, and why they always sum to 1:
 * 1. Every pixel starts as the fill style (weight 1 there, 0 elsewhere).
 * 2. Strokes are laid down in order, each a round brush swept along its points. A stroke's coverage α
 *    of a pixel is clamp(r − d + ½, 0, 1) (d the distance from the pixel centre to the stroke, r the
 *    radius in pixels): 1 inside, 0 outside, a one-pixel antialiased edge. The stroke is composited
 *    over what is there, w_k ← (1 − α)·w_k + α·[k = its style] (an eraser paints the fill style), which
 *    keeps Σ_k w_k = 1.
 * 3. Feather: each plane is blurred by the same Gaussian (σ = feather × the shorter side; three box
 *    passes), a normalised linear filter, so the sum stays 1 and borders become soft ramps.
 * 4. Each pixel is divided by its sum (exactly 1 up to rounding), so the planes are a partition of unity.
 * The raster is drawn at 256..511 pixels on the long side whatever the grid asked for: a grid under 256
 * (a latent) is supersampled by a whole factor and box-averaged down, one over 384 is drawn at 384 and
 * upsampled bilinearly, so every size sees the same mask and the cost is bounded.
 */
import { decodePoints, ERASER, type Stroke } from '../../protocol/painting.ts';
import { resizeBilinear } from './bilinear.ts';

export interface Painting {
  strokes: readonly Stroke[];
  /** The style (1..N) of every pixel no stroke covers. */
  fill: number;
  /** Softness of painted borders: the Gaussian's σ as a fraction of the picture's shorter side (0: crisp). */
  feather: number;
}

const MIN_RASTER = 256;
const MAX_RASTER = 384;

/**
 * The painting's N planes at w×h. `base`, when given, is what the strokes are painted over instead of
 * the fill style: N planes summing to 1 at the raster size it is asked for (a words mask painted over).
 */
export function paintedWeights(
  painting: Painting,
  styles: number,
  w: number,
  h: number,
  base?: (rw: number, rh: number) => readonly Float32Array[],
): Float32Array[] {
  const { strokes, fill, feather } = painting;
  if (!Number.isInteger(fill) || fill < 1 || fill > styles) throw new Error(`the fill style must be 1..${styles}, got ${fill}`);
  if (!(feather >= 0)) throw new Error(`feather must be ≥ 0, got ${feather}`);
  const long = Math.max(w, h);
  const up = long < MIN_RASTER ? Math.ceil(MIN_RASTER / long) : 1;
  const scale = long > MAX_RASTER ? MAX_RASTER / long : up;
  const rw = Math.max(1, Math.round(w * scale));
  const rh = Math.max(1, Math.round(h * scale));
  const n = rw * rh;
  const planes = base ? base(rw, rh).map((p) => Float32Array.from(p)) : Array.from({ length: styles }, () => new Float32Array(n));
  if (planes.length !== styles || planes.some((p) => p.length !== n)) throw new Error(`the base of a painting must be ${styles} planes of ${rw}×${rh}`);
  if (!base) planes[fill - 1]!.fill(1);

  const short = Math.min(rw, rh);
  for (const [index, stroke] of strokes.entries()) {
    const style = stroke.style === ERASER ? fill : stroke.style;
    if (!Number.isInteger(style) || style < 1 || style > styles) {
      throw new Error(`stroke ${index + 1} paints style ${stroke.style}, but the mask has ${styles} styles`);
    }
    drawStroke(planes, style - 1, decodePoints(stroke.points), stroke.radius * short, rw, rh);
  }
  const sigma = feather * short;
  if (sigma >= 0.3) for (const p of planes) gaussianBlur(p, rw, rh, sigma);
  normalize(planes, n);

  if (rw === w && rh === h) return planes;
  if (up > 1 && rw === w * up && rh === h * up) return planes.map((p) => boxDown(p, w, h, up));
  return planes.map((p) => resizeBilinear(p, rw, rh, w, h));
}

/**
 * Composites one stroke of style index `s` (points xy in 0..1, radius r in raster pixels) over the
 * planes. Row by row: each segment's capsule crosses a row in an interval (it is convex); pixels whose
 * centre lies within r − ½ of the stroke are covered fully and filled once per row from the merged
 * intervals; only the one-pixel rims get a distance each. The work is the stroke's area plus its
 * outline, however many points and however wide the brush.
 */
function drawStroke(planes: Float32Array[], s: number, xy: Float64Array, r: number, rw: number, rh: number): void {
  const px = Array.from({ length: xy.length / 2 }, (_, i) => [xy[2 * i]! * rw, xy[2 * i + 1]! * rh] as const);
  const reach = r + 1;
  const x0 = clampInt(Math.floor(Math.min(...px.map((p) => p[0])) - reach), 0, rw);
  const x1 = clampInt(Math.ceil(Math.max(...px.map((p) => p[0])) + reach), 0, rw);
  const y0 = clampInt(Math.floor(Math.min(...px.map((p) => p[1])) - reach), 0, rh);
  const y1 = clampInt(Math.ceil(Math.max(...px.map((p) => p[1])) + reach), 0, rh);
  const bw = x1 - x0;
  if (bw <= 0 || y1 <= y0) return;
  const coverage = new Float32Array(bw * (y1 - y0));
  const full: number[][] = Array.from({ length: y1 - y0 }, () => []);
  /** The first and last pixel of row y whose centre lies in [lo, hi], within the box. */
  const pixels = (span: readonly [number, number]) => [Math.max(x0, Math.ceil(span[0] - 0.5)), Math.min(x1 - 1, Math.floor(span[1] - 0.5))] as const;
  for (let i = 0; i < Math.max(1, px.length - 1); i++) {
    const a = px[i]!;
    const b = px[Math.min(i + 1, px.length - 1)]!;
    const rows = [clampInt(Math.floor(Math.min(a[1], b[1]) - reach), y0, y1), clampInt(Math.ceil(Math.max(a[1], b[1]) + reach), y0, y1)];
    for (let y = rows[0]!; y < rows[1]!; y++) {
      const outer = capsuleSpan(a, b, r + 0.5, y + 0.5);
      if (!outer) continue;
      const [from, to] = pixels(outer);
      const innerSpan = r > 0.5 ? capsuleSpan(a, b, r - 0.5, y + 0.5) : null;
      const [fullFrom, fullTo] = innerSpan ? pixels(innerSpan) : [to + 1, to];
      if (fullFrom <= fullTo) full[y - y0]!.push(fullFrom, fullTo);
      const row = (y - y0) * bw - x0;
      for (let x = from; x <= to; x++) {
        if (x === fullFrom && fullFrom <= fullTo) x = fullTo + 1;
        if (x > to) break;
        const alpha = Math.min(1, Math.max(0, r - segmentDistance(x + 0.5, y + 0.5, a, b) + 0.5));
        if (alpha > coverage[row + x]!) coverage[row + x] = alpha;
      }
    }
  }
  full.forEach((spans, j) => {
    for (let k = 0; k < spans.length; k += 2) coverage.fill(1, j * bw + spans[k]! - x0, j * bw + spans[k + 1]! - x0 + 1);
  });
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const alpha = coverage[(y - y0) * bw + (x - x0)]!;
      if (alpha === 0) continue;
      const p = y * rw + x;
      for (let k = 0; k < planes.length; k++) planes[k]![p] = planes[k]![p]! * (1 - alpha) + (k === s ? alpha : 0);
    }
  }
}

type Point = readonly [number, number];

/** Distance from (x, y) to the segment a–b (a point when a = b). */
function segmentDistance(x: number, y: number, a: Point, b: Point): number {
  const [dx, dy] = [b[0] - a[0], b[1] - a[1]];
  const len2 = dx * dx + dy * dy;
  const t = len2 > 0 ? Math.min(1, Math.max(0, ((x - a[0]) * dx + (y - a[1]) * dy) / len2)) : 0;
  return Math.hypot(x - a[0] - t * dx, y - a[1] - t * dy);
}

/**
 * The x-interval of row y within distance ρ of the segment a–b (the capsule is convex, so it is one
 * interval): the union of the discs at both ends and the band between them; null where the row misses.
 */
function capsuleSpan(a: Point, b: Point, rho: number, y: number): [number, number] | null {
  let lo = Infinity;
  let hi = -Infinity;
  for (const c of [a, b]) {
    const dy = y - c[1];
    if (Math.abs(dy) > rho) continue;
    const h = Math.sqrt(rho * rho - dy * dy);
    lo = Math.min(lo, c[0] - h);
    hi = Math.max(hi, c[0] + h);
  }
  const length = Math.hypot(b[0] - a[0], b[1] - a[1]);
  if (length > 0) {
    // Along the segment 0 ≤ (p − a)·u ≤ L, across it |(p − a)·n| ≤ ρ: each a linear condition on x.
    const [ux, uy] = [(b[0] - a[0]) / length, (b[1] - a[1]) / length];
    const along = linearSpan(ux, (y - a[1]) * uy - a[0] * ux, 0, length);
    const across = linearSpan(-uy, (y - a[1]) * ux + a[0] * uy, -rho, rho);
    if (along && across) {
      const [l, h] = [Math.max(along[0], across[0]), Math.min(along[1], across[1])];
      if (l <= h) {
        lo = Math.min(lo, l);
        hi = Math.max(hi, h);
      }
    }
  }
  return lo <= hi ? [lo, hi] : null;
}

/** The x with lo ≤ c·x + d ≤ hi: an interval, all x, or none. */
function linearSpan(c: number, d: number, lo: number, hi: number): [number, number] | null {
  if (Math.abs(c) < 1e-12) return d >= lo && d <= hi ? [-Infinity, Infinity] : null;
  const [p, q] = [(lo - d) / c, (hi - d) / c];
  return p <= q ? [p, q] : [q, p];
}

function clampInt(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}

/**
 * A Gaussian blur of σ pixels as three box blurs (each of width 2r + 1 with 3·((2r+1)² − 1)/12 ≈ σ²),
 * rows then columns, edges repeated: a normalised linear filter, so planes that sum to 1 still do.
 */
function gaussianBlur(plane: Float32Array, w: number, h: number, sigma: number): void {
  const r = Math.max(1, Math.round((Math.sqrt(4 * sigma * sigma + 1) - 1) / 2));
  const line = new Float64Array(Math.max(w, h));
  for (let pass = 0; pass < 3; pass++) {
    for (let y = 0; y < h; y++) boxLine(plane, y * w, 1, w, r, line);
    for (let x = 0; x < w; x++) boxLine(plane, x, w, h, r, line);
  }
}

/** Box average of half-width r along one row or column (start, stride, length), in place. */
function boxLine(plane: Float32Array, start: number, stride: number, length: number, r: number, line: Float64Array): void {
  for (let i = 0; i < length; i++) line[i] = plane[start + i * stride]!;
  const at = (i: number) => line[i < 0 ? 0 : i >= length ? length - 1 : i]!;
  let acc = 0;
  for (let i = -r; i <= r; i++) acc += at(i);
  const width = 2 * r + 1;
  for (let i = 0; i < length; i++) {
    plane[start + i * stride] = acc / width;
    acc += at(i + r + 1) - at(i - r);
  }
}

/** Each pixel divided by its sum; a blur's rounding can leave −1e-19 where a weight is 0: that is 0. */
function normalize(planes: Float32Array[], n: number): void {
  for (let p = 0; p < n; p++) {
    let sum = 0;
    for (const plane of planes) sum += Math.max(0, plane[p]!);
    for (const plane of planes) plane[p] = Math.max(0, plane[p]!) / sum;
  }
}

/** Averages k×k blocks: the exact area mean of a supersampled raster. */
function boxDown(src: Float32Array, w: number, h: number, k: number): Float32Array {
  const out = new Float32Array(w * h);
  const sw = w * k;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let acc = 0;
      for (let dy = 0; dy < k; dy++) for (let dx = 0; dx < k; dx++) acc += src[(y * k + dy) * sw + x * k + dx]!;
      out[y * w + x] = acc / (k * k);
    }
  }
  return out;
}

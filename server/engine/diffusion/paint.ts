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
 * The raster is drawn at 256..512 pixels on the long side whatever the grid asked for: a small grid
 * (a latent) is supersampled and box-averaged down, a large one is upsampled bilinearly, so every size
 * sees the same mask and the cost is bounded.
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
const MAX_RASTER = 512;

export function paintedWeights(painting: Painting, styles: number, w: number, h: number): Float32Array[] {
  const { strokes, fill, feather } = painting;
  if (!Number.isInteger(fill) || fill < 1 || fill > styles) throw new Error(`the fill style must be 1..${styles}, got ${fill}`);
  if (!(feather >= 0)) throw new Error(`feather must be ≥ 0, got ${feather}`);
  const long = Math.max(w, h);
  const up = long < MIN_RASTER ? Math.ceil(MIN_RASTER / long) : 1;
  const scale = long > MAX_RASTER ? MAX_RASTER / long : up;
  const rw = Math.max(1, Math.round(w * scale));
  const rh = Math.max(1, Math.round(h * scale));
  const n = rw * rh;
  const planes = Array.from({ length: styles }, () => new Float32Array(n));
  planes[fill - 1]!.fill(1);

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

/** Composites one stroke of style index `s` (points xy in 0..1, radius r in raster pixels) over the planes. */
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
  // Each segment (a dot for a one-point stroke) covers what lies within r of it; the stroke is their union.
  for (let i = 0; i < Math.max(1, px.length - 1); i++) {
    const [ax, ay] = px[i]!;
    const [bx, by] = px[Math.min(i + 1, px.length - 1)]!;
    const [dx, dy] = [bx - ax, by - ay];
    const len2 = dx * dx + dy * dy;
    const sx0 = clampInt(Math.floor(Math.min(ax, bx) - reach), x0, x1);
    const sx1 = clampInt(Math.ceil(Math.max(ax, bx) + reach), x0, x1);
    const sy0 = clampInt(Math.floor(Math.min(ay, by) - reach), y0, y1);
    const sy1 = clampInt(Math.ceil(Math.max(ay, by) + reach), y0, y1);
    for (let y = sy0; y < sy1; y++) {
      for (let x = sx0; x < sx1; x++) {
        const [qx, qy] = [x + 0.5 - ax, y + 0.5 - ay];
        const t = len2 > 0 ? Math.min(1, Math.max(0, (qx * dx + qy * dy) / len2)) : 0;
        const alpha = Math.min(1, Math.max(0, r - Math.hypot(qx - t * dx, qy - t * dy) + 0.5));
        const c = (y - y0) * bw + (x - x0);
        if (alpha > coverage[c]!) coverage[c] = alpha;
      }
    }
  }
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const alpha = coverage[(y - y0) * bw + (x - x0)]!;
      if (alpha === 0) continue;
      const p = y * rw + x;
      for (let k = 0; k < planes.length; k++) planes[k]![p] = planes[k]![p]! * (1 - alpha) + (k === s ? alpha : 0);
    }
  }
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

function normalize(planes: Float32Array[], n: number): void {
  for (let p = 0; p < n; p++) {
    let sum = 0;
    for (const plane of planes) sum += plane[p]!;
    for (const plane of planes) plane[p] = plane[p]! / sum;
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

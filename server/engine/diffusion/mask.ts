/**
 * The spatial mask of N-style merging: at every point a weight per style, in [0, 1], summing to 1.
 * With two styles it is the paper's M (style 1) and 1 − M (style 2). Resolution independent: evaluated
 * at pixel centres of whatever grid asks (latent for the samplers, image for pixel merge), so the same
 * mask drives every stage consistently.
 *
 * Gradients place N regions along a position u ∈ [0, 1] (across the picture in a direction, or out from a
 * centre) through the cumulative weights G_j(u) of styles 1..j, j = 1..N−1, with G_0 = 0 and G_N = 1:
 *   logistic  G_j(u) = 1/(1 + exp(k·(u − j/N)))       borders at j/N: N regions of equal width, k = sharpness
 *   linear    G_j(u) = 1 − clamp((N−1)·u − (j−1), 0, 1) a gradient through N evenly spaced stops, style k
 *                                                        pure at u = (k−1)/(N−1) (as CSS linear-gradient)
 * and w_k = G_k − G_{k−1}: the weights telescope to exactly 1 and are ≥ 0 because G_j grows with j. With
 * N = 2 this is the paper's mask, bit for bit: w_1 = G_1 = 1/(1 + exp(k(u − 0.5))) or 1 − u.
 */
import type { AttentionMapsValue, ImageValue, MaskDirection, MaskShape, MaskValue } from '../values.ts';
import { checkSize, resizeBilinear } from './bilinear.ts';
import { paintedWeights, type Painting } from './paint.ts';
import { wordPositions, wordWeights } from './words-mask.ts';

export { resizeBilinear };

export interface MaskOptions {
  /** Number of styles N (default 2). */
  styles?: number;
  shape: MaskShape;
  direction: MaskDirection;
  /** k of the logistic transition; ignored by 'linear', 'image' and 'painted'. */
  sharpness: number;
  /** Direction 'angle': degrees, 0 = left → right, 90 = top → bottom (clockwise on screen). */
  angle?: number;
  /** Direction 'radial': the centre (style 1), as fractions of width and height. */
  center?: { x: number; y: number };
  /**
   * Source of an 'image' mask: its brightness places each pixel along the styles, white = style 1 and
   * black = style N (with two styles, M = brightness). RGB is reduced to Rec. 601 luma.
   */
  image?: ImageValue;
  /** Strokes of a 'painted' mask, or painted over a 'words' mask. */
  painting?: Painting;
  /**
   * Source of a 'words' mask (words-mask.ts): the attention maps of an inversion and the words of each
   * style (N − 1 groups: the last style is the rest); `sharpness` is its κ.
   */
  words?: { attention: AttentionMapsValue; groups: readonly string[][] };
}

/** G_j(u): the weight of styles 1..j at position u along a gradient of N styles (see the header). */
export function cumulativeWeight(shape: 'linear' | 'logistic', u: number, j: number, styles: number, sharpness: number): number {
  if (shape === 'linear') return 1 - Math.min(1, Math.max(0, (styles - 1) * u - (j - 1)));
  return 1 / (1 + Math.exp(sharpness * (u - j / styles)));
}

/** The N weights at position u, written into planes[k][i]: w_k = G_k − G_{k−1}. */
function weightsAt(shape: 'linear' | 'logistic', u: number, styles: number, sharpness: number, planes: Float32Array[], i: number): void {
  let previous = 0;
  for (let j = 1; j < styles; j++) {
    const g = cumulativeWeight(shape, u, j, styles, sharpness);
    planes[j - 1]![i] = g - previous;
    previous = g;
  }
  planes[styles - 1]![i] = 1 - previous;
}

export function makeMask(options: MaskOptions): MaskValue {
  const { shape, direction, sharpness } = options;
  const styles = options.styles ?? 2;
  if (!Number.isInteger(styles) || styles < 2) throw new Error(`a mask needs a whole number of styles ≥ 2, got ${styles}`);
  let evaluate: (w: number, h: number) => Float32Array[];
  let description: string;
  if (shape === 'image') {
    if (!options.image) throw new Error('an image mask needs an image');
    const gray = toGray(options.image);
    const { width: srcW, height: srcH } = options.image;
    description = `from an image, ${styles} styles`;
    // The image is taken as drawn; direction does not apply to it. u = 1 − brightness, through the linear stops.
    evaluate = (w, h) => {
      const g = resizeBilinear(gray, srcW, srcH, w, h);
      const planes = emptyPlanes(styles, w * h);
      for (let i = 0; i < g.length; i++) weightsAt('linear', 1 - g[i]!, styles, sharpness, planes, i);
      return planes;
    };
  } else if (shape === 'painted') {
    const painting = options.painting;
    if (!painting) throw new Error('a painted mask needs its strokes');
    description = `painted, ${painting.strokes.length} stroke${painting.strokes.length === 1 ? '' : 's'}, ${styles} styles`;
    evaluate = (w, h) => paintedWeights(painting, styles, w, h);
  } else if (shape === 'words') {
    const source = options.words;
    if (!source) throw new Error('a words mask needs the attention maps of an inversion and the words of each style');
    const { attention, groups } = source;
    const base = wordWeights(attention, wordPositions(attention, groups), styles, sharpness);
    const painting = options.painting ?? { strokes: [], fill: styles, feather: 0 };
    const strokes = painting.strokes.length;
    const named = groups.map((g) => `"${g.join(' ')}"`).join(' | ') + (groups.length < styles ? ' | the rest' : '');
    const over = strokes ? `, ${strokes} stroke${strokes === 1 ? '' : 's'} over it` : '';
    description = `words ${named}${over}, ${styles} styles`;
    evaluate = (w, h) => paintedWeights(painting, styles, w, h, (rw, rh) => base.map((p) => resizeBilinear(p, attention.width, attention.height, rw, rh)));
  } else if (shape === 'linear' || shape === 'logistic') {
    if (!Number.isFinite(sharpness)) throw new Error(`mask sharpness must be a finite number, got ${sharpness}`);
    const position = positions(direction, options.angle ?? 0, options.center ?? { x: 0.5, y: 0.5 });
    description = `${shape} ${direction === 'angle' ? `at ${options.angle ?? 0}°` : direction}, ${styles} styles`;
    evaluate = (w, h) => {
      const planes = emptyPlanes(styles, w * h);
      position(w, h, (i, u) => weightsAt(shape, u, styles, sharpness, planes, i));
      return planes;
    };
  } else {
    throw new Error(`unknown mask shape "${String(shape)}"`);
  }
  return { styles, description, weights: memoized(evaluate) };
}

/** Calls `at(i, u)` with the position u ∈ [0, 1] of every pixel i of a w×h grid. */
type PositionMap = (w: number, h: number, at: (i: number, u: number) => void) => void;

function positions(direction: MaskDirection, angle: number, center: { x: number; y: number }): PositionMap {
  switch (direction) {
    case 'left-right':
    case 'right-left':
    case 'top-bottom':
    case 'bottom-top': {
      // The paper's four directions: u = (j + 0.5)/n across the width or down the height, once per line.
      const horizontal = direction === 'left-right' || direction === 'right-left';
      const reversed = direction === 'right-left' || direction === 'bottom-top';
      return (w, h, at) => {
        for (let y = 0; y < h; y++) {
          for (let x = 0; x < w; x++) {
            const j = horizontal ? x : y;
            const n = horizontal ? w : h;
            const u = (j + 0.5) / n;
            at(y * w + x, reversed ? 1 - u : u);
          }
        }
      };
    }
    case 'angle': {
      if (!Number.isFinite(angle)) throw new Error(`mask angle must be a finite number, got ${angle}`);
      // Projection on (cos θ, sin θ) in pixels (y down), scaled so the picture's corners span 0..1.
      const c = Math.cos((angle * Math.PI) / 180);
      const s = Math.sin((angle * Math.PI) / 180);
      return (w, h, at) => {
        const extent = Math.abs(c) * w + Math.abs(s) * h;
        for (let y = 0; y < h; y++) {
          for (let x = 0; x < w; x++) at(y * w + x, 0.5 + ((x + 0.5 - w / 2) * c + (y + 0.5 - h / 2) * s) / extent);
        }
      };
    }
    case 'radial': {
      if (!(center.x >= 0 && center.x <= 1 && center.y >= 0 && center.y <= 1)) {
        throw new Error(`a radial mask's centre must lie in the picture (0..1), got ${center.x}, ${center.y}`);
      }
      // Distance from the centre in pixels over the distance to the farthest corner (CSS's farthest-corner).
      return (w, h, at) => {
        const [cx, cy] = [center.x * w, center.y * h];
        const far = Math.hypot(Math.max(cx, w - cx), Math.max(cy, h - cy));
        for (let y = 0; y < h; y++) {
          for (let x = 0; x < w; x++) at(y * w + x, Math.hypot(x + 0.5 - cx, y + 0.5 - cy) / far);
        }
      };
    }
    default:
      throw new Error(`unknown mask direction "${String(direction)}"`);
  }
}

function emptyPlanes(styles: number, n: number): Float32Array[] {
  return Array.from({ length: styles }, () => new Float32Array(n));
}

/** The weights of the last few grid sizes asked for (a run asks for the latent size, the image size, a thumbnail). */
function memoized(evaluate: (w: number, h: number) => Float32Array[]): (w: number, h: number) => Float32Array[] {
  const cache = new Map<string, Float32Array[]>();
  return (w, h) => {
    checkSize(w, h);
    const key = `${w}x${h}`;
    let hit = cache.get(key);
    if (!hit) {
      hit = evaluate(w, h);
      cache.set(key, hit);
      if (cache.size > 4) cache.delete(cache.keys().next().value as string);
    }
    return hit;
  };
}

/**
 * The weights of a mask at a w×h grid: a MaskValue is evaluated there; planes given as arrays must
 * already have w·h values each. Either way there must be `styles` of them.
 */
export function maskWeights(mask: MaskValue | readonly Float32Array[], styles: number, w: number, h: number): readonly Float32Array[] {
  const planes = 'weights' in mask ? mask.weights(w, h) : mask;
  if (planes.length !== styles) throw new Error(`the mask has ${planes.length} styles, ${styles} are merged`);
  for (const m of planes) if (m.length !== w * h) throw new Error(`mask has ${m.length} values, the ${w}×${h} grid needs ${w * h}`);
  return planes;
}

/**
 * The blend of N-style merging, out = Σ_{k<N−1} M_k·e_k + (1 − Σ_{k<N−1} M_k)·e_{N−1}, for every plane
 * of the parts (channels of a latent or an image), each M_k [plane] shared by all planes. The last
 * style takes what the others leave, so the weights sum to 1 exactly; with two styles this is the
 * paper's M·e1 + (1 − M)·e2, the same arithmetic. `out` may be one of the parts.
 */
export function blendInto(out: Float32Array | Float64Array, parts: readonly (Float32Array | Float64Array)[], M: readonly Float32Array[]): void {
  const n = parts.length;
  if (n < 2 || M.length !== n) throw new Error(`a blend needs N ≥ 2 parts and N weights, got ${n} and ${M.length}`);
  const plane = M[0]!.length;
  const first = parts[0]!;
  const last = parts[n - 1]!;
  const m0 = M[0]!;
  for (let c = 0; c < out.length; c += plane) {
    for (let p = 0; p < plane; p++) {
      const i = c + p;
      const m = m0[p]!;
      let acc = m * first[i]!;
      let rest = 1 - m;
      for (let k = 1; k < n - 1; k++) {
        const mk = M[k]![p]!;
        acc += mk * parts[k]![i]!;
        rest -= mk;
      }
      out[i] = acc + rest * last[i]!;
    }
  }
}

function toGray(img: ImageValue): Float32Array {
  const n = img.width * img.height;
  const channels = img.data.length / n;
  if (channels === 1) return img.data;
  if (channels !== 3 && channels !== 4) {
    throw new Error(`mask image must have 1, 3 or 4 channels, got ${img.data.length} values for ${img.width}×${img.height}`);
  }
  const d = img.data;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = 0.299 * d[i]! + 0.587 * d[n + i]! + 0.114 * d[2 * n + i]!;
  return out;
}

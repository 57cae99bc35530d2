/**
 * CLIP scores from embeddings, as the metrics fixture defines them for two styles; every embedding is
 * L2-normalised first.
 *   clip        = ½ (cos(E(g), E(s1)) + cos(E(g), E(s2)))
 *   clip_left   = cos(E(g_left), E(s1)),  clip_right = cos(E(g_right), E(s2))
 *   dclip       = ½ Σ_k cos(E(g) − E(o), E(s_k) − E(src))            (directional CLIP)
 *   dclip_left  = cos(E(g_left) − E(o_left), E(s1) − E(src)),  dclip_right likewise with s2
 * where g is the generated image, o the original, s1 the left style, s2 the right style, src the
 * source prompt, and _left/_right the image halves (clip-preprocess.ts: halves).
 * With N styles, clip and dclip are the means over the N styles (the same numbers for two), and the
 * halves, which only mean something for a left and a right style, are left out; each style's own
 * region is scored instead (regionClipScores, with the mask).
 */

export function normalize(v: Float32Array): Float64Array {
  let n = 0;
  for (let i = 0; i < v.length; i++) n += v[i]! * v[i]!;
  n = Math.sqrt(n);
  if (!(n > 0)) throw new Error('a CLIP embedding is all zeros (or NaN); the model cannot be right');
  return Float64Array.from(v, (x) => x / n);
}

/** Cosine of two vectors (not assumed normalised); 0 when one is zero (an unchanged image has no direction). */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`embeddings differ in length: ${a.length} and ${b.length}`);
  let ab = 0,
    aa = 0,
    bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return aa * bb > 0 ? ab / Math.sqrt(aa * bb) : 0;
}

function minus(a: Float64Array, b: Float64Array): Float64Array {
  return a.map((x, i) => x - b[i]!);
}

/** Image embeddings of the whole picture and its halves. */
export interface ImageEmbeddings {
  full: Float32Array;
  left: Float32Array;
  right: Float32Array;
}

export interface PromptEmbeddings {
  source: Float32Array;
  /** One per style, in the mask's order (two: left, right). */
  styles: Float32Array[];
}

export interface ClipScores {
  clip: number;
  dclip: number;
  /** Two styles only. */
  clip_left?: number;
  clip_right?: number;
  dclip_left?: number;
  dclip_right?: number;
}

/** The mean of f over the styles, summed in order (for two: (a + b)/2, the fixture's arithmetic). */
function meanOver<T>(items: T[], f: (item: T) => number): number {
  let sum = 0;
  for (const item of items) sum += f(item);
  return sum / items.length;
}

export function clipScores(generated: ImageEmbeddings, original: ImageEmbeddings, prompts: PromptEmbeddings): ClipScores {
  const [g, o] = [generated.full, original.full].map(normalize) as Float64Array[];
  const src = normalize(prompts.source);
  const styles = prompts.styles.map(normalize);
  if (styles.length < 2) throw new Error(`CLIP scores need at least two style prompts, got ${styles.length}`);
  if (g!.length !== styles[0]!.length) throw new Error(`image embeddings have ${g!.length} values, text embeddings ${styles[0]!.length}: not one CLIP model`);
  const directions = styles.map((s) => minus(s, src));
  const dg = minus(g!, o!);
  const scores: ClipScores = { clip: meanOver(styles, (s) => cosine(g!, s)), dclip: meanOver(directions, (d) => cosine(dg, d)) };
  if (styles.length !== 2) return scores;
  const [gl, gr, ol, or] = [generated.left, generated.right, original.left, original.right].map(normalize) as Float64Array[];
  return {
    clip: scores.clip,
    clip_left: cosine(gl!, styles[0]!),
    clip_right: cosine(gr!, styles[1]!),
    dclip: scores.dclip,
    dclip_left: cosine(minus(gl!, ol!), directions[0]!),
    dclip_right: cosine(minus(gr!, or!), directions[1]!),
  };
}

/**
 * CLIP of each style's own region: cos(E(g_k), E(s_k)), g_k the picture cropped to where style k
 * weighs most (clip-preprocess.ts: regionBoxes); null for a style that weighs most nowhere.
 */
export function regionClipScores(regions: (Float32Array | null)[], styles: Float32Array[]): (number | null)[] {
  if (regions.length !== styles.length) throw new Error(`${regions.length} regions for ${styles.length} styles`);
  return regions.map((r, k) => (r ? cosine(normalize(r), normalize(styles[k]!)) : null));
}

/**
 * Bleed: the mean cosine of each region's crop with the other styles' prompts, (1/(N − 1))·Σ_{j≠k}
 * cos(region_k, style_j) (null where a style has no region). Lower is better: a region that shows only
 * its own style is far from the others.
 */
export function regionBleedScores(regions: (Float32Array | null)[], styles: Float32Array[]): (number | null)[] {
  if (regions.length !== styles.length) throw new Error(`${regions.length} regions for ${styles.length} styles`);
  if (styles.length < 2) throw new Error('bleed needs at least two styles');
  const unitStyles = styles.map(normalize);
  return regions.map((r, k) => {
    if (!r) return null;
    const u = normalize(r);
    let sum = 0;
    unitStyles.forEach((s, j) => {
      if (j !== k) sum += cosine(u, s);
    });
    return sum / (styles.length - 1);
  });
}

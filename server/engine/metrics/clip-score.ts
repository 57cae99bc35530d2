/**
 * CLIP scores from embeddings, as the metrics fixture defines them; every embedding is
 * L2-normalised first.
 *   clip        = ½ (cos(E(g), E(s1)) + cos(E(g), E(s2)))
 *   clip_left   = cos(E(g_left), E(s1)),  clip_right = cos(E(g_right), E(s2))
 *   dclip       = ½ Σ_k cos(E(g) − E(o), E(s_k) − E(src))            (directional CLIP)
 *   dclip_left  = cos(E(g_left) − E(o_left), E(s1) − E(src)),  dclip_right likewise with s2
 * where g is the generated image, o the original, s1 the left style, s2 the right style, src the
 * source prompt, and _left/_right the image halves (clip-preprocess.ts: halves).
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
  let ab = 0, aa = 0, bb = 0;
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
  style1: Float32Array;
  style2: Float32Array;
}

export interface ClipScores {
  clip: number;
  clip_left: number;
  clip_right: number;
  dclip: number;
  dclip_left: number;
  dclip_right: number;
}

export function clipScores(generated: ImageEmbeddings, original: ImageEmbeddings, prompts: PromptEmbeddings): ClipScores {
  const [g, gl, gr, o, ol, or] = [generated.full, generated.left, generated.right, original.full, original.left, original.right].map(normalize) as Float64Array[];
  const [src, s1, s2] = [prompts.source, prompts.style1, prompts.style2].map(normalize) as Float64Array[];
  if (g!.length !== s1!.length) throw new Error(`image embeddings have ${g!.length} values, text embeddings ${s1!.length}: not one CLIP model`);
  const d1 = minus(s1!, src!);
  const d2 = minus(s2!, src!);
  const dg = minus(g!, o!);
  return {
    clip: (cosine(g!, s1!) + cosine(g!, s2!)) / 2,
    clip_left: cosine(gl!, s1!),
    clip_right: cosine(gr!, s2!),
    dclip: (cosine(dg, d1) + cosine(dg, d2)) / 2,
    dclip_left: cosine(minus(gl!, ol!), d1),
    dclip_right: cosine(minus(gr!, or!), d2),
  };
}

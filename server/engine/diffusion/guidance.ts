/**
 * Epsilon rules: which conditioning rows the one UNet call of a sampler step carries, and how the
 * guided noise ê is formed from them. Classifier-free guidance ê = e∅ + s·(e_c − e∅); with s = 1
 * only e_c is computed, and ∅ is never fetched. The samplers (cycle.ts) know nothing about rows; a
 * rule that needs another UNet (attention merge: a rewritten UNet with a second conditioning and a
 * mask) asks the model for its extras in `bind` and plugs into the same loop.
 */
import type { CallExtras, Denoiser } from './denoiser.ts';
import { blendInto, maskWeights } from './mask.ts';
import type { MaskValue } from '../values.ts';

export interface EpsilonEvaluator {
  /** Conditioning rows each UNet call carries (the batch size). */
  readonly rows: number;
  /**
   * Writes ê(x, t) into `eps` (both [C·h·w]) with exactly one UNet call, and returns that call's raw
   * output so the sampler can check it for NaN/Inf; like every model output, valid only until the next
   * call (see Denoiser.unet).
   */
  evaluate(x: Float32Array, t: number, eps: Float32Array): Promise<Float32Array>;
}

export interface EpsilonRule {
  /** Short name for logs and the bench ('single', 'epsilon-merge', ...). */
  readonly name: string;
  /** Builds the batched input buffers once for this latent size. */
  bind(model: Denoiser, latentW: number, latentH: number): Promise<EpsilonEvaluator>;
}

/** One conditioning row: an embedding [L·D], or ∅ (fetched from the model only when a rule needs it). */
type Row = { embedding: Float32Array; what: string } | 'unconditional';

/** The rows' embeddings stacked into one [rows, L, D] buffer, built once per run. */
async function stackRows(model: Denoiser, rows: Row[]): Promise<Float32Array> {
  const n = model.info.textLength * model.info.textDim;
  const ehs = new Float32Array(rows.length * n);
  for (const [i, row] of rows.entries()) {
    const { embedding, what } = row === 'unconditional' ? { embedding: await model.unconditional(), what: 'unconditional' } : row;
    if (embedding.length !== n) {
      throw new Error(`${what} conditioning has ${embedding.length} values; this model needs [${model.info.textLength}, ${model.info.textDim}] = ${n}`);
    }
    ehs.set(embedding, i * n);
  }
  return ehs;
}

/** Forms ê [n] from the call's stacked output. */
type Combine = (out: Float32Array, eps: Float32Array, n: number) => void;

/** ê = e∅ + s·(e_c − e∅) of rows ∅ at `u` and c at `c` of `out`, into `eps`. */
function guide(out: Float32Array, u: number, c: number, s: number, eps: Float32Array | Float64Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const e0 = out[u + i]!;
    eps[i] = e0 + s * (out[c + i]! - e0);
  }
}

/** The rows of one guided prompt, [c] when s = 1, else [∅, c], and how ê comes out of them. */
function guided(prompt: Row, s: number): { rows: Row[]; combine: Combine } {
  if (s === 1) return { rows: [prompt], combine: (out, eps, n) => eps.set(out.subarray(0, n)) };
  return { rows: ['unconditional', prompt], combine: (out, eps, n) => guide(out, 0, n, s, eps, n) };
}

/**
 * An evaluator for one UNet call per step: `rows` stacked once into encoder_hidden_states, x copied
 * into every sample row per step, `combine` forms ê from the stacked output. `extras` goes with every
 * call (a rewritten UNet's additional feeds, built once like the rows).
 */
async function batchedEvaluator(model: Denoiser, w: number, h: number, rows: Row[], combine: Combine, extras?: CallExtras): Promise<EpsilonEvaluator> {
  const n = model.info.latentChannels * w * h;
  const batch = rows.length;
  const ehs = await stackRows(model, rows);
  const sample = new Float32Array(batch * n);
  return {
    rows: batch,
    async evaluate(x, t, eps) {
      if (x.length !== n) throw new Error(`latent has ${x.length} values, expected ${n}`);
      for (let r = 0; r < batch; r++) sample.set(x, r * n);
      const out = await model.unet(sample, batch, h, w, t, ehs, extras);
      combine(out, eps, n);
      return out;
    },
  };
}

/** Single prompt: ê = e∅ + s·(e_c − e∅); rows [c] when s = 1, else [∅, c]. */
export function singlePrompt(c: Float32Array, s: number): EpsilonRule {
  checkGuidance(s);
  return {
    name: 'single',
    bind(model, w, h) {
      const { rows, combine } = guided({ embedding: c, what: 'prompt' }, s);
      return batchedEvaluator(model, w, h, rows, combine);
    },
  };
}

/** The conditioning rows of N styles, each named for messages ("style 3"); at least two. */
function styleRows(styles: readonly Float32Array[]): Row[] {
  if (styles.length < 2) throw new Error(`merging needs at least two styles, got ${styles.length}`);
  return styles.map((embedding, k) => ({ embedding, what: `style ${k + 1}` }));
}

/**
 * Epsilon merge of N styles: ê = Σ_k M_k·ê(x, t, c_k), each ê(c_k) guided with s, the last weight being
 * what the others leave (blendInto). One UNet call with rows [∅, c1, …, cN] (just [c1, …, cN] when
 * s = 1). With two styles this is the paper's M·ê(c1) + (1 − M)·ê(c2), the same arithmetic.
 */
export function epsilonMerge(styles: readonly Float32Array[], s: number, mask: MaskValue | readonly Float32Array[]): EpsilonRule {
  checkGuidance(s);
  const rows = styleRows(styles);
  const N = rows.length;
  return {
    name: 'epsilon-merge',
    bind(model, w, h) {
      const M = maskWeights(mask, N, w, h);
      const n = model.info.latentChannels * w * h;
      if (s === 1) {
        const parts: Float32Array[] = Array.from({ length: N }, () => new Float32Array(0));
        return batchedEvaluator(model, w, h, rows, (out, eps) => {
          for (let k = 0; k < N; k++) parts[k] = out.subarray(k * n, (k + 1) * n);
          blendInto(eps, parts, M);
        });
      }
      // The guided predictions stay in float64 until blended, as one expression would keep them.
      const guidedParts = Array.from({ length: N }, () => new Float64Array(n));
      return batchedEvaluator(model, w, h, ['unconditional', ...rows], (out, eps) => {
        for (let k = 0; k < N; k++) guide(out, 0, (k + 1) * n, s, guidedParts[k]!, n);
        blendInto(eps, guidedParts, M);
      });
    },
  };
}

/**
 * Attention merge of N styles: every cross-attention layer attends to each c_k and blends per token,
 * Σ_k M_k·A_k, giving e_merged; then ê = e∅ + s·(e_merged − e∅). One call of the UNet rewritten for N
 * conditionings, with rows [∅, merged] (just [merged] when s = 1); the ∅ row carries ∅ in every
 * conditioning. The rewrite takes the weights of styles 1..N−1; style N takes what they leave.
 */
export function attentionMerge(styles: readonly Float32Array[], s: number, mask: MaskValue | readonly Float32Array[]): EpsilonRule {
  checkGuidance(s);
  const [first, ...others] = styleRows(styles).map((row) => guided(row, s));
  return {
    name: 'attention-merge',
    async bind(model, w, h) {
      const M = maskWeights(mask, others.length + 1, w, h);
      const weights = new Float32Array(others.length * w * h);
      M.slice(0, -1).forEach((m, k) => weights.set(m, k * w * h));
      const conditionings = await Promise.all(others.map((o) => stackRows(model, o.rows)));
      const extras = await model.attentionMergeExtras(conditionings, first!.rows.length, weights, w, h);
      return batchedEvaluator(model, w, h, first!.rows, first!.combine, extras);
    },
  };
}

function checkGuidance(s: number): void {
  if (!Number.isFinite(s)) throw new Error(`guidance scale must be a finite number, got ${s}`);
}

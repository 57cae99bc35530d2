/**
 * Epsilon rules: which conditioning rows the one UNet call of a sampler step carries, and how the
 * guided noise ê is formed from them. Classifier-free guidance ê = e∅ + s·(e_c − e∅); with s = 1
 * only e_c is computed, and ∅ is never fetched. The samplers (cycle.ts) know nothing about rows; a
 * rule that needs another UNet (attention merge: a rewritten UNet with a second conditioning and a
 * mask) asks the model for its extras in `bind` and plugs into the same loop.
 */
import { batchedEvaluator, checkGuidance, guide, type Combine, type EpsilonRule, type Row } from './rows.ts';
import { regionalAttentionMerge, regionalMerge } from './regions.ts';
import type { MaskValue } from '../values.ts';

export type { EpsilonEvaluator, EpsilonRule, StepAt } from './rows.ts';

/** The rows of one guided prompt, [c] when s = 1, else [n, c] (n = ∅ by default), and how ê comes out of them. */
function guided(prompt: Row, s: number, negative: Row = 'unconditional'): { rows: Row[]; combine: Combine } {
  if (s === 1) return { rows: [prompt], combine: (out, eps, n) => eps.set(out.subarray(0, n)) };
  return { rows: [negative, prompt], combine: (out, eps, n) => guide(out, 0, n, s, eps, n) };
}

/**
 * Single prompt: ê = e(n) + s·(e(c) − e(n)), n the negative prompt (∅ when absent); rows [c] when s = 1,
 * else [n, c].
 */
export function singlePrompt(c: Float32Array, s: number, negative?: Float32Array): EpsilonRule {
  checkGuidance(s);
  return {
    name: 'single',
    bind(model, w, h) {
      const { rows, combine } = guided({ embedding: c, what: 'prompt' }, s, negative ? { embedding: negative, what: 'negative prompt' } : undefined);
      return batchedEvaluator(model, w, h, rows, combine);
    },
  };
}

/**
 * Epsilon merge of N styles: ê = Σ_k M_k·ê(x, t, c_k), each ê(c_k) guided with s, the last weight being
 * what the others leave (blendInto). One UNet call with rows [∅, c1, …, cN] (just [c1, …, cN] when
 * s = 1). With two styles this is the paper's M·ê(c1) + (1 − M)·ê(c2), the same arithmetic.
 */
export function epsilonMerge(styles: readonly Float32Array[], s: number, mask: MaskValue | readonly Float32Array[]): EpsilonRule {
  return regionalMerge(
    styles.map((prompt) => ({ prompt })),
    s,
    mask,
  );
}

/**
 * Attention merge of N styles: every cross-attention layer attends to each c_k and blends per token,
 * Σ_k M_k·A_k, giving e_merged; then ê = e∅ + s·(e_merged − e∅). One call of the UNet rewritten for N
 * conditionings, with rows [∅, merged] (just [merged] when s = 1); the ∅ row carries ∅ in every
 * conditioning. The rewrite takes the weights of styles 1..N−1; style N takes what they leave.
 */
export function attentionMerge(styles: readonly Float32Array[], s: number, mask: MaskValue | readonly Float32Array[]): EpsilonRule {
  return regionalAttentionMerge(
    styles.map((prompt) => ({ prompt })),
    s,
    mask,
  );
}

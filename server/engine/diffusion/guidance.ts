/**
 * Epsilon rules: which conditioning rows the one UNet call of a sampler step carries, and how the
 * guided noise ê is formed from them. Classifier-free guidance ê = e∅ + s·(e_c − e∅); with s = 1
 * only e_c is computed. The samplers (cycle.ts) know nothing about rows; a rule that needs another
 * UNet (attention merge: a rewritten UNet with encoder_hidden_states_2 and mask inputs) binds to its
 * own session in `bind` and plugs into the same loop.
 */
import type { MaskValue } from '../../../nodes/values.ts';
import { EHS2_INPUT, MASK_INPUT } from '../attention/rewrite.ts';
import { floatTensor } from '../onnx/runtime.ts';
import type { SdPipeline, UnetCallExtras } from '../onnx/pipeline.ts';

export interface EpsilonEvaluator {
  /** Conditioning rows each UNet call carries (the batch size). */
  readonly rows: number;
  /**
   * Writes ê(x, t) into `eps` (both [C·h·w]) with exactly one UNet call, and returns that call's raw
   * output so the sampler can check it for NaN/Inf.
   */
  evaluate(x: Float32Array, t: number, eps: Float32Array): Promise<Float32Array>;
}

export interface EpsilonRule {
  /** Short name for logs and the bench ('single', 'epsilon-merge', ...). */
  readonly name: string;
  /** Builds the batched input buffers once for this latent size. */
  bind(pipe: SdPipeline, latentW: number, latentH: number): EpsilonEvaluator | Promise<EpsilonEvaluator>;
}

function checkEmbedding(pipe: SdPipeline, e: Float32Array, what: string): void {
  const n = pipe.info.textLength * pipe.info.textDim;
  if (e.length !== n) {
    throw new Error(`${what} conditioning has ${e.length} values; this model needs [${pipe.info.textLength}, ${pipe.info.textDim}] = ${n}`);
  }
}

interface Row {
  embedding: Float32Array;
  what: string;
}

/** The rows' embeddings stacked into one [rows, L, D] buffer, built once per run. */
function stackRows(pipe: SdPipeline, rows: Row[]): Float32Array {
  for (const r of rows) checkEmbedding(pipe, r.embedding, r.what);
  const ehs = new Float32Array(rows.length * rows[0]!.embedding.length);
  rows.forEach((r, i) => ehs.set(r.embedding, i * r.embedding.length));
  return ehs;
}

type Combine = (out: Float32Array, eps: Float32Array, n: number) => void;

/** ê from rows [c] (s = 1) or [∅, c]: e∅ + s·(e_c − e∅). */
function guided(s: number): Combine {
  if (s === 1) return (out, eps, n) => eps.set(out.subarray(0, n));
  return (out, eps, n) => {
    for (let i = 0; i < n; i++) {
      const u = out[i]!;
      eps[i] = u + s * (out[n + i]! - u);
    }
  };
}

/**
 * An evaluator for one UNet call per step: `rows` embeddings stacked once into encoder_hidden_states,
 * x copied into every sample row per step, `combine` forms ê from the stacked output. `extras` runs a
 * rewritten UNet with its additional feeds (built once, like the rows).
 */
export function batchedEvaluator(
  pipe: SdPipeline,
  latentW: number,
  latentH: number,
  rows: Row[],
  combine: Combine,
  extras?: UnetCallExtras,
): EpsilonEvaluator {
  const n = pipe.info.latentChannels * latentW * latentH;
  const batch = rows.length;
  const ehs = stackRows(pipe, rows);
  const sample = new Float32Array(batch * n);
  return {
    rows: batch,
    async evaluate(x, t, eps) {
      if (x.length !== n) throw new Error(`latent has ${x.length} values, expected ${n}`);
      for (let r = 0; r < batch; r++) sample.set(x, r * n);
      const out = await pipe.unet(sample, batch, latentH, latentW, t, ehs, extras);
      combine(out, eps, n);
      return out;
    },
  };
}

/** Single prompt: ê = e∅ + s·(e_c − e∅); rows [c] when s = 1, else [∅, c]. */
export function singlePrompt(c: Float32Array, uncond: Float32Array, s: number): EpsilonRule {
  checkGuidance(s);
  return {
    name: 'single',
    bind(pipe, w, h) {
      const prompt = { embedding: c, what: 'prompt' };
      const rows = s === 1 ? [prompt] : [{ embedding: uncond, what: 'unconditional' }, prompt];
      return batchedEvaluator(pipe, w, h, rows, guided(s));
    },
  };
}

/** The mask at latent size: a MaskValue is sampled there; an array must already be h·w. */
export function maskAt(mask: MaskValue | Float32Array, w: number, h: number): Float32Array {
  const m = mask instanceof Float32Array ? mask : mask.sample(w, h);
  if (m.length !== w * h) throw new Error(`mask has ${m.length} values, the ${w}×${h} latent needs ${w * h}`);
  return m;
}

/**
 * Epsilon merge: ê = M·ê(x, t, c1) + (1 − M)·ê(x, t, c2), each guided with s; one UNet call with
 * rows [∅, c1, c2] (just [c1, c2] when s = 1). M weights style 1 and is shared by all channels.
 */
export function epsilonMerge(c1: Float32Array, c2: Float32Array, uncond: Float32Array, s: number, mask: MaskValue | Float32Array): EpsilonRule {
  checkGuidance(s);
  return {
    name: 'epsilon-merge',
    bind(pipe, w, h) {
      const M = maskAt(mask, w, h);
      const plane = w * h;
      const style1 = { embedding: c1, what: 'style 1' };
      const style2 = { embedding: c2, what: 'style 2' };
      if (s === 1) {
        return batchedEvaluator(pipe, w, h, [style1, style2], (out, eps, n) => {
          for (let c = 0; c < n; c += plane) {
            for (let p = 0; p < plane; p++) {
              const i = c + p;
              const m = M[p]!;
              eps[i] = m * out[i]! + (1 - m) * out[n + i]!;
            }
          }
        });
      }
      return batchedEvaluator(pipe, w, h, [{ embedding: uncond, what: 'unconditional' }, style1, style2], (out, eps, n) => {
        for (let c = 0; c < n; c += plane) {
          for (let p = 0; p < plane; p++) {
            const i = c + p;
            const u = out[i]!;
            const e1 = u + s * (out[n + i]! - u);
            const e2 = u + s * (out[2 * n + i]! - u);
            const m = M[p]!;
            eps[i] = m * e1 + (1 - m) * e2;
          }
        }
      });
    },
  };
}

/**
 * The feeds an attention-merge UNet takes beyond the plain ones: the second conditioning (one row per
 * row of encoder_hidden_states) and the mask [1, 1, h, w] at latent size, shared by every row.
 */
export async function attentionMergeExtras(pipe: SdPipeline, rows2: Row[], mask: Float32Array, w: number, h: number): Promise<UnetCallExtras> {
  const binding = await pipe.attentionMergeUnet();
  const ehs2Info = binding.extra.find((i) => i.name === EHS2_INPUT)!;
  const maskInfo = binding.extra.find((i) => i.name === MASK_INPUT)!;
  const ehs2 = stackRows(pipe, rows2);
  return {
    binding,
    feeds: {
      [EHS2_INPUT]: pipe.unetFeed(ehs2Info, ehs2, [rows2.length, pipe.info.textLength, pipe.info.textDim], true),
      [MASK_INPUT]: floatTensor(maskInfo.type, mask, [1, 1, h, w]),
    },
  };
}

/**
 * Attention merge: every cross-attention layer attends to c1 and to c2 and blends per token,
 * M·A1 + (1 − M)·A2, giving e_dual; then ê = e∅ + s·(e_dual − e∅). One call of the rewritten UNet
 * with rows [∅, dual] (just [dual] when s = 1); the ∅ row carries ∅ in both conditionings.
 */
export function attentionMerge(c1: Float32Array, c2: Float32Array, uncond: Float32Array, s: number, mask: MaskValue | Float32Array): EpsilonRule {
  checkGuidance(s);
  return {
    name: 'attention-merge',
    async bind(pipe, w, h) {
      const none = { embedding: uncond, what: 'unconditional' };
      const style1 = { embedding: c1, what: 'style 1' };
      const style2 = { embedding: c2, what: 'style 2' };
      const extras = await attentionMergeExtras(pipe, s === 1 ? [style2] : [none, style2], maskAt(mask, w, h), w, h);
      return batchedEvaluator(pipe, w, h, s === 1 ? [style1] : [none, style1], guided(s), extras);
    },
  };
}

function checkGuidance(s: number): void {
  if (!Number.isFinite(s)) throw new Error(`guidance scale must be a finite number, got ${s}`);
}

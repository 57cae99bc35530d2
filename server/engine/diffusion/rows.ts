/**
 * The batching every epsilon rule shares: conditioning rows stacked once into one [rows, k·L, D] buffer,
 * x copied into every sample row per step, one UNet call per step, and the guided-noise formula
 * ê = e_u + s·(e_c − e_u) on rows of the call's output. The rules (guidance.ts, regions.ts) choose the
 * rows and how ê comes out of them; the samplers (cycle.ts) see only an EpsilonEvaluator.
 */
import type { CallExtras, Denoiser } from './denoiser.ts';

/** Where a sampler is: decoding step i of R (0-based, from the start of the loop). */
export interface StepAt {
  step: number;
  steps: number;
}

export interface EpsilonEvaluator {
  /** Conditioning rows each UNet call carries (the batch size). */
  readonly rows: number;
  /**
   * Writes ê(x, t) into `eps` (both [C·h·w]) with exactly one UNet call, and returns that call's raw
   * output so the sampler can check it for NaN/Inf; like every model output, valid only until the next
   * call (see Denoiser.unet). `at` says which step of the loop this is (rules with step windows need it).
   */
  evaluate(x: Float32Array, t: number, eps: Float32Array, at: StepAt): Promise<Float32Array>;
}

export interface EpsilonRule {
  /** Short name for logs and the bench ('single', 'epsilon-merge', ...). */
  readonly name: string;
  /** Builds the batched input buffers once for this latent size. */
  bind(model: Denoiser, latentW: number, latentH: number): Promise<EpsilonEvaluator>;
}

/** One conditioning row: an embedding [L·D], or ∅ (fetched from the model only when a rule needs it). */
export type Row = { embedding: Float32Array; what: string } | 'unconditional';

/**
 * Chunks k of an embedding of k·L·D values (a long prompt read in chunks has k > 1; see engine/text/chunks.ts);
 * anything else is an error naming the row.
 */
export function chunkCount(model: Denoiser, row: Row): number {
  if (row === 'unconditional') return 1;
  const n = model.info.textLength * model.info.textDim;
  const { embedding, what } = row;
  if (embedding.length === 0 || embedding.length % n !== 0) {
    throw new Error(
      `${what} conditioning has ${embedding.length} values; this model needs [${model.info.textLength}, ${model.info.textDim}] = ${n}, or a multiple of it for a prompt in chunks`,
    );
  }
  return embedding.length / n;
}

/** The most chunks of any of the rows: what every row of one UNet call is padded to. */
export function mostChunks(model: Denoiser, ...rowSets: readonly Row[][]): number {
  return Math.max(1, ...rowSets.flat().map((row) => chunkCount(model, row)));
}

/**
 * The rows' embeddings stacked into one [rows, k·L, D] buffer, built once per run. Rows of fewer chunks
 * than k (k: the most of any row unless given) are padded as A1111 pads them, by repeating the
 * empty prompt's encoding, so every row of the call has the same length.
 */
export async function stackRows(model: Denoiser, rows: Row[], chunks = mostChunks(model, rows)): Promise<Float32Array> {
  const n = model.info.textLength * model.info.textDim;
  const ehs = new Float32Array(rows.length * chunks * n);
  const empty = rows.some((row) => chunkCount(model, row) < chunks) ? await model.unconditional() : undefined;
  for (const [i, row] of rows.entries()) {
    const embedding = row === 'unconditional' ? await model.unconditional() : row.embedding;
    const own = chunkCount(model, row);
    if (own > chunks) throw new Error(`a conditioning of ${own} chunks cannot be stacked in rows of ${chunks}`);
    const at = i * chunks * n;
    ehs.set(embedding, at);
    for (let c = own; c < chunks; c++) ehs.set(empty!, at + c * n);
  }
  return ehs;
}

/** Forms ê [n] from the call's stacked output. */
export type Combine = (out: Float32Array, eps: Float32Array, n: number, at: StepAt) => void;

/** ê = e_u + s·(e_c − e_u) of rows u at offset `u` and c at `c` of `out`, into `eps`. */
export function guide(out: Float32Array, u: number, c: number, s: number, eps: Float32Array | Float64Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const e0 = out[u + i]!;
    eps[i] = e0 + s * (out[c + i]! - e0);
  }
}

/**
 * An evaluator for one UNet call per step: `rows` stacked once into encoder_hidden_states, x copied
 * into every sample row per step, `combine` forms ê from the stacked output. `extras` goes with every
 * call (a rewritten UNet's additional feeds, built once like the rows); `chunks`, when given, is the
 * length the rows are padded to (an attention merge pads its other styles' rows to the same).
 */
export async function batchedEvaluator(
  model: Denoiser,
  w: number,
  h: number,
  rows: Row[],
  combine: Combine,
  extras?: CallExtras,
  chunks?: number,
): Promise<EpsilonEvaluator> {
  const n = model.info.latentChannels * w * h;
  const batch = rows.length;
  const ehs = await stackRows(model, rows, chunks);
  const sample = new Float32Array(batch * n);
  return {
    rows: batch,
    async evaluate(x, t, eps, at) {
      if (x.length !== n) throw new Error(`latent has ${x.length} values, expected ${n}`);
      for (let r = 0; r < batch; r++) sample.set(x, r * n);
      const out = await model.unet(sample, batch, h, w, t, ehs, extras);
      combine(out, eps, n, at);
      return out;
    },
  };
}

export function checkGuidance(s: number, what = 'guidance scale'): void {
  if (!Number.isFinite(s)) throw new Error(`${what} must be a finite number, got ${s}`);
}

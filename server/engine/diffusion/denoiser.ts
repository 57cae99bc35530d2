/**
 * What the samplers need of a model, and nothing more: the noise prediction ε(x, t, c) for a batch of
 * rows in one call, the empty prompt's embedding for classifier-free guidance, and the model's sizes.
 * The ONNX pipeline (sd/pipeline.ts) is one; the diffusion math never sees a session or a tensor.
 */
import type { SchedulerConfig } from './schedule.ts';

export interface DenoiserInfo {
  /** Channels C of the latent [C, h, w]. */
  latentChannels: number;
  /** Tokens L per prompt and width D of a text embedding [L, D]. */
  textLength: number;
  textDim: number;
  scheduler: SchedulerConfig;
}

/** Model inputs beyond sample, timestep and text (attention merge's other texts and mask); opaque here. */
export type CallExtras = object;

export interface Denoiser<X extends CallExtras = CallExtras> {
  readonly info: DenoiserInfo;
  /** Throws a user-facing error naming the sizes the model takes when it cannot take a w×h latent. */
  checkLatentSize(w: number, h: number): void;
  /** Embedding [L·D] of the empty prompt ∅; cached by the model. */
  unconditional(): Promise<Float32Array>;
  /**
   * One model call: ε for `batch` rows of `sample` [batch, C, h, w], every row at timestep t, with text
   * rows `ehs` [batch, L, D] (constant across a run: do not change its contents between calls).
   *
   * The returned array belongs to the model and is valid until its next call: a model may write the next
   * call's ε into the same array (the ONNX pipeline does for fp16 UNets, one buffer per UNet and output
   * size, so a step allocates nothing). Read it, or copy it, before calling again. The samplers do: an
   * evaluator (guidance.ts) combines ε into its own ê buffer right after the call, and the sampler
   * (cycle.ts) checks the raw output for NaN/Inf before its next step.
   */
  unet(sample: Float32Array, batch: number, h: number, w: number, t: number, ehs: Float32Array, extras?: X): Promise<Float32Array>;
  /**
   * The extras of the N-conditioning model of attention merge: the text rows of styles 2..N (one
   * [rows, L, D] array each, N − 1 in all) and the weights of styles 1..N−1 at latent size,
   * [N − 1, h, w], shared by every row (style N takes what they leave).
   */
  attentionMergeExtras(conditionings: readonly Float32Array[], rows: number, weights: Float32Array, w: number, h: number): Promise<X>;
  /**
   * How a rule running on this model reaches another weight set (a region's own model, regions.ts): in a
   * batch, the view of `other` that joins the pictures' calls as this view does (batch.ts); itself when absent.
   */
  companion?(other: Denoiser): Denoiser;
}

/**
 * Runtime values that travel along each socket type. Plain data plus, for Model, a handle to the
 * loaded pipeline. Arrays are Float32Array in C order (NCHW) so they go to onnxruntime without copies.
 */
import type { SocketType } from '../server/protocol/graph.ts';

/** RGB image, CHW float32 in [0,1]. */
export interface ImageValue {
  width: number;
  height: number;
  data: Float32Array;
}

/** SD latent [1,4,h,w], already multiplied by the VAE scaling factor. */
export interface LatentValue {
  width: number;
  height: number;
  channels: number;
  data: Float32Array;
  /** Identity of the model that produced it (latents of different models do not mix). */
  modelId: string;
}

/** Text-encoder output for one prompt: last_hidden_state [77, dim]. */
export interface ConditioningValue {
  prompt: string;
  embedding: Float32Array;
  tokens: number;
  dim: number;
  /** True when the prompt was longer than the encoder's 75 tokens and was cut. */
  truncated: boolean;
  modelId: string;
}

export type MaskShape = 'linear' | 'logistic' | 'image';
export type MaskDirection = 'left-right' | 'right-left' | 'top-bottom' | 'bottom-top';

/**
 * A spatial mask M, weight of style 1 (c1), 1 − M goes to style 2. Resolution independent:
 * `sample(w, h)` evaluates it at pixel centres of a w×h grid (latent size for the samplers,
 * image size for pixel merge).
 */
export interface MaskValue {
  shape: MaskShape;
  direction: MaskDirection;
  sharpness: number;
  sample(width: number, height: number): Float32Array;
}

/** DDIM schedule (LDM / CycleDiffusion uniform spacing), index k = 0..S-1 ascending in t. */
export interface Schedule {
  steps: number;
  eta: number;
  timesteps: number[];
  alphas: number[];
  alphasPrev: number[];
  sigmas: number[];
}

/** CycleDiffusion latent code: z[0] = x_t, then one eps per refinement step, with its schedule. */
export interface InversionValue {
  z: Float32Array[];
  schedule: Schedule;
  skip: number;
  width: number;
  height: number;
  sourcePrompt: string;
  modelId: string;
}

/**
 * An SD1.x model. `pipeline` is the engine's PipelineHandle (server/engine/registry.ts): nodes acquire
 * the loaded pipeline through it, and it is loaded again if the registry released it for another model.
 */
export interface ModelValue {
  id: string;
  label: string;
  demo: boolean;
  pipeline: unknown;
}

export interface SocketValues {
  Model: ModelValue;
  Image: ImageValue;
  Latent: LatentValue;
  Conditioning: ConditioningValue;
  Mask: MaskValue;
  Inversion: InversionValue;
  Number: number;
  Text: string;
}

// Compile-time check that every socket type has a value type.
type _Exhaustive = SocketValues[SocketType];

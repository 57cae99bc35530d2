/**
 * Runtime values that travel along each socket type. Plain data plus, for Model, a handle to the
 * loaded pipeline. Arrays are Float32Array in C order (NCHW) so they go to onnxruntime without copies.
 */
import type { SocketType } from '../server/protocol/graph.ts';
import type { CycleCode } from '../server/engine/diffusion/cycle.ts';
import type { PipelineHandle } from '../server/engine/sd/pipelines.ts';
import type { ClipHandle } from '../server/engine/evaluation-models/clip-model.ts';
import type { MetricValues } from '../server/engine/metrics/names.ts';
import type { AttentionMapsValue, ImageValue, MaskValue } from '../server/engine/values.ts';
import type { LongPromptMode } from '../server/protocol/prompt-tokens.ts';

export type { AttentionMapsValue, ImageValue, MaskDirection, MaskShape, MaskValue, Schedule } from '../server/engine/values.ts';

/** SD latent [1,4,h,w], already multiplied by the VAE scaling factor. */
export interface LatentValue {
  width: number;
  height: number;
  channels: number;
  data: Float32Array;
  /** Identity of the model that produced it (latents of different models do not mix). */
  modelId: string;
  /** A batch's latents 2..B (same size), after this one (see Invert's batch). */
  others?: Float32Array[];
}

/** Text-encoder output for one prompt: last_hidden_state [77, dim], or [77·k, dim] for a long prompt in k chunks. */
export interface ConditioningValue {
  prompt: string;
  embedding: Float32Array;
  tokens: number;
  dim: number;
  /** True when the prompt was longer than the encoder's 75 tokens and was cut. */
  truncated: boolean;
  /** How a prompt longer than the window was read (Encode Text's "long prompt"); absent: truncate. */
  longPrompt?: LongPromptMode;
  /** Chunks of 77 tokens in `embedding` (1 unless read in chunks). */
  chunks?: number;
  modelId: string;
  /** Set by a Region node: how a sampler treats this prompt's region (see engine/diffusion/regions.ts). */
  region?: RegionSettings;
}

/** A region's own negative prompt, guidance scale and step window. */
export interface RegionSettings {
  /** Its negative prompt; ∅ when absent. */
  negative?: ConditioningValue;
  /** Its guidance scale; the sampler's when absent. */
  guidance?: number;
  /** The fractions of the decode where the prompt applies; outside, `fallback` (the source prompt when absent). */
  window?: { start: number; end: number; fallback?: ConditioningValue };
  /** The model this region runs on (the sampler's with a LoRA, for a LoRA per region); the sampler's when absent. */
  model?: ModelValue;
}

/** CycleDiffusion latent code (z[0] = x_t, then one eps per refinement step, with its schedule), with its provenance. */
export interface InversionValue extends CycleCode {
  sourcePrompt: string;
  /** How the source prompt was read (its words' places in the attention maps, the fallback's encoding); absent: truncate. */
  sourceLongPrompt?: LongPromptMode;
  modelId: string;
  /** The source prompt's cross-attention maps, recorded during the inversion when asked (a words mask's source). */
  attention?: AttentionMapsValue;
  /**
   * A batch's codes 2..B (Invert's batch: seeds seed + 1, …), after this one; the samplers decode them with
   * this one, rows × B in each UNet call (engine/diffusion/batch.ts).
   */
  others?: CycleCode[];
}

/**
 * An SD1.x model. `pipeline` gives the loaded pipeline back (acquire), loading it again if the
 * registry released it to make room for another model.
 */
export interface ModelValue {
  id: string;
  label: string;
  demo: boolean;
  pipeline: PipelineHandle;
  /**
   * Where a model converted from safetensors came from (absent for ONNX folders and the demo): what Load
   * LoRA converts again with its LoRA added to `loras`.
   */
  source?: ModelSource;
}

/** A model in a layout the studio converts (diffusers PyTorch folder, single .safetensors file), with its LoRAs. */
export interface ModelSource {
  path: string;
  dtype: 'float32' | 'float16';
  /** The diffusers config folder of a single-file checkpoint, when one was given. */
  configDir?: string;
  /** A VAE file that replaces the model's own, when one was given. */
  vae?: string;
  loras: { file: string; unet: number; text: number }[];
}

/** A CLIP model (split ONNX export) for the CLIP metrics; `handle` null when none was set (CLIP metrics left out). */
export interface ClipValue {
  id: string;
  label: string;
  handle: ClipHandle | null;
}

/**
 * Metrics of one or more generated images against their originals, each sample labelled (the
 * method, e.g. "epsilon"); a Metrics Table groups samples by label into mean ± std.
 */
export interface MetricsValue {
  samples: { label: string; values: MetricValues; width: number; height: number }[];
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
  Clip: ClipValue;
  Metrics: MetricsValue;
}

/** Any socket value; also a compile-time check that every socket type has a value type. */
export type SocketValue = SocketValues[SocketType];

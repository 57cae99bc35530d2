/**
 * How to call a UNet session: its inputs found by name (else position) and resolved once, the timestep
 * feed's shape, and the user-facing error of exports with a fixed batch.
 */
import { findInput, inputInfos, numericDim, outputInfos, type InferenceSession, type TensorInfo } from '../runtime/runtime.ts';
import { ModelFolderError } from './model-folder.ts';

/** How to call one UNet session: its metadata, resolved once. */
export interface UnetBinding {
  session: InferenceSession;
  sample: TensorInfo;
  timestep: TensorInfo;
  ehs: TensorInfo;
  output: string;
  /** Inputs beyond sample/timestep/ehs (e.g. encoder_hidden_states_2, mask of a rewritten UNet). */
  extra: TensorInfo[];
}

/** An attention merge's request, independent of the session that serves it (sd/unet-slot.ts). */
export interface MergeRequest {
  /** The text rows of styles 2..n, [rows, k·L, D] each (k chunks of a long prompt; 1 otherwise). */
  conditionings: readonly Float32Array[];
  /** Weights of styles 1..n−1 at latent size, [n − 1, h, w]. */
  weights: Float32Array;
  w: number;
  h: number;
}

/** Extra arguments of a UNet call: an attention merge's request (the pipeline's one UNet session serves it). */
export interface UnetCallExtras {
  merge?: MergeRequest;
}

/**
 * Shape of the timestep feed for a batch: [B] when the model declares a batch axis, [1] or [] when
 * it declares one element or a scalar (then every row shares t, which the samplers always do).
 */
export function timestepDims(info: TensorInfo, batch: number): number[] {
  if (!info.rankKnown) return [batch];
  if (info.shape.length === 0) return [];
  return numericDim(info.shape[0]) === 1 ? [1] : [batch];
}

export function bindUnet(session: InferenceSession, name = 'unet/model.onnx'): UnetBinding {
  const inputs = inputInfos(session);
  const sample = findInput(inputs, ['sample', 'latent_model_input', 'x'], 0, 'latent sample', name);
  const timestep = findInput(inputs, ['timestep', 'timesteps', 't'], 1, 'timestep', name);
  const ehs = findInput(inputs, ['encoder_hidden_states', 'context'], 2, 'encoder_hidden_states', name);
  const used = new Set([sample.name, timestep.name, ehs.name]);
  const outputs = outputInfos(session);
  const output = (outputs.find((o) => o.name === 'out_sample') ?? outputs[0])?.name;
  if (!output) throw new ModelFolderError(`${name} has no output`);
  return { session, sample, timestep, ehs, output, extra: inputs.filter((i) => !used.has(i.name)) };
}

/**
 * Some exports fix the batch instead of declaring it dynamic; onnxruntime would only say "invalid
 * dimensions ... index: 0". Say which batch the model has and what the call needs. (Fixed latent sizes
 * are part of the latent-size rule, latent-size.ts.)
 */
export function checkFixedBatch(b: UnetBinding, batch: number): void {
  const db = numericDim(b.sample.shape[0]);
  if (db && db !== batch) {
    throw new Error(
      `unet/model.onnx was exported with a fixed batch of ${db}, but this sampler step needs ${batch} ${batch === 1 ? 'row' : 'rows'} per UNet call ` +
        '(guidance 1 uses one row per prompt, guidance > 1 adds the unconditional row): export the UNet with a dynamic batch axis',
    );
  }
}

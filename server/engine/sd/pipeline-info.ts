/**
 * What a loaded model folder is, as its sessions and configs say it (never assumed from the family):
 * input dtypes and shapes, the text width, the VAE's channels, and the latent sizes the UNet takes.
 * Where two parts of the folder disagree, the user is told which and how.
 */
import type { SchedulerConfig } from '../diffusion/schedule.ts';
import type { GraphOutline } from '../runtime/graph-outline.ts';
import { latentSizeRule, type LatentSizeRule } from './latent-size.ts';
import { ModelFolderError, type ModelConfig } from './model-folder.ts';
import { findInput, inputInfos, numericDim, outputInfos, type ExecutionProvider, type InferenceSession } from '../runtime/runtime.ts';
import type { CreatedSession, ProviderChoice } from '../runtime/sessions.ts';
import { timestepDims, type UnetBinding } from './unet-binding.ts';

export interface PipelineInfo {
  dir: string;
  /** Fingerprint of the folder: file sizes and mtimes plus model_index.json. Changes when any file does. */
  id: string;
  executionProvider: ExecutionProvider;
  /** What was asked and why this provider was used (e.g. "auto: CUDA unavailable (...); using CPU"). */
  executionProviderNote: string;
  /** How long each session took to create, and whether its optimized graph came from the cache. */
  sessions: Record<string, { ms: number; cache: CreatedSession['cache'] }>;
  /** Width D of the text embedding [77, D]. */
  textDim: number;
  /** Tokens per prompt including BOS/EOS (77 for CLIP). */
  textLength: number;
  latentChannels: number;
  /** Image pixels per latent pixel (8 for SD). */
  vaeDownsample: number;
  /** The latent sizes the UNet takes, read from its graph (see latent-size.ts). */
  latentSizes: LatentSizeRule;
  vaeScalingFactor: number;
  /** UNet timestep dtype as declared ('float32', 'float16', 'int64', ...). */
  timestepType: string;
  /** True when the UNet takes one timestep per batch row; false for scalar / 1-element timesteps. */
  timestepBatched: boolean;
  unetFp16: boolean;
  textIdsType: string;
  /**
   * Channels the VAE encoder returns: latentChannels (mean) or 2× (mean + logvar; the mean is used).
   * null until known: exports often declare it symbolically, so the first encode fills it in.
   */
  vaeEncoderChannels: number | null;
  scheduler: SchedulerConfig;
  /** What the load-time graph optimizer did to the UNet (optimizer/optimize.ts), one line for Load Model. */
  graphOptimizer: string;
}

/** The four sessions of a pipeline, the UNet bound (inputs resolved). */
export interface ModelSessions {
  text: InferenceSession;
  unet: UnetBinding;
  vaeEncoder: InferenceSession;
  vaeDecoder: InferenceSession;
}

/**
 * The info of a folder's opened sessions (and the UNet graph's outline, null if unreadable; the sessions'
 * creation times as recorded); throws ModelFolderError where they do not fit together.
 */
export function describeModel(
  dir: string,
  id: string,
  provider: ProviderChoice,
  sessions: ModelSessions,
  textLength: number,
  config: ModelConfig,
  unetOutline: GraphOutline | null,
  sessionTimes: PipelineInfo['sessions'] = {},
): PipelineInfo {
  const { unet, text, vaeEncoder } = sessions;
  if (unet.extra.length > 0) {
    throw new ModelFolderError(`unet/model.onnx in ${dir} is not a Stable Diffusion 1.x UNet: unexpected inputs ${unet.extra.map((i) => i.name).join(', ')}`);
  }
  const ids = findInput(inputInfos(text), ['input_ids'], 0, 'input_ids', 'text_encoder/model.onnx');
  const seq = numericDim(ids.shape[1]);
  if (seq !== null && seq !== textLength) {
    throw new ModelFolderError(`text_encoder/model.onnx takes ${seq} tokens but the tokenizer produces ${textLength}`);
  }
  const textOut = outputInfos(text).find((o) => o.name === 'last_hidden_state') ?? outputInfos(text)[0];
  const unetDim = numericDim(unet.ehs.shape[2]);
  const textDim = numericDim(textOut?.shape[2]) ?? unetDim;
  if (textDim !== null && unetDim !== null && textDim !== unetDim) {
    throw new ModelFolderError(`the text encoder gives ${textDim}-wide embeddings but the UNet expects ${unetDim}`);
  }
  return {
    dir,
    id,
    executionProvider: provider.provider,
    executionProviderNote: provider.note,
    sessions: sessionTimes,
    textDim: textDim ?? 0,
    textLength,
    latentChannels: numericDim(unet.sample.shape[1]) ?? 4,
    vaeDownsample: config.vaeDownsample,
    latentSizes: latentSizeRule(unetOutline, unet.sample, config.unetLevels),
    vaeScalingFactor: config.vaeScalingFactor,
    timestepType: unet.timestep.type,
    timestepBatched: timestepDims(unet.timestep, 2)[0] === 2,
    unetFp16: unet.sample.type === 'float16',
    textIdsType: ids.type,
    vaeEncoderChannels: numericDim(outputInfos(vaeEncoder)[0]?.shape[1]),
    scheduler: config.scheduler,
    graphOptimizer: 'graph optimizer off',
  };
}

/**
 * The architecture of a model to convert, read from the diffusers configs (unet/config.json,
 * vae/config.json, text_encoder/config.json) into the presets the project's graph builder writes. What
 * the builder cannot write (SD 2.x's linear projections, SDXL's extra embeddings, other activations) is
 * refused here, naming the config field, before anything is read or written.
 */
import type { TextArchitecture, UnetArchitecture, VaeArchitecture } from '../demo/presets.ts';
import { ConversionError } from './weights.ts';

export interface ModelArchitecture {
  unet: UnetArchitecture;
  /** Width of encoder_hidden_states (cross_attention_dim). */
  contextDim: number;
  text: TextArchitecture;
  vae: VaeArchitecture;
  vaeScalingFactor: number;
}

type Json = Record<string, unknown>;

function field<T>(config: Json, name: string, label: string, ok: (v: unknown) => v is T, fallback?: T): T {
  const v = config[name];
  if (v === undefined && fallback !== undefined) return fallback;
  if (!ok(v)) throw new ConversionError(`${label}: "${name}" is ${JSON.stringify(v)}, which this converter cannot use`);
  return v;
}

const isPositive = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0;
const isChannels = (v: unknown): v is number[] => Array.isArray(v) && v.length > 0 && v.every(isPositive);
const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');
const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Refuses a config value other than the one the builder writes. */
function expect(config: Json, name: string, label: string, wanted: unknown, why: string): void {
  const v = config[name];
  if (v !== undefined && v !== null && JSON.stringify(v) !== JSON.stringify(wanted)) {
    throw new ConversionError(`${label}: "${name}" is ${JSON.stringify(v)}; only ${JSON.stringify(wanted)} is supported (${why})`);
  }
}

export function unetArchitecture(config: Json, label = 'unet/config.json'): { unet: UnetArchitecture; contextDim: number } {
  const channels = field(config, 'block_out_channels', label, isChannels);
  const down = field(config, 'down_block_types', label, isStrings);
  const up = field(config, 'up_block_types', label, isStrings);
  if (down.length !== channels.length || up.length !== channels.length) {
    throw new ConversionError(`${label}: ${channels.length} block_out_channels but ${down.length} down and ${up.length} up blocks`);
  }
  const attention = down.map((t) => t === 'CrossAttnDownBlock2D');
  down.forEach((t) => {
    if (t !== 'CrossAttnDownBlock2D' && t !== 'DownBlock2D')
      throw new ConversionError(`${label}: down block type ${t} is not supported (SD 1.x has CrossAttnDownBlock2D and DownBlock2D)`);
  });
  up.forEach((t, i) => {
    const wanted = attention[channels.length - 1 - i] ? 'CrossAttnUpBlock2D' : 'UpBlock2D';
    if (t !== wanted) throw new ConversionError(`${label}: up block ${i} is ${t}; the up path must mirror the down path (${wanted})`);
  });
  expect(config, 'mid_block_type', label, 'UNetMidBlock2DCrossAttn', 'SD 1.x');
  expect(config, 'in_channels', label, 4, 'a 4-channel latent');
  expect(config, 'out_channels', label, 4, 'a 4-channel latent');
  expect(config, 'use_linear_projection', label, false, 'SD 1.x projects with 1×1 convolutions; SD 2.x is not supported yet');
  expect(config, 'transformer_layers_per_block', label, 1, 'one transformer block per attention');
  expect(config, 'flip_sin_to_cos', label, true, 'SD 1.x timestep embedding');
  expect(config, 'freq_shift', label, 0, 'SD 1.x timestep embedding');
  expect(config, 'act_fn', label, 'silu', 'SD 1.x');
  expect(config, 'norm_eps', label, 1e-5, 'SD 1.x');
  expect(config, 'class_embed_type', label, null, 'no class embedding');
  expect(config, 'addition_embed_type', label, null, 'no added embeddings (SDXL)');
  expect(config, 'time_embedding_type', label, 'positional', 'SD 1.x timestep embedding');
  expect(config, 'resnet_time_scale_shift', label, 'default', 'SD 1.x');
  expect(config, 'upcast_attention', label, false, 'SD 1.x');
  expect(config, 'only_cross_attention', label, false, 'SD 1.x');
  expect(config, 'center_input_sample', label, false, 'SD 1.x');
  // diffusers' historical naming: in SD 1.x configs attention_head_dim is the number of heads.
  const headsValue: unknown = config.num_attention_heads ?? config.attention_head_dim ?? 8;
  const heads: unknown = Array.isArray(headsValue) && headsValue.every((h) => h === headsValue[0]) ? (headsValue[0] as unknown) : headsValue;
  if (!isPositive(heads)) throw new ConversionError(`${label}: attention heads ${JSON.stringify(headsValue)} (one number for every level is supported)`);
  const layersPerBlock = field(config, 'layers_per_block', label, isPositive, 2);
  const contextDim = field(config, 'cross_attention_dim', label, isPositive, 768);
  const groups = field(config, 'norm_num_groups', label, isPositive, 32);
  for (const c of channels) {
    if (c % groups !== 0) throw new ConversionError(`${label}: ${c} channels do not split into ${groups} groups`);
    if (c % heads !== 0) throw new ConversionError(`${label}: ${c} channels do not split into ${heads} heads`);
  }
  return {
    unet: {
      channels,
      attention,
      layersPerBlock,
      skips: 'diffusers',
      heads: { fixed: heads },
      groups,
      timeProjDim: channels[0]!,
      timeEmbedDim: 4 * channels[0]!,
      crossAttentionGain: 1,
      outGain: 1,
    },
    contextDim,
  };
}

export function textArchitecture(config: Json, label = 'text_encoder/config.json'): TextArchitecture {
  expect(config, 'hidden_act', label, 'quick_gelu', 'the CLIP ViT-L/14 text encoder of SD 1.x');
  expect(config, 'max_position_embeddings', label, 77, 'CLIP prompts of 77 tokens');
  expect(config, 'layer_norm_eps', label, 1e-5, 'CLIP');
  const width = field(config, 'hidden_size', label, isPositive, 768);
  const heads = field(config, 'num_attention_heads', label, isPositive, 12);
  if (width % heads !== 0) throw new ConversionError(`${label}: hidden_size ${width} does not split into ${heads} heads`);
  return {
    layers: field(config, 'num_hidden_layers', label, isPositive, 12),
    width,
    vocab: field(config, 'vocab_size', label, isPositive, 49408),
    attention: true,
    heads,
    intermediate: field(config, 'intermediate_size', label, isPositive, 4 * width),
  };
}

export function vaeArchitecture(config: Json, label = 'vae/config.json'): { vae: VaeArchitecture; scalingFactor: number } {
  const channels = field(config, 'block_out_channels', label, isChannels, [128, 256, 512, 512]);
  expect(config, 'latent_channels', label, 4, 'a 4-channel latent');
  expect(config, 'in_channels', label, 3, 'RGB images');
  expect(config, 'out_channels', label, 3, 'RGB images');
  expect(config, 'act_fn', label, 'silu', 'AutoencoderKL');
  const groups = field(config, 'norm_num_groups', label, isPositive, 32);
  for (const c of channels) if (c % groups !== 0) throw new ConversionError(`${label}: ${c} channels do not split into ${groups} groups`);
  return {
    vae: { kind: 'full', channels, layersPerBlock: field(config, 'layers_per_block', label, isPositive, 2), groups },
    scalingFactor: field(config, 'scaling_factor', label, isNumber, 0.18215),
  };
}

/**
 * Single-file checkpoints in the original LDM layout, as community sites publish them: one .safetensors
 * with `model.diffusion_model.*` (the UNet), `first_stage_model.*` (the VAE) and
 * `cond_stage_model.transformer.*` (the CLIP text model), full, pruned or EMA-only (an `model_ema.*` copy
 * and the training buffers are ignored).
 *
 * Key names: the tables of diffusers' scripts/convert_diffusers_to_original_stable_diffusion.py, written
 * for any depth (that script assumes SD 1.5's four levels of two layers): with L layers per block, down
 * level i's resnet j is `input_blocks.{(L+1)i+j+1}.0` (its transformer `.1`), its downsampler
 * `input_blocks.{(L+1)(i+1)}.0.op`; up level i's resnet j is `output_blocks.{(L+1)i+j}.0`, its upsampler
 * `output_blocks.{(L+1)i+L}.{1 or 2}` (2 where the level has transformers); the middle is
 * `middle_block.{0,1,2}`. The VAE's up levels count the other way (`decoder.up.{N-1-i}`), its mid
 * attention is `mid.attn_1` with q/k/v/proj_out stored as 1×1 convolutions.
 *
 * The architecture is read from the tensors' shapes (widths, levels, layers, context width); what shapes
 * cannot say is SD 1.x's: 8 heads in the UNet, 32 groups, CLIP ViT-L's 12 heads of 64, scaling 0.18215.
 * A diffusers config folder (`configDir`: unet/, vae/, text_encoder/ config.json and tokenizer/)
 * overrides them for a model that is not a standard one.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { textArchitecture, unetArchitecture, vaeArchitecture, type ModelArchitecture } from './architecture.ts';
import { readJsonFile, type Checkpoint, type Component } from './checkpoint.ts';
import type { SafetensorsFile } from './safetensors.ts';
import { isPickleFile, openTensorFile } from './torch-file.ts';
import type { TextArchitecture, UnetArchitecture, VaeArchitecture } from '../demo/presets.ts';
import { ConversionError } from './weights.ts';

export const UNET_PREFIX = 'model.diffusion_model.';
export const VAE_PREFIX = 'first_stage_model.';
export const TEXT_PREFIX = 'cond_stage_model.transformer.';

export function isSingleFileCheckpoint(file: string): boolean {
  return /\.safetensors$/i.test(file) || isPickleFile(file);
}

const RESNET_PARTS: Record<string, string> = {
  norm1: 'in_layers.0',
  conv1: 'in_layers.2',
  norm2: 'out_layers.0',
  conv2: 'out_layers.3',
  time_emb_proj: 'emb_layers.1',
  conv_shortcut: 'skip_connection',
};

const UNET_TOP: Record<string, string> = {
  'time_embedding.linear_1': 'time_embed.0',
  'time_embedding.linear_2': 'time_embed.2',
  conv_in: 'input_blocks.0.0',
  conv_norm_out: 'out.0',
  conv_out: 'out.2',
};

/** The LDM key of a diffusers UNet key, for a UNet with `layersPerBlock` layers and `attention` per level. */
export function ldmUnetKey(key: string, arch: Pick<UnetArchitecture, 'layersPerBlock' | 'attention'>): string {
  const L = arch.layersPerBlock;
  const resnet = (rest: string) => {
    const [part, ...tail] = rest.split('.');
    return [RESNET_PARTS[part!] ?? part, ...tail].join('.');
  };
  let m: RegExpExecArray | null;
  for (const [from, to] of Object.entries(UNET_TOP)) if (key.startsWith(`${from}.`)) return to + key.slice(from.length);
  if ((m = /^down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)$/.exec(key))) return `input_blocks.${(L + 1) * +m[1]! + +m[2]! + 1}.0.${resnet(m[3]!)}`;
  if ((m = /^down_blocks\.(\d+)\.attentions\.(\d+)\.(.+)$/.exec(key))) return `input_blocks.${(L + 1) * +m[1]! + +m[2]! + 1}.1.${m[3]}`;
  if ((m = /^down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)$/.exec(key))) return `input_blocks.${(L + 1) * (+m[1]! + 1)}.0.op.${m[2]}`;
  if ((m = /^up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)$/.exec(key))) return `output_blocks.${(L + 1) * +m[1]! + +m[2]!}.0.${resnet(m[3]!)}`;
  if ((m = /^up_blocks\.(\d+)\.attentions\.(\d+)\.(.+)$/.exec(key))) return `output_blocks.${(L + 1) * +m[1]! + +m[2]!}.1.${m[3]}`;
  if ((m = /^up_blocks\.(\d+)\.upsamplers\.0\.(.+)$/.exec(key))) {
    const level = arch.attention.length - 1 - +m[1]!;
    return `output_blocks.${(L + 1) * +m[1]! + L}.${arch.attention[level] ? 2 : 1}.${m[2]}`;
  }
  if ((m = /^mid_block\.resnets\.(\d+)\.(.+)$/.exec(key))) return `middle_block.${2 * +m[1]!}.${resnet(m[2]!)}`;
  if ((m = /^mid_block\.attentions\.0\.(.+)$/.exec(key))) return `middle_block.1.${m[1]}`;
  return key;
}

const VAE_ATTENTION: Record<string, string> = { group_norm: 'norm', to_q: 'q', to_k: 'k', to_v: 'v', 'to_out.0': 'proj_out' };

/** The LDM key of a diffusers VAE key, for a VAE of `levels` levels. */
export function ldmVaeKey(key: string, levels: number): string {
  const resnet = (rest: string) => rest.replace(/^conv_shortcut\./, 'nin_shortcut.');
  let m: RegExpExecArray | null;
  if ((m = /^(encoder|decoder)\.conv_norm_out\.(.+)$/.exec(key))) return `${m[1]}.norm_out.${m[2]}`;
  if ((m = /^encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)$/.exec(key))) return `encoder.down.${m[1]}.block.${m[2]}.${resnet(m[3]!)}`;
  if ((m = /^encoder\.down_blocks\.(\d+)\.downsamplers\.0\.(.+)$/.exec(key))) return `encoder.down.${m[1]}.downsample.${m[2]}`;
  if ((m = /^decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)$/.exec(key))) return `decoder.up.${levels - 1 - +m[1]!}.block.${m[2]}.${resnet(m[3]!)}`;
  if ((m = /^decoder\.up_blocks\.(\d+)\.upsamplers\.0\.(.+)$/.exec(key))) return `decoder.up.${levels - 1 - +m[1]!}.upsample.${m[2]}`;
  if ((m = /^(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.+)$/.exec(key))) return `${m[1]}.mid.block_${+m[2]! + 1}.${resnet(m[3]!)}`;
  if ((m = /^(encoder|decoder)\.mid_block\.attentions\.0\.(group_norm|to_q|to_k|to_v|to_out\.0)\.(.+)$/.exec(key)))
    return `${m[1]}.mid.attn_1.${VAE_ATTENTION[m[2]!]}.${m[3]}`;
  return key;
}

/** Indices that appear at `pattern`'s first group among `keys`. */
function indices(keys: string[], pattern: RegExp): number[] {
  const found = new Set<number>();
  for (const k of keys) {
    const m = pattern.exec(k);
    if (m) found.add(Number(m[1]));
  }
  return [...found].sort((a, b) => a - b);
}

function shapeOf(f: SafetensorsFile, key: string, what: string): number[] {
  const t = f.tensors.get(key);
  if (!t) throw new ConversionError(`${path.basename(f.file)}: no tensor "${key}" (${what}): not an SD 1.x LDM checkpoint`);
  return t.shape;
}

/** The UNet's architecture from its tensors' shapes (heads: SD 1.x's 8; groups: 32). */
export function detectUnet(f: SafetensorsFile, prefix = UNET_PREFIX): { unet: UnetArchitecture; contextDim: number } {
  const keys = f
    .keys()
    .filter((k) => k.startsWith(prefix))
    .map((k) => k.slice(prefix.length));
  const label = path.basename(f.file);
  if (keys.length === 0)
    throw new ConversionError(`${label}: no "${prefix}*" tensors: not a single-file SD checkpoint (is it a LoRA, a VAE or a diffusers component?)`);
  const downsamplers = indices(keys, /^input_blocks\.(\d+)\.0\.op\.weight$/);
  const blocks = indices(keys, /^input_blocks\.(\d+)\./);
  const last = blocks[blocks.length - 1]!;
  // The first downsampler sits after L layers (+ conv_in); without one the UNet has a single level.
  const L = downsamplers.length > 0 ? downsamplers[0]! - 1 : last;
  const levels = downsamplers.length + 1;
  const channels: number[] = [];
  const attention: boolean[] = [];
  for (let i = 0; i < levels; i++) {
    const first = (L + 1) * i + 1;
    channels.push(shapeOf(f, `${prefix}input_blocks.${first}.0.out_layers.3.weight`, `level ${i}'s first resnet`)[0]!);
    const projIn = f.tensors.get(`${prefix}input_blocks.${first}.1.proj_in.weight`);
    if (projIn && projIn.shape.length === 2) throw new ConversionError(`${label}: linear proj_in (an SD 2.x UNet): only SD 1.x single files are supported`);
    attention.push(projIn !== undefined);
  }
  const toK = keys.find((k) => /attn2\.to_k\.weight$/.test(k));
  if (!toK) throw new ConversionError(`${label}: no cross-attention (attn2.to_k) in the UNet`);
  const contextDim = shapeOf(f, prefix + toK, 'cross-attention')[1]!;
  if (keys.some((k) => k.startsWith('label_emb.')))
    throw new ConversionError(`${label}: the UNet has label_emb (SDXL): only SD 1.x single files are supported`);
  return {
    unet: {
      channels,
      attention,
      layersPerBlock: L,
      skips: 'diffusers',
      heads: { fixed: 8 },
      groups: 32,
      timeProjDim: channels[0]!,
      timeEmbedDim: shapeOf(f, `${prefix}time_embed.0.weight`, 'time embedding')[0]!,
      crossAttentionGain: 1,
      outGain: 1,
    },
    contextDim,
  };
}

/** The text model's root in the file: `…transformer.text_model.` (current transformers) or `…transformer.` (older). */
function textRoot(f: SafetensorsFile): string {
  return f.has(`${TEXT_PREFIX}text_model.embeddings.token_embedding.weight`) ? `${TEXT_PREFIX}text_model.` : TEXT_PREFIX;
}

export function detectText(f: SafetensorsFile): TextArchitecture {
  const root = textRoot(f);
  const [vocab, width] = shapeOf(f, `${root}embeddings.token_embedding.weight`, 'the text encoder') as [number, number];
  const layers = indices(
    f.keys().map((k) => k.slice(root.length)),
    /^encoder\.layers\.(\d+)\./,
  ).length;
  const intermediate = shapeOf(f, `${root}encoder.layers.0.mlp.fc1.weight`, 'the text MLP')[0]!;
  return { layers, width, vocab, attention: true, heads: width === 768 ? 12 : Math.max(1, width / 64), intermediate };
}

export function detectVae(f: SafetensorsFile, prefix = VAE_PREFIX): VaeArchitecture {
  const keys = f
    .keys()
    .filter((k) => k.startsWith(prefix))
    .map((k) => k.slice(prefix.length));
  const levels = indices(keys, /^encoder\.down\.(\d+)\./);
  if (levels.length === 0) throw new ConversionError(`${path.basename(f.file)}: no "${prefix}encoder.down.*" tensors (the VAE)`);
  const channels = levels.map((i) => shapeOf(f, `${prefix}encoder.down.${i}.block.0.conv1.weight`, `VAE level ${i}`)[0]!);
  const layersPerBlock = indices(keys, /^encoder\.down\.0\.block\.(\d+)\./).length;
  return { kind: 'full', channels, layersPerBlock, groups: 32 };
}

/** A config file of the config folder, or null when the folder or the file is absent. */
function optionalConfig(configDir: string | undefined, rel: string): Record<string, unknown> | null {
  if (!configDir || !existsSync(path.join(configDir, rel))) return null;
  return readJsonFile(path.join(configDir, rel), rel);
}

/** Opens a single-file LDM checkpoint (see the file's doc comment); `configDir` overrides what shapes cannot say. */
export function openSingleFile(file: string, configDir?: string): Checkpoint {
  const f = openTensorFile(file);
  try {
    const label = path.basename(file);
    let { unet, contextDim } = detectUnet(f);
    let text = detectText(f);
    let vae = detectVae(f);
    let vaeScalingFactor = 0.18215;
    const configs: string[] = [];
    const unetConfig = optionalConfig(configDir, 'unet/config.json');
    if (unetConfig) {
      ({ unet, contextDim } = unetArchitecture(unetConfig));
      configs.push('unet/config.json');
    }
    const textConfig = optionalConfig(configDir, 'text_encoder/config.json');
    if (textConfig) {
      text = textArchitecture(textConfig);
      configs.push('text_encoder/config.json');
    }
    const vaeConfig = optionalConfig(configDir, 'vae/config.json');
    if (vaeConfig) {
      ({ vae, scalingFactor: vaeScalingFactor } = vaeArchitecture(vaeConfig));
      configs.push('vae/config.json');
    }
    const misfit = [
      ...unet.channels.filter((c) => c % unet.groups !== 0).map((c) => `UNet ${c}`),
      ...vae.channels.filter((c) => c % vae.groups !== 0).map((c) => `VAE ${c}`),
    ];
    if (misfit.length > 0) {
      throw new ConversionError(
        `${label}: ${misfit.join(', ')} channels do not split into ${unet.groups} groups (SD 1.x's): a non-standard model needs its diffusers config folder ` +
          '(Load Model → config, or --config) to say its norm_num_groups',
      );
    }
    if (text.width !== contextDim)
      throw new ConversionError(`${label}: the UNet's cross-attention takes ${contextDim} features, the text encoder gives ${text.width}`);
    const tokenizerDir = [configDir && path.join(configDir, 'tokenizer'), path.join(path.dirname(file), 'tokenizer')].find(
      (d): d is string => !!d && existsSync(path.join(d, 'vocab.json')) && existsSync(path.join(d, 'merges.txt')),
    );
    if (!tokenizerDir) {
      throw new ConversionError(
        `${label}: a single-file checkpoint carries no tokenizer; give a diffusers SD 1.x folder as its config folder ` +
          '(Load Model → config, or --config), e.g. one fetched with `npm run fetch-model`, whose tokenizer/ will be used',
      );
    }
    const root = textRoot(f);
    const arch: ModelArchitecture = { unet, contextDim, text, vae, vaeScalingFactor };
    const keyOf: Record<Component, (k: string) => string> = {
      unet: (k) => UNET_PREFIX + ldmUnetKey(k, unet),
      vae: (k) => VAE_PREFIX + ldmVaeKey(k, vae.channels.length),
      text: (k) => root + k.replace(/^text_model\./, ''),
    };
    const prefixes: Record<Component, string> = { unet: UNET_PREFIX, vae: VAE_PREFIX, text: TEXT_PREFIX };
    const scheduler = configDir && path.join(configDir, 'scheduler/scheduler_config.json');
    return {
      label: file,
      arch,
      parts: {
        unet: { file: f, keyOf: keyOf.unet, label },
        text: { file: f, keyOf: keyOf.text, label },
        vae: { file: f, keyOf: keyOf.vae, label },
      },
      // One file holds all three: a component answers for its own prefix only; EMA copies, the LDM
      // training buffers (betas, alphas_cumprod, …) and position ids are not weights of the graphs.
      ignore: (component, key) => !key.startsWith(prefixes[component]) || key.endsWith('position_ids') || key.startsWith(`${VAE_PREFIX}loss.`),
      files: [file, ...configs.map((c) => path.join(configDir!, c))],
      tokenizerDir,
      schedulerConfig: scheduler && existsSync(scheduler) ? JSON.stringify(readJsonFile(scheduler, 'scheduler/scheduler_config.json')) : null,
      close: () => f.close(),
    };
  } catch (e) {
    f.close();
    throw e;
  }
}

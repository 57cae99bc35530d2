/**
 * Sizes of the generated models. The builders (unet.ts, text-encoder.ts, vae.ts) write one structure
 * each; a preset only sets its widths and depths:
 *
 * - `demo`: the built-in demo model, small enough to run every template on a laptop CPU in seconds
 *   (its own miniature UNet wiring, a one-layer MLP text encoder, a linear VAE; see those files).
 * - `sd15`: Stable Diffusion 1.5's architecture at full size with random weights, to measure speed at
 *   real scale on any machine without downloading weights: UNet2DConditionModel with block_out_channels
 *   320/640/1280/1280, 2 layers per block, 8 heads, cross-attention dim 768 (859,520,964 parameters);
 *   a CLIP ViT-L/14 text encoder (12 layers, width 768, 12 heads, vocabulary 49408: 123,060,480);
 *   the full AutoencoderKL (128/256/512/512, 2 resnets per block: 83,653,863).
 */

export interface UnetArchitecture {
  /** Channels per resolution level, full resolution first. */
  channels: number[];
  /** Whether each down level has transformers (the up levels mirror it). */
  attention: boolean[];
  /** Resnets (and transformers) per down level. */
  layersPerBlock: number;
  /**
   * 'diffusers': UNet2DConditionModel's skips (conv_in, every resnet and every downsampler of the down
   * path), layersPerBlock + 1 resnets per up level. 'demo': one skip per down level (its last resnet),
   * layersPerBlock resnets per up level.
   */
  skips: 'diffusers' | 'demo';
  /** Attention heads of a transformer of `channels` channels. */
  heads: { perHead: number } | { fixed: number };
  groups: number;
  timeProjDim: number;
  timeEmbedDim: number;
  /** Scale of attn2's `to_out.0` (see UNET_CROSS_ATTENTION_GAIN in unet.ts). */
  crossAttentionGain: number;
  /** Initial scale of conv_out (the noise prediction's spread). */
  outGain: number;
}

export interface TextArchitecture {
  layers: number;
  width: number;
  vocab: number;
  /** CLIP's causal self-attention in each layer (false: the demo's MLP-only layer). */
  attention: boolean;
  heads: number;
  /** Width of each layer's MLP (CLIP's intermediate_size); 4 × width when absent. */
  intermediate?: number;
}

export interface VaeArchitecture {
  /** 'linear': the demo's pooled colour map; 'full': AutoencoderKL with these channels per level. */
  kind: 'linear' | 'full';
  channels: number[];
  layersPerBlock: number;
  groups: number;
}

export interface ModelPreset {
  name: string;
  unet: UnetArchitecture;
  text: TextArchitecture;
  vae: VaeArchitecture;
}

export const DEMO_PRESET: ModelPreset = {
  name: 'demo',
  unet: {
    channels: [16, 32, 64],
    attention: [false, true, true],
    layersPerBlock: 1,
    skips: 'demo',
    heads: { perHead: 32 },
    groups: 8,
    timeProjDim: 32,
    timeEmbedDim: 128,
    crossAttentionGain: 0.01,
    outGain: 1.5,
  },
  text: { layers: 1, width: 32, vocab: 514, attention: false, heads: 1 },
  vae: { kind: 'linear', channels: [], layersPerBlock: 0, groups: 0 },
};

export const SD15_PRESET: ModelPreset = {
  name: 'sd15',
  unet: {
    channels: [320, 640, 1280, 1280],
    attention: [true, true, true, false],
    layersPerBlock: 2,
    skips: 'diffusers',
    heads: { fixed: 8 },
    groups: 32,
    timeProjDim: 320,
    timeEmbedDim: 1280,
    // As in the demo: random cross-attention at full strength, times guidance 20, drives the latent
    // out of range over a long run; its cost does not depend on this scale.
    crossAttentionGain: 0.01,
    outGain: 1,
  },
  text: { layers: 12, width: 768, vocab: 49408, attention: true, heads: 12 },
  vae: { kind: 'full', channels: [128, 256, 512, 512], layersPerBlock: 2, groups: 32 },
};

export const PRESETS: Record<string, ModelPreset> = { demo: DEMO_PRESET, sd15: SD15_PRESET };

/** The same depths at other widths (each level's channels divided by `factor`): a fast stand-in for tests. */
export function narrowed(preset: ModelPreset, factor: number): ModelPreset {
  const div = (c: number) => Math.max(8, Math.round(c / factor / 8) * 8);
  return {
    ...preset,
    name: `${preset.name}/${factor}`,
    unet: {
      ...preset.unet,
      channels: preset.unet.channels.map(div),
      groups: Math.min(preset.unet.groups, 8),
      timeProjDim: div(preset.unet.timeProjDim),
      timeEmbedDim: div(preset.unet.timeEmbedDim),
    },
    text: {
      ...preset.text,
      width: div(preset.text.width),
      heads: Math.max(1, Math.round(preset.text.heads / factor)),
      vocab: Math.min(preset.text.vocab, 1024),
    },
    vae: { ...preset.vae, channels: preset.vae.channels.map(div), groups: Math.min(preset.vae.groups, 8) },
  };
}

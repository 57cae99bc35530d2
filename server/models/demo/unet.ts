/**
 * The demo UNet: an SD1.x `UNet2DConditionModel` in miniature, so graph rewrites written for real exports
 * (finding every cross-attention `attn2`, merging two conditionings, resizing a mask per attention layer)
 * meet the same patterns, on three resolutions:
 *
 *   conv_in (4→C0)                                                                    full resolution
 *   down_blocks.0: resnet (C0), Conv stride 2 down                                    full → 1/2
 *   down_blocks.1: resnet (C0→C1) + transformer (attn1 self, attn2 cross), Conv stride 2  1/2 → 1/4
 *   down_blocks.2: resnet (C1→C2) + transformer                                       1/4
 *   mid_block:     resnet, transformer, resnet                                        1/4
 *   up_blocks.0:   resnet on [h, skip of down_blocks.2] + transformer, Resize ×2 + conv  1/4 → 1/2
 *   up_blocks.1:   resnet on [h, skip of down_blocks.1] + transformer, Resize ×2 + conv  1/2 → full
 *   up_blocks.2:   resnet on [h, skip of down_blocks.0]                               full resolution
 *   conv_norm_out (GroupNorm), SiLU, conv_out (C0→4)
 *
 * Like SD's last down / first up level (DownBlock2D, UpBlock2D without attention), the full-resolution level
 * has no transformer: self-attention over all h·w latent pixels (4096 tokens for a 512×512 image) costs
 * ~16× the half-resolution one and made a demo run take minutes on a laptop CPU. Every attention therefore
 * runs on at most h·w/4 tokens; five transformer blocks (2 at 1/2, 3 at 1/4) → ten MatMuls read
 * `encoder_hidden_states` (to_k and to_v of each attn2).
 *
 * The timestep embedding is computed in the graph (t·freqs → Cos, Sin → Concat → linear_1 → SiLU → linear_2)
 * and added to every resnet, as in diffusers.
 *
 * How the export was made is an option per dimension (UnetExport): the way attention is written (classic
 * MatMul, Einsum, SDPA, or fused by onnxruntime's optimizer), how the up path gets its sizes, and the float
 * type. `upsample: 'scale'` is an export traced at a latent size that divides evenly (torch writes a Resize
 * with constant scales ×2: sides must be multiples of 4 here, two stride-2 levels); `'skip'` one traced at a
 * size that does not (diffusers passes the skip tensor's size to every upsampler: any latent size works).
 *
 * The wiring is driven by a UnetArchitecture (presets.ts): the demo's above, or sd15's UNet2DConditionModel
 * at full size (4 levels, 2 layers per block, diffusers' skips). Every export option applies to either.
 */
import { GraphBuilder, OPSET, type BuilderOptions, type FloatType, type WeightRandom } from './onnx-builder.ts';
import { attention, conv, groupNorm, isFused, layerNorm, linear, silu, sliceShape, type AttentionStyle } from './layers.ts';
import { DEMO_PRESET, type UnetArchitecture } from './presets.ts';

/** How the up path gets its sizes: a constant ×2 (`scale`) or the skip tensor's Shape (`skip`). */
export type UpsampleStyle = 'scale' | 'skip';
export const UPSAMPLE_STYLES: readonly UpsampleStyle[] = ['scale', 'skip'];

/** One option per way SD 1.x UNet exports differ. */
export interface UnetExport {
  attention: AttentionStyle;
  upsample: UpsampleStyle;
  /** Weights, activations, sample, encoder_hidden_states and out_sample. */
  dtype: FloatType;
  /** The timestep input's type (the sinusoidal embedding is computed in float32, then cast, as diffusers does). */
  timestep: 'float32' | 'float16' | 'int64';
}

export const DEFAULT_UNET_EXPORT: UnetExport = { attention: 'bmm', upsample: 'skip', dtype: 'float32', timestep: 'float32' };

/** Channels per resolution level: full, 1/2, 1/4 (narrow where there are many pixels, for speed). */
export const UNET_CHANNELS = DEMO_PRESET.unet.channels as readonly number[];
/** Latent sides that are multiples of this (2^(levels − 1)) survive every halving: what `upsample: 'scale'` needs. */
export const UNET_LATENT_MULTIPLE = 2 ** (UNET_CHANNELS.length - 1);
/**
 * Channels per attention head: one head at 1/2 resolution, two at 1/4. Each head costs one [tokens × tokens]
 * score map, the bulk of the UNet's time at 1/2 resolution, so fewer, wider heads keep a call fast; mixing
 * one- and two-head layers also keeps rewrites honest about the [B·heads, tokens, 77] attention layout.
 */
export const UNET_HEAD_DIM = 32; // DEMO_PRESET.unet.heads.perHead
export const UNET_GROUPS = DEMO_PRESET.unet.groups;
export const UNET_TIME_PROJ_DIM = DEMO_PRESET.unet.timeProjDim;
export const UNET_TIME_EMBED_DIM = DEMO_PRESET.unet.timeEmbedDim;
/**
 * Scale of the cross-attention output (attn2 `to_out.0`). With random weights the prompt's effect on the
 * noise prediction is arbitrary, and guidance multiplies it (by 20 at the seed's decoder guidance) over ~90
 * steps. At 0.01, ε(c) − ε(∅) has a std of about 0.002 for one call (ε itself ≈ 0.8), and a CycleDiffusion
 * decode (100 steps, skip 10, η 0.1) at guidance 20 still shows the input picture under prompt-dependent
 * colour noise: mean |Δ| ≈ 0.25 from the input on [-1, 1], ≈ 0.13 between two prompts, where reconstruction
 * at guidance 1 is ≈ 0.06 off. At gain 1 the picture drowns.
 */
export const UNET_CROSS_ATTENTION_GAIN = DEMO_PRESET.unet.crossAttentionGain;

/** The diffusers `unet/config.json` fields that describe this UNet (the pipeline reads block_out_channels). */
export function unetConfig(contextDim: number, arch: UnetArchitecture = DEMO_PRESET.unet): Record<string, unknown> {
  const last = arch.channels.length - 1;
  return {
    _class_name: 'UNet2DConditionModel',
    _diffusers_version: '0.x',
    in_channels: 4,
    out_channels: 4,
    block_out_channels: [...arch.channels],
    down_block_types: arch.attention.map((a) => (a ? 'CrossAttnDownBlock2D' : 'DownBlock2D')),
    up_block_types: arch.attention.map((_, i) => (arch.attention[last - i] ? 'CrossAttnUpBlock2D' : 'UpBlock2D')),
    mid_block_type: 'UNetMidBlock2DCrossAttn',
    layers_per_block: arch.layersPerBlock,
    attention_head_dim: 'perHead' in arch.heads ? arch.heads.perHead : arch.heads.fixed,
    cross_attention_dim: contextDim,
    norm_num_groups: arch.groups,
    sample_size: 64,
  };
}

interface UnetContext {
  b: GraphBuilder;
  temb: string;
  ehs: string;
  contextDim: number;
  attentionStyle: AttentionStyle;
  /** LayerNormalization and GELU as single nodes (what the optimizer fuses), not decomposed. */
  fused: boolean;
  arch: UnetArchitecture;
}

function resnet(u: UnetContext, x: string, scope: string, inChannels: number, outChannels: number): string {
  const { b } = u;
  const groups = u.arch.groups;
  let h = groupNorm(b, x, `${scope}/norm1`, inChannels, groups);
  h = silu(b, h, `${scope}/nonlinearity`);
  h = conv(b, h, `${scope}/conv1`, inChannels, outChannels, 3);
  // Time conditioning: SiLU(temb) → Linear → [B, C, 1, 1], added to the features.
  const t = linear(b, silu(b, u.temb, `${scope}/nonlinearity`), `${scope}/time_emb_proj`, u.arch.timeEmbedDim, outChannels);
  const t4 = b.op('Unsqueeze', [t, b.constant(scope, 'int64', [2], [2, 3])], scope);
  h = b.op('Add', [h, t4], scope);
  h = groupNorm(b, h, `${scope}/norm2`, outChannels, groups);
  h = silu(b, h, `${scope}/nonlinearity`);
  // conv2 starts small so each block is near the identity and depth does not blow up magnitudes.
  h = conv(b, h, `${scope}/conv2`, outChannels, outChannels, 3, { gain: 0.5 });
  const shortcut = inChannels === outChannels ? x : conv(b, x, `${scope}/conv_shortcut`, inChannels, outChannels, 1);
  return b.op('Add', [shortcut, h], scope);
}

/** diffusers `Transformer2DModel` with one `BasicTransformerBlock` (norm1/attn1, norm2/attn2, norm3/ff). */
function transformer(u: UnetContext, x: string, scope: string, channels: number): string {
  const { b } = u;
  const heads = 'perHead' in u.arch.heads ? channels / u.arch.heads.perHead : u.arch.heads.fixed;
  let h = groupNorm(b, x, `${scope}/norm`, channels, u.arch.groups, 1e-6);
  h = conv(b, h, `${scope}/proj_in`, channels, channels, 1);
  // [B, C, h, w] → [B, h·w, C]
  const nhwc = b.op('Transpose', [h], scope, { perm: [0, 2, 3, 1] });
  let tokens = b.op('Reshape', [nhwc, b.constant(scope, 'int64', [3], [0, -1, channels])], scope);

  const block = `${scope}/transformer_blocks.0`;
  const norm = (x: string, name: string) => layerNorm(b, x, `${block}/${name}`, channels, 1e-5, u.fused);
  const n1 = norm(tokens, 'norm1');
  const a1 = attention(b, n1, n1, `${block}/attn1`, channels, channels, heads, 1, u.attentionStyle);
  tokens = b.op('Add', [a1, tokens], block);
  const a2 = attention(b, norm(tokens, 'norm2'), u.ehs, `${block}/attn2`, channels, u.contextDim, heads, u.arch.crossAttentionGain, u.attentionStyle);
  tokens = b.op('Add', [a2, tokens], block);
  tokens = b.op('Add', [feedForward(b, norm(tokens, 'norm3'), `${block}/ff`, channels, u.fused), tokens], block);

  // [B, h·w, C] → [B, C, h, w], with h and w read from the input.
  const shape = b.op('Concat', [sliceShape(b, x, scope, 0, 1), sliceShape(b, x, scope, 2, 4), b.constant(scope, 'int64', [1], [channels])], scope, { axis: 0 });
  const spatial = b.op('Transpose', [b.op('Reshape', [tokens, shape], scope)], scope, { perm: [0, 3, 1, 2] });
  const out = conv(b, spatial, `${scope}/proj_out`, channels, channels, 1, { gain: 0.5 });
  return b.op('Add', [out, x], scope);
}

/** GEGLU feed-forward: proj to 2·4C, split, x · GELU(gate) (via Erf as torch exports it, or one fused Gelu), back to C. */
function feedForward(b: GraphBuilder, x: string, scope: string, channels: number, fused: boolean): string {
  const inner = channels * 4;
  const proj = linear(b, x, `${scope}/net.0/proj`, channels, inner * 2);
  const s = `${scope}/net.0`;
  // Opset 13+ takes the split sizes as an input.
  const sizes = b.constant(s, 'int64', [2], [inner, inner]);
  const [value, gate] = b.node('Split', [proj, sizes], s, { axis: -1 }, { outputCount: 2 }) as [string, string];
  let gelu: string;
  if (fused) gelu = b.contribOp('Gelu', [gate], s);
  else {
    const erf = b.op('Erf', [b.op('Div', [gate, b.constant(s, b.float, [], [Math.SQRT2])], s)], s);
    gelu = b.op('Mul', [b.op('Mul', [gate, b.op('Add', [erf, b.constant(s, b.float, [], [1])], s)], s), b.constant(s, b.float, [], [0.5])], s);
  }
  return linear(b, b.op('Mul', [value, gelu], s), `${scope}/net.2`, inner, channels, { gain: 0.5 });
}

/**
 * Sinusoidal timestep embedding (diffusers `Timesteps`, flip_sin_to_cos, shift 0) and `TimestepEmbedding`.
 * The sinusoids are computed in float32 from the timestep as given (int64 or float16 timesteps are cast
 * first; timesteps up to 999 times frequencies need float32, fp16 steps are 0.5 there), then cast to the
 * model's float type, as diffusers does.
 */
function timeEmbedding(b: GraphBuilder, timestep: string, timestepType: UnetExport['timestep'], arch: UnetArchitecture): string {
  const half = arch.timeProjDim / 2;
  const freqs = Array.from({ length: half }, (_, i) => Math.exp((-Math.log(10000) * i) / half));
  const scope = '/time_proj';
  const t32 = timestepType === 'float32' ? timestep : b.op('Cast', [timestep], scope, { to: 1 });
  const t = b.op('Unsqueeze', [t32, b.constant(scope, 'int64', [1], [1])], scope);
  const args = b.op('Mul', [t, b.constant(scope, 'float32', [1, half], freqs)], scope);
  let emb = b.op('Concat', [b.op('Cos', [args], scope), b.op('Sin', [args], scope)], scope, { axis: -1 });
  if (b.float !== 'float32') emb = b.op('Cast', [emb], scope, { to: 10 });
  const h = linear(b, emb, '/time_embedding/linear_1', arch.timeProjDim, arch.timeEmbedDim);
  return linear(b, silu(b, h, '/time_embedding/act'), '/time_embedding/linear_2', arch.timeEmbedDim, arch.timeEmbedDim);
}

/** diffusers `Downsample2D`: a 3×3 Conv with stride 2 (padding 1), halving height and width. */
function downsample(b: GraphBuilder, x: string, scope: string, channels: number): string {
  return conv(b, x, `${scope}/downsamplers.0/conv`, channels, channels, 3, { stride: 2 });
}

/**
 * diffusers `Upsample2D`: Resize nearest, then a 3×3 Conv. Traced at a size that divides evenly, torch
 * writes constant scales ×2; otherwise diffusers passes `upsample_size` (the skip tensor's height and
 * width) and the Resize takes its sizes from that tensor's Shape.
 */
function upsample(b: GraphBuilder, x: string, scope: string, channels: number, style: UpsampleStyle, skip: string): string {
  const up = `${scope}/upsamplers.0`;
  const mode = { coordinate_transformation_mode: 'asymmetric', mode: 'nearest', nearest_mode: 'floor' };
  let h: string;
  if (style === 'scale') h = b.op('Resize', [x, '', b.constant(up, 'float32', [4], [1, 1, 2, 2])], up, mode);
  else {
    const sizes = b.op('Concat', [sliceShape(b, x, up, 0, 2), sliceShape(b, skip, up, 2, 4)], up, { axis: 0 });
    h = b.op('Resize', [x, '', '', sizes], up, mode);
  }
  return conv(b, h, `${up}/conv`, channels, channels, 3);
}

export interface UnetBuildOptions extends Partial<UnetExport> {
  /** The wiring and sizes (presets.ts); the demo's by default. */
  arch?: UnetArchitecture;
  /** Write weights.pb here as they are made (see ExternalWeights.file). */
  weightsFile?: string;
  /** Count parameters without making weight data (see BuilderOptions.shapesOnly). */
  shapesOnly?: BuilderOptions['shapesOnly'];
  /** A checkpoint's weights instead of random ones (see BuilderOptions.source). */
  source?: BuilderOptions['source'];
}

/**
 * The UNet of `arch` (the demo's by default) as one kind of export (see UnetExport); the same seed gives the
 * same weights, so every kind computes the same function. Down path: per level, `layersPerBlock` resnets
 * (each followed by a transformer where the level has attention), then a stride-2 conv except at the last
 * level; up path mirrors it, each resnet taking the latest skip (concatenated on channels) until the
 * level's resnets are done, then an upsampler to the next skip's size except at full resolution.
 */
export function buildUnet(
  random: WeightRandom,
  contextDim: number,
  options: UnetBuildOptions = {},
): { model: Uint8Array; /** Empty when written to `weightsFile`. */ weights: Uint8Array; parameters: number } {
  const { arch = DEMO_PRESET.unet, weightsFile, shapesOnly, source, ...kind } = options;
  const o: UnetExport = { ...DEFAULT_UNET_EXPORT, ...kind };
  const fused = isFused(o.attention);
  const external = { location: 'weights.pb', minBytes: 1024, align: 64, ...(weightsFile ? { file: weightsFile } : {}) };
  const b = new GraphBuilder('demo_unet', random, external, { float: o.dtype, opset: fused ? 17 : OPSET, shapesOnly, source });
  const sample = b.input('sample', o.dtype, ['batch', 4, 'height', 'width']);
  const timestep = b.input('timestep', o.timestep, ['batch']);
  const ehs = b.input('encoder_hidden_states', o.dtype, ['batch', 'sequence', contextDim]);
  const u: UnetContext = { b, temb: timeEmbedding(b, timestep, o.timestep, arch), ehs, contextDim, attentionStyle: o.attention, fused, arch };
  const { channels, attention: hasAttention, layersPerBlock } = arch;
  const last = channels.length - 1;
  const diffusers = arch.skips === 'diffusers';

  let h = conv(b, sample, '/conv_in', 4, channels[0]!, 3);
  const skips: { name: string; channels: number }[] = diffusers ? [{ name: h, channels: channels[0]! }] : [];
  let c = channels[0]!;
  for (let level = 0; level <= last; level++) {
    const out = channels[level]!;
    for (let j = 0; j < layersPerBlock; j++) {
      h = resnet(u, h, `/down_blocks.${level}/resnets.${j}`, c, out);
      c = out;
      if (hasAttention[level]) h = transformer(u, h, `/down_blocks.${level}/attentions.${j}`, out);
      if (diffusers || j === layersPerBlock - 1) skips.push({ name: h, channels: out });
    }
    if (level < last) {
      h = downsample(b, h, `/down_blocks.${level}`, out);
      if (diffusers) skips.push({ name: h, channels: out });
    }
  }
  // Middle, at the lowest resolution.
  h = resnet(u, h, '/mid_block/resnets.0', c, c);
  h = transformer(u, h, '/mid_block/attentions.0', c);
  h = resnet(u, h, '/mid_block/resnets.1', c, c);
  // Up path: up_blocks.i works at level last − i.
  const upLayers = diffusers ? layersPerBlock + 1 : layersPerBlock;
  for (let i = 0; i <= last; i++) {
    const level = last - i;
    const out = channels[level]!;
    for (let j = 0; j < upLayers; j++) {
      const skip = skips.pop()!;
      h = b.op('Concat', [h, skip.name], `/up_blocks.${i}`, { axis: 1 });
      h = resnet(u, h, `/up_blocks.${i}/resnets.${j}`, c + skip.channels, out);
      c = out;
      if (hasAttention[level]) h = transformer(u, h, `/up_blocks.${i}/attentions.${j}`, out);
    }
    // The next skip is at the next level's size: diffusers' upsample_size.
    if (level > 0) h = upsample(b, h, `/up_blocks.${i}`, out, o.upsample, skips[skips.length - 1]!.name);
  }

  h = groupNorm(b, h, '/conv_norm_out', c, arch.groups);
  h = silu(b, h, '/conv_act');
  b.node(
    'Conv',
    [h, b.weight('conv_out.weight', [4, c, 3, 3], arch.outGain / Math.sqrt(c * 9)), b.weight('conv_out.bias', [4], 0.02)],
    '/conv_out',
    {
      dilations: [1, 1],
      group: 1,
      kernel_shape: [3, 3],
      pads: [1, 1, 1, 1],
      strides: [1, 1],
    },
    { outputs: ['out_sample'] },
  );
  b.output('out_sample', o.dtype, ['batch', 4, 'height', 'width']);

  const doc =
    arch === DEMO_PRESET.unet
      ? 'Dual Style Studio demo UNet: random weights, SD1.x structure in miniature (attention at 1/2 and 1/4 resolution only).'
      : `Dual Style Studio generated UNet: random weights, UNet2DConditionModel with block_out_channels ${channels.join('/')}.`;
  const { model, weights } = b.model(doc);
  return { model, weights: weights ?? new Uint8Array(0), parameters: b.parameters };
}

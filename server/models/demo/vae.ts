/**
 * The demo VAE: a nearly inverse pair of linear maps, so a decoded image resembles its source and the UI has
 * something recognisable to show even though the UNet is random.
 *
 * The decoder's colour map is SD1.x's latent → RGB preview matrix P (4×3), applied to the scaled latent
 * (0.18215 · latent), so the project's cheap latent preview shows the same picture as a real decode. The
 * encoder is its pseudo-inverse after an 8×8 average pool. decode(encode(x)) is x blurred to 8×8 blocks
 * (bilinear), plus a faint random 3×3 texture, clipped to [-1, 1].
 */
import { GraphBuilder, type BuilderOptions, type FloatType, type WeightRandom } from './onnx-builder.ts';
import { conv, groupNorm, linear, silu } from './layers.ts';
import type { VaeArchitecture } from './presets.ts';

export const LATENT_SCALE = 0.18215;

/** SD1.x latent → RGB preview factors: row = latent channel, column = R, G, B. */
const PREVIEW_FACTORS: ReadonlyArray<readonly [number, number, number]> = [
  [0.3512, 0.2297, 0.3227],
  [0.325, 0.4974, 0.235],
  [-0.2829, 0.1762, 0.2721],
  [-0.212, -0.2616, -0.7177],
];

/** Decoder colour map M (3×4): rgb = M · latent with M = 0.18215 · Pᵀ. */
function decoderMap(): number[][] {
  return [0, 1, 2].map((rgb) => PREVIEW_FACTORS.map((row) => LATENT_SCALE * row[rgb]!));
}

function invert3(m: number[][]): number[][] {
  const [a, b, c] = m[0]!;
  const [d, e, f] = m[1]!;
  const [g, h, i] = m[2]!;
  const A = e! * i! - f! * h!;
  const B = -(d! * i! - f! * g!);
  const C = d! * h! - e! * g!;
  const det = a! * A + b! * B + c! * C;
  return [
    [A / det, -(b! * i! - c! * h!) / det, (b! * f! - c! * e!) / det],
    [B / det, (a! * i! - c! * g!) / det, -(a! * f! - c! * d!) / det],
    [C / det, -(a! * h! - b! * g!) / det, (a! * e! - b! * d!) / det],
  ];
}

/** Encoder map E (4×3) = Mᵀ (M Mᵀ)⁻¹, the pseudo-inverse: M · E = I₃. */
function encoderMap(): number[][] {
  const M = decoderMap();
  const MMt = M.map((r1) => M.map((r2) => r1.reduce((s, v, k) => s + v * r2[k]!, 0)));
  const inv = invert3(MMt);
  return [0, 1, 2, 3].map((lat) => [0, 1, 2].map((rgb) => [0, 1, 2].reduce((s, k) => s + M[k]![lat]! * inv[k]![rgb]!, 0)));
}

function pointwise(b: GraphBuilder, x: string, scope: string, matrix: number[][]): string {
  const out = matrix.length;
  const inp = matrix[0]!.length;
  const w = b.initializer(`${scope.slice(1)}.weight`, [out, inp, 1, 1], new Float32Array(matrix.flat()));
  const bias = b.filled(`${scope.slice(1)}.bias`, [out], 0);
  return b.op('Conv', [x, w, bias], scope, { dilations: [1, 1], group: 1, kernel_shape: [1, 1], pads: [0, 0, 0, 0], strides: [1, 1] });
}

/**
 * `channels: 8` returns mean and logvar as SD's encoder does before sampling (quant_conv has 2·4 outputs;
 * the logvar rows are a faint random map); 4 returns the mean only, as the reference export does.
 */
export function buildVaeEncoder(random: WeightRandom, options: { dtype?: FloatType; channels?: 4 | 8 } = {}): Uint8Array {
  const b = new GraphBuilder('demo_vae_encoder', random, undefined, { float: options.dtype });
  const channels = options.channels ?? 4;
  const sample = b.input('sample', b.float, ['batch', 3, 'height', 'width']);
  const pooled = b.op('AveragePool', [sample], '/encoder/down', { kernel_shape: [8, 8], strides: [8, 8], pads: [0, 0, 0, 0] });
  const weights = encoderMap().flat();
  if (channels === 8) weights.push(...random.normal('quant_conv.logvar', 12, 0.1));
  b.node(
    'Conv',
    [pooled, b.initializer('quant_conv.weight', [channels, 3, 1, 1], new Float32Array(weights)), b.filled('quant_conv.bias', [channels], 0)],
    '/quant_conv',
    {
      dilations: [1, 1],
      group: 1,
      kernel_shape: [1, 1],
      pads: [0, 0, 0, 0],
      strides: [1, 1],
    },
    { outputs: ['latent_sample'] },
  );
  b.output('latent_sample', b.float, ['batch', channels, 'latent_height', 'latent_width']);
  return b.model('Dual Style Studio demo VAE encoder: 8×8 average pool + a fixed 3→4 colour map (not a trained VAE).').model;
}

export function buildVaeDecoder(random: WeightRandom, options: { dtype?: FloatType } = {}): Uint8Array {
  const b = new GraphBuilder('demo_vae_decoder', random, undefined, { float: options.dtype });
  const latent = b.input('latent_sample', b.float, ['batch', 4, 'latent_height', 'latent_width']);
  const rgbSmall = pointwise(b, latent, '/post_quant_conv', decoderMap());
  const up = '/decoder/up';
  const rgb = b.op('Resize', [rgbSmall, '', b.constant(up, 'float32', [4], [1, 1, 8, 8])], up, {
    coordinate_transformation_mode: 'half_pixel',
    mode: 'linear',
  });
  // A faint random texture so the decoder is not purely linear; small enough to keep reconstructions close.
  const texture = conv(b, rgb, '/decoder/conv_out', 3, 3, 3, { gain: 0.15 });
  const mixed = b.op('Add', [rgb, texture], '/decoder');
  b.node('Clip', [mixed, b.constant('/decoder', b.float, [], [-1]), b.constant('/decoder', b.float, [], [1])], '/decoder', {}, { outputs: ['sample'] });
  b.output('sample', b.float, ['batch', 3, 'height', 'width']);
  return b.model('Dual Style Studio demo VAE decoder: the pseudo-inverse colour map, bilinear ×8 upsampling, clipped to [-1, 1].').model;
}

// ---------------------------------------------------------------------------------------------
// The full AutoencoderKL (presets with vae.kind 'full', e.g. sd15): diffusers' Encoder and Decoder.

export interface FullVaeOptions {
  dtype?: FloatType;
  /** Write weights.pb here as they are made. */
  weightsFile?: string;
  shapesOnly?: BuilderOptions['shapesOnly'];
  /** A checkpoint's weights instead of random ones (see BuilderOptions.source). */
  source?: BuilderOptions['source'];
}

function fullVaeBuilder(name: string, random: WeightRandom, opts: FullVaeOptions): GraphBuilder {
  const external = { location: 'weights.pb', minBytes: 1024, align: 64, ...(opts.weightsFile ? { file: opts.weightsFile } : {}) };
  return new GraphBuilder(name, random, external, { float: opts.dtype, shapesOnly: opts.shapesOnly, source: opts.source });
}

/** diffusers `ResnetBlock2D` without a time embedding: GroupNorm, SiLU, conv, twice; 1×1 shortcut when widths differ. */
function vaeResnet(b: GraphBuilder, x: string, scope: string, inC: number, outC: number, groups: number): string {
  let h = conv(b, silu(b, groupNorm(b, x, `${scope}/norm1`, inC, groups, 1e-6), `${scope}/nonlinearity`), `${scope}/conv1`, inC, outC, 3);
  h = conv(b, silu(b, groupNorm(b, h, `${scope}/norm2`, outC, groups, 1e-6), `${scope}/nonlinearity`), `${scope}/conv2`, outC, outC, 3, { gain: 0.5 });
  const shortcut = inC === outC ? x : conv(b, x, `${scope}/conv_shortcut`, inC, outC, 1);
  return b.op('Add', [shortcut, h], scope);
}

/** The mid-block attention: one head over all h·w positions, q/k/v/out linear with bias, residual. */
function vaeAttention(b: GraphBuilder, x: string, scope: string, c: number, groups: number): string {
  const n = groupNorm(b, x, `${scope}/group_norm`, c, groups, 1e-6);
  const tokens = b.op('Transpose', [b.op('Reshape', [n, b.constant(scope, 'int64', [3], [0, c, -1])], scope)], scope, { perm: [0, 2, 1] });
  const q = linear(b, tokens, `${scope}/to_q`, c, c);
  const k = linear(b, tokens, `${scope}/to_k`, c, c);
  const v = linear(b, tokens, `${scope}/to_v`, c, c);
  const scores = b.op(
    'Mul',
    [b.op('MatMul', [q, b.op('Transpose', [k], scope, { perm: [0, 2, 1] })], scope), b.constant(scope, b.float, [], [1 / Math.sqrt(c)])],
    scope,
  );
  const mixed = b.op('MatMul', [b.op('Softmax', [scores], scope, { axis: -1 }), v], scope);
  const out = linear(b, mixed, `${scope}/to_out.0`, c, c, { gain: 0.5 });
  const back = b.op('Reshape', [b.op('Transpose', [out], scope, { perm: [0, 2, 1] }), b.op('Shape', [x], scope)], scope);
  return b.op('Add', [back, x], scope);
}

function vaeMid(b: GraphBuilder, x: string, scope: string, c: number, groups: number): string {
  let h = vaeResnet(b, x, `${scope}/resnets.0`, c, c, groups);
  h = vaeAttention(b, h, `${scope}/attentions.0`, c, groups);
  return vaeResnet(b, h, `${scope}/resnets.1`, c, c, groups);
}

function pointwiseConv(b: GraphBuilder, x: string, scope: string, inC: number, outC: number, outputs?: string[]): string {
  const w = b.weight(`${scope.slice(1)}.weight`, [outC, inC, 1, 1], 1 / Math.sqrt(inC));
  const bias = b.weight(`${scope.slice(1)}.bias`, [outC], 0.02);
  return b.node(
    'Conv',
    [x, w, bias],
    scope,
    { dilations: [1, 1], group: 1, kernel_shape: [1, 1], pads: [0, 0, 0, 0], strides: [1, 1] },
    outputs ? { outputs } : {},
  )[0]!;
}

/**
 * Image [B, 3, H, W] in [-1, 1] → moments [B, 8, H/8, W/8] (mean, logvar) after quant_conv; with
 * `channels: 4` the mean alone (a Slice of the first 4), as exports that return the posterior's mode do.
 */
export function fullVaeEncoder(
  random: WeightRandom,
  arch: VaeArchitecture,
  opts: FullVaeOptions & { channels?: 4 | 8 } = {},
): { model: Uint8Array; weights?: Uint8Array; parameters: number } {
  const b = fullVaeBuilder('vae_encoder', random, opts);
  const outChannels = opts.channels ?? 8;
  const sample = b.input('sample', b.float, ['batch', 3, 'height', 'width']);
  const { channels, groups } = arch;
  let h = conv(b, sample, '/encoder/conv_in', 3, channels[0]!, 3);
  let c = channels[0]!;
  channels.forEach((out, i) => {
    for (let j = 0; j < arch.layersPerBlock; j++) {
      h = vaeResnet(b, h, `/encoder/down_blocks.${i}/resnets.${j}`, c, out, groups);
      c = out;
    }
    if (i < channels.length - 1) {
      // diffusers' Downsample2D(padding=0): pad right and bottom by one, then a stride-2 3×3 conv.
      const s = `/encoder/down_blocks.${i}/downsamplers.0`;
      const padded = b.op('Pad', [h, b.constant(s, 'int64', [8], [0, 0, 0, 0, 0, 0, 1, 1])], s, { mode: 'constant' });
      const w = b.weight(`encoder.down_blocks.${i}.downsamplers.0.conv.weight`, [c, c, 3, 3], 1 / Math.sqrt(c * 9));
      const bias = b.weight(`encoder.down_blocks.${i}.downsamplers.0.conv.bias`, [c], 0.02);
      h = b.op('Conv', [padded, w, bias], `${s}/conv`, { dilations: [1, 1], group: 1, kernel_shape: [3, 3], pads: [0, 0, 0, 0], strides: [2, 2] });
    }
  });
  h = vaeMid(b, h, '/encoder/mid_block', c, groups);
  h = silu(b, groupNorm(b, h, '/encoder/conv_norm_out', c, groups, 1e-6), '/encoder/conv_act');
  h = conv(b, h, '/encoder/conv_out', c, 8, 3);
  if (outChannels === 8) pointwiseConv(b, h, '/quant_conv', 8, 8, ['latent_sample']);
  else {
    const moments = pointwiseConv(b, h, '/quant_conv', 8, 8);
    const s = '/latent_dist';
    const int64 = (v: number) => b.constant(s, 'int64', [1], [v]);
    b.node('Slice', [moments, int64(0), int64(4), int64(1)], s, {}, { outputs: ['latent_sample'] });
  }
  b.output('latent_sample', b.float, ['batch', outChannels, 'latent_height', 'latent_width']);
  return { ...b.model(`Dual Style Studio generated VAE encoder: random weights, AutoencoderKL ${channels.join('/')}.`), parameters: b.parameters };
}

/** Latent [B, 4, h, w] → image [B, 3, 8h, 8w]. */
export function fullVaeDecoder(
  random: WeightRandom,
  arch: VaeArchitecture,
  opts: FullVaeOptions = {},
): { model: Uint8Array; weights?: Uint8Array; parameters: number } {
  const b = fullVaeBuilder('vae_decoder', random, opts);
  const latent = b.input('latent_sample', b.float, ['batch', 4, 'latent_height', 'latent_width']);
  const { channels, groups } = arch;
  const reversed = [...channels].reverse();
  let c = reversed[0]!;
  let h = pointwiseConv(b, latent, '/post_quant_conv', 4, 4);
  h = conv(b, h, '/decoder/conv_in', 4, c, 3);
  h = vaeMid(b, h, '/decoder/mid_block', c, groups);
  reversed.forEach((out, i) => {
    for (let j = 0; j <= arch.layersPerBlock; j++) {
      h = vaeResnet(b, h, `/decoder/up_blocks.${i}/resnets.${j}`, c, out, groups);
      c = out;
    }
    if (i < reversed.length - 1) {
      const s = `/decoder/up_blocks.${i}/upsamplers.0`;
      h = b.op('Resize', [h, '', b.constant(s, 'float32', [4], [1, 1, 2, 2])], s, {
        coordinate_transformation_mode: 'asymmetric',
        mode: 'nearest',
        nearest_mode: 'floor',
      });
      h = conv(b, h, `${s}/conv`, c, c, 3);
    }
  });
  h = silu(b, groupNorm(b, h, '/decoder/conv_norm_out', c, groups, 1e-6), '/decoder/conv_act');
  b.node(
    'Conv',
    [h, b.weight('decoder.conv_out.weight', [3, c, 3, 3], 1 / Math.sqrt(c * 9)), b.weight('decoder.conv_out.bias', [3], 0.02)],
    '/decoder/conv_out',
    {
      dilations: [1, 1],
      group: 1,
      kernel_shape: [3, 3],
      pads: [1, 1, 1, 1],
      strides: [1, 1],
    },
    { outputs: ['sample'] },
  );
  b.output('sample', b.float, ['batch', 3, 'height', 'width']);
  return { ...b.model(`Dual Style Studio generated VAE decoder: random weights, AutoencoderKL ${channels.join('/')}.`), parameters: b.parameters };
}

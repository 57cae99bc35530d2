/**
 * The demo VAE: a nearly inverse pair of linear maps, so a decoded image resembles its source and the UI has
 * something recognisable to show even though the UNet is random.
 *
 * The decoder's colour map is SD1.x's latent → RGB preview matrix P (4×3), applied to the scaled latent
 * (0.18215 · latent), so the project's cheap latent preview shows the same picture as a real decode. The
 * encoder is its pseudo-inverse after an 8×8 average pool. decode(encode(x)) is x blurred to 8×8 blocks
 * (bilinear), plus a faint random 3×3 texture, clipped to [-1, 1].
 */
import { GraphBuilder, type FloatType, type WeightRandom } from './onnx-builder.ts';
import { conv } from './layers.ts';

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
  b.node('Conv', [pooled, b.initializer('quant_conv.weight', [channels, 3, 1, 1], new Float32Array(weights)), b.filled('quant_conv.bias', [channels], 0)], '/quant_conv', {
    dilations: [1, 1],
    group: 1,
    kernel_shape: [1, 1],
    pads: [0, 0, 0, 0],
    strides: [1, 1],
  }, { outputs: ['latent_sample'] });
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

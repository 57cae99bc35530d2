/**
 * A preview decoder in TAESD's layout (madebyollin/taesd, `Decoder()` of taesd.py), for the studio's
 * optional live previews: the scaled latent [B, 4, h, w] (what the UNet sees, SD's 0.18215 applied) →
 * RGB [B, 3, 8h, 8w] in about [0, 1]. The structure is TAESD's op for op (Clamp as tanh(x/3)·3; conv 4→C,
 * ReLU; per level `blocks` residual blocks of three 3×3 convs, then nearest ×2 and a bias-free conv; one
 * more block; conv C→3), so with C = 64 and 3 blocks it has TAESD's 1,222,531 parameters and its cost.
 * The weights are random: the generated decoder measures what previews cost, it does not draw pictures.
 * Real TAESD weights exported to ONNX (`taesd_decoder.onnx`) have the same interface.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PREVIEW_DECODER_FILE } from '../../engine/sd/preview-decoder.ts';
import { GraphBuilder, WeightRandom, type BuilderOptions, type FloatType } from './onnx-builder.ts';
import { conv } from './layers.ts';

export interface PreviewDecoderArchitecture {
  /** Width of every layer (64 in TAESD). */
  channels: number;
  /** Residual blocks per resolution level (3 in TAESD). */
  blocks: number;
}

export const TAESD_ARCHITECTURE: PreviewDecoderArchitecture = { channels: 64, blocks: 3 };

const relu = (b: GraphBuilder, x: string, scope: string) => b.op('Relu', [x], scope);

/** TAESD's Block(n, n): ReLU(conv(ReLU(conv(ReLU(conv(x))))) + x). */
function block(b: GraphBuilder, x: string, scope: string, c: number): string {
  // He-scaled convs keep the ReLU stack's spread; the last one starts small so each block is near the identity.
  let h = relu(b, conv(b, x, `${scope}/conv.0`, c, c, 3, { gain: Math.SQRT2 }), scope);
  h = relu(b, conv(b, h, `${scope}/conv.2`, c, c, 3, { gain: Math.SQRT2 }), scope);
  h = conv(b, h, `${scope}/conv.4`, c, c, 3, { gain: 0.5 });
  return relu(b, b.op('Add', [h, x], scope), `${scope}/fuse`);
}

export function buildPreviewDecoder(
  random: WeightRandom,
  arch: PreviewDecoderArchitecture = TAESD_ARCHITECTURE,
  opts: { dtype?: FloatType; shapesOnly?: BuilderOptions['shapesOnly'] } = {},
): { model: Uint8Array; parameters: number } {
  const b = new GraphBuilder('taesd_decoder', random, undefined, { float: opts.dtype, shapesOnly: opts.shapesOnly });
  const { channels: c, blocks } = arch;
  const latent = b.input('latent_sample', b.float, ['batch', 4, 'latent_height', 'latent_width']);
  let layer = 0;
  const next = () => `/decoder/${layer++}`;
  // Clamp: tanh(x / 3) · 3.
  const clamp = next();
  let h = b.op('Mul', [b.op('Tanh', [b.op('Div', [latent, b.constant(clamp, b.float, [], [3])], clamp)], clamp), b.constant(clamp, b.float, [], [3])], clamp);
  h = relu(b, conv(b, h, next(), 4, c, 3), next());
  for (let level = 0; level < 3; level++) {
    for (let i = 0; i < blocks; i++) h = block(b, h, next(), c);
    const up = next();
    h = b.op('Resize', [h, '', b.constant(up, 'float32', [4], [1, 1, 2, 2])], up, {
      coordinate_transformation_mode: 'asymmetric',
      mode: 'nearest',
      nearest_mode: 'floor',
    });
    h = conv(b, h, next(), c, c, 3, { bias: false });
  }
  h = block(b, h, next(), c);
  const out = next();
  // The last conv's bias starts at 0.5: random pictures centred in [0, 1] rather than half clipped.
  const w = b.weight(`${out.slice(1).replace(/\//g, '.')}.weight`, [3, c, 3, 3], 1 / Math.sqrt(c * 9));
  const bias = b.filled(`${out.slice(1).replace(/\//g, '.')}.bias`, [3], 0.5);
  b.node('Conv', [h, w, bias], out, { dilations: [1, 1], group: 1, kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [1, 1] }, { outputs: ['sample'] });
  b.output('sample', b.float, ['batch', 3, 'height', 'width']);
  const { model } = b.model(`Dual Style Studio generated preview decoder: TAESD's decoder layout (${c} channels, ${blocks} blocks per level), random weights.`);
  return { model, parameters: b.parameters };
}

/** Writes DIR/taesd_decoder.onnx (the layout `--preview-decoder` takes) in TAESD's architecture or `arch`, random weights. */
export async function writePreviewDecoder(dir: string, opts: { arch?: PreviewDecoderArchitecture; dtype?: FloatType; seed: number }): Promise<number> {
  const arch = opts.arch ?? TAESD_ARCHITECTURE;
  const { model, parameters } = buildPreviewDecoder(new WeightRandom(opts.seed), arch, { dtype: opts.dtype });
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, PREVIEW_DECODER_FILE), model);
  await writeFile(
    path.join(dir, 'README.txt'),
    `Dual Style Studio generated preview decoder: TAESD's decoder layout (${arch.channels} channels, ${arch.blocks} blocks per level, ` +
      `${parameters} parameters, ${opts.dtype ?? 'float32'}), RANDOM weights: its previews are noise; it measures what a TAESD preview costs ` +
      `(npm run bench -- --preview-decoder <this folder>). For real previews, export madebyollin/taesd's decoder to ${PREVIEW_DECODER_FILE}.\n`,
  );
  return parameters;
}

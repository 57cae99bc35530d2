/**
 * The sd15 preset of the model generator: Stable Diffusion 1.5's architecture with random weights.
 * Its sizes are checked by counting parameters of the graphs built without weight data (the real folder
 * is 3.4 GB: written by hand for the bench, not here); that the wiring runs, keeps activations finite and
 * works through the pipeline is checked on the same depths at an eighth of the widths, fp32 and fp16.
 */
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SdPipeline } from '../server/engine/onnx/pipeline.ts';
import { writePresetModel } from '../server/models/demo/index.ts';
import { WeightRandom } from '../server/models/demo/onnx-builder.ts';
import { SD15_PRESET, narrowed } from '../server/models/demo/presets.ts';
import { textEncoderModel } from '../server/models/demo/text-encoder.ts';
import { buildUnet } from '../server/models/demo/unet.ts';
import { fullVaeDecoder, fullVaeEncoder } from '../server/models/demo/vae.ts';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('sd15 preset sizes (graphs without weight data)', () => {
  const random = new WeightRandom(1);
  it('UNet: 859,520,964 parameters, as diffusers counts SD 1.5 UNet2DConditionModel', () => {
    expect(buildUnet(random, 768, 'bmm', { arch: SD15_PRESET.unet, shapesOnly: true }).parameters).toBe(859_520_964);
  });
  it('text encoder: CLIP ViT-L/14 text model, 123,060,480 parameters', () => {
    expect(textEncoderModel(random, SD15_PRESET.text, { shapesOnly: true }).parameters).toBe(123_060_480);
  });
  it('VAE: AutoencoderKL 128/256/512/512, 83,653,863 parameters (encoder + decoder)', () => {
    const e = fullVaeEncoder(random, SD15_PRESET.vae, { shapesOnly: true }).parameters;
    const d = fullVaeDecoder(random, SD15_PRESET.vae, { shapesOnly: true }).parameters;
    expect(e + d).toBe(83_653_863);
  });
});

async function runNarrow(precision: 'float32' | 'float16') {
  const dir = await mkdtemp(path.join(os.tmpdir(), `dualstyle-sd15-${precision}-`));
  dirs.push(dir);
  const preset = narrowed(SD15_PRESET, 8);
  const params = await writePresetModel(dir, { preset, precision });
  expect(params.unet).toBeGreaterThan(0);
  for (const sub of ['unet', 'text_encoder', 'vae_encoder', 'vae_decoder']) expect((await stat(path.join(dir, sub, 'weights.pb'))).size).toBeGreaterThan(0);
  const config = JSON.parse(await readFile(path.join(dir, 'unet/config.json'), 'utf8'));
  expect(config).toMatchObject({ block_out_channels: preset.unet.channels, layers_per_block: 2, down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'] });
  const pipe = await SdPipeline.load(dir, { executionProvider: 'cpu', session: { optimizedCache: null } });
  try {
    expect(pipe.info).toMatchObject({ latentMultiple: 8, vaeDownsample: 8, textDim: preset.text.width, unetFp16: precision === 'float16' });
    const { embedding } = await pipe.encodeText('a photo of a cat');
    expect(embedding.every(Number.isFinite)).toBe(true);
    const w = 8, h = 8;
    const sample = Float32Array.from({ length: 2 * 4 * w * h }, (_, i) => Math.sin(i));
    const ehs = new Float32Array(2 * embedding.length);
    ehs.set(embedding);
    ehs.set(embedding, embedding.length);
    const eps = await pipe.unet(sample, 2, h, w, 981, ehs);
    expect(eps.length).toBe(sample.length);
    expect(eps.every(Number.isFinite)).toBe(true);
    const spread = Math.sqrt(eps.reduce((s, v) => s + v * v, 0) / eps.length);
    expect(spread).toBeGreaterThan(0.05); // not collapsed to zero by the random init...
    expect(spread).toBeLessThan(50); // ...nor blown up through 25 resnets and 16 transformers
    const image = await pipe.vaeDecode(sample.subarray(0, 4 * w * h), w, h);
    expect([image.width, image.height]).toEqual([64, 64]);
    const latent = await pipe.vaeEncode(image);
    expect(latent.every(Number.isFinite)).toBe(true);
  } finally {
    await pipe.release();
  }
}

describe('sd15 wiring at an eighth of the widths, through the pipeline', () => {
  it('fp32: loads, encodes text, runs a batch-2 UNet call and the VAE, all finite', () => runNarrow('float32'));
  it('fp16: inputs, weights and outputs in half precision; the same calls', () => runNarrow('float16'));
});

/**
 * The sd15 preset of the model generator: Stable Diffusion 1.5's architecture with random weights.
 * Its sizes are checked by counting parameters of the graphs built without weight data (the real folder
 * is 3.4 GB: written by hand for the bench, not here); that the wiring runs, keeps activations finite and
 * works through the pipeline is checked on the same depths at an eighth of the widths, fp32 and fp16, and
 * so is that the demo generator's export options apply to the preset (the same weights, another export).
 */
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SdPipeline } from '../server/engine/sd/pipeline.ts';
import { writePresetModel, type DemoExport } from '../server/models/demo/index.ts';
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
    expect(buildUnet(random, 768, { arch: SD15_PRESET.unet, shapesOnly: true }).parameters).toBe(859_520_964);
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

const preset = narrowed(SD15_PRESET, 8);

async function writeNarrow(kind: Partial<DemoExport>): Promise<{ dir: string; params: Record<string, number> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dualstyle-sd15-'));
  dirs.push(dir);
  return { dir, params: await writePresetModel(dir, { preset, ...kind }) };
}

/** A batch-2 UNet call on a w×h latent; the same inputs for every export. */
async function unetCall(pipe: SdPipeline, w: number, h: number): Promise<Float32Array> {
  const { embedding } = await pipe.encodeText('a photo of a cat');
  const sample = Float32Array.from({ length: 2 * 4 * w * h }, (_, i) => Math.sin(i));
  const ehs = new Float32Array(2 * embedding.length);
  ehs.set(embedding);
  ehs.set(embedding, embedding.length);
  return Float32Array.from(await pipe.unet(sample, 2, h, w, 981, ehs));
}

async function runNarrow(precision: 'float32' | 'float16') {
  const { dir, params } = await writeNarrow({ dtype: precision });
  expect(params.unet).toBeGreaterThan(0);
  for (const sub of ['unet', 'text_encoder', 'vae_encoder', 'vae_decoder']) expect((await stat(path.join(dir, sub, 'weights.pb'))).size).toBeGreaterThan(0);
  const config = JSON.parse(await readFile(path.join(dir, 'unet/config.json'), 'utf8'));
  expect(config).toMatchObject({
    block_out_channels: preset.unet.channels,
    layers_per_block: 2,
    down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
  });
  const pipe = await SdPipeline.load(dir, { executionProvider: 'cpu', session: { optimizedCache: null } });
  try {
    expect(pipe.info).toMatchObject({ vaeDownsample: 8, textDim: preset.text.width, unetFp16: precision === 'float16', vaeEncoderChannels: 4 });
    // Three halvings; the default export's up path takes the skip tensors' sizes, so any latent size works.
    expect(pipe.info.latentSizes).toMatchObject({ source: 'graph', upsampling: 'shape-driven', safeMultiple: 8 });
    expect(pipe.info.latentSizes.describe()).toBe('any size');
    expect((await pipe.encodeText('a photo of a cat')).embedding.every(Number.isFinite)).toBe(true);
    const w = 8,
      h = 8;
    const eps = await unetCall(pipe, w, h);
    expect(eps.length).toBe(2 * 4 * w * h);
    expect(eps.every(Number.isFinite)).toBe(true);
    const spread = Math.sqrt(eps.reduce((s, v) => s + v * v, 0) / eps.length);
    expect(spread).toBeGreaterThan(0.05); // not collapsed to zero by the random init...
    expect(spread).toBeLessThan(50); // ...nor blown up through 25 resnets and 16 transformers
    const image = await pipe.vaeDecode(
      Float32Array.from({ length: 4 * w * h }, (_, i) => Math.sin(i)),
      w,
      h,
    );
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

describe('sd15 preset with the export options', () => {
  it("fused attention (as onnxruntime's optimizer writes it) computes what the classic export does, from the same weights", async () => {
    const classic = await writeNarrow({});
    const fused = await writeNarrow({ attention: 'fused', timestep: 'int64', inputIds: 'int64', vaeEncoder: 'mean-logvar', unetConfig: false });
    const index = JSON.parse(await readFile(path.join(fused.dir, 'model_index.json'), 'utf8'));
    expect(index.dualstyle_generated).toMatchObject({ preset: preset.name, export: { attention: 'fused', timestep: 'int64', unetConfig: false } });
    await expect(stat(path.join(fused.dir, 'unet/config.json'))).rejects.toThrow();
    const pipes = await Promise.all([classic.dir, fused.dir].map((d) => SdPipeline.load(d, { executionProvider: 'cpu', session: { optimizedCache: null } })));
    try {
      expect(pipes[1]!.info).toMatchObject({ timestepType: 'int64', textIdsType: 'int64', vaeEncoderChannels: 8 });
      const [a, b] = await Promise.all(pipes.map((p) => unetCall(p, 9, 7)));
      expect(a!.length).toBe(2 * 4 * 9 * 7);
      let diff = 0;
      let scale = 0;
      for (let i = 0; i < a!.length; i++) {
        diff = Math.max(diff, Math.abs(a![i]! - b![i]!));
        scale = Math.max(scale, Math.abs(a![i]!));
      }
      expect(scale).toBeGreaterThan(0.05);
      expect(diff).toBeLessThan(1e-3 * scale);
    } finally {
      await Promise.all(pipes.map((p) => p.release()));
    }
  });

  it('upsample scale: the constant ×2 up path takes latent sides that are multiples of 8 only', async () => {
    const { dir } = await writeNarrow({ upsample: 'scale' });
    const pipe = await SdPipeline.load(dir, { executionProvider: 'cpu', session: { optimizedCache: null } });
    try {
      expect(pipe.info.latentSizes).toMatchObject({ source: 'graph', safeMultiple: 8 });
      expect(pipe.info.latentSizes.takes(16, 8)).toBe(true);
      expect(pipe.info.latentSizes.takes(9, 7)).toBe(false);
      expect((await unetCall(pipe, 16, 8)).every(Number.isFinite)).toBe(true);
    } finally {
      await pipe.release();
    }
  });
});

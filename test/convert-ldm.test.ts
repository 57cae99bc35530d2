/**
 * Single-file LDM checkpoints (issue #22): the fixture's weights written as one .safetensors in the
 * original LDM layout, with the key tables of diffusers' scripts/convert_diffusers_to_original_stable_diffusion.py
 * transcribed here independently of the converter (for any depth: that script's "3" is layers + 1), in
 * float32, float16 and bfloat16. Each converts and reproduces the reference's UNet call, text embedding,
 * VAE encode and decode within a stated tolerance:
 *
 * - float32: the harness's 1e-3·max(1, max|ref|);
 * - float16 weights (a 2^-11 relative rounding per weight): 1e-2·max(1, max|ref|);
 * - bfloat16 weights (2^-8 per weight, 8× coarser): 5e-2·max(1, max|ref|).
 *
 * The fixture is not SD 1.5 (16 groups, text heads 4): its diffusers folder is given as the config
 * folder; without it the shapes alone cannot say so, and the conversion is refused naming the groups.
 */
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readNpyFloat32 } from '../server/conformance/npy.ts';
import { SdPipeline } from '../server/engine/sd/pipeline.ts';
import { ensureConverted } from '../server/models/convert/index.ts';
import { encodeSafetensors, withSafetensors, type FloatDtype, type TensorToWrite } from '../server/models/convert/safetensors.ts';
import { maxAbs, maxAbsDiff } from './support/numeric.ts';
import { encodeTorchCheckpoint } from './support/torch-checkpoint.ts';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fixture = path.resolve(projectRoot, '../shared/fixtures/tiny-sd-diffusers');
const hasFixture = existsSync(path.join(fixture, 'reference/manifest.json'));
if (!hasFixture) console.warn(`convert-ldm: fixture ${fixture} not found; single-file tests skipped`);

/** Python's str.replace (every occurrence). */
const replaceAll = (s: string, from: string, to: string) => s.split(from).join(to);

/** The script's UNet tables, with its 4 levels × 2 layers made `levels` × `L`, and attention where the config has it. */
function unetTables(L: number, attention: boolean[]): { top: [string, string][]; resnet: [string, string][]; layer: [string, string][] } {
  const top: [string, string][] = [
    ['time_embed.0.weight', 'time_embedding.linear_1.weight'],
    ['time_embed.0.bias', 'time_embedding.linear_1.bias'],
    ['time_embed.2.weight', 'time_embedding.linear_2.weight'],
    ['time_embed.2.bias', 'time_embedding.linear_2.bias'],
    ['input_blocks.0.0.weight', 'conv_in.weight'],
    ['input_blocks.0.0.bias', 'conv_in.bias'],
    ['out.0.weight', 'conv_norm_out.weight'],
    ['out.0.bias', 'conv_norm_out.bias'],
    ['out.2.weight', 'conv_out.weight'],
    ['out.2.bias', 'conv_out.bias'],
  ];
  const resnet: [string, string][] = [
    ['in_layers.0', 'norm1'],
    ['in_layers.2', 'conv1'],
    ['out_layers.0', 'norm2'],
    ['out_layers.3', 'conv2'],
    ['emb_layers.1', 'time_emb_proj'],
    ['skip_connection', 'conv_shortcut'],
  ];
  const layer: [string, string][] = [];
  const n = attention.length;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < L; j++) {
      layer.push([`input_blocks.${(L + 1) * i + j + 1}.0.`, `down_blocks.${i}.resnets.${j}.`]);
      if (attention[i]) layer.push([`input_blocks.${(L + 1) * i + j + 1}.1.`, `down_blocks.${i}.attentions.${j}.`]);
    }
    for (let j = 0; j < L + 1; j++) {
      layer.push([`output_blocks.${(L + 1) * i + j}.0.`, `up_blocks.${i}.resnets.${j}.`]);
      if (attention[n - 1 - i]) layer.push([`output_blocks.${(L + 1) * i + j}.1.`, `up_blocks.${i}.attentions.${j}.`]);
    }
    if (i < n - 1) {
      layer.push([`input_blocks.${(L + 1) * (i + 1)}.0.op.`, `down_blocks.${i}.downsamplers.0.conv.`]);
      layer.push([`output_blocks.${(L + 1) * i + L}.${attention[n - 1 - i] ? 2 : 1}.`, `up_blocks.${i}.upsamplers.0.`]);
    }
  }
  layer.push(['middle_block.1.', 'mid_block.attentions.0.']);
  for (let j = 0; j < 2; j++) layer.push([`middle_block.${2 * j}.`, `mid_block.resnets.${j}.`]);
  return { top, resnet, layer };
}

/** convert_unet_state_dict: diffusers key → LDM key. */
function ldmUnet(key: string, t: ReturnType<typeof unetTables>): string {
  let v = t.top.find(([, hf]) => hf === key)?.[0] ?? key;
  if (key.includes('resnets')) for (const [sd, hf] of t.resnet) v = replaceAll(v, hf, sd);
  for (const [sd, hf] of t.layer) v = replaceAll(v, hf, sd);
  return v;
}

/** convert_vae_state_dict: diffusers key → LDM key, and whether the weight becomes a 1×1 conv. */
function ldmVae(key: string, L: number, levels: number): { name: string; conv1x1: boolean } {
  const map: [string, string][] = [
    ['nin_shortcut', 'conv_shortcut'],
    ['norm_out', 'conv_norm_out'],
    ['mid.attn_1.', 'mid_block.attentions.0.'],
  ];
  for (let i = 0; i < levels; i++) {
    for (let j = 0; j < L; j++) map.push([`encoder.down.${i}.block.${j}.`, `encoder.down_blocks.${i}.resnets.${j}.`]);
    if (i < levels - 1) {
      map.push([`down.${i}.downsample.`, `down_blocks.${i}.downsamplers.0.`]);
      map.push([`up.${levels - 1 - i}.upsample.`, `up_blocks.${i}.upsamplers.0.`]);
    }
    for (let j = 0; j < L + 1; j++) map.push([`decoder.up.${levels - 1 - i}.block.${j}.`, `decoder.up_blocks.${i}.resnets.${j}.`]);
  }
  for (let i = 0; i < 2; i++) map.push([`mid.block_${i + 1}.`, `mid_block.resnets.${i}.`]);
  let v = key;
  for (const [sd, hf] of map) v = replaceAll(v, hf, sd);
  if (key.includes('attentions')) for (const [sd, hf] of [['norm.', 'group_norm.']] as const) v = replaceAll(v, hf, sd);
  for (const [hf, sd] of [
    ['to_q', 'q'],
    ['to_k', 'k'],
    ['to_v', 'v'],
    ['to_out.0', 'proj_out'],
  ] as const) {
    if (v.includes(`mid.attn_1.${hf}.`)) return { name: v.replace(hf, sd), conv1x1: v.endsWith('.weight') };
  }
  return { name: v, conv1x1: false };
}

/** The fixture's weights under their LDM names, stored as `dtype`. */
async function ldmTensors(dtype: FloatDtype): Promise<TensorToWrite[]> {
  const config = async (rel: string) => JSON.parse(await readFile(path.join(fixture, rel), 'utf8')) as Record<string, unknown>;
  const unetConfig = await config('unet/config.json');
  const vaeConfig = await config('vae/config.json');
  const tables = unetTables(
    unetConfig.layers_per_block as number,
    (unetConfig.down_block_types as string[]).map((t) => t.startsWith('CrossAttn')),
  );
  const tensors: TensorToWrite[] = [];
  const add = (rel: string, rename: (key: string, shape: number[]) => { name: string; shape: number[] }) =>
    withSafetensors(path.join(fixture, rel), (f) => {
      for (const key of f.keys()) {
        const { name, shape } = rename(key, f.info(key).shape);
        tensors.push({ name, shape, data: f.readFloat32(key), dtype });
      }
    });
  add('unet/diffusion_pytorch_model.safetensors', (k, shape) => ({ name: `model.diffusion_model.${ldmUnet(k, tables)}`, shape }));
  add('vae/diffusion_pytorch_model.safetensors', (k, shape) => {
    const { name, conv1x1 } = ldmVae(k, vaeConfig.layers_per_block as number, (vaeConfig.block_out_channels as number[]).length);
    return { name: `first_stage_model.${name}`, shape: conv1x1 ? [...shape, 1, 1] : shape };
  });
  add('text_encoder/model.safetensors', (k, shape) => ({ name: `cond_stage_model.transformer.${k}`, shape }));
  // What full checkpoints also carry: the diffusion buffers and an EMA copy, neither a weight of the graphs.
  tensors.push({ name: 'alphas_cumprod', shape: [4], data: new Float32Array([1, 0.9, 0.8, 0.7]) });
  tensors.push({ name: 'model_ema.decay', shape: [], data: new Float32Array([0.9999]) });
  return tensors;
}

async function writeLdmFile(file: string, dtype: FloatDtype): Promise<void> {
  await writeFile(file, encodeSafetensors(await ldmTensors(dtype)));
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'dualstyle-ldm-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const TOLERANCE: Record<FloatDtype, number> = { F32: 1e-3, F16: 1e-2, BF16: 5e-2 };

describe.skipIf(!hasFixture)('single-file LDM checkpoint of tiny-sd-diffusers', () => {
  for (const dtype of ['F32', 'F16', 'BF16'] as const) {
    it(`${dtype}: reproduces the UNet call, text embedding, VAE encode and decode within ${TOLERANCE[dtype]}·max(1, max|ref|)`, async () => {
      const file = path.join(tmp, `tiny-${dtype}.safetensors`);
      await writeLdmFile(file, dtype);
      const dir = await ensureConverted(file, { configDir: fixture, cacheRoot: path.join(tmp, 'cache') });
      const pipe = await SdPipeline.load(dir, { executionProvider: 'cpu' });
      try {
        const ref = (name: string) => readNpyFloat32(path.join(fixture, 'reference', `${name}.npy`));
        const manifest = JSON.parse(await readFile(path.join(fixture, 'reference/manifest.json'), 'utf8')) as {
          width: number;
          height: number;
          latent_width: number;
          latent_height: number;
          prompts: { style1: string };
        };
        const within = (ours: ArrayLike<number>, reference: Float32Array, what: string) =>
          expect(maxAbsDiff(ours, reference), what).toBeLessThanOrEqual(TOLERANCE[dtype] * Math.max(1, maxAbs(reference)));
        const [sample, ehs, unetOut] = await Promise.all([ref('unet_in_sample'), ref('unet_in_ehs'), ref('unet_out_t500')]);
        const [batch, , h, w] = sample.shape as [number, number, number, number];
        within(await pipe.unet(sample.data, batch, h, w, 500, ehs.data), unetOut.data, 'unet_out_t500');
        within((await pipe.encodeText(manifest.prompts.style1)).embedding, (await ref('text_c1')).data, 'text_c1');
        within(await pipe.vaeEncode({ width: manifest.width, height: manifest.height, data: (await ref('image')).data }), (await ref('x0')).data, 'x0');
        const decoded = await pipe.vaeDecode((await ref('single_c1_latent')).data, manifest.latent_width, manifest.latent_height);
        within(decoded.data, (await ref('single_c1_image')).data, 'single_c1_image');
      } finally {
        await pipe.release();
      }
    });
  }

  it("a separate VAE file in the LDM layout (vae-ft-mse style) replaces the model's own: encoder exact, its changed decoder used", async () => {
    const vaeConfig = JSON.parse(await readFile(path.join(fixture, 'vae/config.json'), 'utf8')) as { layers_per_block: number; block_out_channels: number[] };
    const tensors = withSafetensors(path.join(fixture, 'vae/diffusion_pytorch_model.safetensors'), (f) =>
      f.keys().map((key) => {
        const { name, conv1x1 } = ldmVae(key, vaeConfig.layers_per_block, vaeConfig.block_out_channels.length);
        const data = f.readFloat32(key);
        // A brighter decoder: every output pixel moves by 0.2 before the clamp.
        if (name === 'decoder.conv_out.bias') data.forEach((v, i) => (data[i] = v + 0.2));
        return { name, shape: conv1x1 ? [...f.info(key).shape, 1, 1] : f.info(key).shape, data };
      }),
    );
    const vae = path.join(tmp, 'vae-ft-bright.safetensors');
    await writeFile(vae, encodeSafetensors([...tensors, { name: 'model_ema.decay', shape: [], data: new Float32Array([0.9999]) }]));
    const dir = await ensureConverted(fixture, { vae, cacheRoot: path.join(tmp, 'cache') });
    const pipe = await SdPipeline.load(dir, { executionProvider: 'cpu' });
    try {
      const ref = (name: string) => readNpyFloat32(path.join(fixture, 'reference', `${name}.npy`));
      const m = JSON.parse(await readFile(path.join(fixture, 'reference/manifest.json'), 'utf8')) as {
        width: number;
        height: number;
        latent_width: number;
        latent_height: number;
      };
      const x0 = (await ref('x0')).data;
      expect(maxAbsDiff(await pipe.vaeEncode({ width: m.width, height: m.height, data: (await ref('image')).data }), x0)).toBeLessThanOrEqual(
        1e-3 * Math.max(1, maxAbs(x0)),
      );
      const decoded = await pipe.vaeDecode((await ref('single_c1_latent')).data, m.latent_width, m.latent_height);
      const own = (await ref('single_c1_image')).data;
      // Images are (clamp(x, −1, 1) + 1) / 2: +0.2 before the clamp is at most +0.1 after, and about that where nothing clamps.
      let mean = 0;
      for (let i = 0; i < own.length; i++) mean += decoded.data[i]! - own[i]!;
      expect(mean / own.length).toBeGreaterThan(0.03);
      expect(maxAbsDiff(decoded.data, own)).toBeLessThanOrEqual(0.1 + 1e-3);
    } finally {
      await pipe.release();
    }
  });

  it('without the config folder, shapes alone assume SD 1.x: the groups that do not fit are named', async () => {
    const file = path.join(tmp, 'tiny-F32.safetensors');
    if (!existsSync(file)) await writeLdmFile(file, 'F32');
    await expect(ensureConverted(file, { cacheRoot: path.join(tmp, 'cache-noconfig') })).rejects.toThrow(/do not split into 32 groups.*config folder/s);
  });

  for (const dtype of ['F32', 'F16'] as const)
    it(`${dtype}: the same checkpoint as a PyTorch .ckpt (torch.save's zip, Lightning-wrapped) converts to the very same weights, nothing run`, async () => {
      const tensors = await ldmTensors(dtype);
      const [st, ckpt] = [path.join(tmp, `same-${dtype}.safetensors`), path.join(tmp, `same-${dtype}.ckpt`)];
      await writeFile(st, encodeSafetensors(tensors));
      await writeFile(ckpt, encodeTorchCheckpoint(tensors, { lightning: true }));
      const cacheRoot = path.join(tmp, 'cache-ckpt');
      const [fromSt, fromCkpt] = [await ensureConverted(st, { configDir: fixture, cacheRoot }), await ensureConverted(ckpt, { configDir: fixture, cacheRoot })];
      expect(fromCkpt).not.toBe(fromSt);
      for (const part of ['unet', 'text_encoder', 'vae_encoder', 'vae_decoder']) {
        const [a, b] = [await readFile(path.join(fromSt, part, 'weights.pb')), await readFile(path.join(fromCkpt, part, 'weights.pb'))];
        expect(a.length, part).toBeGreaterThan(0);
        expect(b.equals(a), part).toBe(true);
      }
    });

  it('a diffusers folder whose UNet and text encoder are PyTorch .bin files converts to the same weights as with safetensors', async () => {
    const folder = path.join(tmp, 'bin-folder');
    for (const sub of ['model_index.json', 'unet', 'vae', 'text_encoder', 'tokenizer', 'scheduler'])
      await cp(path.join(fixture, sub), path.join(folder, sub), { recursive: true });
    for (const [sub, st, bin] of [
      ['unet', 'diffusion_pytorch_model.safetensors', 'diffusion_pytorch_model.bin'],
      ['text_encoder', 'model.safetensors', 'pytorch_model.bin'],
    ] as const) {
      const tensors = withSafetensors(path.join(folder, sub, st), (f) =>
        f.keys().map((name) => ({ name, shape: f.info(name).shape, data: f.readFloat32(name) })),
      );
      await writeFile(path.join(folder, sub, bin), encodeTorchCheckpoint(tensors));
      await rm(path.join(folder, sub, st));
    }
    const cacheRoot = path.join(tmp, 'cache-bin');
    const [fromSt, fromBin] = [await ensureConverted(fixture, { cacheRoot }), await ensureConverted(folder, { cacheRoot })];
    for (const part of ['unet', 'text_encoder'])
      expect((await readFile(path.join(fromBin, part, 'weights.pb'))).equals(await readFile(path.join(fromSt, part, 'weights.pb'))), part).toBe(true);
  });
});

/**
 * Models in the PyTorch layout (issue #22), on ../shared/fixtures/tiny-sd-diffusers: the harness converts
 * the folder and passes every case of tiny-sd's reference plus the LoRA cases; a LoRA in the diffusers/PEFT
 * format merges to the same weights as kohya's; Load Model and Load LoRA give distinct models; and bad
 * files (extra or misshapen tensors, a config that does not fit, a LoRA for another architecture, a
 * pickle, fuzzed headers) are refused with a message naming the file, leaving nothing in the cache.
 */
import { existsSync, readdirSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runConformance, tolerance } from '../server/conformance/harness.ts';
import { readNpyFloat32 } from '../server/conformance/npy.ts';
import { SdPipeline } from '../server/engine/sd/pipeline.ts';
import { ConversionError, convertedPath, ensureConverted } from '../server/models/convert/index.ts';
import { encodeSafetensors, SafetensorsError, withSafetensors, type TensorToWrite } from '../server/models/convert/safetensors.ts';
import { createCatalog } from '../server/catalog.ts';
import { GraphRunner } from '../server/executor/graph-runner.ts';
import { nodeDefinitions } from '../nodes/index.ts';
import { loadModel } from '../nodes/load-model.ts';
import { listModels } from '../server/models/model-list.ts';
import { loadLora } from '../nodes/load-lora.ts';
import type { Services } from '../nodes/types.ts';
import { nodeContext } from './support/node-context.ts';
import { FUZZ_SEED } from './support/fuzz.ts';
import { maxAbsDiff } from './support/numeric.ts';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fixture = path.resolve(projectRoot, '../shared/fixtures/tiny-sd-diffusers');
const hasFixture = existsSync(path.join(fixture, 'reference/manifest.json'));
if (!hasFixture) console.warn(`convert: fixture ${fixture} not found; conversion tests skipped`);

let tmp: string;
let cacheRoot: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'dualstyle-convert-'));
  cacheRoot = path.join(tmp, 'cache');
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Every tensor of a safetensors file, to write back changed. */
function readAll(file: string): TensorToWrite[] {
  return withSafetensors(file, (f) => f.keys().map((name) => ({ name, shape: f.info(name).shape, data: f.readFloat32(name) })));
}

/** A private copy of the fixture's model files (no reference/), to spoil. */
async function copyModel(name: string): Promise<string> {
  const dir = path.join(tmp, name);
  for (const sub of ['model_index.json', 'unet', 'vae', 'text_encoder', 'tokenizer', 'scheduler', 'lora'])
    await cp(path.join(fixture, sub), path.join(dir, sub), { recursive: true });
  return dir;
}

/** The error a conversion into a fresh cache gives; checks that the cache holds nothing afterwards. */
async function refusal(source: string, options: Parameters<typeof ensureConverted>[1] = {}): Promise<Error> {
  const root = path.join(tmp, `cache-${Math.random().toString(36).slice(2)}`);
  try {
    await ensureConverted(source, { ...options, cacheRoot: root });
  } catch (e) {
    expect(existsSync(root) ? readdirSync(root) : []).toEqual([]);
    return e as Error;
  }
  throw new Error(`${source} was converted`);
}

describe.skipIf(!hasFixture)('tiny-sd-diffusers', () => {
  it('the harness converts the PyTorch folder and passes every case, the LoRA cases included', async () => {
    const lines: string[] = [];
    const r = await runConformance(fixture, { log: (l) => lines.push(l), executionProvider: 'cpu', convert: { cacheRoot } });
    expect(
      r.cases.filter((c) => !c.pass),
      lines.join('\n'),
    ).toEqual([]);
    const names = new Set(r.cases.map((c) => c.name));
    for (const n of ['text_c1', 'unet_out_t500', 'recon_image', 'epsmerge_linear_image', 'attnmerge_logistic_image', 'lora_text_c1', 'lora_unet_out_t500']) {
      expect(names, `case ${n}`).toContain(n);
    }
    // Converted once per (model, LoRA, strengths): the plain model and the one with the LoRA.
    expect(readdirSync(cacheRoot).filter((n) => !n.includes('.tmp-')).length).toBe(2);
  });

  it('a diffusers/PEFT LoRA (lora_A/lora_B) merges like the same kohya LoRA', async () => {
    const manifest = JSON.parse(await readFile(path.join(fixture, 'lora/manifest.json'), 'utf8')) as { file: string; strength: number };
    const kohya = readAll(path.join(fixture, manifest.file));
    // kohya "lora_unet_down_blocks_0_attentions_0_proj_in" → PEFT "unet.down_blocks.0.attentions.0.proj_in", by the model's own keys.
    const moduleKeys = [
      ...withSafetensors(path.join(fixture, 'unet/diffusion_pytorch_model.safetensors'), (f) => f.keys().map((k) => ['unet', k] as const)),
      ...withSafetensors(path.join(fixture, 'text_encoder/model.safetensors'), (f) => f.keys().map((k) => ['text_encoder', k] as const)),
    ];
    const peftName = new Map(
      moduleKeys.map(([prefix, k]) => [
        `lora_${prefix === 'unet' ? 'unet' : 'te'}_${k.replace(/\.weight$/, '').replace(/\./g, '_')}`,
        `${prefix}.${k.replace(/\.weight$/, '')}`,
      ]),
    );
    const peft: TensorToWrite[] = kohya.map((t) => {
      const [module, ...rest] = t.name.split('.');
      const suffix = rest.join('.');
      const name = peftName.get(module!);
      if (!name) throw new Error(`no module for ${t.name}`);
      return { ...t, name: `${name}.${suffix.replace('lora_down', 'lora_A').replace('lora_up', 'lora_B')}` };
    });
    const file = path.join(tmp, 'peft-style.safetensors');
    await writeFile(file, encodeSafetensors(peft));
    const dir = await ensureConverted(fixture, { cacheRoot, loras: [{ file, unet: manifest.strength, text: manifest.strength }] });
    const pipe = await SdPipeline.load(dir, { executionProvider: 'cpu' });
    try {
      const ref = (name: string) => readNpyFloat32(path.join(fixture, 'reference', `${name}.npy`));
      const [sample, ehs, unetRef, textRef] = await Promise.all([ref('unet_in_sample'), ref('unet_in_ehs'), ref('lora_unet_out_t500'), ref('lora_text_c1')]);
      const [batch, , h, w] = sample.shape as [number, number, number, number];
      const out = await pipe.unet(sample.data, batch, h, w, 500, ehs.data);
      expect(maxAbsDiff(out, unetRef.data)).toBeLessThanOrEqual(tolerance(unetRef.data));
      const prompts = JSON.parse(await readFile(path.join(fixture, 'reference/manifest.json'), 'utf8')) as { prompts: { style1: string } };
      const text = (await pipe.encodeText(prompts.prompts.style1)).embedding;
      expect(maxAbsDiff(text, textRef.data)).toBeLessThanOrEqual(tolerance(textRef.data));
    } finally {
      await pipe.release();
    }
  });

  it('the cache key sees the output dtype, every LoRA and both strengths', () => {
    const lora = path.join(fixture, 'lora/tiny-style.safetensors');
    const keys = [
      convertedPath(fixture, { cacheRoot }),
      convertedPath(fixture, { cacheRoot, dtype: 'float16' }),
      convertedPath(fixture, { cacheRoot, loras: [{ file: lora, unet: 0.8, text: 0.8 }] }),
      convertedPath(fixture, { cacheRoot, loras: [{ file: lora, unet: 0.8, text: 0.5 }] }),
      convertedPath(fixture, { cacheRoot, loras: [{ file: lora, unet: 0.5, text: 0.8 }] }),
      convertedPath(fixture, { cacheRoot, loras: [lora, lora].map((file) => ({ file, unet: 0.8, text: 0.8 })) }),
    ];
    expect(new Set(keys).size).toBe(keys.length);
    expect(convertedPath(fixture, { cacheRoot })).toBe(keys[0]);
  });

  describe('bad files: a message naming the file and the problem, nothing left in the cache', () => {
    it('an extra tensor, a missing one, a config that does not fit', async () => {
      const extra = await copyModel('extra');
      const unetFile = path.join(extra, 'unet/diffusion_pytorch_model.safetensors');
      const tensors = readAll(unetFile);
      await writeFile(unetFile, encodeSafetensors([...tensors, { name: 'add_embedding.linear_1.weight', shape: [2, 2], data: new Float32Array(4) }]));
      const e1 = await refusal(extra);
      expect(e1).toBeInstanceOf(ConversionError);
      expect(e1.message).toMatch(
        /unet\/diffusion_pytorch_model\.safetensors: 1 tensor that this model's configuration does not use \(add_embedding\.linear_1\.weight\)/,
      );

      await writeFile(unetFile, encodeSafetensors(tensors.filter((t) => t.name !== 'mid_block.attentions.0.proj_out.weight')));
      expect((await refusal(extra)).message).toMatch(/no tensor "mid_block\.attentions\.0\.proj_out\.weight"/);

      await writeFile(unetFile, encodeSafetensors(tensors));
      const config = JSON.parse(await readFile(path.join(extra, 'unet/config.json'), 'utf8')) as Record<string, unknown>;
      await writeFile(path.join(extra, 'unet/config.json'), JSON.stringify({ ...config, block_out_channels: [32, 32, 64, 128] }));
      expect((await refusal(extra)).message).toMatch(
        /unet\/diffusion_pytorch_model\.safetensors: tensor "down_blocks\.3\.resnets\.0\.conv1\.weight" has shape \[64, 64, 3, 3\], the model's configuration needs \[128, 64, 3, 3\]/,
      );
      await writeFile(path.join(extra, 'unet/config.json'), JSON.stringify({ ...config, use_linear_projection: true }));
      expect((await refusal(extra)).message).toMatch(/"use_linear_projection" is true; only false is supported/);
    });

    it('a LoRA for another architecture', async () => {
      const file = path.join(tmp, 'other-arch.safetensors');
      const r = 4;
      await writeFile(
        file,
        encodeSafetensors([
          { name: 'lora_unet_input_blocks_4_1_proj_in.lora_down.weight', shape: [r, 320], data: new Float32Array(r * 320) },
          { name: 'lora_unet_input_blocks_4_1_proj_in.lora_up.weight', shape: [320, r], data: new Float32Array(r * 320) },
        ]),
      );
      const e = await refusal(fixture, { loras: [{ file, unet: 1, text: 1 }] });
      expect(e.message).toMatch(
        /other-arch\.safetensors: 1 of 1 LoRA modules match no weight of this model \(lora_unet_input_blocks_4_1_proj_in\): is the LoRA for another architecture/,
      );
      // Right names, wrong widths (a wider model's LoRA).
      await writeFile(
        file,
        encodeSafetensors([
          { name: 'lora_unet_mid_block_attentions_0_proj_in.lora_down.weight', shape: [r, 1280, 1, 1], data: new Float32Array(r * 1280) },
          { name: 'lora_unet_mid_block_attentions_0_proj_in.lora_up.weight', shape: [1280, r, 1, 1], data: new Float32Array(r * 1280) },
        ]),
      );
      expect((await refusal(fixture, { loras: [{ file, unet: 1, text: 1 }] })).message).toMatch(
        /makes a \[1280, 1280, 1, 1\] change for "mid_block\.attentions\.0\.proj_in\.weight" of shape \[64, 64, 1, 1\]/,
      );
    });

    it('a pickle that is not a torch zip is never parsed; the message says how to get a safetensors file', async () => {
      const dir = await copyModel('pickle');
      await rm(path.join(dir, 'unet/diffusion_pytorch_model.safetensors'));
      await writeFile(path.join(dir, 'unet/diffusion_pytorch_model.bin'), 'not a real pickle');
      expect((await refusal(dir)).message).toMatch(/diffusion_pytorch_model\.bin: not a PyTorch zip checkpoint.*\.safetensors version/s);
      const ckpt = path.join(tmp, 'model.ckpt');
      await writeFile(ckpt, 'not a real pickle');
      // A single .ckpt goes through the restricted reader (test/torch-pickle.test.ts): this one is no torch zip.
      expect((await refusal(ckpt)).message).toMatch(/model\.ckpt: not a PyTorch zip checkpoint.*\.safetensors version/s);
    });

    it('fuzzed VAE headers are refused with a SafetensorsError, leaving nothing behind', async () => {
      const dir = await copyModel('fuzz');
      const vae = path.join(dir, 'vae/diffusion_pytorch_model.safetensors');
      const original = await readFile(vae);
      const headerLength = Number(original.readBigUInt64LE(0));
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 0, max: 8 + headerLength - 1 }), fc.integer({ min: 0, max: 255 }), async (at, byte) => {
          const spoiled = Buffer.from(original);
          if (spoiled[at] === byte) return;
          spoiled[at] = byte;
          await writeFile(vae, spoiled);
          const cache = path.join(tmp, 'fuzz-cache');
          const list = () => (existsSync(cache) ? readdirSync(cache).sort() : []);
          const before = list();
          let error: unknown = null;
          try {
            await ensureConverted(dir, { cacheRoot: cache });
          } catch (e) {
            error = e;
          }
          // A changed digit of a shape or offset may still describe a valid file (then it converts, or its tensors do not fit the model).
          if (error) {
            expect(error instanceof SafetensorsError || error instanceof ConversionError, String(error)).toBe(true);
            expect(list()).toEqual(before);
          }
          expect(list().filter((n) => n.includes('.tmp-'))).toEqual([]);
        }),
        { numRuns: 25, seed: FUZZ_SEED },
      );
    });
  });

  it('Load Model converts a PyTorch folder in the models folders; Load LoRA stacks on it as a new model', async () => {
    const root = path.join(tmp, 'models');
    await mkdir(root, { recursive: true });
    await cp(fixture, path.join(root, 'tiny'), { recursive: true });
    const services: Services = new GraphRunner({ catalog: createCatalog(nodeDefinitions), dataDir: tmp, executionProvider: 'cpu', modelRoots: [root] })
      .services;
    const progress: number[] = [];
    const ctx = nodeContext(services, { progress: (i, n) => progress.push(i / n) });
    // The model list shows the PyTorch folder and a checkpoint file, not a LoRA file.
    await cp(path.join(fixture, 'lora/tiny-style.safetensors'), path.join(root, 'style-lora.safetensors'));
    await writeFile(
      path.join(root, 'one-file.safetensors'),
      encodeSafetensors([{ name: 'model.diffusion_model.out.2.bias', shape: [4], data: new Float32Array(4) }]),
    );
    const listed = (await listModels([root])).map((m) => m.model);
    expect(listed).toEqual(expect.arrayContaining(['tiny', 'one-file.safetensors']));
    expect(listed).not.toContain('style-lora.safetensors');
    const params = { model: 'tiny', dtype: 'auto' as const, config: '', vae: '' };
    // Load Model converts into the studio's cache: start from no conversion of this copy, so that progress shows.
    const lora = path.join(root, 'tiny/lora/tiny-style.safetensors');
    for (const loras of [[], [{ file: lora, unet: 0.8, text: 0 }]])
      await rm(convertedPath(path.join(root, 'tiny'), { dtype: 'float32', loras }), { recursive: true, force: true });
    const base = (await loadModel.run({ inputs: {}, params, ctx })).outputs.model;
    expect(base.source?.path).toBe(path.join(root, 'tiny'));
    expect(base.label).toBe('tiny');
    const loraParams = { lora: 'tiny/lora/tiny-style.safetensors', strength_unet: 0.8, strength_text: 0 };
    const merged = (await loadLora.run({ inputs: { model: base }, params: loraParams, ctx })).outputs.model;
    expect(merged.id).not.toBe(base.id);
    expect(merged.source?.loras).toEqual([{ file: path.join(root, 'tiny/lora/tiny-style.safetensors'), unet: 0.8, text: 0 }]);
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)).toBe(1);
    // The text strength 0 leaves the text encoder as it was; the UNet strength changes the UNet.
    const [pb, pm] = [await base.pipeline.acquire(), await merged.pipeline.acquire()];
    expect(maxAbsDiff((await pm.encodeText('a cat')).embedding, (await pb.encodeText('a cat')).embedding)).toBe(0);
    const sample = new Float32Array(4 * 8 * 8).fill(0.1);
    const ehs = (await pb.encodeText('a cat')).embedding;
    expect(maxAbsDiff(await pm.unet(sample, 1, 8, 8, 500, ehs), await pb.unet(sample, 1, 8, 8, 500, ehs))).toBeGreaterThan(1e-3);
    // An ONNX export cannot take a LoRA: said up front.
    await expect(loadLora.run({ inputs: { model: { ...base, source: undefined } }, params: loraParams, ctx })).rejects.toThrow(
      /is an ONNX export.*safetensors/,
    );
    expect(await loadLora.identity!(loraParams, services)).not.toBe('unreadable');
  });
});

/**
 * The engine's failure modes give errors that name the problem: model folders that are missing,
 * incomplete, not SD, or broken; impossible sampler settings; bad image sizes; NaN in the UNet;
 * an unavailable execution provider; cancellation between steps.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import onnxProto from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CancelledError, UserError } from '../server/engine/errors.ts';
import { decode, invert } from '../server/engine/diffusion/cycle.ts';
import { epsilonMerge, singlePrompt } from '../server/engine/diffusion/guidance.ts';
import { makeMask } from '../server/engine/diffusion/mask.ts';
import { seededNoise } from '../server/engine/diffusion/noise.ts';
import { createSession, cudaProviderStatus } from '../server/engine/runtime/sessions.ts';
import { diagnoseCuda } from '../server/engine/cuda/cuda-doctor.ts';
import { SdPipeline } from '../server/engine/sd/pipeline.ts';
import { pixelMerge } from '../server/engine/diffusion/pixel-merge.ts';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fixture = path.resolve(projectRoot, '../shared/fixtures/tiny-sd');
const hasFixture = existsSync(path.join(fixture, 'unet/model.onnx'));
if (!hasFixture) console.warn(`engine-errors: fixture ${fixture} not found; model tests skipped`);

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'dss-engine-errors-'));
});
afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** A copy of the fixture's layout made of symlinks, minus `omit`, with `replace` written as files. */
async function fakeModel(name: string, omit: string[] = [], replace: Record<string, string | Uint8Array> = {}): Promise<string> {
  const dir = path.join(tmp, name);
  await mkdir(dir, { recursive: true });
  for (const sub of await readdir(fixture)) {
    if (sub === 'reference') continue;
    const src = path.join(fixture, sub);
    if (sub.endsWith('.json')) {
      if (!omit.includes(sub) && !(sub in replace)) await symlink(src, path.join(dir, sub));
      continue;
    }
    await mkdir(path.join(dir, sub), { recursive: true });
    for (const f of await readdir(src)) {
      const rel = `${sub}/${f}`;
      if (!omit.includes(rel) && !(rel in replace)) await symlink(path.join(src, f), path.join(dir, rel));
    }
  }
  for (const [rel, content] of Object.entries(replace)) await writeFile(path.join(dir, rel), content);
  return dir;
}

describe.skipIf(!hasFixture)('loading a model folder', () => {
  it('names a missing folder, a file, and a folder that is not an SD model', async () => {
    await expect(SdPipeline.load(path.join(tmp, 'nope'))).rejects.toThrow(/model folder not found: .*nope/);
    const file = path.join(tmp, 'a-file.txt');
    await writeFile(file, 'hello');
    await expect(SdPipeline.load(file)).rejects.toThrow(/not a folder/);
    const empty = path.join(tmp, 'empty');
    await mkdir(empty, { recursive: true });
    await expect(SdPipeline.load(empty)).rejects.toThrow(/not a Stable Diffusion ONNX folder: missing model_index\.json/);
  });

  it('lists every missing model file', async () => {
    const dir = await fakeModel('no-unet', ['unet/model.onnx', 'tokenizer/merges.txt']);
    await expect(SdPipeline.load(dir, { executionProvider: 'cpu' })).rejects.toThrow(
      /not a Stable Diffusion ONNX folder: missing unet\/model\.onnx, tokenizer\/merges\.txt/,
    );
  });

  it('names unreadable JSON and a broken ONNX file', async () => {
    const badJson = await fakeModel('bad-json', [], { 'model_index.json': '{ "_class_name": ' });
    await expect(SdPipeline.load(badJson, { executionProvider: 'cpu' })).rejects.toThrow(/model_index\.json .* is not valid JSON/);
    const badSched = await fakeModel('bad-scheduler', [], { 'scheduler/scheduler_config.json': '[1, 2' });
    await expect(SdPipeline.load(badSched, { executionProvider: 'cpu' })).rejects.toThrow(/scheduler_config\.json .* is not valid JSON/);
    const badOnnx = await fakeModel('bad-onnx', [], { 'vae_decoder/model.onnx': new Uint8Array([1, 2, 3, 4, 5]) });
    await expect(SdPipeline.load(badOnnx, { executionProvider: 'cpu' })).rejects.toThrow(/cannot load vae_decoder\/model\.onnx/);
  });

  it.skipIf(cudaProviderStatus().available)(
    '--ep cuda without a working CUDA fails with the diagnosis and its fixes; auto falls back to CPU saying why',
    async () => {
      const d = diagnoseCuda();
      const err = await createSession(path.join(fixture, 'vae_decoder/model.onnx'), 'cuda').catch((e: Error) => e);
      expect(err).toBeInstanceOf(UserError);
      const msg = (err as Error).message;
      expect(msg).toMatch(/^CUDA execution provider requested, but /);
      expect(msg).toMatch(/npm run doctor/);
      if (!d.provider.installed) expect(msg).toMatch(/libonnxruntime_providers_cuda\.so is not installed .*npm run install:cuda/);
      for (const lib of d.missing) expect(msg).toContain(lib); // e.g. libcublasLt.so.13 on a machine without cuBLAS
      if (!d.driver.present) expect(msg).toMatch(/no NVIDIA driver/);
      // auto falls back to CPU and says why.
      const auto = await createSession(path.join(fixture, 'vae_decoder/model.onnx'), 'auto');
      expect(auto.provider).toBe('cpu');
      expect(auto.note).toMatch(/^auto: CUDA unavailable \(.+\); using CPU$/);
      expect(auto.note).toContain(d.summary);
      await auto.session.release();
    },
  );
});

describe.skipIf(!hasFixture)('sampler and VAE errors', () => {
  let pipe: SdPipeline;
  let src: Float32Array;
  let uncond: Float32Array;
  const lw = 8;
  const lh = 8;
  const n = 4 * lw * lh;
  const x0 = new Float32Array(n).map((_, i) => Math.sin(i) * 0.1);
  beforeAll(async () => {
    pipe = await SdPipeline.load(fixture, { executionProvider: 'cpu' });
    src = (await pipe.encodeText('a photo of a cat')).embedding;
    uncond = (await pipe.encodeText('')).embedding;
  });
  afterAll(async () => {
    await pipe?.release();
  });
  const opts = (o: Partial<Parameters<typeof invert>[4]> = {}) => ({ source: src, guidance: 1, steps: 6, skip: 2, eta: 0.1, noise: seededNoise(1), ...o });

  it('refuses steps ≤ skip and eta outside (0, 1]', async () => {
    await expect(invert(pipe, x0, lw, lh, opts({ steps: 4, skip: 4 }))).rejects.toThrow(/skip must be less than steps \(4\), got 4/);
    await expect(invert(pipe, x0, lw, lh, opts({ steps: 3, skip: 5 }))).rejects.toThrow(UserError);
    await expect(invert(pipe, x0, lw, lh, opts({ eta: 0 }))).rejects.toThrow(/eta must be in \(0, 1\]/);
    const code = await invert(pipe, x0, lw, lh, opts());
    await expect(decode(pipe, { ...code, skip: 6 }, singlePrompt(src, 1))).rejects.toThrow(/skip must be less than steps \(6\), got 6/);
    await expect(decode(pipe, { ...code, z: code.z.slice(1) }, singlePrompt(src, 1))).rejects.toThrow(/latent code has 4 arrays/);
  });

  it('refuses image and latent sizes the models cannot take', async () => {
    const img = (w: number, h: number) => ({ width: w, height: h, data: new Float32Array(3 * w * h).fill(0.5) });
    await expect(pipe.vaeEncode(img(60, 64))).rejects.toThrow(/image size 60×64 is not a multiple of 8/);
    await expect(pipe.vaeEncode({ width: 64, height: 64, data: new Float32Array(10) })).rejects.toThrow(/RGB 64×64 image has 12288/);
    // tiny-sd was traced at 64×64 (constant ×2 upsampling): its sides must survive three halvings.
    await expect(invert(pipe, new Float32Array(4 * 8 * 6), 8, 6, opts())).rejects.toThrow(
      /this UNet does not take a 64×48 image \(a 8×6 latent\): it takes image sides that are multiples of 64 .*fixed ×2.*Nearest sizes it takes: 64×64$/,
    );
    await expect(invert(pipe, new Float32Array(7), lw, lh, opts())).rejects.toThrow(/x0 has 7 values/);
    await expect(pipe.vaeDecode(new Float32Array(5), lw, lh)).rejects.toThrow(/latent has 5 values/);
  });

  it('names the step when the UNet returns NaN', async () => {
    const bad = Float32Array.from(x0);
    bad[17] = NaN;
    await expect(invert(pipe, bad, lw, lh, opts())).rejects.toThrow(/NaN in the UNet output at step 1 of 4 \(inversion\)/);
    const code = await invert(pipe, x0, lw, lh, opts());
    // A NaN in the noise of step 2 poisons x after step 2: the UNet call of step 3 fails.
    const z = code.z.map((a) => Float32Array.from(a));
    z[2]![5] = NaN;
    await expect(decode(pipe, { ...code, z }, singlePrompt(src, 7.5))).rejects.toThrow(/NaN in the UNet output at step 3 of 4 \(decoding\)/);
    const inf = code.z.map((a) => Float32Array.from(a));
    inf[0]![0] = Infinity;
    await expect(decode(pipe, { ...code, z: inf }, singlePrompt(src, 1))).rejects.toThrow(/(NaN|Inf) in the UNet output at step 1 of 4/);
  });

  it('stops between steps when cancelled', async () => {
    const code = await invert(pipe, x0, lw, lh, opts());
    const ac = new AbortController();
    const seen: number[] = [];
    const calls = pipe.stats.unetCalls;
    const run = decode(pipe, code, epsilonMerge([src, uncond], 7.5, makeMask({ shape: 'linear', direction: 'left-right', sharpness: 20 })), {
      signal: ac.signal,
      onStep: (i) => {
        seen.push(i);
        if (i === 2) ac.abort();
      },
    });
    await expect(run).rejects.toBeInstanceOf(CancelledError);
    expect(seen).toEqual([1, 2]);
    expect(pipe.stats.unetCalls - calls).toBe(2);
    const aborted = new AbortController();
    aborted.abort();
    await expect(invert(pipe, x0, lw, lh, opts({ signal: aborted.signal }))).rejects.toBeInstanceOf(CancelledError);
  });

  it('checks conditioning and mask sizes', async () => {
    const code = await invert(pipe, x0, lw, lh, opts());
    await expect(decode(pipe, code, singlePrompt(new Float32Array(3), 2))).rejects.toThrow(/prompt conditioning has 3 values; this model needs \[77, 32\]/);
    await expect(decode(pipe, code, epsilonMerge([src, src], 2, [new Float32Array(10), new Float32Array(10)]))).rejects.toThrow(
      /mask has 10 values, the 8×8 grid needs 64/,
    );
    const a = { width: 4, height: 4, data: new Float32Array(48) };
    const b = { width: 4, height: 2, data: new Float32Array(24) };
    expect(() => pixelMerge([a, b], [new Float32Array(16), new Float32Array(16)])).toThrow(/same size, got 4×4 and 4×2/);
  });

  it('names the fixed batch or latent size of a UNet exported with static shapes', async () => {
    const { onnx } = onnxProto;
    const model = onnx.ModelProto.decode(readFileSync(path.join(fixture, 'unet/model.onnx')));
    const sample = model.graph!.input!.find((i) => i.name === 'sample')!;
    sample.type!.tensorType!.shape = { dim: [2, 4, 8, 8].map((dimValue) => ({ dimValue })) };
    const dir = await fakeModel('static-unet', [], { 'unet/model.onnx': onnx.ModelProto.encode(model).finish() });
    const p = await SdPipeline.load(dir, { executionProvider: 'cpu' });
    try {
      const code = await invert(p, x0, lw, lh, opts({ guidance: 2 })); // [∅, c]: the fixed batch of 2 fits
      await expect(decode(p, code, singlePrompt(src, 1))).rejects.toThrow(/fixed batch of 2, but this sampler step needs 1 row per UNet call/);
      const wide = new Float32Array(4 * 16 * 8);
      await expect(invert(p, wide, 16, 8, opts({ guidance: 2 }))).rejects.toThrow(/only takes 8×8 latents \(images of 64×64\), got 16×8 \(a 128×64 image\)/);
    } finally {
      await p.release();
    }
  });

  it('refuses use after release', async () => {
    const p = await SdPipeline.load(fixture, { executionProvider: 'cpu' });
    await p.release();
    await expect(p.encodeText('x')).rejects.toThrow(/released/);
  });
});

/**
 * Attention merge: the structural rewrite of a UNet graph into a dual-conditioning UNet.
 * Proven on the built-in demo model in the three ways exports write attention (MatMul with heads in the
 * batch, Einsum, PyTorch 2 SDPA), on the reference tiny-sd export (where ../shared is present), and by
 * its refusals. The conformance harness checks the numbers against the Python reference.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AttentionRewriteError, EHS2_INPUT, MASK_INPUT, rewriteOnnxBytes } from '../server/engine/attention/rewrite.ts';
import { prepareAttentionMergeUnet } from '../server/engine/attention/unet-cache.ts';
import { ensureDemoModel, DEMO_MODEL_SEED } from '../server/models/demo/index.ts';
import { GraphBuilder, WeightRandom } from '../server/models/demo/onnx-builder.ts';
import { buildUnet } from '../server/models/demo/unet.ts';
import type { AttentionStyle } from '../server/models/demo/layers.ts';
import { TEXT_HIDDEN } from '../server/models/demo/text-encoder.ts';
import { makeMask } from '../server/engine/diffusion/mask.ts';
import { readNpyFloat32 } from '../server/conformance/npy.ts';
import { float16ToFloat32, float32ToFloat16, ort } from '../server/engine/runtime/runtime.ts';
import { SdPipeline } from '../server/engine/sd/pipeline.ts';
import { tinySd } from './support/pipeline-harness.ts';
import { maxAbs, maxAbsDiff, seededValues } from './support/numeric.ts';
import { attentionBlockGraph } from './support/attention-block.ts';

const { onnx } = onnxProto;
const hasFixture = existsSync(path.join(tinySd, 'reference/manifest.json'));
if (!hasFixture) console.warn(`attention-merge: fixture ${tinySd} not found; the tiny-sd tests are skipped`);

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'dss-attn-'));
});
afterAll(async () => {
  if (tmp) {
    await chmod(path.join(tmp, 'readonly-model', 'unet'), 0o755).catch(() => undefined);
    await rm(tmp, { recursive: true, force: true });
  }
});

const values = seededValues;

const sha = async (file: string) =>
  createHash('sha256')
    .update(await readFile(file))
    .digest('hex');

/** A model folder we may write to: a copy of the demo model. */
async function demoCopy(name: string): Promise<string> {
  const dir = path.join(tmp, name);
  await cp(await ensureDemoModel(), dir, { recursive: true, filter: (src) => !/attention-merge/.test(path.basename(src)) });
  return dir;
}

describe('attention-merge rewrite of the demo UNet', () => {
  let dir: string;
  let pipe: SdPipeline;
  beforeAll(async () => {
    dir = await demoCopy('demo');
    pipe = await SdPipeline.load(dir, { executionProvider: 'cpu', attentionCacheDir: path.join(tmp, 'cache') });
  });
  afterAll(async () => {
    await pipe?.release();
  });

  it('finds every cross-attention layer, adds the two inputs and leaves self-attention untouched', async () => {
    const source = await readFile(path.join(dir, 'unet/model.onnx'));
    const original = onnx.ModelProto.decode(source);
    const { model, layers, bytes } = rewriteOnnxBytes(source);
    // Names are not what the rewrite looks at; here they tell us what it should have found.
    const attn2 = original.graph!.node!.filter((n) => /\/attn2\/to_out\.0\/MatMul$/.test(n.name ?? '')).map((n) => n.name);
    expect(attn2.length).toBeGreaterThan(0);
    expect(layers.map((l) => l.projection).sort()).toEqual([...attn2].sort());
    expect(model.graph!.input!.map((i) => i.name)).toEqual([...original.graph!.input!.map((i) => i.name), EHS2_INPUT, MASK_INPUT]);
    const rewritten = new Map(onnx.ModelProto.decode(bytes).graph!.node!.map((n) => [n.name, n]));
    const selfAttention = original.graph!.node!.filter((n) => (n.name ?? '').includes('/attn1/'));
    expect(selfAttention.length).toBeGreaterThan(0);
    for (const n of selfAttention) {
      expect(rewritten.get(n.name)?.input, n.name!).toEqual(n.input);
      expect(rewritten.get(n.name)?.output, n.name!).toEqual(n.output);
    }
    expect([...rewritten.keys()].some((name) => (name ?? '').includes('/attn1/') && name!.endsWith('__c2'))).toBe(false);
  });

  it('mask all ones is the stock UNet with c1, all zeros the stock UNet with c2, a ramp lies between', async () => {
    const { latentChannels: C, textLength: L, textDim: D } = pipe.info;
    const [w, h] = [12, 8]; // non-square
    const sample = values(2 * C * h * w, 1);
    const c1 = values(2 * L * D, 2);
    const c2 = values(2 * L * D, 3);
    const stock1 = await pipe.unet(sample, 2, h, w, 500, c1);
    const stock2 = await pipe.unet(sample, 2, h, w, 500, c2);
    const dual = async (mask: Float32Array) => pipe.unet(sample, 2, h, w, 500, c1, await pipe.attentionMergeExtras([c2], 2, mask, w, h));
    const ones = await dual(new Float32Array(w * h).fill(1));
    const zeros = await dual(new Float32Array(w * h));
    expect(maxAbsDiff(ones, stock1)).toBeLessThanOrEqual(1e-5 * Math.max(1, maxAbs(stock1)));
    expect(maxAbsDiff(zeros, stock2)).toBeLessThanOrEqual(1e-5 * Math.max(1, maxAbs(stock2)));
    // Not vacuous: the two conditionings give different outputs, and a left-right ramp differs from both.
    expect(maxAbsDiff(stock1, stock2)).toBeGreaterThan(1e-3);
    const ramp = await dual(makeMask({ shape: 'linear', direction: 'left-right', sharpness: 20 }).weights(w, h)[0]!);
    expect(maxAbsDiff(ramp, stock1)).toBeGreaterThan(1e-4);
    expect(maxAbsDiff(ramp, stock2)).toBeGreaterThan(1e-4);
  });

  it('is written beside the original once, then reused; the user files stay as they were', async () => {
    const fresh = await demoCopy('demo-cache');
    const files = ['unet/model.onnx', 'unet/weights.pb'];
    const before = await Promise.all(files.map((f) => sha(path.join(fresh, f))));
    const first = await prepareAttentionMergeUnet(fresh, { cacheDir: path.join(tmp, 'unused-cache') });
    expect(first.reused).toBe(false);
    expect(path.dirname(first.path)).toBe(path.join(fresh, 'unet'));
    expect(path.basename(first.path)).toMatch(/^model\.attention-merge\.[0-9a-f]{16}\.onnx$/);
    const second = await prepareAttentionMergeUnet(fresh, { cacheDir: path.join(tmp, 'unused-cache') });
    expect(second).toMatchObject({ path: first.path, reused: true });
    // A rewrite of an older UNet (another hash) is removed when a new one is written.
    const stale = path.join(fresh, 'unet', 'model.attention-merge.0123456789abcdef.onnx');
    await writeFile(stale, 'old');
    await rm(first.path);
    const third = await prepareAttentionMergeUnet(fresh, { cacheDir: path.join(tmp, 'unused-cache') });
    expect(third).toMatchObject({ path: first.path, reused: false });
    expect(existsSync(stale)).toBe(false);
    expect(await Promise.all(files.map((f) => sha(path.join(fresh, f))))).toEqual(before);
    expect(existsSync(path.join(tmp, 'unused-cache'))).toBe(false);
    // Weights are referenced, not copied: every external initializer still points at weights.pb.
    const rewritten = onnx.ModelProto.decode(await readFile(first.path));
    const external = rewritten.graph!.initializer!.filter((t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL);
    expect(external.length).toBeGreaterThan(0);
    for (const t of external) expect(t.externalData!.find((e) => e.key === 'location')?.value).toBe('weights.pb');
    const size = (await stat(first.path)).size;
    expect(size).toBeLessThan((await stat(path.join(fresh, 'unet/weights.pb'))).size / 4);
    // The derived file does not change the model's identity (cache keys of every other node).
    const fingerprint = (await SdPipeline.load(fresh, { executionProvider: 'cpu' }).then(async (p) => [p.info.id, await p.release()]))[0];
    await rm(first.path);
    const withoutIt = (await SdPipeline.load(fresh, { executionProvider: 'cpu' }).then(async (p) => [p.info.id, await p.release()]))[0];
    expect(fingerprint).toBe(withoutIt);
  });

  it('a read-only model folder: the graph goes to the cache, the weights are hard-linked, not copied', async () => {
    const ro = await demoCopy('readonly-model');
    const cacheDir = path.join(tmp, 'ro-cache');
    await chmod(path.join(ro, 'unet'), 0o555);
    const prepared = await prepareAttentionMergeUnet(ro, { cacheDir });
    expect(prepared.path.startsWith(cacheDir)).toBe(true);
    expect(await readdir(path.join(ro, 'unet'))).toEqual(expect.not.arrayContaining([expect.stringMatching(/attention-merge/)]));
    const [orig, linked] = await Promise.all([stat(path.join(ro, 'unet/weights.pb')), stat(path.join(path.dirname(prepared.path), 'weights.pb'))]);
    expect(linked.ino).toBe(orig.ino);
    // And onnxruntime accepts it (the weights resolve inside the graph's folder).
    const session = await ort.InferenceSession.create(prepared.path);
    expect(session.inputNames).toEqual(expect.arrayContaining([EHS2_INPUT, MASK_INPUT]));
    await session.release();
  });

  it('a single-file export (weights inside model.onnx): the rewrite points at them in place, read-only folder too', async () => {
    // The demo UNet with its weights.pb folded into model.onnx, as single-file (often fp16) exports are.
    const single = await demoCopy('single-file');
    const unet = path.join(single, 'unet');
    const model = onnx.ModelProto.decode(await readFile(path.join(unet, 'model.onnx')));
    const weights = await readFile(path.join(unet, 'weights.pb'));
    for (const t of model.graph!.initializer!) {
      if (t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) continue;
      const at = (key: string) => Number(t.externalData!.find((e) => e.key === key)!.value);
      t.rawData = weights.subarray(at('offset'), at('offset') + at('length'));
      t.dataLocation = onnx.TensorProto.DataLocation.DEFAULT;
      t.externalData = [];
    }
    await writeFile(path.join(unet, 'model.onnx'), onnx.ModelProto.encode(model).finish());
    await rm(path.join(unet, 'weights.pb'));
    const sourceSize = (await stat(path.join(unet, 'model.onnx'))).size;
    const before = await sha(path.join(unet, 'model.onnx'));

    const referencesInPlace = async (graph: string) => {
      const rewritten = onnx.ModelProto.decode(await readFile(graph));
      const external = rewritten.graph!.initializer!.filter((t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL);
      expect(external.length).toBeGreaterThan(0);
      for (const t of external) expect(t.externalData!.find((e) => e.key === 'location')?.value).toBe('model.onnx');
      expect((await stat(graph)).size).toBeLessThan(sourceSize / 4);
    };
    const beside = await prepareAttentionMergeUnet(single, { cacheDir: path.join(tmp, 'single-cache') });
    expect(path.dirname(beside.path)).toBe(unet);
    await referencesInPlace(beside.path);

    // It computes the attention merge: mask all ones gives the stock UNet with c1.
    const pipe = await SdPipeline.load(single, { executionProvider: 'cpu' });
    try {
      const { latentChannels: C, textLength: L, textDim: D } = pipe.info;
      const [w, h] = [8, 8];
      const [sample, c1, c2] = [values(C * h * w, 7), values(L * D, 8), values(L * D, 9)];
      const stock = await pipe.unet(sample, 1, h, w, 500, c1);
      const ones = await pipe.unet(sample, 1, h, w, 500, c1, await pipe.attentionMergeExtras([c2], 1, new Float32Array(w * h).fill(1), w, h));
      expect(maxAbsDiff(ones, stock)).toBeLessThanOrEqual(1e-5 * Math.max(1, maxAbs(stock)));
      expect(ones.some((v) => v !== 0)).toBe(true);
    } finally {
      await pipe.release();
    }

    // Read-only: the cache holds the small graph and a hard link of model.onnx, never a copy.
    await rm(beside.path);
    await chmod(unet, 0o555);
    try {
      const cached = await prepareAttentionMergeUnet(single, { cacheDir: path.join(tmp, 'single-cache') });
      expect(cached.path.startsWith(path.join(tmp, 'single-cache'))).toBe(true);
      await referencesInPlace(cached.path);
      const [orig, linked] = await Promise.all([stat(path.join(unet, 'model.onnx')), stat(path.join(path.dirname(cached.path), 'model.onnx'))]);
      expect(linked.ino).toBe(orig.ino);
      const session = await ort.InferenceSession.create(cached.path);
      expect(session.inputNames).toEqual(expect.arrayContaining([EHS2_INPUT, MASK_INPUT]));
      await session.release();
    } finally {
      await chmod(unet, 0o755);
    }
    expect(await sha(path.join(unet, 'model.onnx'))).toBe(before);
  });
});

describe('attention-merge rewrite across export styles', () => {
  const styles: AttentionStyle[] = ['bmm', 'einsum', 'sdpa'];
  const [w, h, L] = [8, 16, 77];

  /** Runs a UNet file with the given feeds; ehs2 and mask only where the graph has them. */
  async function run(file: string, feeds: Record<string, ort.Tensor>): Promise<Float32Array> {
    const session = await ort.InferenceSession.create(file);
    try {
      const given = Object.fromEntries(Object.entries(feeds).filter(([k]) => session.inputNames.includes(k)));
      const out = await session.run(given);
      return out[session.outputNames[0]!]!.data as Float32Array;
    } finally {
      await session.release();
    }
  }

  it('MatMul, Einsum and SDPA attention all rewrite, to the same function', async () => {
    const sample = new ort.Tensor('float32', values(2 * 4 * h * w, 7), [2, 4, h, w]);
    const t = new ort.Tensor('float32', new Float32Array([500, 500]), [2]);
    const c1 = new ort.Tensor('float32', values(2 * L * TEXT_HIDDEN, 8), [2, L, TEXT_HIDDEN]);
    const c2 = new ort.Tensor('float32', values(2 * L * TEXT_HIDDEN, 9), [2, L, TEXT_HIDDEN]);
    const ramp = new ort.Tensor('float32', makeMask({ shape: 'logistic', direction: 'left-right', sharpness: 20 }).weights(w, h)[0]!, [1, 1, h, w]);
    const results: Record<string, { stock: Float32Array; merged: Float32Array; ones: Float32Array }> = {};
    for (const style of styles) {
      const dir = path.join(tmp, `style-${style}`);
      await mkdir(dir, { recursive: true });
      const { model, weights } = buildUnet(new WeightRandom(DEMO_MODEL_SEED), TEXT_HIDDEN, { attention: style });
      const ops = onnx.ModelProto.decode(model).graph!.node!.map((n) => n.opType);
      expect(ops.includes('Einsum'), style).toBe(style === 'einsum');
      await writeFile(path.join(dir, 'weights.pb'), weights);
      await writeFile(path.join(dir, 'model.onnx'), model);
      const { bytes, layers } = rewriteOnnxBytes(model);
      expect(layers.length, style).toBeGreaterThan(0);
      await writeFile(path.join(dir, 'dual.onnx'), bytes);
      const base = { sample, timestep: t, encoder_hidden_states: c1 };
      results[style] = {
        stock: await run(path.join(dir, 'model.onnx'), base),
        merged: await run(path.join(dir, 'dual.onnx'), { ...base, [EHS2_INPUT]: c2, [MASK_INPUT]: ramp }),
        ones: await run(path.join(dir, 'dual.onnx'), {
          ...base,
          [EHS2_INPUT]: c2,
          [MASK_INPUT]: new ort.Tensor('float32', new Float32Array(w * h).fill(1), [1, 1, h, w]),
        }),
      };
    }
    const ref = results.bmm!;
    const tol = 1e-5 * Math.max(1, maxAbs(ref.stock));
    for (const style of styles) {
      expect(maxAbsDiff(results[style]!.ones, results[style]!.stock), `${style}: ones = stock`).toBeLessThanOrEqual(tol);
      expect(maxAbsDiff(results[style]!.stock, ref.stock), `${style}: same stock function`).toBeLessThanOrEqual(tol);
      expect(maxAbsDiff(results[style]!.merged, ref.merged), `${style}: same merged function`).toBeLessThanOrEqual(tol);
    }
    expect(maxAbsDiff(ref.merged, ref.stock)).toBeGreaterThan(1e-4);
  });
});

describe('attention-merge rewrite of a half-precision graph', () => {
  it('blends in fp16: mask all ones is the stock graph with c1, all zeros with c2', async () => {
    const stockBytes = attentionBlockGraph('float16');
    const { bytes, layers } = rewriteOnnxBytes(stockBytes);
    expect(layers).toHaveLength(1);
    const [b, h, w] = [2, 4, 6];
    const half = (data: Float32Array, dims: number[]) => new ort.Tensor('float16', float32ToFloat16(data), dims);
    const base = {
      sample: half(values(b * 4 * h * w, 5), [b, 4, h, w]),
      timestep: new ort.Tensor('float32', new Float32Array(b), [b]),
      encoder_hidden_states: half(values(b * 77 * 8, 6), [b, 77, 8]),
    };
    const c2 = half(values(b * 77 * 8, 7), [b, 77, 8]);
    const mask = (v: number) => new ort.Tensor('float32', new Float32Array(h * w).fill(v), [1, 1, h, w]);
    const [stock, dual] = await Promise.all([ort.InferenceSession.create(stockBytes), ort.InferenceSession.create(bytes)]);
    try {
      const out = async (s: ort.InferenceSession, feeds: Record<string, ort.Tensor>) =>
        float16ToFloat32((await s.run(feeds))['out_sample']!.data as Uint16Array);
      const stock1 = await out(stock, base);
      const stock2 = await out(stock, { ...base, encoder_hidden_states: c2 });
      expect(maxAbsDiff(await out(dual, { ...base, [EHS2_INPUT]: c2, [MASK_INPUT]: mask(1) }), stock1)).toBe(0);
      expect(maxAbsDiff(await out(dual, { ...base, [EHS2_INPUT]: c2, [MASK_INPUT]: mask(0) }), stock2)).toBe(0);
      expect(maxAbsDiff(stock1, stock2)).toBeGreaterThan(1e-3);
    } finally {
      await Promise.all([stock.release(), dual.release()]);
    }
  });
});

describe('attention-merge refusals', () => {
  it('refuses a graph without cross-attention, naming what it looked for', async () => {
    // A graph with the UNet's inputs whose text states are projected but never attended to.
    const b = new GraphBuilder('no_attention', new WeightRandom(1));
    b.input('sample', 'float32', ['batch', 4, 'height', 'width']);
    b.input('timestep', 'float32', ['batch']);
    const ehs = b.input('encoder_hidden_states', 'float32', ['batch', 77, 32]);
    const k = b.op('MatMul', [ehs, b.weight('to_k', [32, 32], 0.1)], '/to_k');
    b.node('Identity', [k], '/out', {}, { outputs: ['out_sample'] });
    b.output('out_sample', 'float32', ['batch', 77, 32]);
    const { model } = b.model('no cross-attention');
    expect(() => rewriteOnnxBytes(model)).toThrow(AttentionRewriteError);
    expect(() => rewriteOnnxBytes(model)).toThrow(
      /no cross-attention found \(input "encoder_hidden_states"\); looked for projections of encoder_hidden_states .*Softmax/,
    );
  });

  it('refuses a graph with no text input at all (a VAE decoder)', async () => {
    const vae = await readFile(path.join(await ensureDemoModel(), 'vae_decoder/model.onnx'));
    expect(() => rewriteOnnxBytes(vae)).toThrow(/no encoder_hidden_states input/);
  });

  it('refuses to rewrite a graph twice', async () => {
    const { bytes } = rewriteOnnxBytes(await readFile(path.join(await ensureDemoModel(), 'unet/model.onnx')));
    expect(() => rewriteOnnxBytes(bytes)).toThrow(/rewritten already/);
  });

  it('a model without cross-attention: the attention-merge UNet is refused with the reason; the model still works', async () => {
    const dir = await demoCopy('no-cross-attention');
    // Swap the UNet for one whose attn2 attends to the hidden states: no cross-attention left.
    const model = onnx.ModelProto.decode(await readFile(path.join(dir, 'unet/model.onnx')));
    const ehs = model.graph!.input![2]!.name!;
    const someHidden = model.graph!.node!.find((n) => (n.name ?? '').includes('/attn2/to_q/'))!.input![0]!;
    for (const n of model.graph!.node!) n.input = n.input!.map((x) => (x === ehs && (n.name ?? '').includes('/attn2/') ? someHidden : x));
    await writeFile(path.join(dir, 'unet/model.onnx'), onnx.ModelProto.encode(model).finish());
    const pipe = await SdPipeline.load(dir, { executionProvider: 'cpu' });
    try {
      await expect(pipe.attentionMergeUnet()).rejects.toThrow(/no cross-attention found/);
      // The failure is not cached as a success, and the stock UNet is unaffected.
      await expect(pipe.attentionMergeUnet()).rejects.toThrow(/no cross-attention found/);
      const { latentChannels: C, textLength: L, textDim: D } = pipe.info;
      const out = await pipe.unet(values(C * 64, 4), 1, 8, 8, 500, values(L * D, 5));
      expect(out.every(Number.isFinite)).toBe(true);
    } finally {
      await pipe.release();
    }
  });
});

describe.skipIf(!hasFixture)('attention-merge rewrite of the reference tiny-sd UNet', () => {
  it('mask all ones equals the stock UNet with c1, all zeros with c2 (reference inputs)', async () => {
    const pipe = await SdPipeline.load(tinySd, { executionProvider: 'cpu', attentionCacheDir: path.join(tmp, 'tiny-cache') });
    try {
      const ref = (n: string) => readNpyFloat32(path.join(tinySd, 'reference', `${n}.npy`));
      const [sample, ehs, ehs2] = await Promise.all([ref('unet_in_sample'), ref('unet_in_ehs'), ref('unet_in_ehs2')]);
      const [batch, , h, w] = sample.shape as [number, number, number, number];
      const stock1 = await pipe.unet(sample.data, batch, h, w, 500, ehs.data);
      const stock2 = await pipe.unet(sample.data, batch, h, w, 500, ehs2.data);
      const ones = await pipe.unet(
        sample.data,
        batch,
        h,
        w,
        500,
        ehs.data,
        await pipe.attentionMergeExtras([ehs2.data], batch, new Float32Array(w * h).fill(1), w, h),
      );
      const zeros = await pipe.unet(
        sample.data,
        batch,
        h,
        w,
        500,
        ehs.data,
        await pipe.attentionMergeExtras([ehs2.data], batch, new Float32Array(w * h), w, h),
      );
      expect(maxAbsDiff(ones, stock1)).toBeLessThanOrEqual(1e-5 * Math.max(1, maxAbs(stock1)));
      expect(maxAbsDiff(zeros, stock2)).toBeLessThanOrEqual(1e-5 * Math.max(1, maxAbs(stock2)));
      expect(maxAbsDiff(stock1, stock2)).toBeGreaterThan(1e-3);
      // The shared fixture folder is read-only: nothing was written there.
      expect((await readdir(path.join(tinySd, 'unet'))).filter((f) => f.includes('attention-merge'))).toEqual([]);
    } finally {
      await pipe.release();
    }
  });
});

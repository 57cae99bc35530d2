/**
 * The load-time graph optimizer (engine/optimizer): attention of every export style the attention-merge
 * rewrite recognises fuses into com.microsoft MultiHeadAttention with the same function, the attention
 * merge works on the fused graph, and GroupNorm (+SiLU) fuses into NHWC GroupNorm for CUDA (structure
 * only here: onnxruntime's CPU provider has no GroupNorm kernel; scripts/gpu-check.sh runs it on CUDA).
 */
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fuseAttention } from '../server/engine/optimizer/attention-fusion.ts';
import { fuseGroupNorm } from '../server/engine/optimizer/group-norm-fusion.ts';
import { describeFusions, fusionsFor } from '../server/engine/optimizer/optimize.ts';
import { EHS2_INPUT, MASK_INPUT, rewriteOnnxBytes } from '../server/engine/attention/rewrite.ts';
import { DEMO_MODEL_SEED, ensureDemoModel } from '../server/models/demo/index.ts';
import { WeightRandom } from '../server/models/demo/onnx-builder.ts';
import { buildUnet } from '../server/models/demo/unet.ts';
import type { AttentionStyle } from '../server/models/demo/layers.ts';
import { TEXT_HIDDEN } from '../server/models/demo/text-encoder.ts';
import { ort } from '../server/engine/runtime/runtime.ts';
import { SdPipeline } from '../server/engine/sd/pipeline.ts';
import { tinySd } from './support/pipeline-harness.ts';
import { maxAbs, maxAbsDiff, seededValues } from './support/numeric.ts';

const { onnx } = onnxProto;
const hasFixture = existsSync(path.join(tinySd, 'reference/manifest.json'));
if (!hasFixture) console.warn(`optimizer: fixture ${tinySd} not found; the tiny-sd tests are skipped`);

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'dss-optimizer-'));
});
afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const count = (model: onnxProto.onnx.IModelProto, op: string) => model.graph!.node!.filter((n) => n.opType === op).length;

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

describe('attention fusion', () => {
  const [w, h, L] = [8, 16, 77];
  it.each(['bmm', 'einsum', 'sdpa'] as AttentionStyle[])(
    '%s attention fuses into MultiHeadAttention, same function, and the merge rewrites it',
    async (style) => {
      const dir = path.join(tmp, `style-${style}`);
      await mkdir(dir, { recursive: true });
      const { model, weights } = buildUnet(new WeightRandom(DEMO_MODEL_SEED), TEXT_HIDDEN, { attention: style });
      await writeFile(path.join(dir, 'weights.pb'), weights);
      await writeFile(path.join(dir, 'model.onnx'), model);
      const fused = onnx.ModelProto.decode(model);
      const softmaxes = count(fused, 'Softmax');
      const { fused: names } = fuseAttention(fused);
      expect(names.length).toBe(softmaxes);
      expect(count(fused, 'Softmax')).toBe(0);
      expect(count(fused, 'MultiHeadAttention')).toBe(softmaxes);
      const bytes = onnx.ModelProto.encode(fused).finish();
      await writeFile(path.join(dir, 'fused.onnx'), bytes);
      const { bytes: dual, layers } = rewriteOnnxBytes(bytes);
      expect(layers.length).toBe(softmaxes / 2); // the cross-attention half
      await writeFile(path.join(dir, 'fused-dual.onnx'), dual);
      await writeFile(path.join(dir, 'dual.onnx'), rewriteOnnxBytes(model).bytes);

      const base = {
        sample: new ort.Tensor('float32', seededValues(2 * 4 * h * w, 7), [2, 4, h, w]),
        timestep: new ort.Tensor('float32', new Float32Array([500, 500]), [2]),
        encoder_hidden_states: new ort.Tensor('float32', seededValues(2 * L * TEXT_HIDDEN, 8), [2, L, TEXT_HIDDEN]),
      };
      const merge = {
        ...base,
        [EHS2_INPUT]: new ort.Tensor('float32', seededValues(2 * L * TEXT_HIDDEN, 9), [2, L, TEXT_HIDDEN]),
        [MASK_INPUT]: new ort.Tensor(
          'float32',
          new Float32Array(w * h).map((_, p) => (p % w) / (w - 1)),
          [1, 1, h, w],
        ),
      };
      const plain = await run(path.join(dir, 'model.onnx'), base);
      const tol = 1e-5 * Math.max(1, maxAbs(plain));
      expect(maxAbsDiff(await run(path.join(dir, 'fused.onnx'), base), plain)).toBeLessThanOrEqual(tol);
      const merged = await run(path.join(dir, 'dual.onnx'), merge);
      expect(maxAbsDiff(await run(path.join(dir, 'fused-dual.onnx'), merge), merged)).toBeLessThanOrEqual(tol);
      expect(maxAbsDiff(merged, plain)).toBeGreaterThan(1e-4); // not vacuous
    },
  );

  it('leaves an attention it cannot read alone (heads not in a constant): nothing fused, the graph intact', async () => {
    const model = onnx.ModelProto.decode(buildUnet(new WeightRandom(DEMO_MODEL_SEED), TEXT_HIDDEN, { attention: 'sdpa' }).model);
    for (const t of model.graph!.node!.filter((n) => n.opType === 'Constant')) {
      const v = t.attribute?.[0]?.t;
      if (v?.dataType === onnx.TensorProto.DataType.INT64 && Number(v.dims?.[0]) === 4) t.opType = 'Identity'; // no longer a readable constant
    }
    const before = model.graph!.node!.length;
    expect(fuseAttention(model).fused).toEqual([]);
    expect(model.graph!.node!.length).toBe(before);
  });
});

describe('GroupNorm fusion (CUDA)', () => {
  it('each torch GroupNorm becomes an NHWC com.microsoft GroupNorm, SiLU taken in where it follows', async () => {
    const model = onnx.ModelProto.decode(await readFile(path.join(await ensureDemoModel(), 'unet/model.onnx')));
    const norms = count(model, 'InstanceNormalization');
    const sigmoids = count(model, 'Sigmoid');
    const { fused } = fuseGroupNorm(model);
    expect(fused.length).toBe(norms);
    expect(count(model, 'InstanceNormalization')).toBe(0);
    const groupNorms = model.graph!.node!.filter((n) => n.opType === 'GroupNorm');
    expect(groupNorms.every((n) => n.domain === 'com.microsoft')).toBe(true);
    const silu = groupNorms.filter((n) => Number(n.attribute!.find((a) => a.name === 'activation')!.i) === 1).length;
    expect(silu).toBeGreaterThan(0);
    expect(count(model, 'Sigmoid')).toBe(sigmoids - silu); // the SiLUs taken in are gone, the others stay
    const producer = new Map(model.graph!.node!.flatMap((n) => n.output!.map((o) => [o, n] as const)));
    for (const n of groupNorms) {
      expect(producer.get(n.input![0]!)!.attribute![0]!.ints!.map(Number)).toEqual([0, 2, 3, 1]);
      const gamma = model.graph!.initializer!.find((t) => t.name === n.input![1]);
      expect(gamma!.dims!.length).toBe(1);
    }
    expect(fusionsFor('cpu')).toEqual(['attention']);
    expect(fusionsFor('cuda')).toEqual(['attention', 'group-norm', 'bias-split-gelu', 'bias-add']);
  });
});

describe('the optimizer at load', () => {
  it('the demo model loads optimized (Load Model says what was fused) and computes what the exported graph does', async () => {
    const dir = path.join(tmp, 'demo');
    await cp(await ensureDemoModel(), dir, { recursive: true, filter: (src) => !/attention-merge|optimized/.test(path.basename(src)) });
    const load = (optimize: boolean) => SdPipeline.load(dir, { executionProvider: 'cpu', optimize, attentionCacheDir: path.join(tmp, 'cache') });
    const [fused, plain] = [await load(true), await load(false)];
    try {
      expect(fused.info.graphOptimizer).toMatch(/graph optimizer: \d+ MultiHeadAttention fused/);
      expect(plain.info.graphOptimizer).toBe('graph optimizer off');
      expect(describeFusions('cpu', { attention: 0, 'group-norm': 0, 'bias-split-gelu': 0, 'bias-add': 0 })).toMatch(/nothing to fuse/);
      const { latentChannels: C, textLength: Lt, textDim: D } = fused.info;
      const [w, h] = [12, 8];
      const sample = seededValues(2 * C * h * w, 1);
      const [c1, c2] = [seededValues(2 * Lt * D, 2), seededValues(2 * Lt * D, 3)];
      const ramp = new Float32Array(w * h).map((_, p) => (p % w) / (w - 1));
      const both = async (pipe: SdPipeline) => ({
        stock: Float32Array.from(await pipe.unet(sample, 2, h, w, 500, c1)),
        merged: Float32Array.from(await pipe.unet(sample, 2, h, w, 500, c1, await pipe.attentionMergeExtras([c2], 2, ramp, w, h))),
      });
      const [a, b] = [await both(fused), await both(plain)];
      const tol = 1e-5 * Math.max(1, maxAbs(b.stock));
      expect(maxAbsDiff(a.stock, b.stock)).toBeLessThanOrEqual(tol);
      expect(maxAbsDiff(a.merged, b.merged)).toBeLessThanOrEqual(tol);
    } finally {
      await Promise.all([fused.release(), plain.release()]);
    }
  });

  it.skipIf(!hasFixture)('fuses all 20 attentions of the reference tiny-sd export (diffusers baddbmm style)', async () => {
    const model = onnx.ModelProto.decode(await readFile(path.join(tinySd, 'unet/model.onnx')));
    const softmaxes = count(model, 'Softmax');
    expect(fuseAttention(model).fused.length).toBe(softmaxes);
  });
});

/**
 * fp16 conversion at load (engine/optimizer/float16.ts): an fp32 UNet becomes fp16 as onnxruntime's float16
 * converter makes it (block-listed operators and always-float inputs kept fp32), with its weights in one
 * fp16 file beside the converted graph (half the bytes), cached; the converted UNet computes what the fp32 one
 * does within fp16's precision (stated in server/conformance/harness.ts), attention merge included.
 * onnxruntime's CPU provider runs every operator of the converted demo and tiny-sd UNets.
 */
import { cp, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FP16_TOLERANCE_FACTOR } from '../server/conformance/harness.ts';
import * as ort from 'onnxruntime-node';
import { convertToFloat16 } from '../server/engine/optimizer/float16.ts';
import { float16ToFloat32 } from '../server/engine/runtime/runtime.ts';
import { ensureDemoModel } from '../server/models/demo/index.ts';
import { SdPipeline } from '../server/engine/sd/pipeline.ts';
import { maxAbs, maxAbsDiff, seededValues } from './support/numeric.ts';

const { onnx } = onnxProto;
const FLOAT = onnx.TensorProto.DataType.FLOAT as number;
const FLOAT16 = onnx.TensorProto.DataType.FLOAT16 as number;

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'dss-fp16-'));
});
afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('fp16 conversion at load', () => {
  it('the demo UNet in fp16: converted once, half the weight bytes, the fp32 numbers within fp16 precision, merge included', async () => {
    const dir = path.join(tmp, 'demo');
    await cp(await ensureDemoModel(), dir, { recursive: true, filter: (src) => !/attention-merge|optimized|fp16/.test(path.basename(src)) });
    const load = (fp16: boolean) => SdPipeline.load(dir, { executionProvider: 'cpu', fp16, attentionCacheDir: path.join(tmp, 'cache') });
    const [half, full] = [await load(true), await load(false)];
    try {
      expect(half.info.unetFp16).toBe(true);
      expect(full.info.unetFp16).toBe(false);
      expect(half.info.graphOptimizer).toMatch(/converted to fp16 at load/);
      const unet = path.join(dir, 'unet');
      const files = await readdir(unet);
      const weights = files.find((f) => /^model\.fp16-optimized-cpu\.[0-9a-f]+\.weights$/.test(f));
      expect(weights).toBeDefined();
      const [fp16Bytes, fp32Bytes] = await Promise.all([stat(path.join(unet, weights!)), stat(path.join(unet, 'weights.pb'))]);
      expect(fp16Bytes.size).toBeLessThan(0.55 * fp32Bytes.size);

      const { latentChannels: C, textLength: L, textDim: D } = full.info;
      const [w, h] = [12, 8];
      const sample = seededValues(2 * C * h * w, 1);
      const [c1, c2] = [seededValues(2 * L * D, 2), seededValues(2 * L * D, 3)];
      const ramp = new Float32Array(w * h).map((_, p) => (p % w) / (w - 1));
      const outputs = async (pipe: SdPipeline) => ({
        stock: Float32Array.from(await pipe.unet(sample, 2, h, w, 500, c1)),
        merged: Float32Array.from(await pipe.unet(sample, 2, h, w, 500, c1, await pipe.attentionMergeExtras([c2], 2, ramp, w, h))),
      });
      const [a, b] = [await outputs(half), await outputs(full)];
      const tol = FP16_TOLERANCE_FACTOR * 1e-3 * Math.max(1, maxAbs(b.stock));
      expect(maxAbsDiff(a.stock, b.stock)).toBeLessThanOrEqual(tol);
      expect(maxAbsDiff(a.merged, b.merged)).toBeLessThanOrEqual(tol);
      expect(maxAbsDiff(a.stock, b.stock)).toBeGreaterThan(0); // it did compute in fp16
    } finally {
      await Promise.all([half.release(), full.release()]);
    }
  });

  it('keeps the block-listed operators and the always-float inputs in fp32, with Casts around them', async () => {
    const a: onnxProto.onnx.IModelProto = {
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }],
      graph: {
        name: 'g',
        input: [{ name: 'x', type: { tensorType: { elemType: FLOAT, shape: { dim: [{ dimValue: 1 }, { dimValue: 1 }, { dimValue: 2 }, { dimValue: 2 }] } } } }],
        output: [{ name: 'y', type: { tensorType: { elemType: FLOAT } } }],
        initializer: [
          { name: 'scales', dataType: FLOAT, dims: [4], floatData: [1, 1, 2, 2] },
          { name: 'bias', dataType: FLOAT, dims: [1], floatData: [1e-9] },
        ],
        node: [
          { name: 'add', opType: 'Add', input: ['x', 'bias'], output: ['a'] },
          { name: 'max', opType: 'Max', input: ['a', 'x'], output: ['m'] },
          {
            name: 'resize',
            opType: 'Resize',
            input: ['m', '', 'scales'],
            output: ['y'],
            attribute: [{ name: 'mode', type: 3, s: new TextEncoder().encode('nearest') }],
          },
        ],
      },
    };
    const stats = await convertToFloat16(a, tmp, () => Promise.reject(new Error('nothing is external')));
    const g = a.graph!;
    const byName = new Map(g.initializer!.map((t) => [t.name, t]));
    expect(byName.get('scales')!.dataType).toBe(FLOAT); // used only as Resize's scales: kept, uncast
    expect(byName.get('bias')!.dataType).toBe(FLOAT16);
    expect(g.input![0]!.type!.tensorType!.elemType).toBe(FLOAT16);
    const max = g.node!.find((n) => n.opType === 'Max')!;
    const producers = new Map(g.node!.flatMap((n) => n.output!.map((o) => [o, n] as const)));
    expect(max.input!.map((x) => Number(producers.get(x)?.attribute?.[0]?.i))).toEqual([FLOAT, FLOAT]); // its inputs cast to fp32
    expect(stats).toMatchObject({ blocked: 1, keptFloat: 1 });
    // A non-zero value under fp16's smallest subnormal is clamped to it, not flushed to zero.
    const bias = byName.get('bias')!.rawData!;
    expect(new Uint16Array(new Uint8Array(bias).buffer)[0]).toBe(1);
  });

  it('keeps the timestep embedding in fp32 (as diffusers does): sin/cos of t·f at t = 981 within fp16 rounding of the output', async () => {
    const half = 4; // frequencies f_i = 10000^(−i/4)
    const freqs = Array.from({ length: half }, (_, i) => Math.exp((-Math.log(10000) * i) / half));
    const eye = Array.from({ length: 64 }, (_, k) => (Math.floor(k / 8) === k % 8 ? 1 : 0));
    const model: onnxProto.onnx.IModelProto = {
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }],
      graph: {
        name: 'time_proj',
        input: [{ name: 'timestep', type: { tensorType: { elemType: FLOAT, shape: { dim: [{ dimValue: 1 }] } } } }],
        output: [{ name: 'emb', type: { tensorType: { elemType: FLOAT } } }],
        initializer: [
          { name: 'axes', dataType: onnx.TensorProto.DataType.INT64, dims: [1], int64Data: [1] },
          { name: 'linear', dataType: FLOAT, dims: [8, 8], floatData: eye },
        ],
        node: [
          {
            name: 'freqs',
            opType: 'Constant',
            output: ['f'],
            attribute: [{ name: 'value', type: 4, t: { dataType: FLOAT, dims: [1, half], floatData: freqs } }],
          },
          { name: 'unsqueeze', opType: 'Unsqueeze', input: ['timestep', 'axes'], output: ['t1'] },
          { name: 'cast', opType: 'Cast', input: ['t1'], output: ['t2'], attribute: [{ name: 'to', type: 2, i: FLOAT }] },
          { name: 'mul', opType: 'Mul', input: ['t2', 'f'], output: ['arg'] },
          { name: 'sin', opType: 'Sin', input: ['arg'], output: ['s'] },
          { name: 'cos', opType: 'Cos', input: ['arg'], output: ['c'] },
          { name: 'concat', opType: 'Concat', input: ['s', 'c'], output: ['sc'], attribute: [{ name: 'axis', type: 2, i: -1 }] },
          { name: 'to_dtype', opType: 'Cast', input: ['sc'], output: ['sc16'], attribute: [{ name: 'to', type: 2, i: FLOAT }] },
          { name: 'linear_1', opType: 'MatMul', input: ['sc16', 'linear'], output: ['emb'] },
        ],
      },
    };
    const stats = await convertToFloat16(model, tmp, () => Promise.reject(new Error('nothing is external')));
    expect(stats.timeEmbedding).toBe(7); // freqs, unsqueeze, cast, mul, sin, cos, concat: not to_dtype (the boundary) nor the MatMul
    const g = model.graph!;
    expect(g.input![0]!.type!.tensorType!.elemType).toBe(FLOAT); // the timestep stays fp32
    expect(g.output![0]!.type!.tensorType!.elemType).toBe(FLOAT16);
    const session = await ort.InferenceSession.create(onnx.ModelProto.encode(model).finish());
    try {
      const t = 981;
      const out = await session.run({ timestep: new ort.Tensor('float32', Float32Array.of(t), [1]) });
      const emb = float16ToFloat32(out.emb!.data as Uint16Array);
      const exact = [...freqs.map((f) => Math.sin(t * Math.fround(f))), ...freqs.map((f) => Math.cos(t * Math.fround(f)))];
      // fp32 math, then one rounding to fp16 (≤ 2⁻¹¹ for |v| ≤ 1); in fp16, t·f would be off by up to 0.5 rad.
      expect(maxAbsDiff(emb, Float32Array.from(exact))).toBeLessThan(1e-3);
    } finally {
      await session.release();
    }
  });
});

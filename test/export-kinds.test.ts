/**
 * Every SD 1.x export kind a user may have (see test/support/export-kinds.ts): classic MatMul, Einsum,
 * SDPA and onnxruntime-fused attention (separate or packed K/V), constant-scale or shape-driven up path,
 * fp32 and fp16, int64 timesteps and ids, 8-channel VAE encoders. For each: the latent sizes its graph
 * allows are taken and the others refused with the nearest sizes named; attention merge with an all-ones
 * mask is the stock UNet with c1, all zeros with c2, a ramp neither. The mask of each cross-attention layer
 * is checked against an independent bilinear resize on grids where halving rounds up.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { conditioningInput, EHS2_INPUT, MASK_INPUT, rewriteOnnxBytes } from '../server/engine/attention/rewrite.ts';
import { makeMask } from '../server/engine/diffusion/mask.ts';
import { readLatentSizeRule } from '../server/engine/sd/latent-size.ts';
import { SdPipeline } from '../server/engine/sd/pipeline.ts';
import { float16ToFloat32, float32ToFloat16, ort } from '../server/engine/runtime/runtime.ts';
import { GraphBuilder, WeightRandom } from '../server/models/demo/onnx-builder.ts';
import { EXPORT_KINDS, unpackFusedAttention, writeKind, type ExportKind } from './support/export-kinds.ts';
import { maxAbs, maxAbsDiff, seededValues } from './support/numeric.ts';

const { onnx } = onnxProto;

const values = seededValues;

let root: string;
const dirs = new Map<string, string>();
const cpuKinds = EXPORT_KINDS.filter((k) => k.cpu);
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'dss-kinds-'));
  for (const kind of EXPORT_KINDS) dirs.set(kind.name, await writeKind(root, kind));
});
afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

const takesAnySize = (k: ExportKind) => k.options.upsample !== 'scale';

describe("latent sizes, read from each export kind's UNet graph", () => {
  it.each(EXPORT_KINDS.map((k) => [k.name, k] as const))('%s', async (_name, kind) => {
    const dir = dirs.get(kind.name)!;
    const rule = await readLatentSizeRule(
      path.join(dir, 'unet/model.onnx'),
      { name: 'sample', type: 'float32', shape: ['batch', 4, 'height', 'width'], rankKnown: true },
      null,
    );
    expect(rule.source).toBe('graph');
    expect(rule.safeMultiple).toBe(4); // two stride-2 levels
    for (const [w, h] of [
      [12, 8],
      [8, 12],
      [16, 4],
    ])
      expect(rule.takes(w, h), `${w}×${h}`).toBe(true);
    if (takesAnySize(kind)) {
      expect(rule.upsampling).toBe('shape-driven');
      expect(rule.describe()).toBe('any size');
      for (const [w, h] of [
        [10, 6],
        [6, 10],
        [5, 3],
        [1, 1],
        [33, 48],
      ])
        expect(rule.takes(w, h), `${w}×${h}`).toBe(true);
    } else {
      expect(rule.upsampling).toBe('constant-scale');
      expect(rule.describe(8)).toBe('sides that are multiples of 32');
      expect(rule.takes(10, 6)).toBe(false);
      expect(rule.problem(10, 6, 8)).toMatch(
        /^this UNet does not take a 80×48 image \(a 10×6 latent\): it takes image sides that are multiples of 32 \(latent sides that are multiples of 4\): it halves the latent 2 times and its up path doubles it back by a fixed ×2.*Nearest sizes it takes: 64×32, 64×64, 96×32 or 96×64$/,
      );
    }
  });

  it.each(cpuKinds.map((k) => [k.name, k] as const))(
    '%s: the pipeline runs the sizes it takes and refuses the others before any UNet call',
    async (_name, kind) => {
      const pipe = await SdPipeline.load(dirs.get(kind.name)!, { executionProvider: 'cpu' });
      try {
        const { latentChannels: C, textLength: L, textDim: D } = pipe.info;
        const sizes: [number, number][] = takesAnySize(kind)
          ? [
              [12, 8],
              [8, 12],
              [10, 6],
              [6, 10],
              [5, 3],
            ]
          : [
              [12, 8],
              [8, 12],
            ];
        for (const [w, h] of sizes) {
          const out = await pipe.unet(values(C * w * h, w), 1, h, w, 500, values(L * D, h));
          expect(out.length).toBe(C * w * h);
          expect(out.every(Number.isFinite), `${w}×${h}`).toBe(true);
        }
        if (!takesAnySize(kind)) {
          const calls = pipe.stats.unetCalls;
          await expect(pipe.unet(values(C * 60, 1), 1, 6, 10, 500, values(L * D, 2))).rejects.toThrow(/does not take a 80×48 image.*Nearest sizes it takes/);
          expect(pipe.stats.unetCalls).toBe(calls);
        }
      } finally {
        await pipe.release();
      }
    },
  );
});

/** Runs a UNet file (or bytes) with the feeds its graph has. */
async function run(model: string | Uint8Array, feeds: Record<string, ort.Tensor>): Promise<Float32Array> {
  const session = await (typeof model === 'string' ? ort.InferenceSession.create(model) : ort.InferenceSession.create(model));
  try {
    const given = Object.fromEntries(Object.entries(feeds).filter(([k]) => session.inputNames.includes(k)));
    const out = (await session.run(given))[session.outputNames[0]!]!;
    return out.type === 'float16' ? float16ToFloat32(out.data as Uint16Array) : (out.data as Float32Array);
  } finally {
    await session.release();
  }
}

describe('attention merge on each export kind, at non-square sizes with odd level grids', () => {
  const L = 77;
  const D = 32;
  /** Feeds in the kind's dtypes: batch 2, timestep 500. */
  function feeds(kind: ExportKind, w: number, h: number) {
    const half = kind.options.dtype === 'float16';
    const float = (data: Float32Array, dims: number[]) =>
      half ? new ort.Tensor('float16', float32ToFloat16(data), dims) : new ort.Tensor('float32', data, dims);
    const t = kind.options.timestep ?? 'float32';
    const timestep =
      t === 'int64'
        ? new ort.Tensor('int64', new BigInt64Array([500n, 500n]), [2])
        : t === 'float16'
          ? new ort.Tensor('float16', float32ToFloat16(new Float32Array([500, 500])), [2])
          : new ort.Tensor('float32', new Float32Array([500, 500]), [2]);
    const mask = (m: Float32Array) => ({ [MASK_INPUT]: new ort.Tensor('float32', m, [1, 1, h, w]) });
    return {
      c1: { sample: float(values(2 * 4 * h * w, 7), [2, 4, h, w]), timestep, encoder_hidden_states: float(values(2 * L * D, 8), [2, L, D]) },
      c2: float(values(2 * L * D, 9), [2, L, D]),
      ones: mask(new Float32Array(w * h).fill(1)),
      zeros: mask(new Float32Array(w * h)),
      ramp: mask(makeMask({ shape: 'logistic', direction: 'left-right', sharpness: 20 }).weights(w, h)[0]!),
    };
  }

  /** Stock with c1 and c2, and the rewritten UNet under the three masks; `prepare` makes a graph runnable on CPU. */
  async function merge(kind: ExportKind, w: number, h: number, prepare: (b: Uint8Array) => Uint8Array = (b) => b) {
    const dir = dirs.get(kind.name)!;
    const source = await readFile(path.join(dir, 'unet/model.onnx'));
    const rewrite = rewriteOnnxBytes(source);
    // Weights stay in weights.pb beside the graph: run the graphs from that folder.
    const write = async (name: string, bytes: Uint8Array) => {
      const file = path.join(dir, 'unet', name);
      await writeFile(file, prepare(bytes));
      return file;
    };
    const [stock, dual] = [await write('stock.test.onnx', source), await write('dual.test.onnx', rewrite.bytes)];
    const f = feeds(kind, w, h);
    return {
      rewrite,
      stock1: await run(stock, f.c1),
      stock2: await run(stock, { ...f.c1, encoder_hidden_states: f.c2 }),
      ones: await run(dual, { ...f.c1, [EHS2_INPUT]: f.c2, ...f.ones }),
      zeros: await run(dual, { ...f.c1, [EHS2_INPUT]: f.c2, ...f.zeros }),
      ramp: await run(dual, { ...f.c1, [EHS2_INPUT]: f.c2, ...f.ramp }),
    };
  }

  const sizeOf = (k: ExportKind): [number, number] => (takesAnySize(k) ? [10, 6] : [12, 8]);

  /** merge() of each kind at its size, computed once (the packed test compares with the classic export). */
  const merged = new Map<string, ReturnType<typeof merge>>();
  const mergedAtSize = (kind: ExportKind) => {
    if (!merged.has(kind.name)) merged.set(kind.name, merge(kind, ...sizeOf(kind)));
    return merged.get(kind.name)!;
  };

  it.each(cpuKinds.map((k) => [k.name, k] as const))('%s: ones = stock with c1, zeros = stock with c2, a ramp differs from both', async (_name, kind) => {
    const r = await mergedAtSize(kind);
    expect(r.rewrite.layers).toHaveLength(5);
    // The blend itself is exact (1·A1 + 0·A2); onnxruntime may order the rest of the rewritten graph's
    // arithmetic differently: fp32 agrees to rounding, fp16 to a couple of half-precision ulps.
    const tol = (kind.options.dtype === 'float16' ? 4e-3 : 1e-5) * Math.max(1, maxAbs(r.stock1));
    expect(maxAbsDiff(r.ones, r.stock1)).toBeLessThanOrEqual(tol);
    expect(maxAbsDiff(r.zeros, r.stock2)).toBeLessThanOrEqual(tol);
    expect(maxAbsDiff(r.stock1, r.stock2)).toBeGreaterThan(1e-3);
    expect(maxAbsDiff(r.ramp, r.stock1)).toBeGreaterThan(1e-4);
    expect(maxAbsDiff(r.ramp, r.stock2)).toBeGreaterThan(1e-4);
  });

  it.each(cpuKinds.map((k) => [k.name, k] as const))('%s: three styles, all weight on style k is the stock UNet with c_k, for each k', async (_name, kind) => {
    const dir = dirs.get(kind.name)!;
    const [w, h] = sizeOf(kind);
    const rewrite = rewriteOnnxBytes(await readFile(path.join(dir, 'unet/model.onnx')), '', 3);
    expect([rewrite.layers.length, rewrite.styles]).toEqual([5, 3]);
    const file = path.join(dir, 'unet', 'three.test.onnx');
    await writeFile(file, rewrite.bytes);
    const f = feeds(kind, w, h);
    const c3 =
      f.c1.encoder_hidden_states.type === 'float16'
        ? new ort.Tensor('float16', float32ToFloat16(values(2 * L * D, 10)), [2, L, D])
        : new ort.Tensor('float32', values(2 * L * D, 10), [2, L, D]);
    const conditionings = [f.c1.encoder_hidden_states, f.c2, c3];
    const stock = (await mergedAtSize(kind)).stock1;
    const stocks = [stock, (await mergedAtSize(kind)).stock2, await run(path.join(dir, 'unet', 'stock.test.onnx'), { ...f.c1, encoder_hidden_states: c3 })];
    expect(maxAbsDiff(stocks[2]!, stocks[0]!)).toBeGreaterThan(1e-3);
    const tol = (kind.options.dtype === 'float16' ? 4e-3 : 1e-5) * Math.max(1, maxAbs(stock));
    for (let k = 0; k < 3; k++) {
      const weights = new Float32Array(2 * w * h);
      if (k < 2) weights.fill(1, k * w * h, (k + 1) * w * h);
      const out = await run(file, {
        ...f.c1,
        [EHS2_INPUT]: conditionings[1]!,
        [conditioningInput(3)]: conditionings[2]!,
        [MASK_INPUT]: new ort.Tensor('float32', weights, [1, 2, h, w]),
      });
      expect(maxAbsDiff(out, stocks[k]!), `style ${k + 1}`).toBeLessThanOrEqual(tol);
    }
  });

  it("fp16: the blend is computed in fp16 (the mask is cast to the projection weights' type, every layer)", async () => {
    const kind = EXPORT_KINDS.find((k) => k.name === 'fused-fp16')!;
    const { model, layers } = rewriteOnnxBytes(await readFile(path.join(dirs.get(kind.name)!, 'unet/model.onnx')));
    const nodes = model.graph!.node!;
    const producer = new Map(nodes.flatMap((n) => (n.output ?? []).map((o) => [o, n] as const)));
    for (const layer of layers) {
      const projection = nodes.find((n) => n.name === layer.projection)!;
      const blend = producer.get(projection.input![0]!)!;
      expect(blend.opType).toBe('Add');
      const weighted = blend.input!.map((x) => producer.get(x)!);
      expect(weighted.map((n) => n.opType)).toEqual(['Mul', 'Mul']);
      // M·A1: M comes out of a Cast to FLOAT16 (10) of the per-token mask.
      const m = producer.get(weighted[0]!.input![0]!)!;
      expect(m.opType).toBe('Cast');
      expect(Number(m.attribute!.find((a) => a.name === 'to')!.i)).toBe(onnx.TensorProto.DataType.FLOAT16);
    }
  });

  it('fused with packed K/V (CUDA kernels only): rewritten by structure, and exact once unpacked for the CPU', async () => {
    const kind = EXPORT_KINDS.find((k) => k.name === 'fused-packed')!;
    const [w, h] = [10, 6];
    const r = await merge(kind, w, h, unpackFusedAttention);
    // The packed K/V MatMul, its Reshape and the MultiHeadAttention are duplicated for c2, nothing else.
    const ops = (n: onnxProto.onnx.INodeProto[]) => n.filter((x) => (x.name ?? '').endsWith('__c2')).map((x) => x.opType);
    const twins = ops(r.rewrite.model.graph!.node!);
    expect(twins.filter((o) => o === 'MultiHeadAttention')).toHaveLength(5);
    expect(twins.sort()).toEqual([...Array(5).fill('MatMul'), ...Array(5).fill('MultiHeadAttention'), ...Array(5).fill('Reshape')].sort());
    const tol = 1e-5 * Math.max(1, maxAbs(r.stock1));
    expect(maxAbsDiff(r.ones, r.stock1)).toBeLessThanOrEqual(tol);
    expect(maxAbsDiff(r.zeros, r.stock2)).toBeLessThanOrEqual(tol);
    expect(maxAbsDiff(r.ramp, r.stock1)).toBeGreaterThan(1e-4);
    // Same weights, same function as the classic export.
    const classic = await mergedAtSize(EXPORT_KINDS.find((k) => k.name === 'matmul')!); // also 10×6
    expect(maxAbsDiff(r.stock1, classic.stock1)).toBeLessThanOrEqual(1e-4 * Math.max(1, maxAbs(classic.stock1)));
    expect(maxAbsDiff(r.ramp, classic.ramp)).toBeLessThanOrEqual(1e-4 * Math.max(1, maxAbs(classic.ramp)));
  });
});

/** ONNX Resize linear, half_pixel, no antialias: written out here, independently of onnxruntime. */
function bilinear(src: Float32Array, sw: number, sh: number, w: number, h: number): Float32Array {
  const out = new Float32Array(w * h);
  const coord = (i: number, n: number, size: number) => {
    const x = Math.min(Math.max((i + 0.5) * (size / n) - 0.5, 0), size - 1);
    const x0 = Math.floor(x);
    return [x0, Math.min(x0 + 1, size - 1), x - x0] as const;
  };
  for (let y = 0; y < h; y++) {
    const [y0, y1, ty] = coord(y, h, sh);
    for (let x = 0; x < w; x++) {
      const [x0, x1, tx] = coord(x, w, sw);
      const top = src[y0 * sw + x0]! * (1 - tx) + src[y0 * sw + x1]! * tx;
      const bottom = src[y1 * sw + x0]! * (1 - tx) + src[y1 * sw + x1]! * tx;
      out[y * w + x] = top * (1 - ty) + bottom * ty;
    }
  }
  return out;
}

describe("attention merge: the mask on each layer's own token grid", () => {
  /**
   * A UNet skeleton: k = 0..3 stride-2 convolutions (3×3, padding 1: odd sides round up), one
   * cross-attention per level with identity K, V and output projections. With c1 = ones the values are
   * all 1, with c2 = zeros all 0, so the merged output of a layer is its per-token mask itself.
   */
  function skeleton(): Uint8Array {
    const C = 4;
    const b = new GraphBuilder('grid_skeleton', new WeightRandom(3));
    const sample = b.input('sample', 'float32', ['batch', C, 'height', 'width']);
    b.input('timestep', 'float32', ['batch']);
    const ehs = b.input('encoder_hidden_states', 'float32', ['batch', 77, C]);
    const eye = (name: string) =>
      b.initializer(
        name,
        [C, C],
        new Float32Array(C * C).map((_, i) => (i % (C + 1) === 0 ? 1 : 0)),
      );
    let x = sample;
    for (let k = 0; k <= 3; k++) {
      if (k > 0)
        x = b.op('Conv', [x, b.weight(`conv${k}.weight`, [C, C, 3, 3], 0.3)], `/down${k}`, { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [2, 2] });
      const scope = `/level${k}/attn2`;
      const tokens = b.op('Reshape', [b.op('Transpose', [x], scope, { perm: [0, 2, 3, 1] }), b.constant(scope, 'int64', [3], [0, -1, C])], scope);
      const q = b.op('MatMul', [tokens, b.weight(`q${k}`, [C, C], 0.5)], scope);
      const kT = b.op('Transpose', [b.op('MatMul', [ehs, eye(`k${k}`)], scope)], scope, { perm: [0, 2, 1] });
      const probs = b.op('Softmax', [b.op('MatMul', [q, kT], scope)], scope, { axis: -1 });
      const a = b.op('MatMul', [probs, b.op('MatMul', [ehs, eye(`v${k}`)], scope)], scope);
      b.node('MatMul', [a, eye(`out${k}`)], `${scope}/to_out.0`, {}, { outputs: [`out_${k}`] });
      b.output(`out_${k}`, 'float32', ['batch', 'tokens', C]);
    }
    return b.model('attention-merge grid test').model;
  }

  const halve = (s: number, k: number): number => (k === 0 ? s : halve(Math.ceil(s / 2), k - 1));

  it.each([
    [8, 8], // the fixture's square case: every grid exact
    [12, 8], // README: 12 → 6 → 3 → 2 wide, 8 → 4 → 2 → 1 high
    [10, 6],
    [8, 5], // 5×8 after two halvings is 2×2, where round(h/f) × round(w/f) gives 2×3
    [7, 13],
  ])('%i×%i latent', async (w, h) => {
    const { bytes, layers } = rewriteOnnxBytes(skeleton());
    expect(layers).toHaveLength(4);
    const mask = new Float32Array(w * h).map((_, i) => 0.5 + 0.5 * Math.sin(1.3 * (i % w) + 0.7 * Math.floor(i / w)));
    const session = await ort.InferenceSession.create(bytes);
    try {
      const out = await session.run({
        sample: new ort.Tensor('float32', values(4 * w * h, 1), [1, 4, h, w]),
        timestep: new ort.Tensor('float32', new Float32Array([1]), [1]),
        encoder_hidden_states: new ort.Tensor('float32', new Float32Array(77 * 4).fill(1), [1, 77, 4]),
        [EHS2_INPUT]: new ort.Tensor('float32', new Float32Array(77 * 4), [1, 77, 4]),
        [MASK_INPUT]: new ort.Tensor('float32', mask, [1, 1, h, w]),
      });
      for (let k = 0; k <= 3; k++) {
        const [gw, gh] = [halve(w, k), halve(h, k)];
        const got = out[`out_${k}`]!;
        expect(got.dims, `level ${k}`).toEqual([1, gw * gh, 4]);
        const perToken = (got.data as Float32Array).filter((_, i) => i % 4 === 0);
        expect(maxAbsDiff(perToken, bilinear(mask, w, h, gw, gh)), `level ${k}: ${gw}×${gh}`).toBeLessThan(1e-6);
      }
    } finally {
      await session.release();
    }
  });
});

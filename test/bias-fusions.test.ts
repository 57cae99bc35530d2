/**
 * The CUDA feed-forward fusions (engine/optimizer/bias-fusions.ts): the matcher finds every GEGLU and
 * feed-forward residual of the reference tiny-sd export (Slice halves) and of SD 1.5's graph (the sd15
 * preset built without weights), fuses only at the widths onnxruntime's CUDA kernels take, and each fused
 * node computes what the exported nodes it replaces compute: the exported subgraph is run on onnxruntime's
 * CPU provider and compared with a TypeScript reference of the contrib op's math (the op itself has no CPU
 * kernel; scripts/gpu-check.sh runs it on CUDA).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { describe, expect, it } from 'vitest';
import { fuseBiasAdd, fuseBiasSplitGelu, type FusedPattern } from '../server/engine/optimizer/bias-fusions.ts';
import { GraphIndex, tensorValues, type IModelProto } from '../server/engine/optimizer/graph.ts';
import { optimizeModel } from '../server/engine/optimizer/optimize.ts';
import { ort } from '../server/engine/runtime/runtime.ts';
import { WeightRandom } from '../server/models/demo/onnx-builder.ts';
import { SD15_PRESET } from '../server/models/demo/presets.ts';
import { buildUnet } from '../server/models/demo/unet.ts';
import { tinySd } from './support/pipeline-harness.ts';
import { maxAbs, maxAbsDiff, seededValues } from './support/numeric.ts';

const { onnx } = onnxProto;
const FLOAT = onnx.TensorProto.DataType.FLOAT as number;
const hasFixture = existsSync(path.join(tinySd, 'unet/model.onnx'));
if (!hasFixture) console.warn(`bias fusions: fixture ${tinySd} not found; the tiny-sd tests are skipped`);

const count = (model: IModelProto, op: string) => model.graph!.node!.filter((n) => n.opType === op).length;
const tinyUnet = async () => onnx.ModelProto.decode(await readFile(path.join(tinySd, 'unet/model.onnx')));

/** erf, Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7). */
function erf(x: number): number {
  const t = 1 / (1 + 0.3275911 * Math.abs(x));
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return Math.sign(x) * y;
}

/** com.microsoft BiasSplitGelu: rows of 2D; (x + b)[:D] · GELU((x + b)[D:]) with GELU(v) = v·½·(1 + erf(v/√2)). */
function biasSplitGelu(x: Float32Array, bias: number[]): Float32Array {
  const width = bias.length;
  const half = width / 2;
  const out = new Float32Array((x.length / width) * half);
  for (let r = 0; r < x.length / width; r++) {
    for (let j = 0; j < half; j++) {
      const value = x[r * width + j]! + bias[j]!;
      const gate = x[r * width + half + j]! + bias[half + j]!;
      out[r * half + j] = value * gate * 0.5 * (1 + erf(gate / Math.SQRT2));
    }
  }
  return out;
}

/** com.microsoft BiasAdd: x + bias (per channel, the last axis) + skip. */
function biasAdd(x: Float32Array, bias: number[], skip: Float32Array): Float32Array {
  return x.map((v, i) => v + bias[i % bias.length]! + skip[i]!);
}

/** The exported nodes that compute `output` from `inputs` (and constants), as a model of their own. */
function subgraph(model: IModelProto, inputs: string[], output: string): Uint8Array {
  const g = new GraphIndex(model);
  const nodes = new Set<onnxProto.onnx.INodeProto>();
  const used = new Set<string>();
  const visit = (t: string): void => {
    used.add(t);
    const p = g.producer.get(t);
    if (inputs.includes(t) || !p || nodes.has(p)) return;
    nodes.add(p);
    for (const x of p.input ?? []) if (x) visit(x);
  };
  visit(output);
  const order = model.graph!.node!.filter((n) => nodes.has(n));
  return onnx.ModelProto.encode({
    irVersion: model.irVersion,
    opsetImport: model.opsetImport,
    graph: {
      name: 'pattern',
      node: order,
      input: inputs.map((name) => ({ name, type: { tensorType: { elemType: FLOAT } } })),
      output: [{ name: output, type: { tensorType: { elemType: FLOAT } } }],
      initializer: model.graph!.initializer!.filter((t) => used.has(t.name ?? '')),
    },
  }).finish();
}

async function runExported(bytes: Uint8Array, feeds: Record<string, Float32Array>, dims: number[]): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    const tensors = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new ort.Tensor('float32', v, dims)]));
    const out = await session.run(tensors);
    return out[session.outputNames[0]!]!.data as Float32Array;
  } finally {
    await session.release();
  }
}

describe('feed-forward fusions (CUDA): the matcher', () => {
  it.skipIf(!hasFixture)('tiny-sd: every GEGLU and residual matched, none fused at its widths (the CUDA kernels take SD’s only)', async () => {
    const model = await tinyUnet();
    const erfs = count(model, 'Erf');
    const nodes = model.graph!.node!.length;
    expect(fuseBiasSplitGelu(model).fused).toEqual([]);
    expect(fuseBiasAdd(model).fused).toEqual([]);
    expect(model.graph!.node!.length).toBe(nodes);
    expect(fuseBiasSplitGelu(model, { widths: 'any' }).fused.length).toBe(erfs);
    expect(fuseBiasAdd(model, { widths: 'any' }).fused.length).toBe(erfs);
    expect(count(model, 'Erf')).toBe(0);
    expect(count(model, 'BiasSplitGelu')).toBe(erfs);
  });

  it('SD 1.5 (the sd15 preset, built without weights): 16 BiasSplitGelu and 16 BiasAdd with the rest of the CUDA optimizer', () => {
    const built = buildUnet(new WeightRandom(1), SD15_PRESET.text.width, { arch: SD15_PRESET.unet, shapesOnly: true });
    const model = onnx.ModelProto.decode(built.model);
    expect(count(model, 'Erf')).toBe(16);
    const counts = optimizeModel(model, ['attention', 'group-norm', 'bias-split-gelu', 'bias-add']);
    expect(counts).toMatchObject({ 'bias-split-gelu': 16, 'bias-add': 16, attention: 32 });
    expect(count(model, 'Erf')).toBe(0);
    expect(model.graph!.node!.filter((n) => n.opType === 'BiasAdd').every((n) => n.domain === 'com.microsoft')).toBe(true);
  });
});

describe.skipIf(!hasFixture)('feed-forward fusions: each fused node computes what it replaces (exported subgraph on CPU vs a TS reference of the op)', () => {
  const S = 6; // tokens
  const checkAll = async (fused: FusedPattern[], original: IModelProto, reference: (p: FusedPattern, feeds: Record<string, Float32Array>) => Float32Array) => {
    const g = new GraphIndex(original);
    for (const [k, p] of fused.entries()) {
      const inputs = p.node.input!.filter((x) => !g.initializers.has(x));
      const width = Number(g.initializers.get(p.node.input![1]!)!.dims![0]);
      const feeds = Object.fromEntries(inputs.map((x, i) => [x, seededValues(S * width, 10 * k + i)]));
      const ours = reference(p, feeds);
      const exported = await runExported(subgraph(original, inputs, p.node.output![0]!), feeds, [1, S, width]);
      expect(maxAbsDiff(ours, exported), p.node.name!).toBeLessThanOrEqual(1e-5 * Math.max(1, maxAbs(exported)));
    }
  };
  const bias = (model: IModelProto, name: string) => tensorValues(new GraphIndex(model).initializers.get(name)!)!;

  it('BiasSplitGelu', async () => {
    const [original, model] = [await tinyUnet(), await tinyUnet()];
    const { fused } = fuseBiasSplitGelu(model, { widths: 'any' });
    expect(fused.length).toBeGreaterThan(0);
    await checkAll(fused, original, (p, feeds) => biasSplitGelu(feeds[p.node.input![0]!]!, bias(original, p.node.input![1]!)));
  });

  it('BiasAdd', async () => {
    const [original, model] = [await tinyUnet(), await tinyUnet()];
    fuseBiasSplitGelu(model, { widths: 'any' });
    const { fused } = fuseBiasAdd(model, { widths: 'any' });
    expect(fused.length).toBeGreaterThan(0);
    await checkAll(fused, original, (p, feeds) => biasAdd(feeds[p.node.input![0]!]!, bias(original, p.node.input![1]!), feeds[p.node.input![2]!]!));
  });
});

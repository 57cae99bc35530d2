/**
 * Attention maps (engine/attention/attention-maps.ts) and the words mask built on them
 * (engine/diffusion/words-mask.ts): the derived graph keeps the UNet's noise output and adds the
 * probabilities of each cross-attention layer, the same for every export style; the maps recorded
 * during an inversion sum to 1 over the text tokens; and a word's region lies where its token is attended.
 */
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attentionMapsOnnxBytes, AttentionMapsError, AttentionMapAverage, tokenGrid } from '../server/engine/attention/attention-maps.ts';
import { makeMask } from '../server/engine/diffusion/mask.ts';
import { parseWordGroups, wordPositions, wordWeights } from '../server/engine/diffusion/words-mask.ts';
import { invert } from '../server/engine/diffusion/cycle.ts';
import { seededNoise } from '../server/engine/diffusion/noise.ts';
import { ort } from '../server/engine/runtime/runtime.ts';
import { recordAttentionMaps } from '../server/engine/sd/attention-maps-recorder.ts';
import { SdPipeline } from '../server/engine/sd/pipeline.ts';
import type { AttentionMapsValue } from '../server/engine/values.ts';
import { encodePoints } from '../server/protocol/painting.ts';
import { DEMO_MODEL_SEED, ensureDemoModel } from '../server/models/demo/index.ts';
import { WeightRandom } from '../server/models/demo/onnx-builder.ts';
import { buildUnet } from '../server/models/demo/unet.ts';
import type { AttentionStyle } from '../server/models/demo/layers.ts';
import { TEXT_HIDDEN } from '../server/models/demo/text-encoder.ts';
import { attentionBlockGraph } from './support/attention-block.ts';
import { loadTemplate, Runner, shrink, tinySd, withParams } from './support/pipeline-harness.ts';
import { existsSync } from 'node:fs';
import { maxAbs, maxAbsDiff, seededValues } from './support/numeric.ts';

const { onnx } = onnxProto;
let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'attention-maps-'));
});
afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

async function run(file: string, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(file);
  try {
    return await session.run(Object.fromEntries(Object.entries(feeds).filter(([k]) => session.inputNames.includes(k))));
  } finally {
    await session.release();
  }
}

/** Each [S] row of a [B, S, L] map sums to 1 over L (a mean of softmaxes). */
function rowSumsError(t: ort.Tensor): number {
  const [B, S, L] = t.dims as [number, number, number];
  const d = t.data as Float32Array;
  let worst = 0;
  for (let r = 0; r < B * S; r++) {
    let sum = 0;
    for (let l = 0; l < L; l++) sum += d[r * L + l]!;
    worst = Math.max(worst, Math.abs(sum - 1));
  }
  return worst;
}

describe('attention-maps graph', () => {
  it('one cross-attention block: the map is softmax(q·kᵀ) of each image token, computed by hand', async () => {
    const file = path.join(tmp, 'block.onnx');
    const { bytes, outputs } = attentionMapsOnnxBytes(attentionBlockGraph('float32'));
    expect(outputs).toEqual(['attention_map_0']);
    await writeFile(file, bytes);
    const [w, h, L, D] = [3, 2, 77, 8];
    const sample = seededValues(2 * 4 * h * w, 3);
    const ehs = seededValues(2 * L * D, 4);
    const res = await run(file, {
      sample: new ort.Tensor('float32', sample, [2, 4, h, w]),
      timestep: new ort.Tensor('float32', new Float32Array([1, 1]), [2]),
      encoder_hidden_states: new ort.Tensor('float32', ehs, [2, L, D]),
    });
    const map = res.attention_map_0!;
    expect(map.dims).toEqual([2, h * w, L]);
    // The block's weights (test/support/attention-block.ts): to_q [4, 8] seed 1, to_k [8, 8] seed 2, × 0.25, no scale.
    const Wq = seededValues(32, 1).map((v) => v * 0.25);
    const Wk = seededValues(64, 2).map((v) => v * 0.25);
    const expected = new Float32Array(2 * h * w * L);
    for (let b = 0; b < 2; b++) {
      const k = Array.from({ length: L }, (_, j) =>
        Array.from({ length: 8 }, (_, o) => Array.from({ length: D }, (_, i) => ehs[(b * L + j) * D + i]! * Wk[i * 8 + o]!).reduce((x, y) => x + y)),
      );
      for (let s = 0; s < h * w; s++) {
        const x = Array.from({ length: 4 }, (_, c) => sample[(b * 4 + c) * h * w + s]!);
        const q = Array.from({ length: 8 }, (_, o) => x.reduce((acc, v, c) => acc + v * Wq[c * 8 + o]!, 0));
        const scores = k.map((kj) => kj.reduce((acc, v, o) => acc + v * q[o]!, 0));
        const top = Math.max(...scores);
        const e = scores.map((v) => Math.exp(v - top));
        const sum = e.reduce((x, y) => x + y);
        e.forEach((v, j) => (expected[(b * h * w + s) * L + j] = v / sum));
      }
    }
    expect(maxAbsDiff(map.data as Float32Array, expected)).toBeLessThan(1e-5);
    expect(rowSumsError(map)).toBeLessThan(1e-5);
  });

  it('through the real graph: a token the left half attends to gets the left half in the words mask', async () => {
    const file = path.join(tmp, 'block-left.onnx');
    await writeFile(file, attentionMapsOnnxBytes(attentionBlockGraph('float32')).bytes);
    const [w, h, L, D] = [4, 2, 77, 8];
    // Token 3 alone has a key (every other text row is 0, so its score is 0): the score of token 3 is
    // q·k3 on the left half (sample x) and −q·k3 on the right (sample −x), q linear in x.
    const u = Float32Array.from({ length: D }, (_, i) => (i % 3) - 1);
    const ehs = new Float32Array(L * D);
    ehs.set(u, 3 * D);
    const x = [1.5, -2, 0.5, 1];
    const sample = new Float32Array(4 * h * w);
    for (let c = 0; c < 4; c++) for (let y = 0; y < h; y++) for (let px = 0; px < w; px++) sample[c * h * w + y * w + px] = px < w / 2 ? x[c]! : -x[c]!;
    const Wq = seededValues(32, 1).map((v) => v * 0.25);
    const Wk = seededValues(64, 2).map((v) => v * 0.25);
    const q = Array.from({ length: 8 }, (_, o) => x.reduce((acc, v, c) => acc + v * Wq[c * 8 + o]!, 0));
    const k3 = Array.from({ length: 8 }, (_, o) => u.reduce((acc, v, i) => acc + v * Wk[i * 8 + o]!, 0));
    const leftScore = q.reduce((acc, v, o) => acc + v * k3[o]!, 0);
    expect(Math.abs(leftScore)).toBeGreaterThan(0.05);
    const res = await run(file, {
      sample: new ort.Tensor('float32', sample, [1, 4, h, w]),
      timestep: new ort.Tensor('float32', new Float32Array([1]), [1]),
      encoder_hidden_states: new ort.Tensor('float32', ehs, [1, L, D]),
    });
    const average = new AttentionMapAverage(w, h);
    average.add(res.attention_map_0!.data as Float32Array, res.attention_map_0!.dims, 0);
    const attention = { width: w, height: h, ...average.result(), words: [{ word: 'cat', positions: [3] }] };
    const cat = wordWeights(attention, [[3]], 2, 20)[0]!;
    const [leftWeight, rightWeight] = [cat[0]!, cat[w - 1]!];
    // The side whose queries align with token 3's key is the cat's.
    if (leftScore > 0) expect(leftWeight - rightWeight).toBeGreaterThan(0.9);
    else expect(rightWeight - leftWeight).toBeGreaterThan(0.9);
  });

  it('every export style keeps the noise output, and gives the same maps (fused attention: from Q and K)', async () => {
    const [w, h, L] = [8, 16, 77];
    const sample = new ort.Tensor('float32', seededValues(2 * 4 * h * w, 7), [2, 4, h, w]);
    const timestep = new ort.Tensor('float32', new Float32Array([500, 500]), [2]);
    const ehs = new ort.Tensor('float32', seededValues(2 * L * TEXT_HIDDEN, 8), [2, L, TEXT_HIDDEN]);
    // Packed K/V (fused-packed) rewrites too (below), but onnxruntime's CPU kernel refuses its packed self-attention.
    const styles: AttentionStyle[] = ['bmm', 'einsum', 'sdpa', 'fused'];
    const packed = attentionMapsOnnxBytes(buildUnet(new WeightRandom(DEMO_MODEL_SEED), TEXT_HIDDEN, { attention: 'fused-packed' }).model);
    expect(packed.fused).toBe(packed.outputs.length);
    const maps: Record<string, ort.Tensor[]> = {};
    for (const style of styles) {
      const dir = path.join(tmp, `style-${style}`);
      const { model, weights } = buildUnet(new WeightRandom(DEMO_MODEL_SEED), TEXT_HIDDEN, { attention: style });
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true });
      await writeFile(path.join(dir, 'weights.pb'), weights);
      await writeFile(path.join(dir, 'model.onnx'), model);
      const derived = attentionMapsOnnxBytes(model);
      expect(derived.fused, style).toBe(style.startsWith('fused') ? derived.outputs.length : 0);
      await writeFile(path.join(dir, 'maps.onnx'), derived.bytes);
      const feeds = { sample, timestep, encoder_hidden_states: ehs };
      const stock = await run(path.join(dir, 'model.onnx'), feeds);
      const out = await run(path.join(dir, 'maps.onnx'), feeds);
      const name = onnx.ModelProto.decode(model).graph!.output![0]!.name!;
      const eps = stock[name]!.data as Float32Array;
      expect(maxAbsDiff(out[name]!.data as Float32Array, eps), `${style}: same noise`).toBeLessThanOrEqual(1e-5 * Math.max(1, maxAbs(eps)));
      maps[style] = derived.outputs.map((o) => out[o]!);
      for (const m of maps[style]) {
        expect(m.dims[0]).toBe(2);
        expect(m.dims[2]).toBe(L);
        expect(rowSumsError(m), style).toBeLessThan(1e-4);
      }
    }
    for (const style of styles) {
      expect(maps[style]!.length).toBe(maps.bmm!.length);
      maps[style]!.forEach((m, i) => expect(maxAbsDiff(m.data as Float32Array, maps.bmm![i]!.data as Float32Array), `${style} layer ${i}`).toBeLessThan(1e-4));
    }
  });

  it('fused cross-attention: K/V packed as [B, L, heads, 2, d] gives the same maps as K and V apart, the packed bias is added, by hand', async () => {
    const [S, L, D, heads, d] = [6, 77, 8, 2, 4];
    const C = heads * d;
    const FLOAT = onnx.TensorProto.DataType.FLOAT;
    const Wq = seededValues(D * C, 21).map((v) => v * 0.4);
    const Wk = seededValues(D * C, 22).map((v) => v * 0.4);
    const Wv = seededValues(D * C, 23).map((v) => v * 0.4);
    // Packed per head: [D, heads, 2, d], as onnxruntime's optimizer packs them.
    const Wkv = new Float32Array(D * heads * 2 * d);
    for (let i = 0; i < D; i++)
      for (let h = 0; h < heads; h++)
        for (let p = 0; p < 2; p++)
          for (let j = 0; j < d; j++) {
            Wkv[((i * heads + h) * 2 + p) * d + j] = (p === 0 ? Wk : Wv)[i * C + h * d + j]!;
          }
    // The packed Q/K/V bias of the unpacked variant with a bias: added to Q and K (and V) before the attention.
    const bias = seededValues(3 * C, 27);
    const graph = (packed: boolean, withBias = false) => {
      const init = (name: string, dims: number[], data: Float32Array) => ({ name, dims, dataType: FLOAT, floatData: [...data] });
      const nodes: onnxProto.onnx.INodeProto[] = [
        { opType: 'MatMul', input: ['hidden', 'Wq'], output: ['q'], name: 'to_q' },
        ...(packed
          ? [
              { opType: 'MatMul', input: ['encoder_hidden_states', 'Wkv'], output: ['kv_flat'], name: 'to_kv' },
              { opType: 'Reshape', input: ['kv_flat', 'kv_shape'], output: ['kv'], name: 'kv_reshape' },
            ]
          : [
              { opType: 'MatMul', input: ['encoder_hidden_states', 'Wk'], output: ['k'], name: 'to_k' },
              { opType: 'MatMul', input: ['encoder_hidden_states', 'Wv'], output: ['v'], name: 'to_v' },
            ]),
        {
          opType: 'MultiHeadAttention',
          domain: 'com.microsoft',
          input: packed ? ['q', 'kv'] : withBias ? ['q', 'k', 'v', 'bias'] : ['q', 'k', 'v'],
          output: ['attention'],
          name: 'mha',
          attribute: [{ name: 'num_heads', type: onnx.AttributeProto.AttributeType.INT, i: heads }],
        },
        { opType: 'MatMul', input: ['attention', 'Wo'], output: ['out'], name: 'to_out' },
      ];
      const info = (name: string, dims: (number | string)[]) => ({
        name,
        type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map((x) => (typeof x === 'number' ? { dimValue: x } : { dimParam: x })) } } },
      });
      return onnx.ModelProto.encode({
        irVersion: 8,
        opsetImport: [{ version: 17 }, { domain: 'com.microsoft', version: 1 }],
        graph: {
          name: 'fused',
          input: [info('hidden', ['b', S, D]), info('timestep', ['b']), info('encoder_hidden_states', ['b', L, D])],
          output: [info('out', ['b', S, C])],
          initializer: [
            init('Wq', [D, C], Wq),
            init('Wk', [D, C], Wk),
            init('Wv', [D, C], Wv),
            init('Wkv', [D, 2 * C], Wkv),
            init('Wo', [C, C], seededValues(C * C, 24)),
            init('bias', [3 * C], bias),
            { name: 'kv_shape', dims: [5], dataType: onnx.TensorProto.DataType.INT64, int64Data: [0, 0, heads, 2, d] },
          ],
          node: nodes,
        },
      }).finish();
    };
    const feeds = {
      hidden: new ort.Tensor('float32', seededValues(2 * S * D, 25), [2, S, D]),
      timestep: new ort.Tensor('float32', new Float32Array([1, 1]), [2]),
      encoder_hidden_states: new ort.Tensor('float32', seededValues(2 * L * D, 26), [2, L, D]),
    };
    const maps: Float32Array[] = [];
    for (const [packed, withBias] of [
      [false, false],
      [true, false],
      [false, true],
    ] as const) {
      const derived = attentionMapsOnnxBytes(graph(packed, withBias));
      expect(derived.fused).toBe(1);
      // onnxruntime's CPU kernel refuses packed K/V: the attention itself (and what follows it) is left out of
      // the graph that runs, which the map does not need (it is computed from Q and K).
      const model = onnx.ModelProto.decode(derived.bytes);
      model.graph!.node = model.graph!.node!.filter((n) => n.name !== 'mha' && n.name !== 'to_out');
      model.graph!.output = model.graph!.output!.filter((o) => o.name === 'attention_map_0');
      const file = path.join(tmp, `fused-${packed}-${withBias}.onnx`);
      await writeFile(file, onnx.ModelProto.encode(model).finish());
      const res = await run(file, feeds);
      expect(res.attention_map_0!.dims).toEqual([2, S, L]);
      expect(rowSumsError(res.attention_map_0!)).toBeLessThan(1e-5);
      maps.push(res.attention_map_0!.data as Float32Array);
    }
    expect(maxAbsDiff(maps[1]!, maps[0]!)).toBeLessThan(1e-5);
    // And each is the mean over the heads of softmax((q + b_q)·(k + b_k)ᵀ/√d), by hand, for one token of row 1.
    const [b, s] = [1, 4];
    const x = feeds.hidden.data as Float32Array;
    const e = feeds.encoder_hidden_states.data as Float32Array;
    const proj = (W: Float32Array, row: Float32Array, o: number) => row.reduce((acc, v, i) => acc + v * W[i * C + o]!, 0);
    const expectedMap = (withBias: boolean) => {
      const [bq, bk] = [(o: number) => (withBias ? bias[o]! : 0), (o: number) => (withBias ? bias[C + o]! : 0)];
      const q = Array.from({ length: C }, (_, o) => proj(Wq, x.subarray((b * S + s) * D, (b * S + s + 1) * D), o) + bq(o));
      const expected = new Float64Array(L);
      for (let h = 0; h < heads; h++) {
        const scores = Array.from({ length: L }, (_, j) => {
          const kj = e.subarray((b * L + j) * D, (b * L + j + 1) * D);
          let acc = 0;
          for (let t = 0; t < d; t++) acc += q[h * d + t]! * (proj(Wk, kj, h * d + t) + bk(h * d + t));
          return acc / Math.sqrt(d);
        });
        const top = Math.max(...scores);
        const ex = scores.map((v) => Math.exp(v - top));
        const sum = ex.reduce((p, v) => p + v);
        ex.forEach((v, j) => (expected[j]! += v / sum / heads));
      }
      return expected;
    };
    const token = (m: Float32Array) => m.subarray((b * S + s) * L, (b * S + s + 1) * L);
    expect(maxAbsDiff(token(maps[1]!), expectedMap(false))).toBeLessThan(1e-5);
    expect(maxAbsDiff(token(maps[2]!), expectedMap(true))).toBeLessThan(1e-5);
    expect(maxAbsDiff(maps[2]!, maps[0]!)).toBeGreaterThan(1e-3);
  });

  it('refuses a graph without cross-attention, and one rewritten already', () => {
    const plain = onnx.ModelProto.encode({
      irVersion: 7,
      opsetImport: [{ version: 14 }],
      graph: {
        name: 'none',
        input: ['sample', 'timestep', 'encoder_hidden_states'].map((name) => ({ name, type: { tensorType: { elemType: 1 } } })),
        output: [{ name: 'out', type: { tensorType: { elemType: 1 } } }],
        node: [{ opType: 'Identity', input: ['sample'], output: ['out'] }],
      },
    }).finish();
    expect(() => attentionMapsOnnxBytes(plain)).toThrow(AttentionMapsError);
    expect(() => attentionMapsOnnxBytes(plain)).toThrow(/no cross-attention found/);
    const once = attentionMapsOnnxBytes(attentionBlockGraph('float16')).bytes;
    expect(() => attentionMapsOnnxBytes(once)).toThrow(/rewritten already/);
  });

  it('token grids follow the attention-merge rule; the average resizes each layer to the latent and keeps sums', () => {
    expect(tokenGrid(16, 8, 128)).toEqual({ gh: 16, gw: 8 });
    expect(tokenGrid(5, 8, 4)).toEqual({ gh: 2, gw: 2 });
    expect(() => tokenGrid(16, 8, 7)).toThrow(/no grid/);
    const avg = new AttentionMapAverage(4, 2);
    const L = 3;
    // Layer 1 at the latent grid (8 tokens), layer 2 at the halved grid (2 tokens); row 1 of a batch of 2.
    const full = new Float32Array(2 * 8 * L).map((_, i) => ((i * 7) % 5) + 1);
    const half = new Float32Array(2 * 2 * L).map((_, i) => ((i * 3) % 4) + 1);
    const normalise = (a: Float32Array, S: number) => {
      for (let r = 0; r < 2 * S; r++) {
        const s = a.slice(r * L, r * L + L).reduce((x, y) => x + y);
        for (let l = 0; l < L; l++) a[r * L + l]! /= s;
      }
      return a;
    };
    avg.add(normalise(full, 8), [2, 8, L], 1);
    avg.add(normalise(half, 2), [2, 2, L], 1);
    const { tokens, maps } = avg.result();
    expect(tokens).toBe(L);
    for (let p = 0; p < 8; p++) expect(maps[p]! + maps[8 + p]! + maps[16 + p]!).toBeCloseTo(1, 5);
    // Token 0 at latent cell 0: the mean of layer 1's value and layer 2's cell 0 (the left half's only cell).
    expect(maps[0]).toBeCloseTo((full[8 * L]! + half[2 * L]!) / 2, 5);
    expect(() => avg.add(full, [2, 7, L], 0)).toThrow(/no grid/);
  });
});

/** Attention maps of a prompt "a cat on a sofa" (BOS, 5 words, EOS, padding: L = 10) on a w×h grid. */
function syntheticMaps(w: number, h: number, catRegion: (x: number, y: number) => boolean): AttentionMapsValue {
  const L = 10;
  const n = w * h;
  const maps = new Float32Array(L * n);
  for (let p = 0; p < n; p++) {
    const cat = catRegion(p % w, Math.floor(p / w)) ? 0.6 : 0.05;
    maps[0 * n + p] = 0.5; // BOS takes much everywhere, as in real CLIP attention
    maps[2 * n + p] = cat;
    maps[5 * n + p] = 0.45 - cat + 0.05;
    maps[1 * n + p] = 0.05;
  }
  const words = ['a', 'cat', 'on', 'a', 'sofa'].map((word, i) => ({ word, positions: [i + 1] }));
  return { width: w, height: h, tokens: L, maps, words };
}

describe('words mask', () => {
  const [w, h] = [16, 8];
  const left = syntheticMaps(w, h, (x) => x < w / 2);

  it('reads word groups: N − 1 or N groups, each with words, words of the prompt', () => {
    expect(parseWordGroups('Cat, kitten | sofa', 3)).toEqual([['cat', 'kitten'], ['sofa']]);
    expect(() => parseWordGroups('', 2)).toThrow(/needs words/);
    expect(() => parseWordGroups('cat | | sofa', 4)).toThrow(/style 2 has no words/);
    expect(() => parseWordGroups('a | b | c', 2)).toThrow(/3 word groups for a mask of 2 styles/);
    expect(wordPositions(left, [['a', 'sofa']])).toEqual([[1, 4, 5]]);
    expect(() => wordPositions(left, [['dog']])).toThrow(/"dog" is not a word of the source prompt \(its words: a, cat, on, sofa\)/);
  });

  it('N planes summing to 1; the word takes the region its token attends to, and changes with the word', () => {
    for (const styles of [2, 3]) {
      const groups = styles === 2 ? [['cat']] : [['cat'], ['sofa']];
      const planes = wordWeights(left, wordPositions(left, groups), styles, 20);
      expect(planes.length).toBe(styles);
      for (let p = 0; p < w * h; p++) expect(planes.reduce((s, m) => s + m[p]!, 0)).toBeCloseTo(1, 5);
    }
    const cat = wordWeights(left, [[2]], 2, 20)[0]!;
    const meanOver = (plane: Float32Array, side: (x: number) => boolean) => {
      let [sum, count] = [0, 0];
      for (let p = 0; p < plane.length; p++) if (side(p % w)) [sum, count] = [sum + plane[p]!, count + 1];
      return sum / count;
    };
    expect(meanOver(cat, (x) => x < w / 2)).toBeGreaterThan(0.95);
    expect(meanOver(cat, (x) => x >= w / 2)).toBeLessThan(0.05);
    // The same maps, the cat moved to the right: the mask follows.
    const right = syntheticMaps(w, h, (x) => x >= w / 2);
    expect(meanOver(wordWeights(right, [[2]], 2, 20)[0]!, (x) => x >= w / 2)).toBeGreaterThan(0.95);
    // Another word (sofa, attended where the cat is not) gives the other side.
    const sofa = wordWeights(left, [[5]], 2, 20)[0]!;
    expect(maxAbsDiff(sofa, cat)).toBeGreaterThan(0.5);
    expect(meanOver(sofa, (x) => x >= w / 2)).toBeGreaterThan(0.95);
  });

  it('as a Mask: any grid, feathered, and painted over like a painted mask', () => {
    const words = { attention: left, groups: [['cat']] };
    const mask = makeMask({ styles: 2, shape: 'words', direction: 'left-right', sharpness: 20, words, painting: { strokes: [], fill: 2, feather: 0.05 } });
    const big = mask.weights(64, 32);
    for (let p = 0; p < 64 * 32; p++) expect(big[0]![p]! + big[1]![p]!).toBeCloseTo(1, 5);
    expect(big[0]![16 * 64 + 4]).toBeGreaterThan(0.9);
    expect(big[0]![16 * 64 + 60]).toBeLessThan(0.1);
    expect(mask.description).toMatch(/words "cat" \| the rest/);
    // A stroke of style 1 over the right half: it becomes the cat's.
    const points = encodePoints([0.75, 0.5]);
    const painted = makeMask({
      styles: 2,
      shape: 'words',
      direction: 'left-right',
      sharpness: 20,
      words,
      painting: { strokes: [{ style: 1, radius: 0.2, points }], fill: 2, feather: 0 },
    }).weights(64, 32);
    expect(painted[0]![16 * 64 + 48]).toBeGreaterThan(0.99);
    expect(big[0]![16 * 64 + 48]).toBeLessThan(0.1);
  });
});

describe('attention maps recorded during the inversion (demo model)', () => {
  let pipe: SdPipeline;
  beforeAll(async () => {
    const dir = path.join(tmp, 'demo');
    await cp(await ensureDemoModel(), dir, { recursive: true, filter: (src) => !/attention-(merge|maps)/.test(path.basename(src)) });
    pipe = await SdPipeline.load(dir, { executionProvider: 'cpu' });
  }, 120_000);
  afterAll(async () => {
    await pipe?.release();
  });

  it('the same code as the plain inversion, maps that sum to 1 over the tokens, and the prompt words', async () => {
    const [w, h] = [8, 8];
    const x0 = seededValues(4 * w * h, 11);
    const prompt = 'a photo of a cat';
    const { embedding } = await pipe.encodeText(prompt);
    const options = { source: embedding, guidance: 3, steps: 6, skip: 2, eta: 0.1 };
    const plain = await invert(pipe, x0, w, h, { ...options, noise: seededNoise(5) });
    const recording = await recordAttentionMaps(pipe, w, h);
    const recorded = await invert(recording.denoiser, x0, w, h, { ...options, noise: seededNoise(5) });
    for (let i = 0; i < plain.z.length; i++) expect(maxAbsDiff(recorded.z[i]!, plain.z[i]!)).toBeLessThan(1e-3 * Math.max(1, maxAbs(plain.z[i]!)));
    const { tokens, maps } = recording.average.result();
    expect(tokens).toBe(pipe.info.textLength);
    expect(maps.length).toBe(tokens * w * h);
    for (let p = 0; p < w * h; p++) {
      let sum = 0;
      for (let t = 0; t < tokens; t++) sum += maps[t * w * h + p]!;
      expect(sum).toBeCloseTo(1, 4);
    }
    // 4 refinement steps, each call's prompt row, every layer.
    expect(recording.average.count % 4).toBe(0);
    // The words and where their tokens are in the encoded prompt (the demo's small vocabulary splits words).
    const words = pipe.tokenizer.words(prompt);
    expect(words.map((x) => x.word)).toEqual(['a', 'photo', 'of', 'a', 'cat']);
    const ids = pipe.tokenizer.encode(prompt).ids;
    let next = 1;
    for (const { word, positions } of words) {
      expect(positions).toEqual(Array.from({ length: positions.length }, (_, i) => next + i));
      expect(positions.map((p) => ids[p])).toEqual(pipe.tokenizer.tokenize(word));
      next += positions.length;
    }
  }, 120_000);
});

describe.skipIf(!existsSync(path.join(tinySd, 'unet/model.onnx')))('attention maps of the reference tiny-sd UNet (read-only folder)', () => {
  it('are derived into the cache and sum to 1 over the tokens', async () => {
    const cache = path.join(tmp, 'tiny-cache');
    const pipe = await SdPipeline.load(tinySd, { executionProvider: 'cpu', attentionCacheDir: cache });
    try {
      const [w, h] = [pipe.info.latentSizes.safeMultiple, pipe.info.latentSizes.safeMultiple];
      const recording = await recordAttentionMaps(pipe, w, h);
      const { embedding } = await pipe.encodeText('a photo of a cat');
      await invert(recording.denoiser, seededValues(pipe.info.latentChannels * w * h, 3), w, h, {
        source: embedding,
        guidance: 1,
        steps: 4,
        skip: 1,
        eta: 0.1,
        noise: seededNoise(1),
      });
      const { tokens, maps } = recording.average.result();
      for (let p = 0; p < w * h; p++) {
        let sum = 0;
        for (let t = 0; t < tokens; t++) sum += maps[t * w * h + p]!;
        expect(sum).toBeCloseTo(1, 4);
      }
      expect((await pipe.attentionMapsUnet()).binding.session).toBeDefined();
    } finally {
      await pipe.release();
    }
  }, 120_000);
});

describe('words mask in a graph (demo model, the words-mask template)', () => {
  it('the Invert node records the maps, the Mask node shows the word regions, a new word or a stroke changes them', async () => {
    const runner = await Runner.create();
    const template = shrink(await loadTemplate('words-mask'), 'demo', 6, 2);
    const first = await runner.run(template);
    expect(first.results['invert']?.text).toMatch(/attention maps of 5 words/);
    const preview = (s: typeof first) => s.results['mask']!.images![0]!.url;
    const word = await runner.run(withParams(template, { mask: { words: 'photo' } }));
    expect(word.computed).toContain('mask');
    expect(word.computed).not.toContain('invert');
    expect(preview(word)).not.toBe(preview(first));
    const painted = await runner.run(withParams(template, { mask: { strokes: [{ style: 1, radius: 0.3, points: encodePoints([0.5, 0.5]) }] } }));
    expect(preview(painted)).not.toBe(preview(first));
    // Without the maps the mask says what to turn on; a word the prompt lacks is named.
    await expect(runner.run(withParams(template, { invert: { attentionMaps: false } }))).rejects.toThrow(/turn on "Attention maps" on the Invert node/);
    await expect(runner.run(withParams(template, { mask: { words: 'dog' } }))).rejects.toThrow(/"dog" is not a word of the source prompt/);
  }, 300_000);
});

import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_MARKER_KEY, DEMO_MODEL_FILES, DEMO_MODEL_VERSION, defaultDemoModelDir, ensureDemoModel, writeDemoModel } from '../server/models/demo/index.ts';
import { bytesToUnicode } from '../server/models/demo/text-encoder.ts';
import { UNET_CHANNELS, UNET_LATENT_MULTIPLE } from '../server/models/demo/unet.ts';
import { SdPipeline } from '../server/engine/sd/pipeline.ts';
import { ClipTokenizer } from '../server/engine/text/tokenizer.ts';

const { onnx } = onnxProto;

interface GraphNode {
  name: string;
  opType: string;
  input: string[];
  output: string[];
  attrs: Map<string, onnxProto.onnx.IAttributeProto>;
}

/** Decoded UNet nodes with the optional protobuf fields filled in. */
function graphNodes(model: onnxProto.onnx.IModelProto): GraphNode[] {
  return (model.graph?.node ?? []).map((n) => ({
    name: n.name ?? '',
    opType: n.opType ?? '',
    input: n.input ?? [],
    output: n.output ?? [],
    attrs: new Map((n.attribute ?? []).map((a) => [a.name ?? '', a])),
  }));
}

let tmp: string;
let dir: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'demo-model-'));
  dir = path.join(tmp, 'written');
  // How long generation and a UNet call take is the timing group's (demo-model-timing.test.ts).
  await writeDemoModel(dir);
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** A reproducible N(0, 1) tensor (LCG + Box–Muller), independent of the generator's own RNG. */
function gaussian(count: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const u = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s + 1) / 4294967297;
  };
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  return out;
}

function std(values: Float32Array): number {
  let sum = 0;
  for (const v of values) sum += v;
  const mean = sum / values.length;
  let sq = 0;
  for (const v of values) sq += (v - mean) ** 2;
  return Math.sqrt(sq / values.length);
}

const allFinite = (values: Float32Array): boolean => values.every((v) => Number.isFinite(v));

async function runUnet(session: ort.InferenceSession, batch: number, h: number, w: number, t: number, ehs: Float32Array) {
  const out = await session.run({
    sample: new ort.Tensor('float32', gaussian(batch * 4 * h * w, 7 + h * w), [batch, 4, h, w]),
    timestep: new ort.Tensor('float32', new Float32Array(batch).fill(t), [batch]),
    encoder_hidden_states: new ort.Tensor('float32', ehs, [batch, 77, 32]),
  });
  return out.out_sample!;
}

describe('demo model folder', () => {
  it('has the diffusers ONNX layout, the demo marker and a note that the weights are random', async () => {
    for (const rel of DEMO_MODEL_FILES) expect((await stat(path.join(dir, rel))).isFile(), rel).toBe(true);
    const index = JSON.parse(await readFile(path.join(dir, 'model_index.json'), 'utf8'));
    expect(index._class_name).toBe('OnnxStableDiffusionPipeline');
    expect(index[DEMO_MARKER_KEY]).toBe(true);
    expect(index.unet).toEqual(['diffusers', 'OnnxRuntimeModel']);
    expect(index.tokenizer).toEqual(['transformers', 'CLIPTokenizer']);
    const readme = await readFile(path.join(dir, 'DEMO.txt'), 'utf8');
    expect(readme).toMatch(/random weights/i);
    expect(readme).toMatch(/takes any latent size \(images: any\s+multiple of 8 pixels\)/);
    const unetConfig = JSON.parse(await readFile(path.join(dir, 'unet/config.json'), 'utf8'));
    expect(unetConfig).toMatchObject({ _class_name: 'UNet2DConditionModel', in_channels: 4, cross_attention_dim: 32, block_out_channels: [...UNET_CHANNELS] });
    const scheduler = JSON.parse(await readFile(path.join(dir, 'scheduler/scheduler_config.json'), 'utf8'));
    expect(scheduler).toMatchObject({
      _class_name: 'PNDMScheduler',
      beta_start: 0.00085,
      beta_end: 0.012,
      beta_schedule: 'scaled_linear',
      num_train_timesteps: 1000,
      steps_offset: 1,
    });
  });

  it('writes a byte-level CLIP vocabulary: 512 byte symbols, then BOS 512 and EOS 513', async () => {
    const vocab = JSON.parse(await readFile(path.join(dir, 'tokenizer/vocab.json'), 'utf8')) as Record<string, number>;
    expect(Object.keys(vocab)).toHaveLength(514);
    expect(vocab['<|startoftext|>']).toBe(512);
    expect(vocab['<|endoftext|>']).toBe(513);
    const table = bytesToUnicode();
    expect(new Set(table.map(([byte]) => byte)).size).toBe(256);
    expect(vocab['!']).toBe(0); // CLIP's order starts with the printable bytes
    expect(vocab['a</w>']).toBe(256 + vocab['a']!);
    expect(vocab[String.fromCharCode(0x120)]).toBeDefined(); // the space byte's symbol "Ġ"
    expect(new Set(Object.values(vocab)).size).toBe(514);
    expect((await readFile(path.join(dir, 'tokenizer/merges.txt'), 'utf8')).startsWith('#version: 0.2')).toBe(true);
    const config = JSON.parse(await readFile(path.join(dir, 'tokenizer/tokenizer_config.json'), 'utf8'));
    expect(config).toMatchObject({ model_max_length: 77, bos_token: '<|startoftext|>', eos_token: '<|endoftext|>', pad_token: '<|endoftext|>' });
  });

  it('the project tokenizer reads it and encodes a prompt as BOS + bytes + EOS padding', async () => {
    const tokenizer = await ClipTokenizer.fromFolder(path.join(dir, 'tokenizer'));
    const vocab = JSON.parse(await readFile(path.join(dir, 'tokenizer/vocab.json'), 'utf8')) as Record<string, number>;
    const { ids, truncated } = tokenizer.encode('a photo of a cat');
    // Without merges each word is its bytes, the last byte of a word carrying </w>.
    const words = ['a', 'photo', 'of', 'a', 'cat'];
    const expected = [512, ...words.flatMap((w) => [...w].map((ch, i) => vocab[i === w.length - 1 ? `${ch}</w>` : ch]!)), 513];
    expect(Array.from(ids.slice(0, expected.length))).toEqual(expected);
    expect(Array.from(ids.slice(expected.length)).every((id) => id === 513)).toBe(true);
    expect(ids).toHaveLength(77);
    expect(truncated).toBe(false);
  });

  it('text encoder: input_ids int32 [2, 77] → last_hidden_state [2, 77, 32] and pooler_output at the EOS row', async () => {
    const session = await ort.InferenceSession.create(path.join(dir, 'text_encoder/model.onnx'));
    const idsData = new Int32Array(2 * 77).fill(513);
    idsData.set([512, 65, 66, 67], 0); // EOS first at position 4
    idsData.set([512, 100], 77); // EOS first at position 2
    const out = await session.run({ input_ids: new ort.Tensor('int32', idsData, [2, 77]) });
    const last = out.last_hidden_state!;
    const pooled = out.pooler_output!;
    expect(last.dims).toEqual([2, 77, 32]);
    expect(pooled.dims).toEqual([2, 32]);
    const lastData = last.data as Float32Array;
    expect(allFinite(lastData)).toBe(true);
    expect(std(lastData)).toBeGreaterThan(0.5);
    expect(Array.from(pooled.data as Float32Array).slice(0, 32)).toEqual(Array.from(lastData.slice(4 * 32, 5 * 32)));
    expect(Array.from(pooled.data as Float32Array).slice(32)).toEqual(Array.from(lastData.slice((77 + 2) * 32, (77 + 3) * 32)));
    // Different prompts give different states.
    expect(lastData.slice(32, 64)).not.toEqual(lastData.slice((77 + 1) * 32, (77 + 2) * 32));
  });

  it('UNet: float32 timestep, dynamic batch and size, output of unit-ish scale that depends on the text', async () => {
    const session = await ort.InferenceSession.create(path.join(dir, 'unet/model.onnx'));
    const meta = Object.fromEntries(session.inputMetadata.map((m) => [m.name, m]));
    expect(Object.keys(meta)).toEqual(['sample', 'timestep', 'encoder_hidden_states']);
    expect(meta.timestep).toMatchObject({ isTensor: true, type: 'float32', shape: ['batch'] });
    expect(meta.sample).toMatchObject({ type: 'float32', shape: ['batch', 4, 'height', 'width'] });
    expect(session.outputNames).toEqual(['out_sample']);

    const ehs3 = gaussian(3 * 77 * 32, 1);
    const out3 = await runUnet(session, 3, 8, 8, 500, ehs3);
    expect(out3.dims).toEqual([3, 4, 8, 8]);
    const data3 = out3.data as Float32Array;
    expect(allFinite(data3)).toBe(true);
    const s = std(data3);
    expect(s).toBeGreaterThan(0.1);
    expect(s).toBeLessThan(10);

    // Any non-square latent works: the up path takes its sizes from the skips (10 → 5 → 3 → 5 → 10)…
    for (const [h, w] of [
      [8, 16],
      [8, 10],
      [6, 10],
      [5, 3],
    ] as const) {
      const out1 = await runUnet(session, 1, h, w, 981, gaussian(77 * 32, 2));
      expect(out1.dims).toEqual([1, 4, h, w]);
      expect(allFinite(out1.data as Float32Array)).toBe(true);
    }
    // …where an export with constant ×2 upsampling takes only sides that survive both halvings.
    expect(UNET_LATENT_MULTIPLE).toBe(4);
    const scaleDir = path.join(tmp, 'scale-export');
    await writeDemoModel(scaleDir, { upsample: 'scale' });
    const quiet = await ort.InferenceSession.create(path.join(scaleDir, 'unet/model.onnx'), { logSeverityLevel: 4 });
    expect((await runUnet(quiet, 1, 8, 16, 981, gaussian(77 * 32, 2))).dims).toEqual([1, 4, 8, 16]);
    await expect(runUnet(quiet, 1, 8, 10, 981, gaussian(77 * 32, 2))).rejects.toThrow(/Concat/);

    // The same sample under two conditionings must give different noise predictions.
    const sample = gaussian(4 * 8 * 8, 3);
    const both = new Float32Array(2 * 4 * 64);
    both.set(sample, 0);
    both.set(sample, 4 * 64);
    const two = await session.run({
      sample: new ort.Tensor('float32', both, [2, 4, 8, 8]),
      timestep: new ort.Tensor('float32', new Float32Array([300, 300]), [2]),
      encoder_hidden_states: new ort.Tensor('float32', gaussian(2 * 77 * 32, 4), [2, 77, 32]),
    });
    const d = two.out_sample!.data as Float32Array;
    let maxDiff = 0;
    for (let i = 0; i < 4 * 64; i++) maxDiff = Math.max(maxDiff, Math.abs(d[i]! - d[i + 4 * 64]!));
    expect(maxDiff).toBeGreaterThan(1e-3); // the cross-attention reaches the output
  });

  it('UNet keeps its weights external in weights.pb, like real SD exports', async () => {
    const modelBytes = await readFile(path.join(dir, 'unet/model.onnx'));
    const weightsSize = (await stat(path.join(dir, 'unet/weights.pb'))).size;
    expect(weightsSize).toBeGreaterThan(1_000_000);
    expect(modelBytes.byteLength).toBeLessThan(weightsSize / 4);
    const model = onnx.ModelProto.decode(modelBytes);
    const external = (model.graph?.initializer ?? []).filter((t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL);
    expect(external.length).toBeGreaterThan(20);
    let covered = 0;
    for (const t of external) {
      const entry = Object.fromEntries((t.externalData ?? []).map((e) => [e.key, e.value]));
      expect(entry.location).toBe('weights.pb');
      expect(Number(entry.offset) + Number(entry.length)).toBeLessThanOrEqual(weightsSize);
      covered += Number(entry.length);
    }
    expect(covered).toBeGreaterThan(weightsSize * 0.9);
  });

  it('UNet has SD-style cross-attention: to_k and to_v of every attn2 read encoder_hidden_states', async () => {
    const model = onnx.ModelProto.decode(await readFile(path.join(dir, 'unet/model.onnx')));
    expect(model.opsetImport.map((o) => [o.domain, Number(o.version)])).toEqual([['', 14]]);
    const nodes = graphNodes(model);
    const readers = nodes.filter((n) => n.opType === 'MatMul' && n.input.includes('encoder_hidden_states'));
    const blocks = new Set(readers.map((n) => n.name.replace(/\/to_[kv]\/MatMul$/, '')));
    expect(blocks.size).toBeGreaterThanOrEqual(4);
    expect(readers).toHaveLength(2 * blocks.size);
    for (const block of blocks) {
      expect(block).toMatch(/^\/(down_blocks\.\d+|mid_block|up_blocks\.\d+)\/attentions\.0\/transformer_blocks\.0\/attn2$/);
      const inBlock = nodes.filter((n) => n.name.startsWith(`${block}/`));
      const names = inBlock.map((n) => n.name);
      expect(names).toEqual(
        expect.arrayContaining([`${block}/to_q/MatMul`, `${block}/to_k/MatMul`, `${block}/to_v/MatMul`, `${block}/to_out.0/MatMul`, `${block}/to_out.0/Add`]),
      );
      const softmax = inBlock.filter((n) => n.opType === 'Softmax');
      expect(softmax).toHaveLength(1);
      expect(Number(softmax[0]!.attrs.get('axis')?.i)).toBe(-1);
      // scores = Mul(MatMul(Q, Kᵀ), scale) feeds the Softmax
      const producer = nodes.find((n) => n.output.includes(softmax[0]!.input[0]!))!;
      expect(producer.opType).toBe('Mul');
      expect(nodes.find((n) => n.output.includes(producer.input[0]!))!.opType).toBe('MatMul');
    }
    // Self-attention blocks exist too and do not read the text.
    expect(nodes.some((n) => /attn1\/to_k\/MatMul$/.test(n.name) && !n.input.includes('encoder_hidden_states'))).toBe(true);
    // Sinusoidal time embedding in the graph, three resolutions (two stride-2 Convs, two nearest Resizes).
    for (const op of ['Sin', 'Cos', 'InstanceNormalization'])
      expect(
        nodes.some((n) => n.opType === op),
        op,
      ).toBe(true);
    expect(nodes.filter((n) => n.opType === 'Conv' && Number(n.attrs.get('strides')?.ints?.[0]) === 2)).toHaveLength(2);
    expect(nodes.filter((n) => n.opType === 'Resize')).toHaveLength(2);
  });

  it('UNet attention never runs at full latent resolution; cross-attention sits at 1/2 and 1/4 of it', async () => {
    // Expose every Softmax input (the scaled scores [B·heads, queries, keys]) as an extra output of a copy
    // of the UNet, run it once, and read the real shapes.
    const model = onnx.ModelProto.decode(await readFile(path.join(dir, 'unet/model.onnx')));
    const softmaxes = graphNodes(model).filter((n) => n.opType === 'Softmax');
    expect(softmaxes.length).toBeGreaterThanOrEqual(8);
    const scores = softmaxes.map((n) => n.input[0]!);
    for (const name of scores) model.graph!.output!.push({ name, type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT } } });
    const probeDir = path.join(tmp, 'probe');
    await mkdir(probeDir, { recursive: true });
    await copyFile(path.join(dir, 'unet/weights.pb'), path.join(probeDir, 'weights.pb'));
    await writeFile(path.join(probeDir, 'model.onnx'), onnx.ModelProto.encode(model).finish());
    const session = await ort.InferenceSession.create(path.join(probeDir, 'model.onnx'));
    const [h, w] = [16, 32];
    const out = await session.run(
      {
        sample: new ort.Tensor('float32', gaussian(4 * h * w, 9), [1, 4, h, w]),
        timestep: new ort.Tensor('float32', new Float32Array([400]), [1]),
        encoder_hidden_states: new ort.Tensor('float32', gaussian(77 * 32, 10), [1, 77, 32]),
      },
      scores,
    );
    const crossQueries = new Set<number>();
    softmaxes.forEach((node, i) => {
      const [, queries, keys] = out[scores[i]!]!.dims as number[];
      expect(queries, node.name).toBeLessThanOrEqual((h * w) / 4);
      if (node.name.includes('/attn2/')) {
        expect(keys, node.name).toBe(77);
        crossQueries.add(queries!);
      } else {
        expect(keys, node.name).toBe(queries); // self-attention
      }
    });
    expect([...crossQueries].sort((a, b) => b - a)).toEqual([(h * w) / 4, (h * w) / 16]);
  });

  it('VAE: 64×64 encodes to 4×8×8 and decodes back to 3×64×64 in [-1, 1], resembling the input', async () => {
    const encoder = await ort.InferenceSession.create(path.join(dir, 'vae_encoder/model.onnx'));
    const decoder = await ort.InferenceSession.create(path.join(dir, 'vae_decoder/model.onnx'));
    // A smooth picture: horizontal ramp in red, vertical in green, a blue disc.
    const image = new Float32Array(3 * 64 * 64);
    for (let y = 0; y < 64; y++) {
      for (let x = 0; x < 64; x++) {
        image[y * 64 + x] = x / 32 - 1;
        image[4096 + y * 64 + x] = y / 32 - 1;
        image[8192 + y * 64 + x] = (x - 32) ** 2 + (y - 32) ** 2 < 300 ? 0.8 : -0.5;
      }
    }
    const latent = (await encoder.run({ sample: new ort.Tensor('float32', image, [1, 3, 64, 64]) })).latent_sample!;
    expect(latent.dims).toEqual([1, 4, 8, 8]);
    // SD-like scale: the scaled latent (× 0.18215) is of order one.
    const scaled = std(latent.data as Float32Array) * 0.18215;
    expect(scaled).toBeGreaterThan(0.1);
    expect(scaled).toBeLessThan(3);
    const decoded = (await decoder.run({ latent_sample: latent })).sample!;
    expect(decoded.dims).toEqual([1, 3, 64, 64]);
    const pixels = decoded.data as Float32Array;
    expect(pixels.every((v) => v >= -1 && v <= 1)).toBe(true);
    let error = 0;
    for (let i = 0; i < pixels.length; i++) error += Math.abs(pixels[i]! - image[i]!);
    expect(error / pixels.length).toBeLessThan(0.15);
    // Random latents decode to finite pixels in range too (what a sampler hands the decoder).
    const noise = (
      await decoder.run({
        latent_sample: new ort.Tensor(
          'float32',
          gaussian(2 * 4 * 8 * 12, 5).map((v) => v / 0.18215),
          [2, 4, 8, 12],
        ),
      })
    ).sample!;
    expect(noise.dims).toEqual([2, 3, 64, 96]);
    expect((noise.data as Float32Array).every((v) => v >= -1 && v <= 1)).toBe(true);
  });

  it('the project pipeline loads it like any SD1.x export', async () => {
    const pipeline = await SdPipeline.load(dir, { executionProvider: 'cpu' });
    try {
      expect(pipeline.info).toMatchObject({ textDim: 32, textLength: 77, latentChannels: 4, vaeDownsample: 8, timestepType: 'float32' });
      // The graph, not unet/config.json's three levels, says which sizes it takes: any (the up path follows the skips).
      expect(pipeline.info.latentSizes).toMatchObject({ source: 'graph', upsampling: 'shape-driven', safeMultiple: UNET_LATENT_MULTIPLE });
      expect(pipeline.info.latentSizes.describe()).toBe('any size');
      expect(() => pipeline.checkLatentSize(8, 10)).not.toThrow();
      expect(() => pipeline.checkLatentSize(3, 5)).not.toThrow();
      const text = await pipeline.encodeText('a photo of a cat');
      expect(text.embedding).toHaveLength(77 * 32);
      expect(allFinite(text.embedding)).toBe(true);
    } finally {
      await pipeline.release();
    }
  });
});

describe('writeDemoModel / ensureDemoModel', () => {
  async function readAll(folder: string): Promise<Map<string, Buffer>> {
    const files = new Map<string, Buffer>();
    for (const rel of DEMO_MODEL_FILES) files.set(rel, await readFile(path.join(folder, rel)));
    return files;
  }

  it('is deterministic: the same seed gives the same bytes, another seed other weights', async () => {
    const again = path.join(tmp, 'again');
    const otherSeed = path.join(tmp, 'other-seed');
    await writeDemoModel(again);
    await writeDemoModel(otherSeed, { seed: 7 });
    const [a, b, c] = await Promise.all([readAll(dir), readAll(again), readAll(otherSeed)]);
    for (const rel of DEMO_MODEL_FILES) expect(b.get(rel)!.equals(a.get(rel)!), rel).toBe(true);
    expect(c.get('unet/weights.pb')!.equals(a.get('unet/weights.pb')!)).toBe(false);
    expect(c.get('unet/weights.pb')!.byteLength).toBe(a.get('unet/weights.pb')!.byteLength);
  });

  it('generates once into the cache folder, atomically, and reuses it', async () => {
    const cache = path.join(tmp, 'cache', `demo-model-v${DEMO_MODEL_VERSION}`);
    const [first, concurrent] = await Promise.all([ensureDemoModel(cache), ensureDemoModel(cache)]);
    expect(first).toBe(cache);
    expect(concurrent).toBe(cache);
    // No temporary folders are left beside it.
    expect(await readdir(path.dirname(cache))).toEqual([path.basename(cache)]);
    const firstStat = await stat(path.join(cache, 'unet/weights.pb'));

    // Reused, not generated again: the files are the very ones written first.
    expect(await ensureDemoModel(cache)).toBe(cache);
    expect((await stat(path.join(cache, 'unet/weights.pb'))).mtimeMs).toBe(firstStat.mtimeMs);

    const [a, b] = await Promise.all([readAll(dir), readAll(cache)]);
    for (const rel of DEMO_MODEL_FILES) expect(b.get(rel)!.equals(a.get(rel)!), rel).toBe(true);
  });

  it('rebuilds a cache folder that lost a file', async () => {
    const cache = path.join(tmp, 'damaged');
    await ensureDemoModel(cache);
    await rm(path.join(cache, 'unet/weights.pb'));
    await ensureDemoModel(cache);
    expect((await stat(path.join(cache, 'unet/weights.pb'))).size).toBeGreaterThan(1_000_000);
  });

  it('refuses to replace a folder that is not a demo model', async () => {
    const other = path.join(tmp, 'someone-elses-model');
    await mkdir(other);
    await writeFile(path.join(other, 'model_index.json'), '{"_class_name": "OnnxStableDiffusionPipeline"}');
    await expect(ensureDemoModel(other)).rejects.toThrow(/exists and is not a demo model folder/);
    expect(await readdir(other)).toEqual(['model_index.json']);
  });

  it('defaults to .cache/demo-model-v<version> in the project', () => {
    expect(defaultDemoModelDir()).toBe(path.resolve(import.meta.dirname, '..', '.cache', `demo-model-v${DEMO_MODEL_VERSION}`));
  });
});

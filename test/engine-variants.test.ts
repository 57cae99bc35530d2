/**
 * Real exports differ from the fixture in their interfaces: int64 token ids, int64 or scalar
 * timesteps, fp16 UNets, VAE encoders that return mean and logvar (8 channels). The pipeline reads
 * all of that from the sessions. Here the fixture's own graphs are wrapped (Cast / Reshape / Concat at
 * their inputs and outputs) so each variant computes the same function, and must give the same result.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import onnxProto from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readNpyFloat32 } from '../server/conformance/npy.ts';
import { float16BitsToFloat32, float16ToFloat32, float32ToFloat16, float32ToFloat16Bits } from '../server/engine/runtime/runtime.ts';
import { SdPipeline } from '../server/engine/sd/pipeline.ts';
import { decode, invert } from '../server/engine/diffusion/cycle.ts';
import { attentionMerge, singlePrompt } from '../server/engine/diffusion/guidance.ts';
import { seededNoise } from '../server/engine/diffusion/noise.ts';
import { maxAbsDiff } from './support/numeric.ts';

const { onnx } = onnxProto;
const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fixture = path.resolve(projectRoot, '../shared/fixtures/tiny-sd');
const hasFixture = existsSync(path.join(fixture, 'reference/manifest.json'));
if (!hasFixture) console.warn(`engine-variants: fixture ${fixture} not found; model variant tests skipped`);

const T = { float32: 1, int32: 6, int64: 7, float16: 10 } as const;

interface InputChange {
  /** New declared element type; a Cast to the original type is inserted. */
  type?: keyof typeof T;
  /** Declare the input as a scalar and reshape it to [1] for the graph. */
  scalar?: boolean;
}
interface OutputChange {
  type?: keyof typeof T;
  /** Append the negated output along the channel axis (mean, "logvar"). */
  meanLogvar?: boolean;
}

/** Rewrites a model's interface, leaving its computation unchanged. */
function adapt(file: string, inputs: Record<string, InputChange>, outputs: Record<string, OutputChange>): Uint8Array {
  const model = onnx.ModelProto.decode(readFileSync(file));
  const g = model.graph!;
  const nodes = g.node!;
  const rename = (from: string, to: string, where: 'inputs' | 'outputs') => {
    for (const n of nodes) {
      const list = where === 'inputs' ? n.input! : n.output!;
      list.forEach((v, i) => {
        if (v === from) list[i] = to;
      });
    }
  };
  const pre: onnxProto.onnx.INodeProto[] = [];
  const post: onnxProto.onnx.INodeProto[] = [];
  for (const [name, ch] of Object.entries(inputs)) {
    const vi = g.input!.find((i) => i.name === name)!;
    const tt = vi.type!.tensorType!;
    const origType = tt.elemType!;
    let cur = name;
    if (ch.type) {
      tt.elemType = T[ch.type];
      pre.push({
        opType: 'Cast',
        input: [cur],
        output: [`${name}__cast`],
        attribute: [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: origType }],
      });
      cur = `${name}__cast`;
    }
    if (ch.scalar) {
      tt.shape = { dim: [] };
      pre.push({
        opType: 'Constant',
        output: [`${name}__shape`],
        attribute: [{ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: { dims: [1], dataType: T.int64, int64Data: [1] } }],
      });
      pre.push({ opType: 'Reshape', input: [cur, `${name}__shape`], output: [`${name}__1`] });
      cur = `${name}__1`;
    }
    const internal = cur;
    if (internal !== name) {
      // Point the original consumers at the adapted value (not the adapter nodes themselves).
      for (const n of nodes)
        n.input!.forEach((v, i) => {
          if (v === name) n.input![i] = internal;
        });
    }
  }
  for (const [name, ch] of Object.entries(outputs)) {
    const vi = g.output!.find((o) => o.name === name)!;
    const tt = vi.type!.tensorType!;
    rename(name, `${name}__pre`, 'outputs');
    rename(name, `${name}__pre`, 'inputs');
    let cur = `${name}__pre`;
    if (ch.meanLogvar) {
      post.push({ opType: 'Neg', input: [cur], output: [`${name}__neg`] });
      post.push({
        opType: 'Concat',
        input: [cur, `${name}__neg`],
        output: [`${name}__cat`],
        attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 1 }],
      });
      cur = `${name}__cat`;
    }
    if (ch.type) {
      tt.elemType = T[ch.type];
      post.push({
        opType: 'Cast',
        input: [cur],
        output: [`${name}__out`],
        attribute: [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: T[ch.type] }],
      });
      cur = `${name}__out`;
    }
    post.push({ opType: 'Identity', input: [cur], output: [name] });
  }
  g.node = [...pre, ...nodes, ...post];
  return onnx.ModelProto.encode(model).finish();
}

let tmp: string;
async function variantFolder(name: string, replace: Record<string, Uint8Array>): Promise<string> {
  const dir = path.join(tmp, name);
  await mkdir(dir, { recursive: true });
  for (const sub of await readdir(fixture)) {
    if (sub === 'reference') continue;
    const src = path.join(fixture, sub);
    if (sub.endsWith('.json')) {
      await symlink(src, path.join(dir, sub));
      continue;
    }
    await mkdir(path.join(dir, sub));
    for (const f of await readdir(src)) {
      const rel = `${sub}/${f}`;
      if (rel in replace) await writeFile(path.join(dir, rel), replace[rel]!);
      else await symlink(path.join(src, f), path.join(dir, rel));
    }
  }
  return dir;
}

describe('float16 conversion', () => {
  it('rounds to nearest even and handles the special values', () => {
    expect(float32ToFloat16Bits(1)).toBe(0x3c00);
    expect(float32ToFloat16Bits(-2)).toBe(0xc000);
    expect(float32ToFloat16Bits(65504)).toBe(0x7bff);
    expect(float32ToFloat16Bits(65520)).toBe(0x7c00); // rounds up to Inf
    expect(float32ToFloat16Bits(-Infinity)).toBe(0xfc00);
    expect(float32ToFloat16Bits(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(float32ToFloat16Bits(2 ** -26)).toBe(0x0000); // below half of it
    expect(float32ToFloat16Bits(0.1)).toBe(0x2e66);
    expect(float32ToFloat16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie → even
    expect(float32ToFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie → even (up)
    expect(Number.isNaN(float16BitsToFloat32(float32ToFloat16Bits(NaN)))).toBe(true);
  });

  it('round-trips every finite half value exactly', () => {
    const bits = new Uint16Array(65536).map((_, i) => i);
    const back = float32ToFloat16(float16ToFloat32(bits));
    for (let i = 0; i < 65536; i++) {
      const exp = (i >> 10) & 0x1f;
      if (exp === 0x1f && (i & 0x3ff) !== 0) continue; // NaN payloads
      if (back[i] !== i) throw new Error(`half 0x${i.toString(16)} came back as 0x${back[i]!.toString(16)}`);
    }
  });
});

describe.skipIf(!hasFixture)('model interface variants', () => {
  let reference: SdPipeline;
  let variant: SdPipeline;
  const R = (f: string) => readNpyFloat32(path.join(fixture, 'reference', f));
  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'dss-variants-'));
    const dir = await variantFolder('variant', {
      'text_encoder/model.onnx': adapt(path.join(fixture, 'text_encoder/model.onnx'), { input_ids: { type: 'int64' } }, {}),
      'unet/model.onnx': adapt(
        path.join(fixture, 'unet/model.onnx'),
        { sample: { type: 'float16' }, timestep: { type: 'int64', scalar: true }, encoder_hidden_states: { type: 'float16' } },
        { out_sample: { type: 'float16' } },
      ),
      'vae_encoder/model.onnx': adapt(path.join(fixture, 'vae_encoder/model.onnx'), {}, { latent_sample: { meanLogvar: true } }),
    });
    [reference, variant] = await Promise.all([SdPipeline.load(fixture, { executionProvider: 'cpu' }), SdPipeline.load(dir, { executionProvider: 'cpu' })]);
  });
  afterAll(async () => {
    await Promise.all([reference?.release(), variant?.release()]);
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('reads dtypes and shapes from the sessions', () => {
    expect(variant.info).toMatchObject({ textIdsType: 'int64', timestepType: 'int64', timestepBatched: false, unetFp16: true, textDim: 32, latentChannels: 4 });
    expect(reference.info).toMatchObject({ textIdsType: 'int32', timestepType: 'float32', timestepBatched: true, unetFp16: false });
    expect(variant.info.id).not.toBe(reference.info.id);
  });

  it('encodes text with int64 ids exactly as with int32', async () => {
    const a = await reference.encodeText('a photo of a cat');
    const b = await variant.encodeText('a photo of a cat');
    expect(maxAbsDiff(a.embedding, b.embedding)).toBe(0);
  });

  it('runs an fp16 UNet with a scalar int64 timestep on a batch', async () => {
    const sample = await R('unet_in_sample.npy');
    const ehs = await R('unet_in_ehs.npy');
    const expected = await R('unet_out_t500.npy');
    const [b, , h, w] = sample.shape as [number, number, number, number];
    const out = await variant.unet(sample.data, b, h, w, 500, ehs.data);
    // fp16 rounding of inputs and output: about 1e-3 relative; the interface must not add more.
    expect(maxAbsDiff(out, expected.data)).toBeLessThan(1e-2);
    const fp32 = await reference.unet(sample.data, b, h, w, 500, ehs.data);
    expect(maxAbsDiff(fp32, expected.data)).toBeLessThan(1e-5);
  });

  it('fp16 UNet: a reused sample buffer is converted again on every call', async () => {
    const sample = await R('unet_in_sample.npy');
    const ehs = await R('unet_in_ehs.npy');
    const [b, , h, w] = sample.shape as [number, number, number, number];
    const buf = Float32Array.from(sample.data);
    // Outputs are valid until the next call (fp16 ones share a buffer): keep copies.
    const first = Float32Array.from(await variant.unet(buf, b, h, w, 500, ehs.data));
    for (let i = 0; i < buf.length; i++) buf[i] = buf[i]! * 0.5;
    const again = Float32Array.from(await variant.unet(buf, b, h, w, 500, ehs.data));
    const fresh = await variant.unet(Float32Array.from(buf), b, h, w, 500, Float32Array.from(ehs.data));
    expect(maxAbsDiff(again, fresh)).toBe(0);
    expect(maxAbsDiff(again, first)).toBeGreaterThan(1e-3);
  });

  it('an fp16 UNet decodes a whole CycleDiffusion run like the fp32 one', async () => {
    const x0 = await R('x0.npy');
    const [, , lh, lw] = x0.shape as [number, number, number, number];
    const src = (await reference.encodeText('a photo of a cat')).embedding;
    const code = await invert(reference, x0.data, lw, lh, { source: src, guidance: 1, steps: 8, skip: 2, eta: 0.1, noise: seededNoise(3) });
    const rule = singlePrompt(src, 7.5);
    const [ours, ref] = [await decode(variant, code, rule), await decode(reference, code, rule)];
    expect(maxAbsDiff(ours, ref)).toBeLessThan(2e-2 * Math.max(1, ...ref.map(Math.abs)));
  });

  it('attention merge rewrites an fp16-interface UNet and decodes like the fp32 one', async () => {
    const x0 = await R('x0.npy');
    const [, , lh, lw] = x0.shape as [number, number, number, number];
    const text = async (p: string) => (await reference.encodeText(p)).embedding;
    const [src, c1, c2] = await Promise.all(['a photo of a cat', 'a painting', 'a blocky render'].map(text));
    const code = await invert(reference, x0.data, lw, lh, { source: src, guidance: 1, steps: 8, skip: 2, eta: 0.1, noise: seededNoise(5) });
    const mask = new Float32Array(lw * lh).map((_, i) => ((i % lw) + 0.5) / lw);
    const rule = attentionMerge([c1!, c2!], 7.5, [mask, mask.map((m) => 1 - m)]);
    const [ours, ref] = [await decode(variant, code, rule), await decode(reference, code, rule)];
    expect(maxAbsDiff(ours, ref)).toBeLessThan(2e-2 * Math.max(1, ...ref.map(Math.abs)));
  });

  it('takes the mean of an 8-channel VAE encoder', async () => {
    const image = await R('image.npy');
    const x0 = await R('x0.npy');
    const [, , H, W] = image.shape as [number, number, number, number];
    const ours = await variant.vaeEncode({ width: W, height: H, data: image.data });
    expect(maxAbsDiff(ours, x0.data)).toBeLessThan(1e-5);
    expect(variant.info.vaeEncoderChannels).toBe(8);
  });
});

/**
 * fp16 UNets: ε comes back converted to float32 in one buffer per (UNet binding, output size), reused by
 * every call, so a sampler step allocates nothing for it (the Denoiser contract: an output is valid until
 * the next call). Checked on the demo model exported in fp16: the same array across the steps of a whole
 * CycleDiffusion run, each call's values those of a fresh pipeline, and a run whose every ε is copied
 * before the next call (so reuse cannot matter) ending on exactly the same latent.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decode, invert } from '../server/engine/diffusion/cycle.ts';
import { epsilonMerge } from '../server/engine/diffusion/guidance.ts';
import { seededNoise } from '../server/engine/diffusion/noise.ts';
import { SdPipeline } from '../server/engine/sd/pipeline.ts';
import { writeDemoModel } from '../server/models/demo/index.ts';

let root: string;
let pipe: SdPipeline;
let fresh: SdPipeline;

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'dualstyle-fp16-out-'));
  await writeDemoModel(root, { dtype: 'float16' });
  [pipe, fresh] = await Promise.all([SdPipeline.load(root, { executionProvider: 'cpu' }), SdPipeline.load(root, { executionProvider: 'cpu' })]);
});

afterAll(async () => {
  await Promise.all([pipe?.release(), fresh?.release()]);
  await rm(root, { recursive: true, force: true });
});

const W = 8;
const H = 6;
const values = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(0.37 * i + seed));

/** The pipeline with its UNet calls recorded (each output and a copy taken when it came back); `copy` hands the sampler copies. */
function recorded(model: SdPipeline, copy: boolean) {
  const calls: { out: Float32Array; values: Float32Array; batch: number }[] = [];
  const proxy = new Proxy(model, {
    get(target, prop) {
      if (prop === 'unet') {
        return async (...args: Parameters<SdPipeline['unet']>) => {
          const out = await target.unet(...args);
          calls.push({ out, values: out.slice(), batch: args[1] });
          return copy ? out.slice() : out;
        };
      }
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { model: proxy, calls };
}

describe('fp16 UNet output: one float32 buffer per binding and size', () => {
  it("two calls of the same size return the same array, each holding its own call's ε", async () => {
    expect(pipe.info.unetFp16).toBe(true);
    const { latentChannels: C, textLength: L, textDim: D } = pipe.info;
    const ehs = values(2 * L * D, 1);
    const a = await pipe.unet(values(2 * C * W * H, 2), 2, H, W, 500, ehs);
    const aValues = a.slice();
    const b = await pipe.unet(values(2 * C * W * H, 3), 2, H, W, 400, ehs);
    expect(b).toBe(a); // no new array for the second call
    // Correct: exactly what a fresh pipeline returns for each input (its own first call).
    expect(await fresh.unet(values(2 * C * W * H, 3), 2, H, W, 400, ehs)).toEqual(b);
    expect(await fresh.unet(values(2 * C * W * H, 2), 2, H, W, 500, ehs)).toEqual(aValues);
    expect(aValues).not.toEqual(b);
    // Another size has its own buffer (a batch-1 call does not overwrite the batch-2 one).
    const c = await pipe.unet(values(C * W * H, 4), 1, H, W, 500, ehs.subarray(0, L * D));
    expect(c).not.toBe(b);
    expect(c.length).toBe(C * W * H);
  });

  it('the same array at every step of a CycleDiffusion run; the run equals one that copies every ε', async () => {
    const x0 = values(4 * W * H, 5).map((v) => 0.8 * v);
    const [source, c1, c2] = await Promise.all(
      ['a photo of a cat', 'an oil painting', 'a pencil sketch'].map(async (p) => (await pipe.encodeText(p)).embedding),
    );
    // Two weight planes summing to 1: style 1 on the left, style 2 on the right.
    const right = Float32Array.from({ length: W * H }, (_, i) => (i % W) / (W - 1));
    const mask = [right.map((v) => 1 - v), right];
    const run = async (copy: boolean) => {
      const r = recorded(pipe, copy);
      const code = await invert(r.model, x0, W, H, { source: source!, guidance: 1, steps: 12, skip: 2, eta: 0.1, noise: seededNoise(7) });
      const latent = await decode(r.model, code, epsilonMerge([c1!, c2!], 7.5, mask));
      return { latent, calls: r.calls };
    };
    const reused = await run(false);
    const copied = await run(true);
    // 10 inversion steps at batch 1 (guidance 1), 10 decoding steps at batch 3 (∅, c1, c2).
    expect(reused.calls.map((c) => c.batch)).toEqual([...Array(10).fill(1), ...Array(10).fill(3)]);
    const arrays = (batch: number) => new Set(reused.calls.filter((c) => c.batch === batch).map((c) => c.out));
    expect(arrays(1).size).toBe(1);
    expect(arrays(3).size).toBe(1);
    // Every step's ε was there when the sampler read it: both runs saw the same values and end alike.
    expect(reused.calls.map((c) => c.values)).toEqual(copied.calls.map((c) => c.values));
    expect(reused.latent).toEqual(copied.latent);
    expect(new Set(reused.calls.map((c) => c.values[0])).size).toBeGreaterThan(10); // the steps did differ
  });
});

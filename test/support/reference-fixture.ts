/**
 * A conformance fixture of the tiny-sd format (../shared/fixtures/README.md) built here from a demo-model
 * export, with reference vectors computed by a second, independent path: raw onnxruntime sessions fed
 * by hand, and the README's formulas written out again in float64 (schedule, masks, CycleDiffusion
 * inversion and decoding, guidance, epsilon and pixel merge, image decoding). Nothing of the engine
 * (SdPipeline, cycle.ts, guidance.ts, schedule.ts, mask.ts, the tokenizer) computes a reference.
 *
 * What this cannot be is the Python reference stack: both paths share onnxruntime and the model, and
 * the formulas were written by the same team from the same README. Attention merge has no second path
 * here except its two limits: with an all-ones mask it is the stock UNet with c1, with all zeros with c2.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { encodeNpy } from '../../server/conformance/npy.ts';
import { ort } from '../../server/engine/runtime/runtime.ts';
import { demoVocab } from '../../server/models/demo/text-encoder.ts';

export interface FixtureSettings {
  width: number;
  height: number;
  steps: number;
  skip: number;
  eta: number;
  encoderGuidance: number;
  decoderGuidance: number;
  sharpness: number;
  seed: number;
  prompts: { uncond: string; source: string; style1: string; style2: string };
}

const SCALE = 0.18215;

/** A seeded standard normal stream (LCG + Box–Muller), the fixture's only randomness. */
function gaussian(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 1) / 4294967297;
  return Float32Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()));
}

/** The demo's byte-level CLIP ids for prompts of lower-case letters and spaces: BOS, one id per byte (the last of a word with </w>), EOS, EOS padding. */
function tokenize(prompt: string): number[] {
  const vocab = demoVocab();
  const ids = [vocab['<|startoftext|>']!];
  for (const word of prompt.toLowerCase().split(/\s+/).filter(Boolean)) {
    if (!/^[a-z]+$/.test(word)) throw new Error(`the fixture's tokenizer takes letters only, got "${word}"`);
    [...word].forEach((ch, i) => ids.push(vocab[i === word.length - 1 ? `${ch}</w>` : ch]!));
  }
  ids.push(vocab['<|endoftext|>']!);
  while (ids.length < 77) ids.push(vocab['<|endoftext|>']!);
  return ids;
}

/** LDM's uniform DDIM schedule, every k of range(0, 1000, c) + 1 (README: S or ⌈1000/c⌉ entries). */
function schedule(steps: number, eta: number) {
  const lo = Math.sqrt(0.00085);
  const hi = Math.sqrt(0.012);
  const ac: number[] = [];
  for (let t = 0, p = 1; t < 1000; t++) ac.push((p *= 1 - (lo + ((hi - lo) * t) / 999) ** 2));
  const c = Math.floor(1000 / steps);
  const timesteps: number[] = [];
  for (let t = 0; t < 1000; t += c) timesteps.push(t + 1);
  const alphas = timesteps.map((t) => ac[t]!);
  const alphasPrev = timesteps.map((_, k) => (k === 0 ? ac[0]! : alphas[k - 1]!));
  const sigmas = alphas.map((a, k) => eta * Math.sqrt(((1 - alphasPrev[k]!) / (1 - a)) * (1 - a / alphasPrev[k]!)));
  return { timesteps, alphas, alphas_prev: alphasPrev, sigmas };
}

/** M(u) at pixel centres u = (j + 0.5)/w, for every row. */
function mask(shape: 'linear' | 'logistic' | 'ones' | 'zeros', w: number, h: number, k: number): Float32Array {
  const m = (j: number) => {
    const u = (j + 0.5) / w;
    return shape === 'ones' ? 1 : shape === 'zeros' ? 0 : shape === 'linear' ? 1 - u : 1 / (1 + Math.exp(k * (u - 0.5)));
  };
  return Float32Array.from({ length: w * h }, (_, i) => m(i % w));
}

/** Writes model + reference/ into `dir` (the model folder is copied in by the caller). */
export async function writeReferenceFixture(dir: string, s: FixtureSettings): Promise<void> {
  const [W, H] = [s.width, s.height];
  const [w, h] = [W / 8, H / 8];
  const n = 4 * w * h;
  const R = s.steps - s.skip;
  const open = (rel: string) => ort.InferenceSession.create(path.join(dir, rel));
  const [text, unet, encoder, decoder] = await Promise.all(
    ['text_encoder/model.onnx', 'unet/model.onnx', 'vae_encoder/model.onnx', 'vae_decoder/model.onnx'].map(open),
  );
  const ref = path.join(dir, 'reference');
  await mkdir(ref, { recursive: true });
  const npy = (name: string, data: Float32Array, shape: number[]) => writeFile(path.join(ref, `${name}.npy`), encodeNpy(data, shape));
  try {
    const embed = async (prompt: string) => {
      const ids = new ort.Tensor('int64', BigInt64Array.from(tokenize(prompt), BigInt), [1, 77]);
      return Float32Array.from((await text.run({ input_ids: ids })).last_hidden_state!.data as Float32Array);
    };
    const P = s.prompts;
    const [uncond, src, c1, c2] = await Promise.all([P.uncond, P.source, P.style1, P.style2].map(embed));
    /** e(x, t, rows of text) for a batch of rows: one raw UNet call, int64 timestep per row. */
    const eps = async (x: Float64Array | Float32Array, t: number, texts: Float32Array[]): Promise<Float32Array[]> => {
      const B = texts.length;
      const sample = new Float32Array(B * n);
      const ehs = new Float32Array(B * 77 * 32);
      texts.forEach((c, b) => {
        sample.set(x, b * n);
        ehs.set(c, b * 77 * 32);
      });
      const out = (
        await unet.run({
          sample: new ort.Tensor('float32', sample, [B, 4, h, w]),
          timestep: new ort.Tensor('int64', new BigInt64Array(B).fill(BigInt(t)), [B]),
          encoder_hidden_states: new ort.Tensor('float32', ehs, [B, 77, 32]),
        })
      ).out_sample!.data as Float32Array;
      return texts.map((_, b) => out.subarray(b * n, (b + 1) * n));
    };
    /** ê = e∅ + g·(e_c − e∅); only e_c when g = 1. */
    const guided = async (x: Float64Array, t: number, c: Float32Array, g: number) => {
      if (g === 1) return Float64Array.from((await eps(x, t, [c]))[0]!);
      const [e0, ec] = await eps(x, t, [uncond, c]);
      return Float64Array.from(e0!, (v, i) => v + g * (ec![i]! - v));
    };
    const sched = schedule(s.steps, s.eta);
    const { timesteps: tau, alphas: a, alphas_prev: ap, sigmas: sig } = sched;

    const image = Float32Array.from({ length: 3 * W * H }, (_, i) => {
      const [c, p] = [Math.floor(i / (W * H)), i % (W * H)];
      const [x, y] = [p % W, Math.floor(p / W)];
      return 0.5 + 0.4 * Math.sin(0.11 * x * (c + 1) + 0.07 * y) * Math.cos(0.05 * (x - y));
    });
    const latent = (
      await encoder.run({
        sample: new ort.Tensor(
          'float32',
          image.map((v) => 2 * v - 1),
          [1, 3, H, W],
        ),
      })
    ).latent_sample!;
    const x0 = Float64Array.from((latent.data as Float32Array).subarray(0, n), (v) => v * SCALE); // mean: the first 4 channels
    const noise = Array.from({ length: R + 1 }, (_, i) => gaussian(n, s.seed * 1000 + i));

    // Inversion (README), float64.
    let x = Float64Array.from(x0, (v, j) => Math.sqrt(a[R - 1]!) * v + Math.sqrt(1 - a[R - 1]!) * noise[0]![j]!);
    const z = [Float32Array.from(x)];
    for (let i = 0; i < R; i++) {
      const k = R - 1 - i;
      const dir = Math.sqrt(1 - ap[k]! - sig[k]! ** 2);
      const next = Float64Array.from(x0, (v, j) =>
        k === 0 ? v : Math.sqrt(ap[k]!) * v + (dir * (x[j]! - Math.sqrt(a[k]!) * v)) / Math.sqrt(1 - a[k]!) + sig[k]! * noise[i + 1]![j]!,
      );
      const e = await guided(x, tau[k]!, src, s.encoderGuidance);
      z.push(
        Float32Array.from(next, (v, j) => (v - (Math.sqrt(ap[k]!) * ((x[j]! - Math.sqrt(1 - a[k]!) * e[j]!) / Math.sqrt(a[k]!)) + dir * e[j]!)) / sig[k]!),
      );
      x = next;
    }

    /** The decoder (README) under a rule giving ê for (x, t). */
    const decode = async (rule: (x: Float64Array, t: number) => Promise<Float64Array>) => {
      let xd = Float64Array.from(z[0]!);
      for (let i = 0; i < R; i++) {
        const k = R - 1 - i;
        const e = await rule(xd, tau[k]!);
        const dir = Math.sqrt(1 - ap[k]! - sig[k]! ** 2);
        xd = Float64Array.from(
          xd,
          (v, j) => Math.sqrt(ap[k]!) * ((v - Math.sqrt(1 - a[k]!) * e[j]!) / Math.sqrt(a[k]!)) + dir * e[j]! + sig[k]! * z[i + 1]![j]!,
        );
      }
      return Float32Array.from(xd);
    };
    const toImage = async (l: Float32Array) => {
      const out = (
        await decoder.run({
          latent_sample: new ort.Tensor(
            'float32',
            l.map((v) => v / SCALE),
            [1, 4, h, w],
          ),
        })
      ).sample!.data as Float32Array;
      return out.map((v) => (Math.min(1, Math.max(-1, v)) + 1) / 2);
    };
    const sd = s.decoderGuidance;
    const epsMerge = (M: Float32Array) => async (xd: Float64Array, t: number) => {
      const [e0, e1, e2] = await eps(xd, t, [uncond, c1, c2]);
      return Float64Array.from(e0!, (v, j) => {
        const m = M[j % (w * h)]!;
        return m * (v + sd * (e1![j]! - v)) + (1 - m) * (v + sd * (e2![j]! - v));
      });
    };
    const decodes: [string, (x: Float64Array, t: number) => Promise<Float64Array>][] = [
      ['recon', (xd, t) => guided(xd, t, src, s.encoderGuidance)],
      ['epsmerge_linear', epsMerge(mask('linear', w, h, s.sharpness))],
      ['epsmerge_logistic', epsMerge(mask('logistic', w, h, s.sharpness))],
      ['single_c1', (xd, t) => guided(xd, t, c1, sd)],
      ['single_c2', (xd, t) => guided(xd, t, c2, sd)],
    ];
    const images = new Map<string, Float32Array>();
    for (const [name, rule] of decodes) {
      const l = await decode(rule);
      images.set(name, await toImage(l));
      await npy(`${name}_latent`, l, [1, 4, h, w]);
      await npy(`${name}_image`, images.get(name)!, [1, 3, H, W]);
    }
    for (const shape of ['linear', 'logistic'] as const) {
      const M = mask(shape, W, H, s.sharpness);
      const [i1, i2] = [images.get('single_c1')!, images.get('single_c2')!];
      await npy(
        `pixelmerge_${shape}_image`,
        i1.map((v, i) => M[i % (W * H)]! * v + (1 - M[i % (W * H)]!) * i2[i]!),
        [1, 3, H, W],
      );
    }

    // One UNet call, batch 2 (∅, style1) at t = 500; its attention-merge limits: ones = c1 rows, zeros = c2 rows.
    const sampleIn = gaussian(2 * n, s.seed + 7);
    const rows = (a1: Float32Array, a2: Float32Array) => Float32Array.from([...a1, ...a2]);
    const run500 = async (ehs: Float32Array) => {
      const [r0, r1] = await Promise.all([
        eps(sampleIn.subarray(0, n), 500, [ehs.subarray(0, 77 * 32)]),
        eps(sampleIn.subarray(n), 500, [ehs.subarray(77 * 32)]),
      ]);
      return rows(r0[0]!, r1[0]!);
    };
    const [ehs, ehs2] = [rows(uncond, c1), rows(uncond, c2)];
    const out500 = await run500(ehs);
    await Promise.all([
      npy('unet_in_sample', sampleIn, [2, 4, h, w]),
      npy('unet_in_ehs', ehs, [2, 77, 32]),
      npy('unet_in_ehs2', ehs2, [2, 77, 32]),
      npy('unet_out_t500', out500, [2, 4, h, w]),
      npy('attnmerge_out_t500_ones', out500, [2, 4, h, w]),
      npy('attnmerge_out_t500_zeros', await run500(ehs2), [2, 4, h, w]),
      ...(['linear', 'logistic', 'ones', 'zeros'] as const).map((m) => npy(`mask_${m}`, mask(m, w, h, s.sharpness), [1, 1, h, w])),
      npy('text_uncond', uncond, [1, 77, 32]),
      npy('text_src', src, [1, 77, 32]),
      npy('text_c1', c1, [1, 77, 32]),
      npy('text_c2', c2, [1, 77, 32]),
      npy('image', image, [1, 3, H, W]),
      npy('x0', Float32Array.from(x0), [1, 4, h, w]),
      npy('noise', Float32Array.from(noise.flatMap((v) => [...v])), [R + 1, 1, 4, h, w]),
      npy('cycle_z', Float32Array.from(z.flatMap((v) => [...v])), [R + 1, 1, 4, h, w]),
    ]);
    const json = (name: string, v: unknown) => writeFile(path.join(ref, name), JSON.stringify(v, null, 1));
    await json('schedule.json', sched);
    await json(
      'tokenizer_cases.json',
      Object.values(P).map((prompt) => ({ prompt, input_ids: tokenize(prompt) })),
    );
    await json('manifest.json', {
      seed: s.seed,
      height: H,
      width: W,
      latent_height: h,
      latent_width: w,
      steps: s.steps,
      skip: s.skip,
      eta: s.eta,
      encoder_guidance: s.encoderGuidance,
      decoder_guidance: s.decoderGuidance,
      vae_scaling_factor: SCALE,
      mask_sharpness: s.sharpness,
      prompts: P,
      timestep_input: 'int64, batch-shaped',
    });
  } finally {
    await Promise.all([text, unet, encoder, decoder].map((x) => x.release()));
  }
}

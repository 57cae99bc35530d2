/**
 * Conformance harness: runs the engine against a reference fixture (a diffusers ONNX model folder
 * with reference/manifest.json and .npy vectors from the Python reference stack) and compares every
 * stage: tokenizer, text encoder, schedule, masks, UNet, VAE, CycleDiffusion inversion, the decoders
 * (reconstruction, epsilon merge, single prompt) and the pixel-merge baseline.
 *
 * Every setting (sizes, steps, skip, eta, guidances, prompts) is read from the manifest, so other
 * fixtures of the same format pass through unchanged. Tolerance: max|a − b| ≤ 1e-3·max(1, max|ref|);
 * token ids must match exactly.
 *
 *   npm run conformance -- <fixture-dir> [--ep auto|cuda|webgpu|cpu]
 */
import { existsSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { decode, invert, type CycleCode } from '../engine/diffusion/cycle.ts';
import { attentionMerge, attentionMergeExtras, epsilonMerge, singlePrompt, type EpsilonRule } from '../engine/diffusion/guidance.ts';
import { makeMask } from '../engine/diffusion/mask.ts';
import { readNpyFloat32, type NpyArray } from './npy.ts';
import { arrayNoise, splitChunks } from '../engine/diffusion/noise.ts';
import { EXECUTION_PROVIDERS, type ExecutionProviderRequest } from '../engine/onnx/runtime.ts';
import { SdPipeline } from '../engine/onnx/pipeline.ts';
import { pixelMerge } from '../engine/diffusion/pixel-merge.ts';
import { ddimSchedule } from '../engine/diffusion/schedule.ts';

export interface ConformanceCase {
  name: string;
  status: 'pass' | 'fail' | 'skip';
  /** True only for a case that ran and met its tolerance. */
  pass: boolean;
  skipped: boolean;
  maxErr: number;
  tol: number;
  detail?: string;
}

export interface ConformanceResult {
  cases: ConformanceCase[];
  passed: number;
  failed: number;
  skipped: number;
  executionProvider: string;
}

export interface ConformanceOptions {
  log?: (line: string) => void;
  executionProvider?: ExecutionProviderRequest;
}

interface Manifest {
  seed?: number;
  height: number;
  width: number;
  latent_height: number;
  latent_width: number;
  steps: number;
  skip: number;
  eta: number;
  encoder_guidance: number;
  decoder_guidance: number;
  vae_scaling_factor?: number;
  mask_sharpness?: number;
  mask_convention?: string;
  prompts: { uncond: string; source: string; style1: string; style2: string };
}

/** Thrown for a fixture that cannot be used at all (missing folder or manifest). */
export class FixtureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FixtureError';
  }
}

export function tolerance(ref: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < ref.length; i++) m = Math.max(m, Math.abs(ref[i]!));
  return 1e-3 * Math.max(1, m);
}

export function maxAbsError(ours: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (ours.length !== ref.length) throw new Error(`size mismatch: ours has ${ours.length} values, the reference ${ref.length}`);
  let m = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(ours[i]! - ref[i]!);
    if (!(d <= m)) m = Number.isNaN(d) ? NaN : d;
    if (Number.isNaN(m)) return NaN;
  }
  return m;
}

function readManifest(json: unknown, file: string): Manifest {
  const m = json as Partial<Manifest> | null;
  const problems: string[] = [];
  const num = (k: keyof Manifest) => {
    if (typeof m?.[k] !== 'number' || !Number.isFinite(m[k] as number)) problems.push(`${k} must be a number`);
  };
  (['height', 'width', 'latent_height', 'latent_width', 'steps', 'skip', 'eta', 'encoder_guidance', 'decoder_guidance'] as const).forEach(num);
  const p = m?.prompts;
  for (const k of ['uncond', 'source', 'style1', 'style2'] as const) {
    if (typeof p?.[k] !== 'string') problems.push(`prompts.${k} must be a string`);
  }
  if (problems.length > 0) throw new FixtureError(`${file}: ${problems.join('; ')}`);
  return m as Manifest;
}

/** Logistic sharpness k: an explicit field, else the "k=20" of the convention text, else 20. */
function maskSharpness(m: Manifest): number {
  if (typeof m.mask_sharpness === 'number') return m.mask_sharpness;
  const k = /\bk\s*=\s*([0-9]+(?:\.[0-9]+)?)/.exec(m.mask_convention ?? '')?.[1];
  return k ? Number(k) : 20;
}

function fmt(x: number): string {
  // 3.1e-07 style (two-digit exponent), as NumPy prints.
  return Number.isNaN(x) ? 'NaN' : x.toExponential(1).replace(/e([+-])(\d)$/, 'e$10$2');
}

function short(text: string, n = 40): string {
  return text.length <= n ? JSON.stringify(text) : JSON.stringify(text.slice(0, n - 1) + '…');
}

export async function runConformance(dirIn: string, options: ConformanceOptions = {}): Promise<ConformanceResult> {
  const log = options.log ?? ((line: string) => console.log(line));
  const dir = path.resolve(dirIn);
  const refDir = path.join(dir, 'reference');
  const manifestPath = path.join(refDir, 'manifest.json');
  if (!existsSync(dir)) throw new FixtureError(`fixture folder not found: ${dir}`);
  if (!existsSync(manifestPath)) throw new FixtureError(`not a conformance fixture: ${manifestPath} is missing`);
  let manifest: Manifest;
  try {
    manifest = readManifest(JSON.parse(await readFile(manifestPath, 'utf8')), manifestPath);
  } catch (e) {
    if (e instanceof FixtureError) throw e;
    throw new FixtureError(`${manifestPath} is not valid JSON: ${(e as Error).message}`);
  }
  const refFiles = new Set(readdirSync(refDir));
  const has = (f: string) => refFiles.has(f);
  const npyCache = new Map<string, Promise<NpyArray<Float32Array>>>();
  const ref = (name: string): Promise<NpyArray<Float32Array>> => {
    const f = `${name}.npy`;
    if (!has(f)) return Promise.reject(new Error(`reference/${f} is missing`));
    let hit = npyCache.get(f);
    if (!hit) npyCache.set(f, (hit = readNpyFloat32(path.join(refDir, f))));
    return hit;
  };

  const cases: ConformanceCase[] = [];
  const record = (c: Omit<ConformanceCase, 'pass' | 'skipped'>) => {
    const full: ConformanceCase = { ...c, pass: c.status === 'pass', skipped: c.status === 'skip' };
    cases.push(full);
    const label = c.status.toUpperCase().padEnd(4);
    const name = c.name.padEnd(28);
    if (c.status === 'skip') log(`${label}  ${name}  ${c.detail ?? ''}`.trimEnd());
    else if (c.tol === 0) log(`${label}  ${name}  ${c.detail ?? ''}`.trimEnd());
    else log(`${label}  ${name}  max|err| ${fmt(c.maxErr)}  (tol ${fmt(c.tol)})${c.detail ? `  ${c.detail}` : ''}`);
  };
  /** Runs one numeric case: `compute` returns our array, compared with reference/<name>.npy. */
  const numeric = async (name: string, compute: () => Promise<ArrayLike<number>>) => {
    try {
      const expected = await ref(name);
      const ours = await compute();
      const maxErr = maxAbsError(ours, expected.data);
      const tol = tolerance(expected.data);
      record({ name, status: maxErr <= tol ? 'pass' : 'fail', maxErr, tol });
    } catch (e) {
      record({ name, status: 'fail', maxErr: NaN, tol: NaN, detail: (e as Error).message });
    }
  };

  const t0 = performance.now();
  let pipe: SdPipeline;
  try {
    pipe = await SdPipeline.load(dir, { executionProvider: options.executionProvider ?? 'auto' });
  } catch (e) {
    record({ name: 'load_model', status: 'fail', maxErr: NaN, tol: NaN, detail: (e as Error).message });
    return summarize(cases, log, 'none', t0);
  }
  log(`model ${dir} (${pipe.info.executionProviderNote})`);
  try {
    const { latent_width: lw, latent_height: lh, width: W, height: H } = manifest;
    const P = manifest.prompts;
    const C = pipe.info.latentChannels;

    if (typeof manifest.vae_scaling_factor === 'number' && Math.abs(manifest.vae_scaling_factor - pipe.info.vaeScalingFactor) > 1e-12) {
      record({
        name: 'vae_scaling_factor',
        status: 'fail',
        maxErr: Math.abs(manifest.vae_scaling_factor - pipe.info.vaeScalingFactor),
        tol: 0,
        detail: `manifest says ${manifest.vae_scaling_factor}, the model folder gives ${pipe.info.vaeScalingFactor}`,
      });
    }

    // Tokenizer: exact ids.
    if (has('tokenizer_cases.json')) {
      const tc = JSON.parse(await readFile(path.join(refDir, 'tokenizer_cases.json'), 'utf8')) as { prompt: string; input_ids: number[] }[];
      tc.forEach((c, i) => {
        const name = `tokenizer_${i}`;
        try {
          const ids = pipe.tokenizer.encode(c.prompt).ids;
          let wrong = 0;
          let first = -1;
          for (let j = 0; j < Math.max(ids.length, c.input_ids.length); j++) {
            if (ids[j] !== c.input_ids[j]) {
              wrong++;
              if (first < 0) first = j;
            }
          }
          record({
            name,
            status: wrong === 0 ? 'pass' : 'fail',
            maxErr: wrong,
            tol: 0,
            detail: wrong === 0 ? `exact ids  ${short(c.prompt)}` : `${wrong} ids differ (first at ${first}: ${ids[first]} vs ${c.input_ids[first]})  ${short(c.prompt)}`,
          });
        } catch (e) {
          record({ name, status: 'fail', maxErr: NaN, tol: 0, detail: (e as Error).message });
        }
      });
    }

    // Text encoder.
    const text = (prompt: string) => pipe.encodeText(prompt).then((r) => r.embedding);
    await numeric('text_uncond', () => text(P.uncond));
    await numeric('text_src', () => text(P.source));
    await numeric('text_c1', () => text(P.style1));
    await numeric('text_c2', () => text(P.style2));

    // Schedule.
    if (has('schedule.json')) {
      try {
        const s = JSON.parse(await readFile(path.join(refDir, 'schedule.json'), 'utf8')) as Record<string, number[]>;
        const ours = ddimSchedule(manifest.steps, manifest.eta, pipe.info.scheduler);
        const tsOk = JSON.stringify(ours.timesteps) === JSON.stringify(s.timesteps);
        const oursFlat = [...ours.alphas, ...ours.alphasPrev, ...ours.sigmas];
        const refFlat = [...(s.alphas ?? []), ...(s.alphas_prev ?? []), ...(s.sigmas ?? [])];
        const maxErr = maxAbsError(oursFlat, refFlat);
        const tol = tolerance(refFlat);
        record({ name: 'schedule', status: tsOk && maxErr <= tol ? 'pass' : 'fail', maxErr, tol, detail: tsOk ? undefined : 'timesteps differ' });
      } catch (e) {
        record({ name: 'schedule', status: 'fail', maxErr: NaN, tol: NaN, detail: (e as Error).message });
      }
    }

    // Masks at latent size.
    const k = maskSharpness(manifest);
    const mask = (shape: 'linear' | 'logistic') => makeMask({ shape, direction: 'left-right', sharpness: k });
    for (const shape of ['linear', 'logistic'] as const) {
      if (has(`mask_${shape}.npy`)) await numeric(`mask_${shape}`, async () => mask(shape).sample(lw, lh));
    }

    // One UNet call per unet_out_t<T>.npy.
    for (const f of [...refFiles].sort()) {
      const m = /^unet_out_t(\d+)\.npy$/.exec(f);
      if (!m) continue;
      await numeric(f.slice(0, -4), async () => {
        const sample = await ref('unet_in_sample');
        const ehs = await ref('unet_in_ehs');
        const [batch, , h, w] = sample.shape as [number, number, number, number];
        return pipe.unet(sample.data, batch, h, w, Number(m[1]), ehs.data);
      });
    }

    // VAE encoder.
    await numeric('x0', async () => {
      const image = await ref('image');
      const [, , ih, iw] = image.shape as [number, number, number, number];
      if (ih !== H || iw !== W) throw new Error(`reference image is ${iw}×${ih}, the manifest says ${W}×${H}`);
      return pipe.vaeEncode({ width: W, height: H, data: image.data });
    });

    // CycleDiffusion inversion, from the reference x0 and noise so that only this stage is measured.
    const R = manifest.steps - manifest.skip;
    const schedule = ddimSchedule(manifest.steps, manifest.eta, pipe.info.scheduler);
    await numeric('cycle_z', async () => {
      const x0 = await ref('x0');
      const noise = await ref('noise');
      if (noise.shape[0] !== R + 1) throw new Error(`noise.npy has ${noise.shape[0]} draws; steps ${manifest.steps} − skip ${manifest.skip} needs ${R + 1}`);
      const code = await invert(pipe, x0.data, lw, lh, {
        source: await text(P.source),
        uncond: await text(P.uncond),
        guidance: manifest.encoder_guidance,
        steps: manifest.steps,
        skip: manifest.skip,
        eta: manifest.eta,
        noise: arrayNoise(splitChunks(noise.data, noise.shape[0]!)),
      });
      const flat = new Float32Array(code.z.length * code.z[0]!.length);
      code.z.forEach((z, i) => flat.set(z, i * z.length));
      return flat;
    });

    // Decoders replay the reference code, each checked as latent and as decoded image.
    let referenceCode: CycleCode | null = null;
    const code = async (): Promise<CycleCode> => {
      if (!referenceCode) {
        const z = await ref('cycle_z');
        referenceCode = { z: splitChunks(z.data, z.shape[0]!), schedule, skip: manifest.skip, width: lw, height: lh };
        if (z.data.length !== (R + 1) * C * lw * lh) throw new Error(`cycle_z.npy has shape [${z.shape.join(', ')}], expected [${R + 1}, 1, ${C}, ${lh}, ${lw}]`);
      }
      return referenceCode;
    };
    const decodeCase = async (prefix: string, rule: () => Promise<EpsilonRule>) => {
      let latent: Float32Array | null = null;
      await numeric(`${prefix}_latent`, async () => (latent = await decode(pipe, await code(), await rule())));
      if (has(`${prefix}_image.npy`)) {
        await numeric(`${prefix}_image`, async () => {
          // Decode our own latent (end to end); fall back to the reference latent if ours failed.
          const l = latent ?? (await ref(`${prefix}_latent`)).data;
          const img = await pipe.vaeDecode(l, lw, lh);
          if (img.width !== W || img.height !== H) throw new Error(`decoded ${img.width}×${img.height}, expected ${W}×${H}`);
          return img.data;
        });
      }
    };
    const s = manifest.decoder_guidance;
    if (has('recon_latent.npy')) {
      // Reconstruction: the encoder's own prompt and guidance reproduce x0.
      await decodeCase('recon', async () => singlePrompt(await text(P.source), await text(P.uncond), manifest.encoder_guidance));
    }
    for (const shape of ['linear', 'logistic'] as const) {
      if (has(`epsmerge_${shape}_latent.npy`)) {
        await decodeCase(`epsmerge_${shape}`, async () => epsilonMerge(await text(P.style1), await text(P.style2), await text(P.uncond), s, mask(shape)));
      }
    }
    for (const [which, prompt] of [['c1', P.style1], ['c2', P.style2]] as const) {
      if (has(`single_${which}_latent.npy`)) {
        await decodeCase(`single_${which}`, async () => singlePrompt(await text(prompt), await text(P.uncond), s));
      }
    }

    // Pixel merge of the reference single-style images, mask at image resolution.
    for (const shape of ['linear', 'logistic'] as const) {
      if (!has(`pixelmerge_${shape}_image.npy`)) continue;
      await numeric(`pixelmerge_${shape}_image`, async () => {
        const a = await ref('single_c1_image');
        const b = await ref('single_c2_image');
        return pixelMerge({ width: W, height: H, data: a.data }, { width: W, height: H, data: b.data }, mask(shape)).data;
      });
    }

    // Attention merge: one call of the rewritten UNet per attnmerge_out_t<T>_<mask>.npy (the reference
    // inputs, second conditioning and mask), then the dual-style decodes.
    for (const f of [...refFiles].sort()) {
      const m = /^attnmerge_out_t(\d+)_(\w+)\.npy$/.exec(f);
      if (!m) continue;
      await numeric(f.slice(0, -4), async () => {
        const sample = await ref('unet_in_sample');
        const ehs = await ref('unet_in_ehs');
        const ehs2 = await ref('unet_in_ehs2');
        const maskRef = await ref(`mask_${m[2]}`);
        const [batch, , h, w] = sample.shape as [number, number, number, number];
        const row = ehs2.data.length / batch;
        const rows2 = Array.from({ length: batch }, (_, i) => ({ embedding: ehs2.data.subarray(i * row, (i + 1) * row), what: `encoder_hidden_states_2 row ${i}` }));
        const extras = await attentionMergeExtras(pipe, rows2, maskRef.data.subarray(0, h * w), w, h);
        return pipe.unet(sample.data, batch, h, w, Number(m[1]), ehs.data, extras);
      });
    }
    for (const shape of ['linear', 'logistic'] as const) {
      if (has(`attnmerge_${shape}_latent.npy`)) {
        await decodeCase(`attnmerge_${shape}`, async () => attentionMerge(await text(P.style1), await text(P.style2), await text(P.uncond), s, mask(shape)));
      }
    }
  } finally {
    await pipe.release();
  }
  return summarize(cases, log, pipe.info.executionProvider, t0);
}

function summarize(cases: ConformanceCase[], log: (line: string) => void, ep: string, t0: number): ConformanceResult {
  const passed = cases.filter((c) => c.status === 'pass').length;
  const failed = cases.filter((c) => c.status === 'fail').length;
  const skipped = cases.filter((c) => c.status === 'skip').length;
  log(`${failed === 0 ? 'OK' : 'FAILED'}: ${passed} passed, ${failed} failed, ${skipped} skipped in ${((performance.now() - t0) / 1000).toFixed(1)} s (${ep})`);
  return { cases, passed, failed, skipped, executionProvider: ep };
}

async function main(argv: string[]): Promise<number> {
  let dir: string | undefined;
  let ep: ExecutionProviderRequest = 'auto';
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--ep' || a.startsWith('--ep=')) {
      const v = a.includes('=') ? a.slice(5) : argv[++i];
      if (!EXECUTION_PROVIDERS.includes(v as ExecutionProviderRequest)) {
        console.error(`--ep must be one of ${EXECUTION_PROVIDERS.join(', ')}, got ${v ?? 'nothing'}`);
        return 2;
      }
      ep = v as ExecutionProviderRequest;
    } else if (a === '-h' || a === '--help') {
      console.log('usage: npm run conformance -- <fixture-dir> [--ep auto|cuda|webgpu|cpu]');
      return 0;
    } else if (!dir) dir = a;
    else {
      console.error(`unexpected argument ${a}`);
      return 2;
    }
  }
  if (!dir) {
    console.error('usage: npm run conformance -- <fixture-dir> [--ep auto|cuda|webgpu|cpu]\n(e.g. ../shared/fixtures/tiny-sd)');
    return 2;
  }
  try {
    const r = await runConformance(dir, { executionProvider: ep });
    return r.failed === 0 && r.passed > 0 ? 0 : 1;
  } catch (e) {
    console.error(`conformance: ${(e as Error).message}`);
    return 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}

/**
 * Conformance harness: runs the engine against a reference fixture and compares every stage.
 * Two formats: a Stable Diffusion fixture (a diffusers ONNX model folder with reference/manifest.json
 * and .npy vectors from the Python reference stack; the cases of sd-cases.ts, tolerance
 * max|a − b| ≤ 1e-3·max(1, max|ref|), token ids exact) and a metrics fixture (reference/metrics.json
 * beside a clip/ split CLIP export; the cases of metrics-cases.ts, tolerances from metrics.json).
 * Every setting is read from the fixture, so other fixtures of the same format pass unchanged.
 */
import { existsSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ClipModel } from '../engine/evaluation-models/clip-model.ts';
import type { ExecutionProviderRequest } from '../engine/runtime/runtime.ts';
import { SdPipeline } from '../engine/sd/pipeline.ts';
import { ensureConverted, needsConversion, type ConvertOptions } from '../models/convert/index.ts';
import { Fixture, readManifest, type Manifest } from './fixture.ts';
import { isMetricsFixture, METRICS_CASES, MetricsFixture, readMetricsSpec } from './metrics-cases.ts';
import { LORA_CASES, SD_CASES, type Case, type LoraManifest } from './sd-cases.ts';
import { FP16_TOLERANCE_FACTOR, tolerance } from './tolerance.ts';

export { FixtureError } from './fixture.ts';
export { FP16_TOLERANCE_FACTOR, tolerance } from './tolerance.ts';

export interface ConformanceCase {
  name: string;
  status: 'pass' | 'fail';
  pass: boolean;
  /** Largest absolute difference (numeric cases) or number of mismatches (exact cases). */
  maxErr: number;
  /** The tolerance of a numeric case; 0 for an exact one. */
  tol: number;
  detail?: string;
}

export interface ConformanceResult {
  cases: ConformanceCase[];
  passed: number;
  failed: number;
  executionProvider: string;
}

export interface ConformanceOptions {
  log?: (line: string) => void;
  executionProvider?: ExecutionProviderRequest;
  /** CUDA device index. */
  gpu?: number;
  /** How a fixture in the PyTorch layout is converted (output dtype, cache folder). */
  convert?: Pick<ConvertOptions, 'dtype' | 'cacheRoot'>;
  /** Convert the UNet to fp16 at load (optimizer/float16.ts) and judge with the fp16 tolerances (tolerance.ts). */
  fp16?: boolean;
}

/** max |ours − ref|; NaN as soon as either side has a NaN (a NaN never passes). */
export function maxAbsError(ours: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (ours.length !== ref.length) throw new Error(`size mismatch: ours has ${ours.length} values, the reference ${ref.length}`);
  let m = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(ours[i]! - ref[i]!);
    if (Number.isNaN(d)) return NaN;
    if (d > m) m = d;
  }
  return m;
}

/** 3.1e-07 style (two-digit exponent), as NumPy prints. */
function fmt(x: number): string {
  return Number.isNaN(x) ? 'NaN' : x.toExponential(1).replace(/e([+-])(\d)$/, 'e$10$2');
}

function line(c: ConformanceCase): string {
  const head = `${c.status.toUpperCase().padEnd(4)}  ${c.name.padEnd(34)}`;
  if (c.tol === 0) return `${head}  ${c.detail ?? ''}`.trimEnd();
  return `${head}  max|err| ${fmt(c.maxErr)}  (tol ${fmt(c.tol)})${c.detail ? `  ${c.detail}` : ''}`;
}

async function check(c: Case, factor = 1): Promise<ConformanceCase> {
  const verdict = (ok: boolean) => ({ status: ok ? ('pass' as const) : ('fail' as const), pass: ok });
  try {
    const outcome = await c.compute();
    if (outcome.kind === 'exact') return { name: c.name, ...verdict(outcome.mismatches === 0), maxErr: outcome.mismatches, tol: 0, detail: outcome.detail };
    const maxErr = maxAbsError(outcome.ours, outcome.reference);
    const tol = Math.max((outcome.tol ?? tolerance(outcome.reference)) * factor, outcome.atLeast ?? 0);
    return { name: c.name, ...verdict(maxErr <= tol), maxErr, tol };
  } catch (e) {
    return { name: c.name, ...verdict(false), maxErr: NaN, tol: NaN, detail: (e as Error).message };
  }
}

/**
 * Runs every case of a fixture: a metrics fixture (reference/metrics.json and a clip/ folder: the
 * cases of metrics-cases.ts) or a Stable Diffusion one (reference/manifest.json: sd-cases.ts).
 */
export async function runConformance(dirIn: string, options: ConformanceOptions = {}): Promise<ConformanceResult> {
  const log = options.log ?? ((text: string) => console.log(text));
  const dir = path.resolve(dirIn);
  if (existsSync(dir) && isMetricsFixture(dir)) return runMetricsConformance(dir, log, options);
  const manifest = await readManifest(dir);
  const t0 = performance.now();
  const { cases, record } = recorder(log);

  let pipe: SdPipeline;
  let modelDir = dir;
  try {
    // A fixture in the PyTorch layout (tiny-sd-diffusers) is converted once, as Load Model does.
    if (needsConversion(dir)) modelDir = await ensureConverted(dir, { ...options.convert, log: (l) => log(`convert: ${l.trim()}`) });
    pipe = await SdPipeline.load(modelDir, {
      executionProvider: options.executionProvider ?? 'auto',
      session: { deviceId: options.gpu ?? 0 },
      ...(options.fp16 !== undefined ? { fp16: options.fp16 } : {}),
    });
  } catch (e) {
    record({ name: 'load_model', status: 'fail', pass: false, maxErr: NaN, tol: NaN, detail: (e as Error).message });
    return summarize(cases, log, 'none', t0);
  }
  log(`model ${modelDir} (${pipe.info.executionProviderNote}; UNet ${pipe.info.graphOptimizer})`);
  try {
    const fp16 = pipe.info.unetFp16 && options.fp16 === true;
    const fx = new Fixture(dir, manifest, pipe, fp16);
    for (const row of SD_CASES) for (const c of await row.cases(fx)) record(await check(c, fp16 ? FP16_TOLERANCE_FACTOR : 1));
  } finally {
    await pipe.release();
  }
  await runLoraCases(dir, manifest, options, log, record);
  return summarize(cases, log, pipe.info.executionProvider, t0);
}

/**
 * A fixture with lora/manifest.json and lora_* references: the model converted again with the LoRA merged
 * at the manifest's strengths, and the LoRA cases run on it.
 */
async function runLoraCases(
  dir: string,
  manifest: Manifest,
  options: ConformanceOptions,
  log: (line: string) => void,
  record: (c: ConformanceCase) => void,
): Promise<void> {
  const loraManifest = path.join(dir, 'lora', 'manifest.json');
  if (!existsSync(loraManifest) || !readdirSync(path.join(dir, 'reference')).some((f) => f.startsWith('lora_'))) return;
  let pipe: SdPipeline;
  try {
    const m = JSON.parse(await readFile(loraManifest, 'utf8')) as LoraManifest;
    if (typeof m.file !== 'string' || typeof m.strength !== 'number') throw new Error(`${loraManifest}: "file" and "strength" are required`);
    const lora = { file: path.resolve(dir, m.file), unet: m.strength_unet ?? m.strength, text: m.strength_text ?? m.strength };
    log(`LoRA ${m.file} at strength ${lora.unet} (UNet) / ${lora.text} (text encoder)`);
    const modelDir = await ensureConverted(dir, { ...options.convert, loras: [lora], log: (l) => log(`convert: ${l.trim()}`) });
    pipe = await SdPipeline.load(modelDir, { executionProvider: options.executionProvider ?? 'auto', session: { deviceId: options.gpu ?? 0 } });
  } catch (e) {
    record({ name: 'load_lora', status: 'fail', pass: false, maxErr: NaN, tol: NaN, detail: (e as Error).message });
    return;
  }
  try {
    const fx = new Fixture(dir, manifest, pipe);
    for (const row of LORA_CASES) for (const c of await row.cases(fx)) record(await check(c));
  } finally {
    await pipe.release();
  }
}

/** The cases of one run, each printed as it is recorded. */
function recorder(log: (line: string) => void): { cases: ConformanceCase[]; record(c: ConformanceCase): void } {
  const cases: ConformanceCase[] = [];
  return {
    cases,
    record(c) {
      cases.push(c);
      log(line(c));
    },
  };
}

async function runMetricsConformance(dir: string, log: (line: string) => void, options: ConformanceOptions): Promise<ConformanceResult> {
  const spec = await readMetricsSpec(dir);
  const t0 = performance.now();
  const { cases, record } = recorder(log);
  let clip: ClipModel;
  try {
    clip = await ClipModel.load(path.join(dir, 'clip'), options.executionProvider ?? 'auto', { deviceId: options.gpu ?? 0 });
  } catch (e) {
    record({ name: 'load_clip', status: 'fail', pass: false, maxErr: NaN, tol: NaN, detail: (e as Error).message });
    return summarize(cases, log, 'none', t0);
  }
  log(`metrics fixture ${dir}: ${spec.cases.length} generated images, CLIP from clip/`);
  try {
    const fx = new MetricsFixture(dir, spec, clip);
    for (const row of METRICS_CASES) for (const c of row.cases(fx)) record(await check(c));
  } finally {
    await clip.release();
  }
  return summarize(cases, log, options.executionProvider ?? 'auto', t0);
}

function summarize(cases: ConformanceCase[], log: (line: string) => void, ep: string, t0: number): ConformanceResult {
  const passed = cases.filter((c) => c.pass).length;
  const failed = cases.length - passed;
  log(`${failed === 0 ? 'OK' : 'FAILED'}: ${passed} passed, ${failed} failed in ${((performance.now() - t0) / 1000).toFixed(1)} s (${ep})`);
  return { cases, passed, failed, executionProvider: ep };
}

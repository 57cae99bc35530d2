/**
 * A reference fixture as the conformance cases see it: its manifest (every setting is read from it,
 * never assumed), its reference arrays (read once, on demand), and the loaded model with the
 * conveniences the cases share (prompt embeddings, masks, the reference latent code).
 */
import { existsSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { CycleCode } from '../engine/diffusion/cycle.ts';
import { makeMask } from '../engine/diffusion/mask.ts';
import { splitChunks } from '../engine/diffusion/noise.ts';
import { ddimSchedule } from '../engine/diffusion/schedule.ts';
import type { SdPipeline } from '../engine/sd/pipeline.ts';
import type { MaskValue, Schedule } from '../engine/values.ts';
import { readNpyFloat32, type NpyArray } from './npy.ts';

export interface Manifest {
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

function checkManifest(json: unknown, file: string): Manifest {
  const m = json as Partial<Manifest> | null;
  const problems: string[] = [];
  const numbers = ['height', 'width', 'latent_height', 'latent_width', 'steps', 'skip', 'eta', 'encoder_guidance', 'decoder_guidance'] as const;
  for (const k of numbers) {
    if (typeof m?.[k] !== 'number' || !Number.isFinite(m[k])) problems.push(`${k} must be a number`);
  }
  for (const k of ['uncond', 'source', 'style1', 'style2'] as const) {
    if (typeof m?.prompts?.[k] !== 'string') problems.push(`prompts.${k} must be a string`);
  }
  if (problems.length > 0) throw new FixtureError(`${file}: ${problems.join('; ')}`);
  return m as Manifest;
}

/** The fixture folder's manifest, or a FixtureError saying why there is none. */
export async function readManifest(dir: string): Promise<Manifest> {
  const file = path.join(dir, 'reference', 'manifest.json');
  if (!existsSync(dir)) throw new FixtureError(`fixture folder not found: ${dir}`);
  if (!existsSync(file)) throw new FixtureError(`not a conformance fixture: ${file} is missing`);
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new FixtureError(`${file} is not valid JSON: ${(e as Error).message}`);
  }
  return checkManifest(json, file);
}

export class Fixture {
  readonly refDir: string;
  private readonly files: Set<string>;
  private readonly arrays = new Map<string, Promise<NpyArray<Float32Array>>>();
  private referenceCode: CycleCode | null = null;

  constructor(
    readonly dir: string,
    readonly manifest: Manifest,
    readonly pipe: SdPipeline,
    /** Judged with the fp16 tolerances (tolerance.ts): the UNet was converted to fp16 at load. */
    readonly fp16 = false,
  ) {
    this.refDir = path.join(dir, 'reference');
    this.files = new Set(readdirSync(this.refDir));
  }

  /** Whether reference/<file> exists (cases for absent references are not run). */
  has(file: string): boolean {
    return this.files.has(file);
  }

  /** Reference file names, sorted. */
  list(): string[] {
    return [...this.files].sort();
  }

  /** reference/<name>.npy, read once. */
  ref(name: string): Promise<NpyArray<Float32Array>> {
    const file = `${name}.npy`;
    if (!this.has(file)) return Promise.reject(new Error(`reference/${file} is missing`));
    let hit = this.arrays.get(file);
    if (!hit) this.arrays.set(file, (hit = readNpyFloat32(path.join(this.refDir, file))));
    return hit;
  }

  async json<T>(file: string): Promise<T> {
    return JSON.parse(await readFile(path.join(this.refDir, file), 'utf8')) as T;
  }

  /** Text-encoder embedding of a prompt (cached by the pipeline). */
  async text(prompt: string): Promise<Float32Array> {
    return (await this.pipe.encodeText(prompt)).embedding;
  }

  /** The manifest's schedule on the model's scheduler config. */
  get schedule(): Schedule {
    return ddimSchedule(this.manifest.steps, this.manifest.eta, this.pipe.info.scheduler);
  }

  /** R = steps − skip. */
  get refinementSteps(): number {
    return this.manifest.steps - this.manifest.skip;
  }

  /** Logistic sharpness k: an explicit field, else the "k=20" of the convention text, else 20. */
  get maskSharpness(): number {
    const m = this.manifest;
    if (typeof m.mask_sharpness === 'number') return m.mask_sharpness;
    const k = /\bk\s*=\s*([0-9]+(?:\.[0-9]+)?)/.exec(m.mask_convention ?? '')?.[1];
    return k ? Number(k) : 20;
  }

  mask(shape: 'linear' | 'logistic'): MaskValue {
    return makeMask({ shape, direction: 'left-right', sharpness: this.maskSharpness });
  }

  /** The reference latent code (cycle_z.npy), so that each decoder is measured on its own. */
  async code(): Promise<CycleCode> {
    if (!this.referenceCode) {
      const { latent_width: w, latent_height: h, skip } = this.manifest;
      const z = await this.ref('cycle_z');
      const R = this.refinementSteps;
      const C = this.pipe.info.latentChannels;
      if (z.data.length !== (R + 1) * C * w * h) throw new Error(`cycle_z.npy has shape [${z.shape.join(', ')}], expected [${R + 1}, 1, ${C}, ${h}, ${w}]`);
      this.referenceCode = { z: splitChunks(z.data, z.shape[0]!), schedule: this.schedule, skip, width: w, height: h };
    }
    return this.referenceCode;
  }
}

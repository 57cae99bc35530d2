/**
 * The conformance cases of a metrics fixture (`reference/metrics.json` beside a `clip/` split CLIP
 * export, see ../shared/fixtures/README.md → metrics/): the CLIP model on the reference pixel values
 * and prompt, our CLIP preprocessing against the reference pixel values, and every metric of every
 * case of metrics.json, each within the tolerance the file states. Image sizes, prompts and cases
 * are read from the fixture, so other fixtures of the format pass through unchanged.
 */
import { existsSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { clipPixelValues } from '../engine/metrics/clip-preprocess.ts';
import { evaluateImage, type StylePrompts } from '../engine/metrics/evaluate.ts';
import { METRIC_NAMES, type MetricName, type MetricValues } from '../engine/metrics/names.ts';
import { ClipModel } from '../engine/evaluation-models/clip-model.ts';
import type { ImageValue } from '../engine/values.ts';
import { FixtureError } from './fixture.ts';
import { readNpyFloat32 } from './npy.ts';
import type { Case } from './sd-cases.ts';

export interface MetricsSpec {
  prompts: { source: string; style1_left: string; style2_right: string };
  cases: ({ generated: string; original: string } & Partial<Record<MetricName, number>>)[];
  tolerance: Partial<Record<MetricName | 'clip_model_level' | 'clip_end_to_end', number>>;
}

const CLIP_SCORES = new Set<MetricName>(['clip', 'clip_left', 'clip_right', 'dclip', 'dclip_left', 'dclip_right']);

/** Whether `dir` is a metrics fixture (reference/metrics.json and a clip/ folder). */
export function isMetricsFixture(dir: string): boolean {
  return existsSync(path.join(dir, 'reference', 'metrics.json')) && existsSync(path.join(dir, 'clip'));
}

export async function readMetricsSpec(dir: string): Promise<MetricsSpec> {
  const file = path.join(dir, 'reference', 'metrics.json');
  let j: Partial<MetricsSpec>;
  try {
    j = JSON.parse(await readFile(file, 'utf8')) as Partial<MetricsSpec>;
  } catch (e) {
    throw new FixtureError(`${file} is not valid JSON: ${(e as Error).message}`);
  }
  const problems: string[] = [];
  for (const k of ['source', 'style1_left', 'style2_right'] as const) if (typeof j.prompts?.[k] !== 'string') problems.push(`prompts.${k} must be a string`);
  if (!Array.isArray(j.cases) || j.cases.some((c) => typeof c?.generated !== 'string' || typeof c?.original !== 'string'))
    problems.push('cases must be a list of { generated, original, <metric>: value }');
  if (!j.tolerance || typeof j.tolerance !== 'object') problems.push('tolerance must be an object');
  if (problems.length > 0) throw new FixtureError(`${file}: ${problems.join('; ')}`);
  return j as MetricsSpec;
}

/** reference/<name>.npy, an HWC float image in [0,1], as the engine's CHW image. */
async function readImage(refDir: string, name: string): Promise<ImageValue> {
  const a = await readNpyFloat32(path.join(refDir, `${name}.npy`));
  const [H, W, C] = a.shape as [number, number, number];
  if (a.shape.length !== 3 || C !== 3) throw new Error(`${name}.npy has shape [${a.shape.join(', ')}], expected [H, W, 3]`);
  const plane = W * H;
  const data = new Float32Array(3 * plane);
  for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) data[c * plane + p] = a.data[3 * p + c]!;
  return { width: W, height: H, data };
}

export class MetricsFixture {
  readonly refDir: string;
  private readonly files: Set<string>;
  private readonly images = new Map<string, Promise<ImageValue>>();
  private readonly evaluations = new Map<string, Promise<MetricValues>>();

  constructor(
    readonly dir: string,
    readonly spec: MetricsSpec,
    readonly clip: ClipModel,
  ) {
    this.refDir = path.join(dir, 'reference');
    this.files = new Set(readdirSync(this.refDir));
  }

  has(file: string): boolean {
    return this.files.has(file);
  }

  get prompts(): StylePrompts {
    const p = this.spec.prompts;
    return { source: p.source, styles: [p.style1_left, p.style2_right] };
  }

  image(name: string): Promise<ImageValue> {
    let hit = this.images.get(name);
    if (!hit) this.images.set(name, (hit = readImage(this.refDir, name)));
    return hit;
  }

  /** Every metric of one generated image against its original, computed once for all its cases. */
  evaluate(generated: string, original: string): Promise<MetricValues> {
    const key = `${generated}\0${original}`;
    let hit = this.evaluations.get(key);
    if (!hit) {
      hit = (async () => evaluateImage(await this.image(generated), await this.image(original), this.prompts, { clip: this.clip }))();
      this.evaluations.set(key, hit);
    }
    return hit;
  }

  /** The stated tolerance of a metric (CLIP scores share clip_end_to_end). */
  tolerance(metric: MetricName): number {
    const t = this.spec.tolerance;
    const tol = CLIP_SCORES.has(metric) ? t.clip_end_to_end : t[metric];
    if (typeof tol !== 'number') throw new Error(`metrics.json states no tolerance for ${metric}`);
    return tol;
  }
}

/** reference/<name>.npy against ours, within `tol`. */
function arrayCase(fx: MetricsFixture, name: string, tol: number, ours: () => Promise<ArrayLike<number>>): Case {
  return {
    name,
    compute: async () => ({ kind: 'numeric', reference: (await readNpyFloat32(path.join(fx.refDir, `${name}.npy`))).data, ours: await ours(), tol }),
  };
}

export const METRICS_CASES: { stage: string; cases: (fx: MetricsFixture) => Case[] }[] = [
  {
    stage: 'CLIP model level: image_embeds of the reference pixel_values, text_embeds of style 1',
    cases: (fx) => {
      const tol = fx.spec.tolerance.clip_model_level ?? 1e-4;
      const out: Case[] = [];
      if (fx.has('clip_image_embeds_original.npy') && fx.has('clip_pixel_values_original.npy')) {
        out.push(
          arrayCase(fx, 'clip_image_embeds_original', tol, async () => {
            const pv = await readNpyFloat32(path.join(fx.refDir, 'clip_pixel_values_original.npy'));
            return (await fx.clip.embedPixels([pv.data]))[0]!;
          }),
        );
      }
      if (fx.has('clip_text_embeds_style1.npy')) out.push(arrayCase(fx, 'clip_text_embeds_style1', tol, () => fx.clip.textEmbedding(fx.prompts.styles[0]!)));
      return out;
    },
  },
  {
    stage: 'CLIP preprocessing: pixel_values of the original (tolerance: one 8-bit level)',
    cases: (fx) => {
      if (!fx.has('clip_pixel_values_original.npy')) return [];
      const pre = fx.clip.preprocessor;
      const oneLevel = pre.rescale / Math.min(...pre.std);
      return [arrayCase(fx, 'clip_pixel_values_original', oneLevel, async () => clipPixelValues(await fx.image('original'), pre))];
    },
  },
  {
    stage: 'metrics of every case of metrics.json, each within its stated tolerance',
    cases: (fx) =>
      fx.spec.cases.flatMap((c) =>
        METRIC_NAMES.filter((m) => typeof c[m] === 'number').map((m) => ({
          name: `${c.generated}:${m}`,
          async compute() {
            const ours = (await fx.evaluate(c.generated, c.original))[m];
            if (ours === undefined) throw new Error(`${m} was not computed (no model for it)`);
            return { kind: 'numeric' as const, ours: [ours], reference: [c[m]!], tol: fx.tolerance(m) };
          },
        })),
      ),
  },
];

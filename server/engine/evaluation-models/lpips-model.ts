/**
 * LPIPS from a folder the user exports once from the `lpips` package (layout in
 * docs/lpips-onnx.md):
 *   features.onnx  input `image` [N, 3, H, W] (already scaled: (2x − 1 − shift) / scale), one output
 *                  per LPIPS layer [N, C_l, h_l, w_l] (VGG: relu1_2 … relu5_3), in head order
 *   lpips.json     { "heads": [[w_l0 … ], …] (the non-negative 1×1 weights of each linear head),
 *                    "outputs"?: [names in head order], "shift"?: [3], "scale"?: [3] }
 * The math (unit-normalise, weighted squared difference, spatial mean, sum) is metrics/lpips.ts.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../errors.ts';
import type { PerceptualDistance } from '../metrics/evaluate.ts';
import { LPIPS_SCALE, LPIPS_SHIFT, lpipsDistance, lpipsInput, type FeatureMap } from '../metrics/lpips.ts';
import type { ImageValue } from '../values.ts';
import { requireSameSize } from '../metrics/image-metrics.ts';
import { fingerprintFolder } from '../sd/model-folder.ts';
import { ModelRegistry, type ModelHandle, type ModelLoader } from '../runtime/registry.ts';
import {
  findInput,
  floatTensor,
  inputInfos,
  numericDim,
  outputInfos,
  tensorToFloat32,
  type ExecutionProviderRequest,
  type InferenceSession,
} from '../runtime/runtime.ts';
import { createSession, type SessionSettings } from '../runtime/sessions.ts';

export interface LpipsConfig {
  heads: number[][];
  outputs?: string[];
  shift: number[];
  scale: number[];
}

function parseConfig(json: unknown, file: string): LpipsConfig {
  const j = json as Partial<LpipsConfig> | null;
  const numbers = (v: unknown, n?: number) =>
    Array.isArray(v) && (n === undefined || v.length === n) && v.every((x) => typeof x === 'number' && Number.isFinite(x));
  if (!j || !Array.isArray(j.heads) || j.heads.length === 0 || !j.heads.every((h) => numbers(h) && h.length > 0)) {
    throw new UserError(`${file}: "heads" must be a list of weight lists, one per feature layer`, 'lpips');
  }
  if (j.outputs !== undefined && (!Array.isArray(j.outputs) || j.outputs.length !== j.heads.length || !j.outputs.every((o) => typeof o === 'string'))) {
    throw new UserError(`${file}: "outputs" must name one feature output per head (${j.heads.length})`, 'lpips');
  }
  for (const k of ['shift', 'scale'] as const)
    if (j[k] !== undefined && !numbers(j[k], 3)) throw new UserError(`${file}: "${k}" must be three numbers`, 'lpips');
  return { heads: j.heads, outputs: j.outputs, shift: j.shift ?? [...LPIPS_SHIFT], scale: j.scale ?? [...LPIPS_SCALE] };
}

export class LpipsModel implements PerceptualDistance {
  private released = false;

  private constructor(
    readonly dir: string,
    readonly config: LpipsConfig,
    private readonly session: InferenceSession,
    private readonly outputs: string[],
  ) {}

  static async load(dirIn: string, executionProvider: ExecutionProviderRequest = 'auto', settings: SessionSettings = {}): Promise<LpipsModel> {
    const dir = path.resolve(dirIn);
    const cfgFile = path.join(dir, 'lpips.json');
    let text: string;
    try {
      text = await readFile(cfgFile, 'utf8');
    } catch {
      throw new UserError(`not an LPIPS ONNX folder: ${cfgFile} is missing (see docs/lpips-onnx.md)`, 'lpips');
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new UserError(`${cfgFile} is not valid JSON: ${(e as Error).message}`, 'lpips');
    }
    const config = parseConfig(json, cfgFile);
    const { session } = await createSession(path.join(dir, 'features.onnx'), executionProvider, settings).catch((e: Error) => {
      throw new UserError(`cannot load features.onnx in ${dir}: ${e.message.split('\n')[0]}`, 'lpips');
    });
    const names = outputInfos(session).map((o) => o.name);
    const outputs = config.outputs ?? names;
    const unknown = outputs.filter((o) => !names.includes(o));
    if (unknown.length > 0 || outputs.length !== config.heads.length) {
      await session.release();
      throw new UserError(
        `features.onnx in ${dir} has outputs ${names.join(', ')}; lpips.json needs ${config.heads.length} (one per head)${unknown.length ? `, and names ${unknown.join(', ')}` : ''}`,
        'lpips',
      );
    }
    return new LpipsModel(dir, config, session, outputs);
  }

  /** The feature maps of a batch of images (scaled as LPIPS does). */
  private async features(images: ImageValue[]): Promise<FeatureMap[][]> {
    if (this.released) throw new Error('this LPIPS model was released; load it again');
    const { width: W, height: H } = images[0]!;
    const input = findInput(inputInfos(this.session), ['image', 'input'], 0, 'image', 'features.onnx');
    const run = async (batch: ImageValue[]): Promise<FeatureMap[][]> => {
      const data = new Float32Array(batch.length * 3 * W * H);
      batch.forEach((im, i) => data.set(lpipsInput(im.data, W * H, this.config.shift, this.config.scale), i * 3 * W * H));
      const res = await this.session.run({ [input.name]: floatTensor(input.type, data, [batch.length, 3, H, W]) }, this.outputs);
      return batch.map((_, i) =>
        this.outputs.map((name) => {
          const t = res[name]!;
          const [n, c, h, w] = t.dims as number[];
          const all = tensorToFloat32(t);
          const size = all.length / n!;
          return { channels: c!, height: h!, width: w!, data: all.subarray(i * size, (i + 1) * size) };
        }),
      );
    };
    if (numericDim(input.shape[0]) === 1) return [(await run([images[0]!]))[0]!, (await run([images[1]!]))[0]!];
    return run(images);
  }

  async distance(a: ImageValue, b: ImageValue): Promise<number> {
    requireSameSize(a, b, 'the two images of LPIPS');
    const [fa, fb] = await this.features([a, b]);
    return lpipsDistance(fa!, fb!, this.config.heads);
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.session.release().catch(() => undefined);
  }
}

export type LpipsHandle = ModelHandle<LpipsModel>;

/** Loaded LPIPS models (two at most); the server keeps one in its services (server/services/loaded-models.ts). */
export class LpipsRegistry extends ModelRegistry<LpipsModel> {
  /** `load`: how a folder becomes a model (a test's stand-in; default LpipsModel.load). */
  constructor(maxLoaded = 2, load: ModelLoader<LpipsModel> = (dir, ep, session) => LpipsModel.load(dir, ep, session)) {
    super(load, maxLoaded);
  }

  /** A handle on an LPIPS folder, its identity the folder's fingerprint. */
  async open(dir: string, executionProvider: ExecutionProviderRequest, session: SessionSettings = {}): Promise<LpipsHandle> {
    return this.handle(dir, executionProvider, await fingerprintFolder(dir), session);
  }
}

/**
 * Live previews decoded by a small network in TAESD's layout (madebyollin/taesd) instead of the
 * latent→RGB projection: a folder the user gives the server (`--preview-decoder DIR`) holding
 *
 *   taesd_decoder.onnx   input:  the scaled latent [1, 4, h, w], x̂0 as the UNet sees it (SD's scaling
 *                                factor 0.18215 applied: the latents TAESD's decoder takes), float32 or float16;
 *                        output: RGB [1, 3, 8h, 8w] in about [0, 1] (clamped here, as taesd.py does).
 *
 * A frame then costs a decoder run instead of 4 multiply-adds per pixel. TAESD's decoder (1.2 M
 * parameters, all 3×3 convolutions at up to full image size) takes milliseconds on a GPU and can take
 * a sizeable part of a step on a CPU, so BudgetedPreviewDecoder keeps it to a share of the run time.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.ts';
import type { ImageValue } from '../values.ts';
import {
  floatTensor,
  inputInfos,
  numericDim,
  outputInfos,
  tensorToFloat32,
  type ExecutionProviderRequest,
  type InferenceSession,
  type TensorInfo,
} from '../runtime/runtime.ts';
import { createSession, type ProviderChoice, type SessionSettings } from '../runtime/sessions.ts';

export const PREVIEW_DECODER_FILE = 'taesd_decoder.onnx';

const LAYOUT = `${PREVIEW_DECODER_FILE} taking the scaled latent [1, 4, h, w] and returning RGB [1, 3, 8h, 8w] in [0, 1]`;

/** The share of wall-clock time a preview decoder may take (the bench's promise is 5% for all preview work). */
const PREVIEW_DECODER_SHARE = 0.04;

/** A rank-4 tensor whose channel axis is `channels` or symbolic. */
function hasChannels(info: TensorInfo | undefined, channels: number): boolean {
  if (!info || (info.rankKnown && info.shape.length !== 4)) return false;
  const c = numericDim(info.shape[1]);
  return c === null || c === channels;
}

export class PreviewDecoder {
  readonly stats = { calls: 0, ms: 0 };
  private released = false;

  private constructor(
    readonly dir: string,
    readonly provider: ProviderChoice,
    private readonly session: InferenceSession,
    private readonly input: TensorInfo,
    private readonly output: string,
  ) {}

  /** Opens DIR/taesd_decoder.onnx; throws a UserError naming the layout when the folder or the model does not fit it. */
  static async load(dirIn: string, executionProvider: ExecutionProviderRequest = 'auto', settings: SessionSettings = {}): Promise<PreviewDecoder> {
    const dir = path.resolve(dirIn);
    const file = path.join(dir, PREVIEW_DECODER_FILE);
    if (!existsSync(file)) throw new UserError(`not a preview decoder folder: ${file} is missing (expected ${LAYOUT})`, 'preview');
    const created = await createSession(file, executionProvider, settings).catch((e: Error) => {
      throw new UserError(`cannot load ${file}: ${e.message.split('\n')[0]}`, 'preview');
    });
    const inputs = inputInfos(created.session);
    const outputs = outputInfos(created.session);
    const output = outputs.find((o) => o.name === 'sample') ?? outputs[0];
    const input = inputs[0];
    const floats = ['float32', 'float16'];
    if (inputs.length !== 1 || !floats.includes(input!.type) || !hasChannels(input, 4) || !output || !floats.includes(output.type) || !hasChannels(output, 3)) {
      await created.session.release();
      const describe = (list: TensorInfo[]) => list.map((t) => `${t.name} ${t.type} [${t.shape.join(', ')}]`).join(', ') || 'none';
      throw new UserError(
        `${file} does not have the preview decoder layout (${LAYOUT}): its inputs are ${describe(inputs)}, its outputs ${describe(outputs)}`,
        'preview',
      );
    }
    return new PreviewDecoder(dir, created, created.session, input!, output.name);
  }

  /** Scaled latent [4, h, w] → image [3, 8h, 8w] (whatever size the decoder returns), clamped to [0, 1]. */
  async decode(latent: Float32Array, width: number, height: number): Promise<ImageValue> {
    if (this.released) throw new Error('this preview decoder was released');
    if (latent.length !== 4 * width * height)
      throw new Error(`preview decoder: a 4×${height}×${width} latent has ${4 * width * height} values, got ${latent.length}`);
    const t0 = performance.now();
    const res = await this.session.run({ [this.input.name]: floatTensor(this.input.type, latent, [1, 4, height, width]) }, [this.output]);
    const out = res[this.output]!;
    const [, c, h, w] = out.dims as number[];
    if (out.dims.length !== 4 || c !== 3) throw new Error(`${PREVIEW_DECODER_FILE} returned [${out.dims.join(', ')}], expected [1, 3, H, W]`);
    // float32 outputs are onnxruntime's fresh array (clamped in place); fp16 ones a new conversion.
    const data = tensorToFloat32(out).subarray(0, 3 * h! * w!);
    for (let i = 0; i < data.length; i++) {
      const v = data[i]!;
      data[i] = v > 0 ? (v < 1 ? v : 1) : 0; // NaN → 0
    }
    this.stats.calls++;
    this.stats.ms += performance.now() - t0;
    return { width: w!, height: h!, data };
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.session.release().catch(() => undefined);
  }
}

/**
 * The decoder as the samplers' preview path uses it (nodes/types.ts LatentPreviewDecoder): frames are
 * offered at the executor's interval as always, and a frame is decoded only when the time since the last
 * decode ended is at least (1/share − 1) times what that decode took, and none is running: decoding then
 * takes at most `share` of the wall-clock time, whatever the machine. A decoder that fails once is
 * marked unusable, and previews go back to the projection.
 */
export class BudgetedPreviewDecoder {
  usable = true;
  private busy = false;
  private lastMs = 0;
  private lastEnd = -Infinity;

  /** Why it stopped being usable (its first failure). */
  failure: Error | null = null;

  constructor(
    readonly decoder: Pick<PreviewDecoder, 'decode' | 'release' | 'stats'>,
    readonly opts: { share?: number; now?: () => number; onFailure?: (err: Error) => void } = {},
  ) {
    this.share = opts.share ?? PREVIEW_DECODER_SHARE;
    this.now = opts.now ?? (() => performance.now());
  }

  readonly share: number;
  private readonly now: () => number;

  /** True when a frame decoded now keeps the decoder within its share. */
  due(): boolean {
    return this.usable && !this.busy && this.now() - this.lastEnd >= this.lastMs * (1 / this.share - 1);
  }

  async decode(latent: Float32Array, width: number, height: number): Promise<ImageValue> {
    this.busy = true;
    const t0 = this.now();
    try {
      return await this.decoder.decode(latent, width, height);
    } catch (e) {
      if (this.usable) {
        this.usable = false;
        this.failure = e as Error;
        this.opts.onFailure?.(this.failure);
      }
      throw e;
    } finally {
      this.busy = false;
      this.lastEnd = this.now();
      this.lastMs = this.lastEnd - t0;
    }
  }

  release(): Promise<void> {
    return this.decoder.release();
  }
}

/** Loads DIR's preview decoder behind the time budget (the server's and the bench's `--preview-decoder`). */
export async function loadPreviewDecoder(
  dir: string,
  executionProvider: ExecutionProviderRequest,
  settings: SessionSettings = {},
  onFailure?: (err: Error) => void,
): Promise<BudgetedPreviewDecoder> {
  return new BudgetedPreviewDecoder(await PreviewDecoder.load(dir, executionProvider, settings), onFailure ? { onFailure } : {});
}

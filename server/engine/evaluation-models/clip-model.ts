/**
 * A CLIP model in the common split ONNX export: `text_model.onnx` (input_ids → text_embeds) and
 * `vision_model.onnx` (pixel_values → image_embeds), at the folder's root or under `onnx/` (as the
 * Hub's split exports keep them), with the CLIP BPE tokenizer (`tokenizer/`, or vocab.json and
 * merges.txt at the root) and the image preprocessor config (`preprocessor_config.json` or
 * `preprocessor.json`). Sessions are created once; text embeddings are cached per prompt and image
 * embeddings per picture content, so an original scored against many generated images is embedded once.
 */
import { createHash } from 'node:crypto';
import { readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { clipPixelValues, halves, parsePreprocessor, CLIP_DEFAULTS, type ClipPreprocessor } from '../metrics/clip-preprocess.ts';
import type { ImageEmbeddings } from '../metrics/clip-score.ts';
import type { ClipEncoder } from '../metrics/evaluate.ts';
import { UserError } from '../errors.ts';
import type { ImageValue } from '../values.ts';
import { fingerprintFolder } from '../sd/model-folder.ts';
import { ModelRegistry, type ModelHandle, type ModelLoader } from '../runtime/registry.ts';
import {
  findInput,
  floatTensor,
  inputInfos,
  numberTensor,
  numericDim,
  outputInfos,
  tensorToFloat32,
  type ExecutionProviderRequest,
  type InferenceSession,
  type OrtTensor,
} from '../runtime/runtime.ts';
import { createSession, type SessionSettings } from '../runtime/sessions.ts';
import { ClipTokenizer } from '../text/tokenizer.ts';

/** Image embeddings kept per model (originals and recent generated images). */
const IMAGE_CACHE_LIMIT = 64;

async function isFile(p: string): Promise<boolean> {
  return stat(p).then(
    (s) => s.isFile(),
    () => false,
  );
}
async function isDir(p: string): Promise<boolean> {
  return stat(p).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

/** The first of `names` (relative to dir) that is a file, or null. */
async function firstFile(dir: string, names: string[]): Promise<string | null> {
  for (const n of names) if (await isFile(path.join(dir, n))) return path.join(dir, n);
  return null;
}

/**
 * The tokenizer folder: `tokenizer/`, or the root when vocab.json sits there. A `tokenizer` file that
 * holds a relative path is a symbolic link checked out as text (git without symlinks): followed.
 */
async function tokenizerDir(dir: string): Promise<string | null> {
  const sub = path.join(dir, 'tokenizer');
  if (await isDir(sub)) return sub;
  if (await isFile(sub)) {
    const target = (await readFile(sub, 'utf8')).trim();
    // Relative to where the file really is, as a link's target would be.
    const resolved = path.resolve(path.dirname(await realpath(sub)), target);
    if (target.length > 0 && target.length < 500 && !target.includes('\n') && (await isDir(resolved))) return resolved;
  }
  if (await isFile(path.join(dir, 'vocab.json'))) return dir;
  return null;
}

export interface ClipFiles {
  text: string;
  vision: string;
  tokenizer: string;
  preprocessor: string | null;
}

/** Finds the files of a split CLIP export; one error naming everything missing. */
export async function findClipFiles(dir: string): Promise<ClipFiles> {
  if (!(await isDir(dir))) throw new UserError(`CLIP model folder not found: ${dir}`, 'clip');
  const text = await firstFile(dir, ['text_model.onnx', 'onnx/text_model.onnx']);
  const vision = await firstFile(dir, ['vision_model.onnx', 'onnx/vision_model.onnx']);
  const tokenizer = await tokenizerDir(dir);
  const missing = [!text && 'text_model.onnx', !vision && 'vision_model.onnx', !tokenizer && 'a tokenizer (tokenizer/ or vocab.json + merges.txt)'].filter(
    Boolean,
  );
  if (missing.length > 0) {
    throw new UserError(`not a split CLIP ONNX export: ${dir} lacks ${missing.join(', ')} (fetch one with \`npm run fetch-model -- --kind clip\`)`, 'clip');
  }
  const preprocessor = await firstFile(dir, ['preprocessor_config.json', 'preprocessor.json']);
  return { text: text!, vision: vision!, tokenizer: tokenizer!, preprocessor };
}

export class ClipModel implements ClipEncoder {
  /** Session runs so far (an image call embeds the picture and its halves in one batch). */
  readonly stats = { imageCalls: 0, textCalls: 0 };
  private readonly textCache = new Map<string, Promise<Float32Array>>();
  private readonly imageCache = new Map<string, Promise<ImageEmbeddings>>();
  private released = false;

  private constructor(
    readonly dir: string,
    readonly preprocessor: ClipPreprocessor,
    readonly tokenizer: ClipTokenizer,
    private readonly text: InferenceSession,
    private readonly vision: InferenceSession,
  ) {}

  static async load(dirIn: string, executionProvider: ExecutionProviderRequest = 'auto', session: SessionSettings = {}): Promise<ClipModel> {
    const dir = path.resolve(dirIn);
    const files = await findClipFiles(dir);
    const preprocessor = files.preprocessor
      ? parsePreprocessor(JSON.parse(await readFile(files.preprocessor, 'utf8')), path.relative(dir, files.preprocessor))
      : CLIP_DEFAULTS;
    const tokenizer = await ClipTokenizer.fromFolder(files.tokenizer);
    const vision = await createSession(files.vision, executionProvider, session);
    const text = await createSession(files.text, vision.provider, session).catch(async (e: unknown) => {
      await vision.session.release();
      throw e;
    });
    const model = new ClipModel(dir, preprocessor, tokenizer, text.session, vision.session);
    const px = findInput(inputInfos(vision.session), ['pixel_values'], 0, 'pixel_values', 'vision_model.onnx');
    const side = numericDim(px.shape[2]);
    if (side !== null && side !== preprocessor.crop) {
      await model.release();
      throw new UserError(`vision_model.onnx takes ${side}-pixel images but the preprocessor crops ${preprocessor.crop}`, 'clip');
    }
    return model;
  }

  private alive(): void {
    if (this.released) throw new Error('this CLIP model was released; load it again');
  }

  /** text_embeds of a prompt (BOS, tokens, EOS, padded to the tokenizer's length; cut with a note if longer). */
  textEmbedding(prompt: string): Promise<Float32Array> {
    this.alive();
    let hit = this.textCache.get(prompt);
    if (!hit) {
      hit = this.encodeText(prompt);
      this.textCache.set(prompt, hit);
      hit.catch(() => this.textCache.delete(prompt));
    }
    return hit;
  }

  private async encodeText(prompt: string): Promise<Float32Array> {
    const { ids } = this.tokenizer.encode(prompt);
    const inputs = inputInfos(this.text);
    const idInfo = findInput(inputs, ['input_ids'], 0, 'input_ids', 'text_model.onnx');
    const dims = [1, ids.length];
    const feeds: Record<string, OrtTensor> = { [idInfo.name]: numberTensor(idInfo.type, ids, dims) };
    for (const extra of inputs) {
      if (extra.name === idInfo.name) continue;
      if (extra.name !== 'attention_mask') throw new Error(`text_model.onnx has an unexpected input ${extra.name}`);
      // As the HF tokenizer pads: 1 up to and including the first EOS, 0 on the padding after it.
      const end = ids.indexOf(this.tokenizer.eos) + 1;
      feeds[extra.name] = numberTensor(
        extra.type,
        Int32Array.from(ids, (_, i) => (i < end ? 1 : 0)),
        dims,
      );
    }
    const out = outputName(this.text, 'text_embeds', 'text_model.onnx');
    const res = await this.text.run(feeds, [out]);
    this.stats.textCalls++;
    return tensorToFloat32(res[out]!).slice();
  }

  /** image_embeds of pixel_values batches [n, 3, crop, crop] (one call, or one per image for batch-1 exports). */
  async embedPixels(pixelValues: Float32Array[]): Promise<Float32Array[]> {
    this.alive();
    const s = this.preprocessor.crop;
    const px = findInput(inputInfos(this.vision), ['pixel_values'], 0, 'pixel_values', 'vision_model.onnx');
    const out = outputName(this.vision, 'image_embeds', 'vision_model.onnx');
    const run = async (batch: Float32Array[]): Promise<Float32Array[]> => {
      const data = new Float32Array(batch.length * 3 * s * s);
      batch.forEach((p, i) => data.set(p, i * p.length));
      const res = await this.vision.run({ [px.name]: floatTensor(px.type, data, [batch.length, 3, s, s]) }, [out]);
      this.stats.imageCalls++;
      const all = tensorToFloat32(res[out]!);
      const d = all.length / batch.length;
      return batch.map((_, i) => all.slice(i * d, (i + 1) * d));
    };
    if (numericDim(px.shape[0]) === 1) {
      const each: Float32Array[] = [];
      for (const p of pixelValues) each.push(...(await run([p])));
      return each;
    }
    return run(pixelValues);
  }

  /** Embeddings of several pictures (regions of one, say), in one batch. */
  embedImages(images: ImageValue[]): Promise<Float32Array[]> {
    return images.length === 0 ? Promise.resolve([]) : this.embedPixels(images.map((im) => clipPixelValues(im, this.preprocessor)));
  }

  /** Embeddings of the picture and its halves, in one batch; cached by the picture's content. */
  imageEmbeddings(image: ImageValue): Promise<ImageEmbeddings> {
    this.alive();
    const key = createHash('sha256')
      .update(`${image.width}x${image.height}\0`)
      .update(new Uint8Array(image.data.buffer, image.data.byteOffset, image.data.byteLength))
      .digest('hex');
    let hit = this.imageCache.get(key);
    if (hit) {
      this.imageCache.delete(key); // most recently used last
    } else {
      const { left, right } = halves(image);
      hit = this.embedPixels([image, left, right].map((im) => clipPixelValues(im, this.preprocessor))).then(([full, l, r]) => ({
        full: full!,
        left: l!,
        right: r!,
      }));
      hit.catch(() => this.imageCache.delete(key));
    }
    this.imageCache.set(key, hit);
    while (this.imageCache.size > IMAGE_CACHE_LIMIT) this.imageCache.delete(this.imageCache.keys().next().value as string);
    return hit;
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.textCache.clear();
    this.imageCache.clear();
    await Promise.all([this.text.release(), this.vision.release()].map((p) => p.catch(() => undefined)));
  }
}

function outputName(session: InferenceSession, preferred: string, model: string): string {
  const outs = outputInfos(session);
  const hit = outs.find((o) => o.name === preferred) ?? outs.find((o) => o.rankKnown && o.shape.length === 2);
  if (!hit) throw new Error(`${model} has no ${preferred} output (it has ${outs.map((o) => o.name).join(', ')})`);
  return hit.name;
}

export type ClipHandle = ModelHandle<ClipModel>;

/** Loaded CLIP models (two at most); the server keeps one in its services (server/services/loaded-models.ts). */
export class ClipRegistry extends ModelRegistry<ClipModel> {
  /** `load`: how a folder becomes a model (a test's stand-in; default ClipModel.load). */
  constructor(maxLoaded = 2, load: ModelLoader<ClipModel> = (dir, ep, session) => ClipModel.load(dir, ep, session)) {
    super(load, maxLoaded);
  }

  /** A handle on a CLIP folder, its identity the folder's fingerprint. */
  async open(dir: string, executionProvider: ExecutionProviderRequest, session: SessionSettings = {}): Promise<ClipHandle> {
    await findClipFiles(dir);
    return this.handle(dir, executionProvider, await fingerprintFolder(dir), session);
  }
}

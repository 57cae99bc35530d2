/**
 * Models in the layouts users have (diffusers PyTorch folders, single-file LDM checkpoints, in
 * safetensors), converted once into the diffusers ONNX layout the engine runs and cached under
 * `.cache/converted/<name>-<key>`: the key covers the source files' content, the output dtype, the
 * LoRAs and their strengths, and the converter's version. A conversion is written into a temporary
 * sibling folder and renamed into place, so the cache never holds half a model; a failed one leaves nothing.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { CACHE_ROOT } from '../../util/project.ts';
import type { FloatType } from '../demo/onnx-builder.ts';
import { isDiffusersFolder, openDiffusersFolder, type Checkpoint } from './checkpoint.ts';
import type { LoraRequest } from './lora.ts';
import { isSingleFileCheckpoint, openSingleFile, UNET_PREFIX } from './ldm.ts';
import { isPickleFile, openTensorFile } from './torch-file.ts';
import { openVaeFile } from './vae-file.ts';
import { ConversionError } from './weights.ts';
import { CONVERTER_VERSION, writeOnnxFolder } from './write-onnx.ts';

export { ConversionError } from './weights.ts';
export { isDiffusersFolder } from './checkpoint.ts';

/** Whether `file` is a single-file SD checkpoint (its header has UNet tensors), reading the header only; false for LoRAs, VAEs and bad files. */
export function isCheckpointFile(file: string): boolean {
  try {
    const f = openTensorFile(file);
    try {
      return f.keys().some((k) => k.startsWith(UNET_PREFIX));
    } finally {
      f.close();
    }
  } catch {
    return false;
  }
}
export type { LoraRequest } from './lora.ts';

/** Whether Load Model must convert `source` (a diffusers PyTorch folder or a .safetensors / pickle file). */
export function needsConversion(source: string): boolean {
  try {
    const st = statSync(source);
    if (st.isDirectory()) return isDiffusersFolder(source);
    return /\.safetensors$/i.test(source) || isPickleFile(source);
  } catch {
    return false;
  }
}

export interface ConvertOptions {
  dtype?: FloatType;
  /** A diffusers folder whose configs (and tokenizer) describe a single-file checkpoint. */
  configDir?: string;
  /** A VAE file that replaces the model's own VAE (vae-file.ts). */
  vae?: string;
  loras?: LoraRequest[];
  /** Where converted folders go (`.cache/converted` by default). */
  cacheRoot?: string;
  log?: (line: string) => void;
  progress?: (fraction: number) => void;
  /** Told the temporary folder a conversion writes into, before it writes: who may stop the conversion abruptly removes it. */
  writingTo?: (temp: string) => void;
}

/** Opens `source` (folder or file), its VAE replaced by `vae` when one is given. */
export function openCheckpoint(source: string, configDir?: string, vae?: string): Checkpoint {
  const ckpt = openModel(source, configDir);
  if (!vae) return ckpt;
  try {
    const override = openVaeFile(path.resolve(vae), ckpt.arch.vae);
    const { ignore, close } = ckpt;
    return {
      ...ckpt,
      arch: { ...ckpt.arch, vae: override.vae },
      parts: { ...ckpt.parts, vae: override.part },
      ignore: (component, key) => (component === 'vae' ? override.ignore(key) : ignore(component, key)),
      files: [...ckpt.files, path.resolve(vae)],
      close: () => {
        close();
        override.part.file.close();
      },
    };
  } catch (e) {
    ckpt.close();
    throw e;
  }
}

function openModel(source: string, configDir?: string): Checkpoint {
  let st;
  try {
    st = statSync(source);
  } catch {
    throw new ConversionError(`model not found: ${source}`);
  }
  if (st.isDirectory()) {
    if (!isDiffusersFolder(source))
      throw new ConversionError(`${source} is not a diffusers PyTorch folder (model_index.json and unet/diffusion_pytorch_model.safetensors)`);
    return openDiffusersFolder(source);
  }
  if (!isSingleFileCheckpoint(source)) throw new ConversionError(`${path.basename(source)}: not a .safetensors or PyTorch checkpoint`);
  return openSingleFile(source, configDir);
}

/**
 * A cheap content key of a file: its size, its first 1 MiB (a safetensors header, with every tensor's name,
 * shape and offsets) and sixteen 64 KiB samples spread over the rest. Hashing a 4 GB checkpoint whole on
 * every load would take seconds; a file changed without changing any of these bytes is not a real case.
 */
export function contentKey(file: string): string {
  const hash = createHash('sha256');
  const size = statSync(file).size;
  hash.update(`${size}\0`);
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(1 << 20);
    hash.update(buf.subarray(0, readSync(fd, buf, 0, buf.length, 0)));
    const sample = Buffer.alloc(1 << 16);
    for (let i = 1; i <= 16; i++) {
      const at = Math.floor((size * i) / 17);
      hash.update(sample.subarray(0, readSync(fd, sample, 0, sample.length, at)));
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/** The key of one conversion: sources' content, output dtype, LoRAs and strengths, converter version. */
export function conversionKey(files: string[], options: Pick<ConvertOptions, 'dtype' | 'loras'>): string {
  const hash = createHash('sha256');
  hash.update(`v${CONVERTER_VERSION}\0${options.dtype ?? 'float32'}\0`);
  for (const f of files) hash.update(`${path.basename(f)}\0${contentKey(f)}\0`);
  for (const l of options.loras ?? []) hash.update(`lora\0${contentKey(l.file)}\0${l.unet}\0${l.text}\0`);
  return hash.digest('hex').slice(0, 16);
}

const pending = new Map<string, Promise<string>>();

/** Where the conversion of `source` with `options` is (or will be) cached; reads the sources' headers only. */
export function convertedPath(source: string, options: ConvertOptions = {}): string {
  const ckpt = openCheckpoint(path.resolve(source), options.configDir, options.vae);
  try {
    return cachePath(ckpt, options);
  } finally {
    ckpt.close();
  }
}

function cachePath(ckpt: Checkpoint, options: ConvertOptions): string {
  const root = options.cacheRoot ?? path.join(CACHE_ROOT, 'converted');
  const name = path
    .basename(ckpt.label)
    .replace(/\.safetensors$/i, '')
    .replace(/[^A-Za-z0-9._-]/g, '_');
  return path.join(root, `${name}-${conversionKey(ckpt.files, options)}`);
}

/** Whether `dir` (a convertedPath) holds a finished conversion. */
export const isConverted = (dir: string): boolean => existsSync(path.join(dir, 'model_index.json'));

/**
 * The converted ONNX folder of `source` (with `loras` merged), converting on first use. Concurrent
 * callers share one conversion; another process racing on the same key loses the rename and uses the winner's.
 */
export async function ensureConverted(source: string, options: ConvertOptions = {}): Promise<string> {
  const ckpt = openCheckpoint(path.resolve(source), options.configDir, options.vae);
  let dir: string;
  try {
    dir = cachePath(ckpt, options);
  } catch (e) {
    ckpt.close();
    throw e;
  }
  if (isConverted(dir)) {
    ckpt.close();
    return dir;
  }
  const inFlight = pending.get(dir);
  if (inFlight) {
    ckpt.close();
    return inFlight;
  }
  // With LoRAs, the merged conversion references the plain one's weights that they leave alone (base-weights.ts),
  // converting it first once the LoRAs are known to fit.
  const plain = options.loras?.length ? () => ensureConverted(source, { ...options, loras: [], progress: undefined }) : undefined;
  const job = convertInto(ckpt, dir, options, plain).finally(() => {
    pending.delete(dir);
    ckpt.close();
  });
  pending.set(dir, job);
  return job;
}

/** Converts `source` into the folder `out` (which must be absent or empty), outside the cache. */
export async function convertToFolder(source: string, out: string, options: ConvertOptions = {}): Promise<string> {
  const dir = path.resolve(out);
  if (existsSync(dir) && readdirSync(dir).length > 0) throw new ConversionError(`${out} is not empty; choose an empty or new folder`);
  const ckpt = openCheckpoint(path.resolve(source), options.configDir, options.vae);
  try {
    if (existsSync(dir)) await rm(dir, { recursive: true });
    return await convertInto(ckpt, dir, options);
  } finally {
    ckpt.close();
  }
}

async function convertInto(ckpt: Checkpoint, dir: string, options: ConvertOptions, base?: () => Promise<string>): Promise<string> {
  await mkdir(path.dirname(dir), { recursive: true });
  const temp = `${dir}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const log = options.log ?? (() => {});
  options.writingTo?.(temp);
  try {
    const t0 = performance.now();
    log(`converting ${ckpt.label} (${options.dtype ?? 'float32'}${options.loras?.length ? `, ${options.loras.length} LoRA` : ''})`);
    await writeOnnxFolder(ckpt, temp, {
      dtype: options.dtype,
      loras: options.loras,
      ...(base ? { base } : {}),
      log,
      progress: options.progress,
      describe: options.loras?.length ? { loras: options.loras.map((l) => ({ file: path.basename(l.file), unet: l.unet, text: l.text })) } : {},
    });
    try {
      await rename(temp, dir);
    } catch (error) {
      if (existsSync(path.join(dir, 'model_index.json'))) return dir;
      throw error;
    }
    log(`converted in ${((performance.now() - t0) / 1000).toFixed(1)} s → ${dir}`);
    return dir;
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}

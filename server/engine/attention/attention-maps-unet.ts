/**
 * The attention-maps UNet on disk (attention-maps.ts): derived once per source graph and reused, like
 * the attention-merge UNet (unet-cache.ts), and placed by the same rules so that its external weight
 * references resolve: beside the original (`unet/model.attention-maps.<hash>.onnx`, a name the model
 * fingerprint ignores), or, when the model folder is read-only, in the studio's cache with the weight
 * files hard-linked there. Weights embedded in model.onnx are kept embedded in the derived graph.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { writeFileAtomic } from '../../util/atomic.ts';
import { CACHE_ROOT } from '../../util/project.ts';
import { ATTENTION_MAPS_VERSION, rewriteForAttentionMaps } from './attention-maps.ts';

const { onnx } = onnxProto;

const DEFAULT_CACHE_DIR = path.join(CACHE_ROOT, 'attention-maps');
const STEM = 'model.attention-maps';

export interface PreparedMapsUnet {
  path: string;
  /** The attention-map outputs, in graph order; read from the file when it was reused. */
  outputs: string[];
  reused: boolean;
}

const pending = new Map<string, Promise<PreparedMapsUnet>>();

/** Returns the attention-maps UNet of the model folder `modelDir`, deriving it the first time. */
export function prepareAttentionMapsUnet(modelDir: string, cacheDir = DEFAULT_CACHE_DIR): Promise<PreparedMapsUnet> {
  const source = path.join(path.resolve(modelDir), 'unet', 'model.onnx');
  const key = `${source}\0${path.resolve(cacheDir)}`;
  let job = pending.get(key);
  if (!job) {
    job = prepare(source, path.resolve(cacheDir)).finally(() => pending.delete(key));
    pending.set(key, job);
  }
  return job;
}

async function exists(file: string): Promise<boolean> {
  return fs.stat(file).then(
    (s) => s.isFile() && s.size > 0,
    () => false,
  );
}

async function prepare(source: string, cacheDir: string): Promise<PreparedMapsUnet> {
  const bytes = await fs.readFile(source);
  const hash = createHash('sha256').update(`attention-maps v${ATTENTION_MAPS_VERSION}\0`).update(bytes).digest('hex').slice(0, 16);
  const beside = path.join(path.dirname(source), `${STEM}.${hash}.onnx`);
  const cached = path.join(cacheDir, hash, `${STEM}.onnx`);
  const model = onnx.ModelProto.decode(bytes);
  // The outputs are known from the source alone; deriving them again is cheap next to opening a session.
  const { outputs } = rewriteForAttentionMaps(model, hash);
  for (const candidate of [beside, cached]) if (await exists(candidate)) return { path: candidate, outputs, reused: true };

  const encoded = onnx.ModelProto.encode(model).finish();
  const readOnly = ((await fs.stat(path.dirname(source))).mode & 0o222) === 0;
  if (!readOnly) {
    try {
      await writeFileAtomic(beside, encoded);
      return { path: beside, outputs, reused: false };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EACCES' && code !== 'EROFS' && code !== 'EPERM') throw e;
    }
  }
  const dir = path.dirname(cached);
  await fs.mkdir(dir, { recursive: true });
  const external = new Set((model.graph?.initializer ?? []).map((t) => t.externalData?.find((e) => e.key === 'location')?.value).filter((x) => x));
  for (const rel of external) {
    const target = path.join(dir, rel!);
    const original = await fs.realpath(path.join(path.dirname(source), rel!));
    try {
      await fs.rm(target, { force: true });
      await fs.mkdir(path.dirname(target), { recursive: true });
      await fs.link(original, target);
    } catch (e) {
      throw new Error(
        `cannot prepare the attention-maps UNet: ${path.dirname(source)} is read-only and its weights file ${rel} cannot be linked into ${dir} ` +
          `(${(e as Error).message}). Make the model folder writable, or copy the model to a writable folder.`,
        { cause: e },
      );
    }
  }
  await writeFileAtomic(cached, encoded);
  return { path: cached, outputs, reused: false };
}

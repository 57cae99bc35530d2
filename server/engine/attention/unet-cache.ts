/**
 * The attention-merge UNet on disk: rewritten once per source graph and number of styles, and reused.
 *
 * The rewritten graph is written beside the original (`unet/model.attention-merge.<hash>.onnx` for two
 * styles, `unet/model.attention-merge-<N>.<hash>.onnx` for N) so that
 * its external weight references (`weights.pb`, resolved by onnxruntime relative to the graph's own
 * folder, never outside it) point at the user's files: nothing is copied, nothing the user owns is
 * modified. Weights embedded in `model.onnx` (single-file exports, common for fp16) are not copied
 * either: the rewritten graph points at their bytes inside the original file (external data with an
 * offset). When the model folder is read-only the graph goes to the studio's cache instead, with the
 * weight files hard-linked there (same bytes, no copy); if that is impossible too, the user is told why
 * (embedded weights are then written into the cached graph, as a last resort that still works).
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { writeFileAtomic } from '../../util/atomic.ts';
import { CACHE_ROOT } from '../../util/project.ts';
import { REWRITE_VERSION, rewriteForAttentionMerge } from './rewrite.ts';

const { onnx } = onnxProto;

const DEFAULT_CACHE_DIR = path.join(CACHE_ROOT, 'attention-merge');

/**
 * File names of derived graphs (attention-merge rewrites, attention maps (attention-maps-unet.ts), optimized
 * graphs and the rewrites of those); the model fingerprint ignores them (they are derived, not the model).
 */
export const DERIVED_UNET_PATTERN =
  /^model\.(?:attention-merge(?:-\d+)?|attention-maps|optimized|fp16|added-tokens)(?:-[a-z0-9]+)*\.[0-9a-f]+\.(?:onnx|weights)$/;

/** The file name stem of the rewrite for N styles (two styles keep the name they always had); `variant` names a derived source. */
function stem(styles: number, variant = ''): string {
  return (styles === 2 ? 'model.attention-merge' : `model.attention-merge-${styles}`) + (variant ? `-${variant}` : '');
}

export interface PreparedUnet {
  /** The rewritten graph, ready for an InferenceSession. */
  path: string;
  /** Cross-attention layers rewritten; null when an existing file was reused without decoding it. */
  layers: number | null;
  reused: boolean;
}

export interface PrepareOptions {
  /** Where rewritten graphs of read-only model folders go (default: <project>/.cache/attention-merge). */
  cacheDir?: string;
  /** Conditionings N the rewritten UNet takes (default 2). */
  styles?: number;
  /**
   * The graph to rewrite, when not unet/model.onnx: a graph derived from it beside it or in the cache (the
   * optimizer's, optimizer/optimize.ts), named by `variant` (a file-name-safe tag, e.g. "optimized-cpu").
   */
  source?: { path: string; variant: string };
}

/** How a graph derived from a UNet is made and named (the attention-merge rewrite, the optimizer). */
export interface Derivation {
  /** File name stem, e.g. model.attention-merge or model.optimized-cpu: `<stem>.<hash>.onnx`. */
  stem: string;
  /** Hashed with the source's bytes: the version and settings of the derivation. */
  tag: string;
  /**
   * Changes the decoded model in place; returns how many places it changed (layers, fusions). New weights
   * (an fp16 conversion's) go through `weights`, which stores them in one file beside the derived graph.
   */
  transform(model: onnxProto.onnx.IModelProto, hash: string, weights: WeightsSink): number | Promise<number>;
}

/** Stores a derived graph's new weights in `<stem>.<hash>.weights` beside it; returns the external data entries. */
export type WeightsSink = (bytes: Uint8Array) => Promise<{ key: string; value: string }[]>;

/** The weights file of a derivation, opened on first use in the folder the derived graph will go to. */
class WeightsFile {
  private handle: fs.FileHandle | null = null;
  private offset = 0;
  dir: string | null = null;
  constructor(
    private readonly name: string,
    private readonly folders: () => Promise<string[]>,
  ) {}
  readonly add: WeightsSink = async (bytes) => {
    if (!this.handle) {
      for (const dir of await this.folders()) {
        try {
          await fs.mkdir(dir, { recursive: true });
          this.handle = await fs.open(path.join(dir, this.name), 'w');
          this.dir = dir;
          break;
        } catch (e) {
          if (!isReadOnlyError(e)) throw e;
        }
      }
      if (!this.handle) throw new Error(`no writable folder for ${this.name}`);
    }
    const at = this.offset;
    // 64-byte alignment, as onnx's external data writer does (lets onnxruntime map the file).
    const pad = (64 - (at % 64)) % 64;
    if (pad) await this.handle.write(new Uint8Array(pad), 0, pad, at);
    await this.handle.write(bytes, 0, bytes.byteLength, at + pad);
    this.offset = at + pad + bytes.byteLength;
    return [
      { key: 'location', value: this.name },
      { key: 'offset', value: String(at + pad) },
      { key: 'length', value: String(bytes.byteLength) },
    ];
  };
  async close(): Promise<void> {
    await this.handle?.close();
  }
}

const pending = new Map<string, Promise<PreparedUnet>>();

async function isNonEmptyFile(file: string): Promise<boolean> {
  return fs.stat(file).then(
    (s) => s.isFile() && s.size > 0,
    () => false,
  );
}

/** Whether `b` is a hard link of `a` (the same file, not a copy that may have drifted). */
async function sameFile(a: string, b: string): Promise<boolean> {
  const [sa, sb] = await Promise.all([fs.stat(a), fs.stat(b).catch(() => null)]);
  return sb !== null && sa.dev === sb.dev && sa.ino === sb.ino;
}

function isReadOnlyError(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'EACCES' || code === 'EROFS' || code === 'EPERM';
}

/**
 * A folder nobody may write to (no w bit at all) is treated as read-only even when the server runs as
 * root and could write anyway: its owner asked for it to stay as it is (shared fixtures, mounted models).
 */
async function markedReadOnly(dir: string): Promise<boolean> {
  const s = await fs.stat(dir);
  return (s.mode & 0o222) === 0;
}

/**
 * Rewrites of an earlier version of this UNet for the same number of styles: ours (by name), and never
 * read again once it changed. Rewrites for other numbers of styles are current and stay.
 */
async function removeStale(dir: string, keep: string, stemName: string): Promise<void> {
  const sameStyles = new RegExp(`^${stemName.replace(/[.]/g, '\\.')}\\.[0-9a-f]+\\.(?:onnx|weights)$`);
  for (const name of await fs.readdir(dir)) {
    if (name !== keep && name !== keep.replace(/\.onnx$/, '.weights') && sameStyles.test(name)) await fs.rm(path.join(dir, name), { force: true });
  }
}

/** ONNX's own threshold for moving a tensor to external data (onnx.save_model's size_threshold). */
const EXTERNAL_MIN_BYTES = 1024;

/**
 * Points each large initializer whose bytes lie inside `source` (the decoded file: protobufjs decodes
 * bytes fields as views of the input) at that place in the file `location`, instead of embedding a
 * copy. Returns how to undo it, for when the file cannot be referenced after all.
 */
function referenceEmbeddedWeights(model: onnxProto.onnx.IModelProto, source: Uint8Array, location: string): () => void {
  const undo: (() => void)[] = [];
  for (const t of model.graph?.initializer ?? []) {
    const raw = t.rawData;
    if (!raw || raw.byteLength < EXTERNAL_MIN_BYTES || raw.buffer !== source.buffer) continue;
    const offset = raw.byteOffset - source.byteOffset;
    if (offset < 0 || offset + raw.byteLength > source.byteLength) continue;
    t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    t.externalData = [
      { key: 'location', value: location },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(raw.byteLength) },
    ];
    delete t.rawData; // an own property is encoded even when empty
    undo.push(() => {
      t.rawData = raw;
      t.dataLocation = onnx.TensorProto.DataLocation.DEFAULT;
      t.externalData = [];
    });
  }
  return () => undo.forEach((u) => u());
}

/** External data files the graph's initializers reference (relative to the graph's folder). */
function externalFiles(model: onnxProto.onnx.IModelProto): string[] {
  const files = new Set<string>();
  for (const t of model.graph?.initializer ?? []) {
    const location = t.externalData?.find((e) => e.key === 'location')?.value;
    if (location) files.add(location);
  }
  return [...files];
}

/**
 * Returns the attention-merge UNet of the model folder `modelDir`, rewriting `unet/model.onnx` the first
 * time. Throws AttentionRewriteError when the UNet has no recognisable cross-attention.
 */
export function prepareAttentionMergeUnet(modelDir: string, options: PrepareOptions = {}): Promise<PreparedUnet> {
  const source = options.source?.path ?? path.join(path.resolve(modelDir), 'unet', 'model.onnx');
  const styles = options.styles ?? 2;
  // Two styles hash as they always did, so their rewrites on disk stay valid.
  return prepareDerivedUnet(source, options.cacheDir, {
    stem: stem(styles, options.source?.variant),
    tag: `attention-merge v${REWRITE_VERSION}${styles === 2 ? '' : ` styles ${styles}`}\0`,
    transform: (model, hash) => rewriteForAttentionMerge(model, hash, styles).layers.length,
  });
}

/**
 * Returns the graph `derivation` makes of the UNet graph `source`, deriving it the first time: beside the
 * source, or in the cache when its folder is read-only (see the header); external weights stay references.
 */
export function prepareDerivedUnet(source: string, cacheDirOption: string | undefined, derivation: Derivation): Promise<PreparedUnet> {
  const cacheDir = path.resolve(cacheDirOption ?? DEFAULT_CACHE_DIR);
  const key = `${source}\0${cacheDir}\0${derivation.stem}\0${derivation.tag}`;
  let job = pending.get(key);
  if (!job) {
    job = prepare(source, cacheDir, derivation).finally(() => pending.delete(key));
    pending.set(key, job);
  }
  return job;
}

async function prepare(source: string, cacheDir: string, derivation: Derivation): Promise<PreparedUnet> {
  const bytes = await fs.readFile(source);
  const hash = createHash('sha256').update(derivation.tag).update(bytes).digest('hex').slice(0, 16);
  const beside = path.join(path.dirname(source), `${derivation.stem}.${hash}.onnx`);
  // Not model.onnx: the source itself may be linked beside it, as the data file of embedded weights.
  const cached = path.join(cacheDir, hash, `${derivation.stem}.onnx`);
  for (const candidate of [beside, cached]) {
    if (await isNonEmptyFile(candidate)) return { path: candidate, layers: null, reused: true };
  }

  const model = onnx.ModelProto.decode(bytes);
  const weightsName = `${derivation.stem}.${hash}.weights`;
  const sink = new WeightsFile(weightsName, async () =>
    (await markedReadOnly(path.dirname(source))) ? [path.dirname(cached)] : [path.dirname(source), path.dirname(cached)],
  );
  let layers: number;
  try {
    layers = await derivation.transform(model, hash, sink.add);
  } finally {
    await sink.close();
  }
  const inlineEmbedded = referenceEmbeddedWeights(model, bytes, path.basename(source));
  if (!(await markedReadOnly(path.dirname(source))) && (sink.dir === null || sink.dir === path.dirname(source))) {
    try {
      await writeFileAtomic(beside, onnx.ModelProto.encode(model).finish());
      await removeStale(path.dirname(source), path.basename(beside), derivation.stem);
      return { path: beside, layers, reused: false };
    } catch (e) {
      if (!isReadOnlyError(e)) throw e;
    }
  }

  // Read-only model folder: the cache, with the external weights hard-linked beside the graph.
  const dir = path.dirname(cached);
  await fs.mkdir(dir, { recursive: true });
  for (const rel of externalFiles(model)) {
    if (rel === weightsName) continue; // written here
    const target = path.join(dir, rel);
    try {
      const original = await fs.realpath(path.join(path.dirname(source), rel));
      if (await sameFile(original, target)) continue;
      await fs.mkdir(path.dirname(target), { recursive: true });
      await fs.rm(target, { force: true });
      // Link the file itself, not a symlink to it: onnxruntime refuses weights that resolve outside the folder.
      await fs.link(original, target);
    } catch (e) {
      if (rel === path.basename(source)) {
        inlineEmbedded(); // the graph's own file: embed its weights in the cached graph instead
        continue;
      }
      throw new Error(
        `cannot prepare ${path.basename(beside)}: ${path.dirname(source)} is read-only and its weights file ${rel} ` +
          `cannot be linked into ${dir} (${(e as Error).message}). Make the model folder writable, or copy the model to a writable folder.`,
        { cause: e },
      );
    }
  }
  await writeFileAtomic(cached, onnx.ModelProto.encode(model).finish());
  return { path: cached, layers, reused: false };
}

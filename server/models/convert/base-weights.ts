/**
 * Re-merging only what a LoRA touches: a LoRA-merged conversion shares the plain conversion's weights
 * instead of writing them all again. Each graph's external data file of the plain conversion is linked
 * into the merged folder as `base.weights.pb` (a hard link: no bytes written, and it outlives the plain
 * folder), and every initializer whose parameter the LoRAs leave alone references its bytes there; only
 * the touched ones are read, merged and written to the graph's own `weights.pb` (ONNX external data may
 * point to a different file per initializer). A strength change thus writes the touched tensors and the
 * small graph files, not the model.
 */
import { copyFileSync, existsSync, linkSync, readFileSync } from 'node:fs';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import type { ITensorProto, WeightSource } from '../demo/onnx-builder.ts';
import type { CheckpointWeights } from './weights.ts';

/** The name the plain conversion's external data file gets in a merged graph's folder. */
export const BASE_WEIGHTS = 'base.weights.pb';

/** The plain graph's initializers stored in external data, by name, each pointing into BASE_WEIGHTS. */
function storedInitializers(modelFile: string): Map<string, ITensorProto> {
  const model = onnxProto.onnx.ModelProto.decode(readFileSync(modelFile));
  const stored = new Map<string, ITensorProto>();
  for (const t of model.graph?.initializer ?? []) {
    const external = t.externalData ?? [];
    const location = external.find((e) => e.key === 'location')?.value;
    if (!t.name || location !== 'weights.pb') continue;
    stored.set(t.name, { ...t, externalData: external.map((e) => (e.key === 'location' ? { key: 'location', value: BASE_WEIGHTS } : e)) });
  }
  return stored;
}

/** Links `from` to `to`; copies where a link cannot be made (another file system). */
function linkOrCopy(from: string, to: string): void {
  try {
    linkSync(from, to);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'ENOTSUP') throw e;
    copyFileSync(from, to);
  }
}

/**
 * `source` for graph `dir` of a merged conversion into `out`, taking every weight the LoRAs leave alone
 * from the plain conversion in `base` (whose external data is linked into the folder now).
 */
export function reusingBase(source: CheckpointWeights, base: string, out: string, dir: string): WeightSource {
  const baseWeights = path.join(base, dir, 'weights.pb');
  const stored = existsSync(baseWeights) ? storedInitializers(path.join(base, dir, 'model.onnx')) : new Map<string, ITensorProto>();
  if (stored.size > 0) linkOrCopy(baseWeights, path.join(out, dir, BASE_WEIGHTS));
  return {
    read: (key, dims, transpose) => source.read(key, dims, transpose),
    check: (key, dims, transpose) => source.check(key, dims, transpose),
    stored(key, name) {
      const tensor = stored.get(name);
      if (!tensor || source.touches(key)) return null;
      source.skip(key);
      return tensor;
    },
  };
}

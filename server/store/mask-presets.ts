/**
 * Mask presets: a Mask node's settings (shape, strokes, words, ...) saved under a name, to be applied
 * to a Mask node of any graph. One JSON file per preset in <dataDir>/mask-presets, written atomically;
 * the settings are checked by the caller (the HTTP layer validates them against the Mask node's
 * parameters), so this store only keeps, lists and bounds them.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../util/atomic.ts';
import { noSpaceError, StoreError } from './errors.ts';
import { isMissing } from './graph-index.ts';
import { isSafeName, resolveInside } from './paths.ts';

export const MASK_PRESET_FORMAT = 'dualstyle-mask-preset';
/** How many presets a data folder keeps (saving over an existing one still works when full). */
export const MAX_MASK_PRESETS = 500;
const INVALID_PRESET_NAME = 'invalid preset name: use 1–64 letters, digits, spaces, "_", "-" or "." (no leading dot, no "..", no slashes)';

export interface MaskPreset {
  name: string;
  /** The Mask node's parameters, as validated when saved. */
  params: Record<string, unknown>;
  /** When it was saved, epoch milliseconds. */
  savedAt: number;
}

export interface MaskPresetEntry {
  name: string;
  shape: string;
  styles: number;
  savedAt: number;
}

export function maskPresetsDir(dataDir: string): string {
  return path.join(dataDir, 'mask-presets');
}

export class MaskPresetStore {
  private writes: Promise<unknown> = Promise.resolve();

  constructor(
    readonly dir: string,
    readonly maxPresets = MAX_MASK_PRESETS,
  ) {}

  private file(name: string): string {
    if (!isSafeName(name)) throw new StoreError('invalid_name', INVALID_PRESET_NAME);
    return resolveInside(this.dir, `${name}.json`);
  }

  /** Every preset, sorted by name; a file that cannot be read is left out of the list. */
  async list(): Promise<MaskPresetEntry[]> {
    const names = await fs.readdir(this.dir).catch((err: unknown) => {
      if (isMissing(err)) return [] as string[];
      throw err;
    });
    const entries: MaskPresetEntry[] = [];
    for (const file of names.filter((n) => n.endsWith('.json') && !n.startsWith('.')).sort()) {
      const preset = await this.read(file.slice(0, -'.json'.length)).catch(() => null);
      if (preset)
        entries.push({ name: preset.name, shape: String(preset.params.shape ?? ''), styles: Number(preset.params.styles ?? 2), savedAt: preset.savedAt });
    }
    return entries;
  }

  async read(name: string): Promise<MaskPreset> {
    let text: string;
    try {
      text = await fs.readFile(this.file(name), 'utf8');
    } catch (err) {
      if (isMissing(err)) throw new StoreError('not_found', `no mask preset named "${name}"`);
      throw err;
    }
    let data: { format?: unknown; params?: unknown; savedAt?: unknown };
    try {
      data = JSON.parse(text) as typeof data;
    } catch (err) {
      throw new StoreError('corrupt', `mask preset "${name}" is not valid JSON on disk: ${(err as Error).message}`);
    }
    if (data.format !== MASK_PRESET_FORMAT || typeof data.params !== 'object' || data.params === null || Array.isArray(data.params)) {
      throw new StoreError('corrupt', `mask preset "${name}" on disk is not a ${MASK_PRESET_FORMAT} file`);
    }
    return { name, params: data.params as Record<string, unknown>, savedAt: Number(data.savedAt) || 0 };
  }

  /** Saves (or replaces) a preset; a new one beyond the limit is refused (quota_exceeded). */
  save(name: string, params: Record<string, unknown>): Promise<MaskPreset> {
    const file = this.file(name);
    const job = this.writes.then(async () => {
      const exists = await fs.stat(file).then(
        () => true,
        () => false,
      );
      if (!exists && (await this.list()).length >= this.maxPresets) {
        throw new StoreError('quota_exceeded', `there are ${this.maxPresets} mask presets already: delete one to save "${name}"`);
      }
      const preset: MaskPreset = { name, params, savedAt: Date.now() };
      await fs.mkdir(this.dir, { recursive: true });
      try {
        await writeFileAtomic(file, JSON.stringify({ format: MASK_PRESET_FORMAT, version: 1, ...preset }, null, 1));
      } catch (err) {
        throw noSpaceError(err, `mask preset "${name}"`);
      }
      return preset;
    });
    this.writes = job.catch(() => undefined);
    return job;
  }

  delete(name: string): Promise<void> {
    const file = this.file(name);
    const job = this.writes.then(async () => {
      try {
        await fs.unlink(file);
      } catch (err) {
        if (isMissing(err)) throw new StoreError('not_found', `no mask preset named "${name}"`);
        throw err;
      }
    });
    this.writes = job.catch(() => undefined);
    return job;
  }
}

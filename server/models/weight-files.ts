/**
 * The LoRA and VAE files in the models folders, for the editor's pickers (Load LoRA's lora, Load Model's
 * vae): `.safetensors` files at the top of a models folder or in its sub-folders (loras/, vae/), two levels
 * deep, told apart by their tensor names, read from the header only. A model folder's own files (a
 * diffusers folder's vae/ weights) are the model's, not a pick: folders with a model_index.json are skipped.
 */
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { UNET_PREFIX, VAE_PREFIX } from './convert/ldm.ts';
import { withSafetensors } from './convert/safetensors.ts';
import type { ModelEntry } from './model-list.ts';
import { resolveModelPath } from './model-roots.ts';

/** Sub-folder levels searched below each models folder. */
const DEPTH = 2;
/** Files looked at per models folder at most: a folder of thousands of files is not read through. */
const MAX_FILES = 500;

/** What a `.safetensors` file holds by its tensor names: a LoRA, a VAE, or something else (a checkpoint, a bad file). */
export function weightFileKind(file: string): 'lora' | 'vae' | null {
  try {
    return withSafetensors(file, (f) => {
      const keys = f.keys();
      if (keys.some((k) => k.startsWith(UNET_PREFIX))) return null;
      if (keys.some((k) => /lora_(up|down|A|B)\b|\.lora\./.test(k))) return 'lora';
      if (keys.some((k) => k.startsWith(VAE_PREFIX) || k.startsWith('decoder.') || k.startsWith('encoder.'))) return 'vae';
      return null;
    });
  } catch {
    return null;
  }
}

/** The LoRA and VAE files of the models folders, as the names that resolve back to them. */
export async function listWeightFiles(roots: readonly string[]): Promise<ModelEntry[]> {
  const found: ModelEntry[] = [];
  for (const root of roots) {
    for (const file of await safetensorsBelow(root)) {
      const kind = weightFileKind(file);
      if (!kind) continue;
      const name = path.relative(root, file).split(path.sep).join('/');
      if ((await resolveModelPath(name, roots, { files: true }).catch(() => null)) !== file) continue;
      found.push({ model: name, label: path.basename(file).replace(/\.safetensors$/i, ''), demo: false, kind, note: kind === 'lora' ? 'LoRA' : 'VAE' });
    }
  }
  return found;
}

async function safetensorsBelow(root: string): Promise<string[]> {
  const files: string[] = [];
  const walk = async (dir: string, depth: number) => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (files.length >= MAX_FILES) return;
      const full = path.join(dir, e.name);
      if (e.isFile() && /\.safetensors$/i.test(e.name)) files.push(full);
      else if (e.isDirectory() && depth < DEPTH && !e.name.startsWith('.') && !existsSync(path.join(full, 'model_index.json'))) await walk(full, depth + 1);
    }
  };
  await walk(root, 0);
  return files;
}

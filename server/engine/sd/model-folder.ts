/**
 * A Stable Diffusion model folder in the diffusers ONNX layout, before any session is opened: its
 * layout check, its fingerprint (the model's identity for every cache key) and the configs it carries
 * (scheduler, VAE scaling and downsampling, UNet levels), with SD 1.x defaults where a user's export has none.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { DERIVED_UNET_PATTERN } from '../attention/unet-cache.ts';
import { SD1_SCHEDULER, schedulerConfigFromJson, type SchedulerConfig } from '../diffusion/schedule.ts';
import { UserError } from '../errors.ts';
import { REQUIRED_FILES } from './layout.ts';

const DEFAULT_VAE_SCALING = 0.18215;

/** Thrown for a folder that cannot be loaded as a pipeline; the message is meant for the user. */
export class ModelFolderError extends UserError {
  constructor(message: string) {
    super(message, 'model');
    this.name = 'ModelFolderError';
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

async function readJson(file: string, dir: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new ModelFolderError(`cannot read ${path.relative(dir, file)} in ${dir}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ModelFolderError(`${path.relative(dir, file)} in ${dir} is not valid JSON: ${(e as Error).message}`);
  }
}

async function readOptionalJson(file: string, dir: string): Promise<Record<string, unknown> | null> {
  if (!(await exists(file))) return null;
  const j = await readJson(file, dir);
  return j && typeof j === 'object' && !Array.isArray(j) ? (j as Record<string, unknown>) : null;
}

/** Checks the folder layout before any session is created; throws one error naming everything missing. */
export async function checkModelFolder(dir: string): Promise<void> {
  let st;
  try {
    st = await stat(dir);
  } catch {
    throw new ModelFolderError(`model folder not found: ${dir}`);
  }
  if (!st.isDirectory()) throw new ModelFolderError(`not a folder: ${dir} (a Stable Diffusion ONNX model is a folder)`);
  const missing: string[] = [];
  for (const f of REQUIRED_FILES) if (!(await exists(path.join(dir, f)))) missing.push(f);
  if (missing.length > 0) {
    throw new ModelFolderError(`not a Stable Diffusion ONNX folder: missing ${missing.join(', ')} in ${dir}`);
  }
  const index = await readJson(path.join(dir, 'model_index.json'), dir);
  if (!index || typeof index !== 'object' || Array.isArray(index)) {
    throw new ModelFolderError(`model_index.json in ${dir} must be a JSON object`);
  }
}

/**
 * Hash of every file's relative path, size and mtime (two folder levels deep), plus the text of
 * model_index.json where there is one (CLIP and LPIPS folders have none).
 */
export async function fingerprintFolder(dir: string): Promise<string> {
  const hash = createHash('sha256');
  const index = await readFile(path.join(dir, 'model_index.json')).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return null;
    throw e;
  });
  if (index) hash.update(index);
  const walk = async (rel: string, depth: number): Promise<void> => {
    const entries = await readdir(path.join(dir, rel), { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      // Hidden files (temporary writes) and derived graphs are not part of the model's identity.
      if (e.name.startsWith('.') || DERIVED_UNET_PATTERN.test(e.name)) continue;
      if (e.isDirectory()) {
        if (depth < 2) await walk(r, depth + 1);
      } else {
        const s = await stat(path.join(dir, r));
        hash.update(`${r}\0${s.size}\0${s.mtimeMs}\n`);
      }
    }
  };
  await walk('', 0);
  return hash.digest('hex').slice(0, 16);
}

export interface ModelConfig {
  scheduler: SchedulerConfig;
  vaeScalingFactor: number;
  /** Image pixels per latent pixel (8 for SD). */
  vaeDownsample: number;
  /**
   * Levels of the UNet (block_out_channels in unet/config.json), null without that file: the latent-size
   * rule reads the graph (latent-size.ts) and uses this only where the graph shows no structure.
   */
  unetLevels: number | null;
}

/** The configs of the folder (scheduler_config.json, the VAE's and the UNet's config.json), SD 1.x where absent. */
export async function readModelConfig(dir: string): Promise<ModelConfig> {
  const schedulerJson = await readOptionalJson(path.join(dir, 'scheduler/scheduler_config.json'), dir);
  let scheduler: SchedulerConfig;
  try {
    scheduler = schedulerJson ? schedulerConfigFromJson(schedulerJson) : SD1_SCHEDULER;
  } catch (e) {
    throw new ModelFolderError(`${(e as Error).message} (in ${dir})`);
  }
  const vaeConfig =
    (await readOptionalJson(path.join(dir, 'vae_decoder/config.json'), dir)) ??
    (await readOptionalJson(path.join(dir, 'vae_encoder/config.json'), dir)) ??
    (await readOptionalJson(path.join(dir, 'vae/config.json'), dir));
  const scaling = typeof vaeConfig?.scaling_factor === 'number' ? vaeConfig.scaling_factor : DEFAULT_VAE_SCALING;
  const blocks = Array.isArray(vaeConfig?.block_out_channels) ? vaeConfig.block_out_channels.length : 4;
  const vaeDownsample = 2 ** Math.max(0, blocks - 1);
  const unetConfig = await readOptionalJson(path.join(dir, 'unet/config.json'), dir);
  const unetLevels = Array.isArray(unetConfig?.block_out_channels) ? unetConfig.block_out_channels.length : null;
  return { scheduler, vaeScalingFactor: scaling, vaeDownsample, unetLevels };
}

/**
 * A model to convert, whatever its layout: the architecture, one safetensors part per component (UNet,
 * text encoder, VAE) with the map from the builder's diffusers keys to the file's keys, the files the
 * content key covers, and the text files (tokenizer, scheduler) copied as they are. The diffusers PyTorch
 * folder is opened here; single-file LDM checkpoints in ldm.ts.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { textArchitecture, unetArchitecture, vaeArchitecture, type ModelArchitecture } from './architecture.ts';
import type { SafetensorsFile } from './safetensors.ts';
import { openTensorFile } from './torch-file.ts';
import { ConversionError, type CheckpointPart } from './weights.ts';

export type Component = 'unet' | 'text' | 'vae';
export const COMPONENTS: readonly Component[] = ['unet', 'text', 'vae'];

export interface Checkpoint {
  /** What the user gave (a folder or a file), for messages. */
  label: string;
  arch: ModelArchitecture;
  parts: Record<Component, CheckpointPart>;
  /** File keys a component may leave unused (EMA copies, position ids, the LDM loss's buffers). */
  ignore: (component: Component, fileKey: string) => boolean;
  /** Every file whose content identifies the model. */
  files: string[];
  /** Folder with vocab.json and merges.txt. */
  tokenizerDir: string;
  /** scheduler_config.json's text, or null for SD 1.x's. */
  schedulerConfig: string | null;
  close(): void;
}

export function readJsonFile(file: string, label: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConversionError(`${label}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    const json: unknown = JSON.parse(text);
    if (json && typeof json === 'object' && !Array.isArray(json)) return json as Record<string, unknown>;
  } catch (e) {
    throw new ConversionError(`${label}: not valid JSON (${(e as Error).message})`);
  }
  throw new ConversionError(`${label}: not a JSON object`);
}

/**
 * The weights file of a diffusers component folder: safetensors where there is one, else the PyTorch
 * `.bin` (read for its tensors only by the restricted reader, torch-file.ts; nothing in it is run).
 */
function weightsFile(dir: string, sub: string, names: string[]): string {
  for (const n of [...names, 'diffusion_pytorch_model.bin', 'pytorch_model.bin']) if (existsSync(path.join(dir, sub, n))) return path.join(dir, sub, n);
  throw new ConversionError(`${sub}/${names[0]} is missing in ${dir}`);
}

/** Whether `dir` is a diffusers PyTorch folder (model_index.json and a unet/ with safetensors or a pickle). */
export function isDiffusersFolder(dir: string): boolean {
  return (
    existsSync(path.join(dir, 'model_index.json')) &&
    ['diffusion_pytorch_model.safetensors', 'diffusion_pytorch_model.fp16.safetensors', 'diffusion_pytorch_model.bin'].some((n) =>
      existsSync(path.join(dir, 'unet', n)),
    )
  );
}

/** Opens a diffusers PyTorch folder (unet/, vae/, text_encoder/ with config.json and safetensors). */
export function openDiffusersFolder(dir: string): Checkpoint {
  const unetConfig = readJsonFile(path.join(dir, 'unet/config.json'), 'unet/config.json');
  const { unet, contextDim } = unetArchitecture(unetConfig);
  const text = textArchitecture(readJsonFile(path.join(dir, 'text_encoder/config.json'), 'text_encoder/config.json'));
  const { vae, scalingFactor } = vaeArchitecture(readJsonFile(path.join(dir, 'vae/config.json'), 'vae/config.json'));
  if (text.width !== contextDim)
    throw new ConversionError(`unet/config.json: cross_attention_dim ${contextDim} is not the text encoder's hidden_size ${text.width}`);
  const files = {
    unet: weightsFile(dir, 'unet', ['diffusion_pytorch_model.safetensors', 'diffusion_pytorch_model.fp16.safetensors']),
    text: weightsFile(dir, 'text_encoder', ['model.safetensors', 'model.fp16.safetensors']),
    vae: weightsFile(dir, 'vae', ['diffusion_pytorch_model.safetensors', 'diffusion_pytorch_model.fp16.safetensors']),
  };
  const tokenizerDir = path.join(dir, 'tokenizer');
  for (const f of ['vocab.json', 'merges.txt']) if (!existsSync(path.join(tokenizerDir, f))) throw new ConversionError(`tokenizer/${f} is missing in ${dir}`);
  const opened: SafetensorsFile[] = [];
  const open = (file: string): CheckpointPart => {
    const f = openTensorFile(file);
    opened.push(f);
    return { file: f, keyOf: (k) => k, label: path.relative(dir, file) };
  };
  try {
    const parts = { unet: open(files.unet), text: open(files.text), vae: open(files.vae) };
    const scheduler = path.join(dir, 'scheduler/scheduler_config.json');
    return {
      label: dir,
      arch: { unet, contextDim, text, vae, vaeScalingFactor: scalingFactor },
      parts,
      // transformers keeps position_ids as a buffer; diffusers folders hold nothing else unused.
      ignore: (component, key) => component === 'text' && key.endsWith('position_ids'),
      files: [...Object.values(files), ...['unet/config.json', 'vae/config.json', 'text_encoder/config.json'].map((f) => path.join(dir, f))],
      tokenizerDir,
      schedulerConfig: existsSync(scheduler) && statSync(scheduler).isFile() ? readFileSync(scheduler, 'utf8') : null,
      close: () => opened.forEach((f) => f.close()),
    };
  } catch (e) {
    opened.forEach((f) => f.close());
    throw e;
  }
}

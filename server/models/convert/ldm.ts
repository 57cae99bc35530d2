/** Single-file LDM checkpoints (model.diffusion_model.*, first_stage_model.*, cond_stage_model.transformer.*). */
import type { Checkpoint } from './checkpoint.ts';
import { ConversionError } from './weights.ts';

export function isSingleFileCheckpoint(file: string): boolean {
  return /\.safetensors$/i.test(file);
}

export function openSingleFile(file: string, _configDir?: string): Checkpoint {
  throw new ConversionError(`${file}: single-file checkpoints are not supported yet`);
}

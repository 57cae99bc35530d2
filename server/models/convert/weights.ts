/**
 * The graph builder's WeightSource over checkpoint files: each parameter the builder asks for by its
 * diffusers key is found (through the layout's key map), checked against the shape the graph needs, read
 * from its safetensors file by position, merged with the LoRA deltas that touch it, transposed for MatMul
 * where the builder wants [in, out], and forgotten. The source remembers which keys it served, so a file
 * with weights the model does not use is reported instead of silently half-used.
 */
import path from 'node:path';
import { UserError } from '../../engine/errors.ts';
import type { WeightSource } from '../demo/onnx-builder.ts';
import type { SafetensorsFile } from './safetensors.ts';

/** A checkpoint that does not fit the model being built (missing, extra or misshapen tensors); the message names the file. */
export class ConversionError extends UserError {
  constructor(message: string) {
    super(message, 'model');
    this.name = 'ConversionError';
  }
}

/** A change to one weight, in the checkpoint's own layout ([out, in] or [out, in, k, k]), already scaled. */
export interface WeightDelta {
  (key: string, shape: readonly number[]): Float32Array | null;
  /** Whether it changes `key` at all, computing nothing. */
  touches(key: string): boolean;
}

/** Shape without its size-1 axes: GroupNorm [C] fits [C, 1, 1], and an LDM 1×1 conv [C, C, 1, 1] fits a Linear [C, C]. */
const squeeze = (shape: readonly number[]): string => shape.filter((d) => d !== 1).join(',');

export function transpose2d(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c]!;
  return out;
}

export interface CheckpointPart {
  file: SafetensorsFile;
  /** The file's key for a diffusers key (identity for diffusers folders; LDM names for single files). */
  keyOf: (key: string) => string;
  /** What the file is called in messages ("unet/diffusion_pytorch_model.safetensors"). */
  label: string;
}

export class CheckpointWeights implements WeightSource {
  readonly used = new Set<string>();
  /** Diffusers key → the file tensor's shape, for every parameter the graphs asked for (what a LoRA may touch). */
  readonly requested = new Map<string, readonly number[]>();
  /** Bytes read so far (for progress). */
  bytesRead = 0;

  constructor(
    private readonly part: CheckpointPart,
    private readonly delta: WeightDelta | null = null,
    private readonly onRead: (bytes: number) => void = () => {},
  ) {}

  private locate(key: string, dims: number[], transpose: boolean): { fileKey: string; shape: number[] } {
    const fileKey = this.part.keyOf(key);
    const info = this.part.file.tensors.get(fileKey);
    if (!info) {
      throw new ConversionError(
        `${this.part.label}: no tensor "${fileKey}"${fileKey === key ? '' : ` (diffusers ${key})`}, which this model's configuration needs ` +
          '(is the file for another architecture, or is the config wrong?)',
      );
    }
    const expected = transpose ? [dims[1]!, dims[0]!] : dims;
    if (squeeze(info.shape) !== squeeze(expected)) {
      throw new ConversionError(
        `${this.part.label}: tensor "${fileKey}" has shape [${info.shape.join(', ')}], the model's configuration needs [${expected.join(', ')}]`,
      );
    }
    return { fileKey, shape: info.shape };
  }

  check(key: string, dims: number[], transpose: boolean): void {
    const { fileKey, shape } = this.locate(key, dims, transpose);
    this.used.add(fileKey);
    this.requested.set(key, shape);
  }

  read(key: string, dims: number[], transpose: boolean): Float32Array {
    const { fileKey, shape } = this.locate(key, dims, transpose);
    this.used.add(fileKey);
    let data = this.part.file.readFloat32(fileKey);
    const bytes = this.part.file.info(fileKey).byteLength;
    this.bytesRead += bytes;
    this.onRead(bytes);
    const d = this.delta?.(key, shape);
    if (d) for (let i = 0; i < data.length; i++) data[i] = data[i]! + d[i]!;
    if (transpose) data = transpose2d(data, dims[1]!, dims[0]!);
    return data;
  }

  /** Whether the LoRA deltas change parameter `key` (a weight they leave alone is the plain conversion's, byte for byte). */
  touches(key: string): boolean {
    return this.delta?.touches(key) ?? false;
  }

  /** Marks `key` as served without reading it (its bytes are referenced where they are already stored); counts it for progress. */
  skip(key: string): void {
    const fileKey = this.part.keyOf(key);
    this.used.add(fileKey);
    this.onRead(this.part.file.info(fileKey).byteLength);
  }

  /** Keys of the file that the graph did not use, apart from those `ignore` accepts. */
  unused(ignore: (fileKey: string) => boolean = () => false): string[] {
    return this.part.file.keys().filter((k) => !this.used.has(k) && !ignore(k));
  }
}

/** Throws a ConversionError listing (some of) the unused keys, when there are any. */
export function refuseExtraKeys(label: string, extra: string[]): void {
  if (extra.length === 0) return;
  const shown = extra.slice(0, 5).join(', ');
  throw new ConversionError(
    `${label}: ${extra.length} tensor${extra.length === 1 ? '' : 's'} that this model's configuration does not use (${shown}${extra.length > 5 ? ', …' : ''}): ` +
      'is the file for another architecture, or is the config wrong?',
  );
}

export const shownName = (file: string, root: string): string => path.relative(root, file) || path.basename(file);

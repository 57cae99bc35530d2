/**
 * A safetensors reader that never trusts the file: the header is bounded and checked entry by entry (dtype,
 * shape, offsets inside the data and not overlapping) before any tensor is read, and tensors are read one
 * at a time by position, so a 4 GB checkpoint costs the memory of its largest tensor, never of the file.
 *
 * Format (https://github.com/huggingface/safetensors): an 8-byte little-endian header length N, N bytes of
 * JSON `{ "<name>": { "dtype", "shape", "data_offsets": [begin, end] }, "__metadata__": { string: string } }`,
 * then the data; offsets are relative to the data's start.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../../engine/errors.ts';
import { float16ToFloat32, float32ToFloat16 } from '../../engine/runtime/runtime.ts';

/** Bytes per element of every dtype the format defines; a dtype outside this table is refused. */
export const DTYPE_BYTES: Readonly<Record<string, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
};

/** The dtypes a weight can be read from (as float32). */
export const FLOAT_DTYPES = ['F32', 'F16', 'BF16'] as const;
export type FloatDtype = (typeof FLOAT_DTYPES)[number];

/** The safetensors library's own bound on the header (100 MB); a real SD checkpoint's header is ~100 KB. */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/** A file that is not a valid safetensors file, or a tensor that cannot be read as asked; the message names the file. */
export class SafetensorsError extends UserError {
  constructor(
    readonly file: string,
    problem: string,
  ) {
    super(`${path.basename(file)}: ${problem}`, 'model');
    this.name = 'SafetensorsError';
  }
}

export interface TensorInfo {
  name: string;
  dtype: string;
  shape: number[];
  /** Absolute byte position of the tensor's data in the file. */
  start: number;
  byteLength: number;
}

export interface OpenOptions {
  /** Refuse headers longer than this (MAX_HEADER_BYTES by default). */
  maxHeaderBytes?: number;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Parses and checks a header (the JSON text) against a data section of `dataLength` bytes starting at `dataStart`. */
export function parseHeader(
  file: string,
  text: string,
  dataStart: number,
  dataLength: number,
): { tensors: Map<string, TensorInfo>; metadata: Record<string, string> } {
  const fail = (problem: string): never => {
    throw new SafetensorsError(file, problem);
  };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return fail(`the header is not valid JSON (${(e as Error).message})`);
  }
  if (!isRecord(json)) return fail('the header is not a JSON object');
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, TensorInfo>();
  for (const [name, entry] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isRecord(entry)) fail('__metadata__ is not an object');
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__.${k} is not a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    if (!isRecord(entry)) return fail(`tensor "${name}" is not an object`);
    const { dtype, shape, data_offsets: offsets } = entry;
    if (typeof dtype !== 'string') return fail(`tensor "${name}" has no dtype`);
    const size = DTYPE_BYTES[dtype];
    if (size === undefined) return fail(`tensor "${name}" has the unknown dtype "${dtype}" (known: ${Object.keys(DTYPE_BYTES).join(', ')})`);
    if (!Array.isArray(shape) || !shape.every(isCount)) return fail(`tensor "${name}" has an invalid shape ${JSON.stringify(shape)}`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount))
      return fail(`tensor "${name}" has invalid data_offsets ${JSON.stringify(offsets)}`);
    const [begin, end] = offsets as [number, number];
    const elements = (shape as number[]).reduce((a, b) => a * b, 1);
    if (end < begin) return fail(`tensor "${name}" ends (${end}) before it begins (${begin})`);
    if (end > dataLength) return fail(`tensor "${name}" runs past the end of the file (offset ${end} of ${dataLength} data bytes)`);
    if (end - begin !== elements * size) {
      return fail(`tensor "${name}" has ${end - begin} bytes for shape [${(shape as number[]).join(', ')}] of ${dtype} (${elements * size} expected)`);
    }
    tensors.set(name, { name, dtype, shape: shape as number[], start: dataStart + begin, byteLength: end - begin });
  }
  const sorted = [...tensors.values()].filter((t) => t.byteLength > 0).sort((a, b) => a.start - b.start);
  for (let i = 1; i < sorted.length; i++) {
    const [a, b] = [sorted[i - 1]!, sorted[i]!];
    if (b.start < a.start + a.byteLength) fail(`tensors "${a.name}" and "${b.name}" overlap`);
  }
  return { tensors, metadata };
}

/** bfloat16 bits → float32: the high half of a float32. */
export function bfloat16ToFloat32(src: Uint16Array, out = new Float32Array(src.length)): Float32Array {
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < src.length; i++) bits[i] = src[i]! << 16;
  return out;
}

/** The file's descriptor, or a SafetensorsError that says why it cannot be opened. */
function openForReading(file: string): number {
  try {
    return openSync(file, 'r');
  } catch (e) {
    throw new SafetensorsError(file, `cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/** An open safetensors file: its checked header in memory, its tensors read on demand. Close it when done. */
export class SafetensorsFile {
  private fd: number | null;

  private constructor(
    readonly file: string,
    fd: number,
    readonly tensors: ReadonlyMap<string, TensorInfo>,
    readonly metadata: Readonly<Record<string, string>>,
  ) {
    this.fd = fd;
  }

  /** Opens and checks `file`; throws a SafetensorsError naming the problem (and closes the file) when it is not valid. */
  static open(file: string, options: OpenOptions = {}): SafetensorsFile {
    const maxHeader = options.maxHeaderBytes ?? MAX_HEADER_BYTES;
    const fd = openForReading(file);
    try {
      const size = fstatSync(fd).size;
      if (size < 8) throw new SafetensorsError(file, `too short for a safetensors file (${size} bytes)`);
      const prefix = Buffer.alloc(8);
      readSync(fd, prefix, 0, 8, 0);
      const headerLength = prefix.readBigUInt64LE(0);
      if (headerLength > BigInt(maxHeader)) throw new SafetensorsError(file, `the header claims ${headerLength} bytes, more than the ${maxHeader} allowed`);
      const n = Number(headerLength);
      if (8 + n > size) throw new SafetensorsError(file, `the header claims ${n} bytes but the file has ${size - 8} after the length`);
      const header = Buffer.alloc(n);
      if (n > 0) readSync(fd, header, 0, n, 8);
      const { tensors, metadata } = parseHeader(file, header.toString('utf8'), 8 + n, size - 8 - n);
      return new SafetensorsFile(file, fd, tensors, metadata);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  /**
   * Opens `file`, another container of raw little-endian tensors, with the positions `locate` finds in it
   * (a PyTorch zip: torch-file.ts); its tensors are then read exactly like a safetensors file's.
   */
  static openLaidOut(file: string, locate: (fd: number, size: number) => ReadonlyMap<string, TensorInfo>): SafetensorsFile {
    const fd = openForReading(file);
    try {
      return new SafetensorsFile(file, fd, locate(fd, fstatSync(fd).size), {});
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  keys(): string[] {
    return [...this.tensors.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new SafetensorsError(this.file, `has no tensor "${name}"`);
    return t;
  }

  /** The raw bytes of one tensor, read by position. */
  readBytes(name: string): Buffer {
    const t = this.info(name);
    if (this.fd === null) throw new SafetensorsError(this.file, 'is closed');
    const out = Buffer.alloc(t.byteLength);
    let done = 0;
    while (done < t.byteLength) {
      const got = readSync(this.fd, out, done, t.byteLength - done, t.start + done);
      if (got === 0) throw new SafetensorsError(this.file, `ended while reading "${name}" (it was shortened while open?)`);
      done += got;
    }
    return out;
  }

  /** One tensor as float32 (F32, F16 and BF16; any other dtype is refused with the tensor's name). */
  readFloat32(name: string): Float32Array {
    const t = this.info(name);
    if (!(FLOAT_DTYPES as readonly string[]).includes(t.dtype)) {
      throw new SafetensorsError(this.file, `tensor "${name}" is ${t.dtype}; weights must be ${FLOAT_DTYPES.join(', ')}`);
    }
    const bytes = this.readBytes(name);
    const elements = t.byteLength / DTYPE_BYTES[t.dtype]!;
    // Copy into an aligned buffer (a Buffer's offset in its pool may not be a multiple of 4).
    if (t.dtype === 'F32') {
      const out = new Float32Array(elements);
      new Uint8Array(out.buffer).set(bytes);
      return out;
    }
    const halves = new Uint16Array(elements);
    new Uint8Array(halves.buffer).set(bytes);
    return t.dtype === 'F16' ? float16ToFloat32(halves) : bfloat16ToFloat32(halves);
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

/** Runs `use` on the opened file and closes it afterwards. */
export function withSafetensors<T>(file: string, use: (f: SafetensorsFile) => T, options?: OpenOptions): T {
  const f = SafetensorsFile.open(file, options);
  try {
    return use(f);
  } finally {
    f.close();
  }
}

/** A tensor to write: float32 values stored as `dtype`. */
export interface TensorToWrite {
  name: string;
  shape: number[];
  data: Float32Array;
  dtype?: FloatDtype;
}

function float32ToBfloat16(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const b = bits[i]!;
    // Round to nearest even, as torch does.
    out[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
  return out;
}

/** The bytes of one tensor as stored (its float32 values rounded to its dtype), little-endian. */
export function tensorBytes(t: TensorToWrite): Buffer {
  const dtype = t.dtype ?? 'F32';
  if (dtype === 'F32') return Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const halves = dtype === 'F16' ? float32ToFloat16(t.data) : float32ToBfloat16(t.data);
  return Buffer.from(halves.buffer, halves.byteOffset, halves.byteLength);
}

/** The bytes of a safetensors file holding `tensors` (for tests and small files; large ones stream in convert). */
export function encodeSafetensors(tensors: TensorToWrite[], metadata: Record<string, string> = {}): Buffer {
  const header: Record<string, unknown> = Object.keys(metadata).length > 0 ? { __metadata__: metadata } : {};
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const t of tensors) {
    const dtype = t.dtype ?? 'F32';
    const bytes = tensorBytes(t);
    header[t.name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes.byteLength] };
    chunks.push(bytes);
    offset += bytes.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([prefix, Buffer.from(json), ...chunks]);
}

/**
 * NumPy .npy files (format versions 1–3): the exchange format of the reference fixtures.
 * Little- and big-endian numeric dtypes are read; only C order is accepted (the fixtures are C order,
 * and a Fortran-order array would silently transpose).
 */
import { readFile } from 'node:fs/promises';

export type NpyData =
  Float32Array | Float64Array | Int8Array | Int16Array | Int32Array | BigInt64Array | Uint8Array | Uint16Array | Uint32Array | BigUint64Array;

export interface NpyArray<T extends NpyData = NpyData> {
  /** NumPy descr, e.g. "<f4". */
  dtype: string;
  shape: number[];
  data: T;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

interface Kind {
  bytes: number;
  make(buf: ArrayBuffer, length: number): NpyData;
}

const KINDS: Record<string, Kind> = {
  f4: { bytes: 4, make: (b, n) => new Float32Array(b, 0, n) },
  f8: { bytes: 8, make: (b, n) => new Float64Array(b, 0, n) },
  i1: { bytes: 1, make: (b, n) => new Int8Array(b, 0, n) },
  i2: { bytes: 2, make: (b, n) => new Int16Array(b, 0, n) },
  i4: { bytes: 4, make: (b, n) => new Int32Array(b, 0, n) },
  i8: { bytes: 8, make: (b, n) => new BigInt64Array(b, 0, n) },
  u1: { bytes: 1, make: (b, n) => new Uint8Array(b, 0, n) },
  b1: { bytes: 1, make: (b, n) => new Uint8Array(b, 0, n) },
  u2: { bytes: 2, make: (b, n) => new Uint16Array(b, 0, n) },
  u4: { bytes: 4, make: (b, n) => new Uint32Array(b, 0, n) },
  u8: { bytes: 8, make: (b, n) => new BigUint64Array(b, 0, n) },
  // float16 comes back as raw bits; convert with float16ToFloat32 from onnx.ts when needed.
  f2: { bytes: 2, make: (b, n) => new Uint16Array(b, 0, n) },
};

/** Parses the bytes of an .npy file. `name` only serves error messages. */
export function parseNpy(bytes: Uint8Array, name = 'array'): NpyArray {
  if (bytes.length < 10 || MAGIC.some((m, i) => bytes[i] !== m)) {
    throw new Error(`${name} is not a .npy file (bad magic)`);
  }
  const major = bytes[6]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let headerStart: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    headerLen = view.getUint32(8, true);
    headerStart = 12;
  } else {
    throw new Error(`${name}: unsupported .npy format version ${major}`);
  }
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(headerStart, headerStart + headerLen));
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new Error(`${name}: malformed .npy header ${JSON.stringify(header)}`);
  }
  if (fortran === 'True') throw new Error(`${name}: Fortran-order arrays are not supported (save with C order)`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  const order = descr[0]!;
  const kind = KINDS[descr.slice(1)];
  if (!kind || !'<>|='.includes(order)) throw new Error(`${name}: unsupported dtype ${descr}`);
  const length = shape.reduce((a, b) => a * b, 1);
  const dataStart = headerStart + headerLen;
  const byteLength = length * kind.bytes;
  if (bytes.length - dataStart < byteLength) {
    throw new Error(`${name}: truncated .npy file (needs ${byteLength} data bytes, has ${bytes.length - dataStart})`);
  }
  // Copy into a fresh, aligned buffer: the data offset in the file need not be a multiple of 8.
  const buf = bytes.slice(dataStart, dataStart + byteLength);
  if (order === '>' && kind.bytes > 1) {
    for (let i = 0; i < byteLength; i += kind.bytes) buf.subarray(i, i + kind.bytes).reverse();
  }
  return { dtype: descr, shape, data: kind.make(buf.buffer, length) };
}

export async function readNpy(file: string): Promise<NpyArray> {
  return parseNpy(new Uint8Array(await readFile(file)), file);
}

/** Reads any numeric .npy as float32 (the engine's working type). */
export async function readNpyFloat32(file: string): Promise<NpyArray<Float32Array>> {
  const a = await readNpy(file);
  return { dtype: '<f4', shape: a.shape, data: toFloat32(a.data) };
}

function toFloat32(d: NpyData): Float32Array {
  if (d instanceof Float32Array) return d;
  const out = new Float32Array(d.length);
  for (let i = 0; i < d.length; i++) out[i] = Number(d[i]!);
  return out;
}

function descrOf(data: NpyData): string {
  if (data instanceof Float32Array) return '<f4';
  if (data instanceof Float64Array) return '<f8';
  if (data instanceof Int8Array) return '|i1';
  if (data instanceof Int16Array) return '<i2';
  if (data instanceof Int32Array) return '<i4';
  if (data instanceof BigInt64Array) return '<i8';
  if (data instanceof Uint8Array) return '|u1';
  if (data instanceof Uint16Array) return '<u2';
  if (data instanceof Uint32Array) return '<u4';
  return '<u8';
}

/** Encodes an array as an .npy (version 1.0, little-endian, C order). */
export function encodeNpy(data: NpyData, shape: readonly number[]): Uint8Array {
  const length = shape.reduce((a, b) => a * b, 1);
  if (length !== data.length) throw new Error(`encodeNpy: shape [${shape.join(', ')}] needs ${length} values, got ${data.length}`);
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descrOf(data)}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // Pad so that magic + length + header + newline is a multiple of 64 (what NumPy writes).
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += ' '.repeat(pad % 64) + '\n';
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  // Typed arrays are host-endian; every platform Node supports in practice is little-endian.
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}

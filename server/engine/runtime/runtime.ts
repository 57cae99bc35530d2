/**
 * onnxruntime-node plumbing: the execution-provider names, input/output metadata, and tensors in whatever
 * dtype a model declares (float32, float16, int32, int64, float64). The engine works in float32
 * throughout; conversion happens here at the session boundary. Sessions are created in sessions.ts.
 */
import ort from 'onnxruntime-node';
import type { Session } from './inference-thread.ts';

export type ExecutionProviderRequest = 'auto' | 'cuda' | 'tensorrt' | 'webgpu' | 'cpu';
export type ExecutionProvider = 'cuda' | 'tensorrt' | 'webgpu' | 'cpu';

export const EXECUTION_PROVIDERS: readonly ExecutionProviderRequest[] = ['auto', 'cuda', 'tensorrt', 'webgpu', 'cpu'];

/** Sessions live on the inference thread (inference-thread.ts), so the event loop stays free while they run. */
export type InferenceSession = Session;
export type OrtTensor = ort.Tensor;
export { ort };

// ---------------------------------------------------------------------------------------------
// Metadata

export type Dim = number | string;

/** A dimension's size when the model fixes it, else null (a symbolic or unknown axis). */
export function numericDim(d: number | string | undefined): number | null {
  return typeof d === 'number' && d > 0 ? d : null;
}

export interface TensorInfo {
  name: string;
  /** 'float32', 'float16', 'int64', 'int32', ... */
  type: string;
  /** Symbolic dimensions are strings; unknown rank is an empty array with `rankKnown` false. */
  shape: Dim[];
  rankKnown: boolean;
}

type MetaEntry = { name: string; isTensor?: boolean; type?: string; shape?: readonly (number | string)[] };

function toInfo(m: MetaEntry): TensorInfo {
  return { name: m.name, type: m.type ?? 'float32', shape: m.shape ? [...m.shape] : [], rankKnown: m.shape !== undefined };
}

export function inputInfos(session: Session): TensorInfo[] {
  const meta = (session as unknown as { inputMetadata?: readonly MetaEntry[] }).inputMetadata;
  if (meta && meta.length === session.inputNames.length) return meta.map(toInfo);
  return session.inputNames.map((name) => ({ name, type: 'float32', shape: [], rankKnown: false }));
}

export function outputInfos(session: Session): TensorInfo[] {
  const meta = (session as unknown as { outputMetadata?: readonly MetaEntry[] }).outputMetadata;
  if (meta && meta.length === session.outputNames.length) return meta.map(toInfo);
  return session.outputNames.map((name) => ({ name, type: 'float32', shape: [], rankKnown: false }));
}

/** Picks an input by preferred names, else by position; throws naming what the model offers. */
export function findInput(infos: TensorInfo[], preferred: string[], fallbackIndex: number | null, what: string, model: string): TensorInfo {
  for (const p of preferred) {
    const hit = infos.find((i) => i.name === p);
    if (hit) return hit;
  }
  if (fallbackIndex !== null && infos[fallbackIndex]) return infos[fallbackIndex]!;
  throw new Error(`${model} has no ${what} input (expected one of ${preferred.join(', ')}; it has ${infos.map((i) => i.name).join(', ') || 'none'})`);
}

// ---------------------------------------------------------------------------------------------
// float16

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE 754 binary32 → binary16 bits, round to nearest even; overflow → ±Inf, NaN kept. */
export function float32ToFloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // Inf / NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow
  if (e <= 0) {
    // Subnormal half (or zero): shift the implicit 1 in, round to nearest even.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (half + (rem > mid || (rem === mid && half & 1) ? 1 : 0));
  }
  const half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // Carry from rounding may bump the exponent, which is the right result (up to Inf).
  return sign | (half + (rem > 0x1000 || (rem === 0x1000 && half & 1) ? 1 : 0));
}

/** binary16 bits → number. */
export function float16BitsToFloat32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

export function float32ToFloat16(src: Float32Array, out = new Uint16Array(src.length)): Uint16Array {
  for (let i = 0; i < src.length; i++) out[i] = float32ToFloat16Bits(src[i]!);
  return out;
}

/** Every binary16 value as float32 (256 KB, made on first use): a lookup per element instead of a power of two. */
let halfTable: Float32Array | null = null;

export function float16ToFloat32(src: ArrayLike<number>, out: Float32Array = new Float32Array(src.length)): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(0x10000);
    for (let h = 0; h < 0x10000; h++) halfTable[h] = float16BitsToFloat32(h);
  }
  const table = halfTable;
  for (let i = 0; i < src.length; i++) out[i] = table[src[i]! & 0xffff]!;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Tensors in the model's dtype

/** A float32 tensor converted to `type` (float32 is passed through without copying). */
export function floatTensor(type: string, data: Float32Array, dims: readonly number[]): ort.Tensor {
  switch (type) {
    case 'float32':
      return new ort.Tensor('float32', data, dims);
    case 'float16':
      return new ort.Tensor('float16', float32ToFloat16(data), dims);
    case 'float64':
      return new ort.Tensor('float64', Float64Array.from(data), dims);
    default:
      throw new Error(`expected a floating-point input, the model declares ${type}`);
  }
}

/** Integer or float tensor from plain numbers, in the declared type (ids, timesteps). */
export function numberTensor(type: string, values: ArrayLike<number>, dims: readonly number[]): ort.Tensor {
  const n = values.length;
  switch (type) {
    case 'int64': {
      const a = new BigInt64Array(n);
      for (let i = 0; i < n; i++) a[i] = BigInt(Math.round(values[i]!));
      return new ort.Tensor('int64', a, dims);
    }
    case 'int32':
      return new ort.Tensor(
        'int32',
        Int32Array.from(values, (v) => Math.round(v)),
        dims,
      );
    case 'float32':
      return new ort.Tensor('float32', Float32Array.from(values), dims);
    case 'float16':
      return new ort.Tensor('float16', float32ToFloat16(Float32Array.from(values)), dims);
    case 'float64':
      return new ort.Tensor('float64', Float64Array.from(values), dims);
    default:
      throw new Error(`unsupported input type ${type}`);
  }
}

/**
 * A floating-point output as float32. float32 data is returned as is, not copied; float16 and float64
 * are converted into `out` when given (a reused buffer of exactly the tensor's size), else into a new array.
 */
export function tensorToFloat32(t: ort.Tensor, out?: Float32Array): Float32Array {
  const d = t.data as unknown;
  if (t.type === 'float32' && d instanceof Float32Array) return d;
  if (out && out.length !== t.size) throw new Error(`output buffer holds ${out.length} values, the tensor has ${t.size}`);
  if (t.type === 'float16') {
    // Uint16Array of bits, or a native Float16Array where the runtime has one.
    if (d instanceof Uint16Array) return float16ToFloat32(d, out);
    return out ? (out.set(d as ArrayLike<number>), out) : Float32Array.from(d as ArrayLike<number>);
  }
  if (t.type === 'float64' && d instanceof Float64Array) return out ? (out.set(d), out) : Float32Array.from(d);
  throw new Error(`expected a floating-point output, got ${t.type}`);
}

/**
 * What the fusions read of an ONNX graph: who produces and who consumes each tensor, the values of
 * small constants (initializers and Constant nodes), and dead-node removal after a fusion replaced a
 * subgraph. Plain functions over onnx-proto's decoded model; the fusions stay pattern code.
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
export type IModelProto = onnxProto.onnx.IModelProto;
export type INodeProto = onnxProto.onnx.INodeProto;
export type ITensorProto = onnxProto.onnx.ITensorProto;
export type IAttributeProto = onnxProto.onnx.IAttributeProto;

// Plain numbers: tensors carry their data type as a number, compared with these.
const T = {
  FLOAT: onnx.TensorProto.DataType.FLOAT as number,
  DOUBLE: onnx.TensorProto.DataType.DOUBLE as number,
  INT32: onnx.TensorProto.DataType.INT32 as number,
  INT64: onnx.TensorProto.DataType.INT64 as number,
  FLOAT16: onnx.TensorProto.DataType.FLOAT16 as number,
};
export const MICROSOFT = 'com.microsoft';

export class GraphIndex {
  readonly producer = new Map<string, INodeProto>();
  readonly consumers = new Map<string, INodeProto[]>();
  readonly initializers = new Map<string, ITensorProto>();
  readonly outputs: Set<string>;

  constructor(readonly model: IModelProto) {
    const g = model.graph!;
    for (const t of g.initializer ?? []) this.initializers.set(t.name ?? '', t);
    for (const n of g.node ?? []) {
      for (const o of n.output ?? []) this.producer.set(o, n);
      for (const i of n.input ?? []) {
        if (!i) continue;
        const list = this.consumers.get(i) ?? [];
        list.push(n);
        this.consumers.set(i, list);
      }
    }
    this.outputs = new Set((g.output ?? []).map((o) => o.name ?? ''));
  }

  /** The one consumer of a tensor, or null when it has none or several (or is a graph output). */
  only(tensor: string): INodeProto | null {
    const c = this.consumers.get(tensor) ?? [];
    return c.length === 1 && !this.outputs.has(tensor) ? c[0]! : null;
  }

  /** A constant tensor's value as numbers (initializer, or Constant node), null if not constant or not numeric. */
  constant(tensor: string): { dims: number[]; values: number[] } | null {
    const init = this.initializers.get(tensor);
    const n = this.producer.get(tensor);
    const t = init ?? (n?.opType === 'Constant' ? n.attribute?.find((a) => a.name === 'value')?.t : undefined);
    if (!t) return null;
    // External data is not read here: the constants the fusions need (shapes, scales) are small.
    if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) return null;
    const values = tensorValues(t);
    return values ? { dims: (t.dims ?? []).map(Number), values } : null;
  }

  /** A constant scalar (one element), or null. */
  scalar(tensor: string): number | null {
    const c = this.constant(tensor);
    return c && c.values.length === 1 ? c.values[0]! : null;
  }

  /** Whether a tensor does not depend on any graph input (initializers, Constants and what is computed from them alone). */
  isConstant(tensor: string, depth = 0): boolean {
    if (this.initializers.has(tensor)) return true;
    const n = this.producer.get(tensor);
    if (!n || depth > 8) return false;
    if (n.opType === 'Constant') return true;
    const ins = (n.input ?? []).filter((x) => x);
    return ins.length > 0 && ins.every((x) => this.isConstant(x, depth + 1));
  }
}

/** The numbers of a small tensor (float, double, int32/64, float16 in raw form). */
export function tensorValues(t: ITensorProto): number[] | null {
  const type: number = t.dataType ?? 0;
  const count = (t.dims ?? []).reduce<number>((a, d) => a * Number(d), 1);
  if (count > 4096) return null;
  const raw = t.rawData && t.rawData.byteLength > 0 ? t.rawData : null;
  if (raw) {
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const out: number[] = [];
    const size = type === T.DOUBLE || type === T.INT64 ? 8 : type === T.FLOAT16 ? 2 : 4;
    for (let off = 0; off + size <= raw.byteLength; off += size) {
      if (type === T.FLOAT) out.push(view.getFloat32(off, true));
      else if (type === T.DOUBLE) out.push(view.getFloat64(off, true));
      else if (type === T.INT64) out.push(Number(view.getBigInt64(off, true)));
      else if (type === T.INT32) out.push(view.getInt32(off, true));
      else if (type === T.FLOAT16) out.push(half(view.getUint16(off, true)));
      else return null;
    }
    return out;
  }
  const list = (t.floatData?.length ? t.floatData : t.doubleData?.length ? t.doubleData : t.int64Data?.length ? t.int64Data : t.int32Data) ?? [];
  if (type === T.FLOAT16) return (t.int32Data ?? []).map(half);
  return Array.from(list as ArrayLike<unknown>, (x) => Number(x));
}

function half(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

export function intAttr(n: INodeProto, name: string): number | undefined {
  const a = n.attribute?.find((x) => x.name === name);
  return a?.i !== undefined && a.i !== null ? Number(a.i) : undefined;
}

export function intsAttr(n: INodeProto, name: string): number[] | undefined {
  return n.attribute?.find((x) => x.name === name)?.ints?.map(Number);
}

export function stringAttr(n: INodeProto, name: string): string | undefined {
  const s = n.attribute?.find((x) => x.name === name)?.s;
  return s ? new TextDecoder().decode(s) : undefined;
}

export function attribute(
  name: string,
  value: number | string,
  kind: 'int' | 'float' | 'string' = typeof value === 'string' ? 'string' : 'int',
): IAttributeProto {
  const A = onnx.AttributeProto.AttributeType;
  if (kind === 'string') return { name, type: A.STRING, s: new TextEncoder().encode(String(value)) };
  if (kind === 'float') return { name, type: A.FLOAT, f: Number(value) };
  return { name, type: A.INT, i: Number(value) };
}

export function intsAttribute(name: string, values: number[]): IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INTS, ints: values };
}

/** Removes nodes none of whose outputs is used (by a node or as a graph output), until none is left. */
export function removeDeadNodes(model: IModelProto): number {
  const g = model.graph!;
  const outputs = new Set((g.output ?? []).map((o) => o.name ?? ''));
  let removed = 0;
  for (;;) {
    const used = new Set<string>(outputs);
    for (const n of g.node ?? []) for (const i of n.input ?? []) used.add(i);
    const keep = (g.node ?? []).filter((n) => (n.output ?? []).some((o) => o && used.has(o)));
    if (keep.length === (g.node ?? []).length) break;
    removed += (g.node ?? []).length - keep.length;
    g.node = keep;
  }
  const used = new Set<string>();
  for (const n of g.node ?? []) for (const i of n.input ?? []) used.add(i);
  const inputs = new Set((g.input ?? []).map((i) => i.name ?? ''));
  g.initializer = (g.initializer ?? []).filter((t) => used.has(t.name ?? '') || inputs.has(t.name ?? '') || outputs.has(t.name ?? ''));
  return removed;
}

/** Adds an opset import for `domain` (version 1) when the model has none. */
export function ensureDomain(model: IModelProto, domain: string): void {
  const imports = model.opsetImport ?? [];
  if (!imports.some((o) => o.domain === domain)) model.opsetImport = [...imports, { domain, version: 1 }];
}

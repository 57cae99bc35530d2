/**
 * The structure of an ONNX file without its weights: nodes, graph inputs, opsets and the initializers'
 * names, types and shapes (the data of small ones only). Read by position from the file, so a single-file
 * fp16 export of 1.7 GB costs a few megabytes of reads here, not a second copy of its weights in memory.
 *
 * Protobuf wire format: each field is a varint tag (field number << 3 | wire type) followed by a varint
 * (type 0), 8 bytes (1), 4 bytes (5) or a varint length and that many bytes (2). ModelProto's graph is
 * field 7; in GraphProto, node = 1, initializer = 5, input = 11; in TensorProto, dims = 1, data_type = 2,
 * name = 8 (the data fields are skipped unless the tensor is small).
 */
import { open, type FileHandle } from 'node:fs/promises';
import onnxProto from 'onnx-proto';
import { float16BitsToFloat32 } from './runtime.ts';

const { onnx } = onnxProto;
export type INodeProto = onnxProto.onnx.INodeProto;
export type ITensorProto = onnxProto.onnx.ITensorProto;
export type IValueInfoProto = onnxProto.onnx.IValueInfoProto;

export interface GraphOutline {
  nodes: INodeProto[];
  inputs: IValueInfoProto[];
  /** Every initializer by name; `rawData` and the typed data fields only for tensors of at most SMALL_TENSOR bytes. */
  initializers: Map<string, ITensorProto>;
  /** Opset version per domain ('' is ai.onnx). */
  opsets: Map<string, number>;
}

/** Initializers up to this size are decoded whole (shape constants, scales); larger ones by name only. */
const SMALL_TENSOR = 4096;
const WINDOW = 1 << 20;
const JUMP_WINDOW = 4096;

/** A protobuf field: its number, wire type, and where its payload lies in the file. */
interface Field {
  field: number;
  wire: number;
  at: number;
  length: number;
}

/**
 * Sequential reads of a file through a window, re-read where a field lies outside it. Parsing is
 * synchronous inside the window; only a refill awaits (awaiting every field would cost more than the
 * whole parse).
 */
class FileWindow {
  private buf = Buffer.alloc(0);
  private at = 0;
  constructor(
    private readonly fh: FileHandle,
    readonly size: number,
  ) {}

  /** `n` bytes at `pos` if the window holds them (valid until the next refill), else null. */
  view(pos: number, n: number): Uint8Array | null {
    return pos >= this.at && pos + n <= this.at + this.buf.length ? this.buf.subarray(pos - this.at, pos - this.at + n) : null;
  }

  private async fill(pos: number, n: number): Promise<void> {
    if (pos < 0 || pos + n > this.size) throw new Error(`truncated ONNX file (a field at ${pos} runs past its ${this.size} bytes)`);
    // Streaming on (nodes are contiguous) reads a large window; a jump past a tensor's data reads just its header.
    const streaming = pos >= this.at && pos <= this.at + this.buf.length;
    const len = Math.min(Math.max(n, streaming ? WINDOW : JUMP_WINDOW), this.size - pos);
    const buf = Buffer.allocUnsafe(len);
    const { bytesRead } = await this.fh.read(buf, 0, len, pos);
    if (bytesRead < n) throw new Error('the ONNX file changed while it was read');
    this.buf = buf.subarray(0, bytesRead);
    this.at = pos;
  }

  /** `n` bytes at `pos`, read if the window does not hold them. */
  async bytes(pos: number, n: number): Promise<Uint8Array> {
    const hit = this.view(pos, n);
    if (hit) return hit;
    await this.fill(pos, n);
    return this.view(pos, n)!;
  }

  /** The varint at `pos` and where the next byte is, if the window holds it. */
  private varintAt(pos: number): [value: number, next: number] | null {
    let value = 0;
    for (let i = pos - this.at, scale = 1; i >= 0 && i < this.buf.length && i < pos - this.at + 10; i++, scale *= 128) {
      const b = this.buf[i]!;
      value += (b & 0x7f) * scale;
      if (b < 0x80) return [value, this.at + i + 1];
    }
    return null;
  }

  async varint(pos: number): Promise<[value: number, next: number]> {
    const hit = this.varintAt(pos);
    if (hit) return hit;
    await this.fill(pos, Math.min(10, this.size - pos));
    const v = this.varintAt(pos);
    if (!v) throw new Error(`malformed ONNX file (bad varint at ${pos})`);
    return v;
  }

  /** The field whose tag starts at `pos` (its header parsed from the window), or null if the window ends first. */
  private fieldAt(pos: number): Field | null {
    const tag = this.varintAt(pos);
    if (!tag) return null;
    const [t, p] = tag;
    const wire = t % 8;
    const field = Math.floor(t / 8);
    if (wire === 1) return { field, wire, at: p, length: 8 };
    if (wire === 5) return { field, wire, at: p, length: 4 };
    const v = this.varintAt(p);
    if (!v) return null;
    if (wire === 0) return { field, wire, at: p, length: v[1] - p };
    if (wire === 2) return { field, wire, at: v[1], length: v[0] };
    throw new Error(`malformed ONNX file (wire type ${wire} at ${pos})`);
  }

  /** Calls `visit` for each field of the message in [start, end); awaits only refills and what `visit` returns. */
  async fields(start: number, end: number, visit: (f: Field) => void | Promise<void>): Promise<void> {
    for (let pos = start; pos < end;) {
      let f = this.fieldAt(pos);
      if (!f) {
        await this.fill(pos, Math.min(20, end - pos));
        f = this.fieldAt(pos);
        if (!f) throw new Error(`malformed ONNX file (bad field at ${pos})`);
      }
      const pending = visit(f);
      if (pending) await pending;
      pos = f.at + f.length;
    }
  }
}

/** Name, type and shape of a large initializer: the fields before and around its data, never the data. */
async function tensorHeader(file: FileWindow, start: number, end: number): Promise<ITensorProto> {
  const t: ITensorProto = { dims: [] };
  await file.fields(start, end, async (f) => {
    if (f.field === 8 && f.wire === 2) t.name = new TextDecoder().decode(await file.bytes(f.at, f.length));
    else if (f.field === 2 && f.wire === 0) t.dataType = (await file.varint(f.at))[0];
    else if (f.field === 1 && f.wire === 0) t.dims!.push((await file.varint(f.at))[0]);
    else if (f.field === 1 && f.wire === 2) {
      for (let p = f.at; p < f.at + f.length;) {
        const [d, next] = await file.varint(p);
        t.dims!.push(d);
        p = next;
      }
    }
  });
  return t;
}

export async function readGraphOutline(modelPath: string): Promise<GraphOutline> {
  const fh = await open(modelPath, 'r');
  try {
    const file = new FileWindow(fh, (await fh.stat()).size);
    const outline: GraphOutline = { nodes: [], inputs: [], initializers: new Map(), opsets: new Map() };
    const take = (field: number, bytes: Uint8Array) => {
      if (field === 1) outline.nodes.push(onnx.NodeProto.decode(bytes));
      else if (field === 11) outline.inputs.push(onnx.ValueInfoProto.decode(bytes));
      else {
        // Copied: a decoded tensor's bytes are views, and the window moves on.
        const t = onnx.TensorProto.decode(Uint8Array.from(bytes));
        if (t.name) outline.initializers.set(t.name, t);
      }
    };
    const graphField = (g: Field): void | Promise<void> => {
      if (g.wire !== 2 || (g.field !== 1 && g.field !== 5 && g.field !== 11)) return;
      if (g.field === 5 && g.length > SMALL_TENSOR) {
        return tensorHeader(file, g.at, g.at + g.length).then((t) => void (t.name && outline.initializers.set(t.name, t)));
      }
      const view = file.view(g.at, g.length);
      if (view) return take(g.field, view);
      return file.bytes(g.at, g.length).then((b) => take(g.field, b));
    };
    await file.fields(0, file.size, async (m) => {
      if (m.field === 8 && m.wire === 2) {
        const o = onnx.OperatorSetIdProto.decode(await file.bytes(m.at, m.length));
        outline.opsets.set(o.domain ?? '', Number(o.version));
      } else if (m.field === 7 && m.wire === 2) await file.fields(m.at, m.at + m.length, graphField);
    });
    if (!outline.opsets.has('') && !outline.opsets.has('ai.onnx')) outline.opsets.set('', 1);
    return outline;
  } finally {
    await fh.close();
  }
}

/**
 * The values of a constant tensor as numbers (float, float16, double, int32, int64 and friends), or null
 * when it carries no data here (a large or external initializer).
 */
export function tensorValues(t: ITensorProto): number[] | null {
  const T = onnx.TensorProto.DataType;
  const raw = t.rawData;
  if (raw && raw.length > 0) {
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const read: Partial<Record<number, [number, (o: number) => number]>> = {
      [T.FLOAT]: [4, (o) => view.getFloat32(o, true)],
      [T.DOUBLE]: [8, (o) => view.getFloat64(o, true)],
      [T.INT64]: [8, (o) => Number(view.getBigInt64(o, true))],
      [T.INT32]: [4, (o) => view.getInt32(o, true)],
      [T.INT8]: [1, (o) => view.getInt8(o)],
      [T.UINT8]: [1, (o) => view.getUint8(o)],
      [T.FLOAT16]: [2, (o) => float16BitsToFloat32(view.getUint16(o, true))],
    };
    const r = read[t.dataType ?? 0];
    if (!r) return null;
    return Array.from({ length: Math.floor(raw.byteLength / r[0]) }, (_, i) => r[1](i * r[0]));
  }
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) return null;
  const count = (t.dims ?? []).reduce<number>((a, d) => a * Number(d), 1);
  for (const list of [t.floatData, t.doubleData, t.int64Data, t.int32Data, t.uint64Data]) {
    if (list && list.length > 0) return Array.from(list as ArrayLike<unknown>, (v) => Number(v));
  }
  return count === 0 ? [] : null;
}

/**
 * A restricted pickle reader for PyTorch checkpoints: a stack machine that implements only the opcodes
 * torch's `weights_only` unpickler implements, and that never imports or calls anything. A GLOBAL is looked
 * up in a fixed table: `_rebuild_tensor_v2` / `_rebuild_parameter` describe a tensor (a storage, offset,
 * shape and strides), the `torch.*Storage` classes name a storage's dtype, `collections.OrderedDict` and
 * `torch.Size` build containers; every other global is refused with its name. A few globals that training
 * code leaves beside the weights (a Lightning callback, numpy scalars) are accepted as inert placeholders
 * that can never become a weight: their objects are built by nothing and read by nothing. The tensors'
 * bytes are not here: BINPERSID names a storage, which torch-file.ts finds in the zip.
 */

/** A storage named by a persistent id: its dtype (safetensors' names), its key in `data/`, its element count. */
export class TorchStorage {
  constructor(
    readonly dtype: string,
    readonly key: string,
    readonly numel: number,
  ) {}
}

/** A tensor: a view (offset, shape, strides, in elements) of a storage. */
export class TorchTensor {
  constructor(
    readonly storage: TorchStorage,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}

/** A tuple (a list is a plain array). */
export class PyTuple {
  constructor(readonly items: PyValue[]) {}
}

/** What a global that is accepted but never used stands for, and what calling or building it gives. */
export class Inert {
  constructor(readonly name: string) {}
}

class Global {
  constructor(readonly name: string) {}
}

export type PyValue =
  null | boolean | number | bigint | string | Buffer | PyValue[] | PyTuple | Map<unknown, PyValue> | TorchStorage | TorchTensor | Inert | Global;

export class PickleError extends Error {}

/** torch's storage classes, by the dtype of their elements. */
const STORAGES: Readonly<Record<string, string>> = {
  'torch.FloatStorage': 'F32',
  'torch.HalfStorage': 'F16',
  'torch.BFloat16Storage': 'BF16',
  'torch.DoubleStorage': 'F64',
  'torch.LongStorage': 'I64',
  'torch.IntStorage': 'I32',
  'torch.ShortStorage': 'I16',
  'torch.CharStorage': 'I8',
  'torch.ByteStorage': 'U8',
  'torch.BoolStorage': 'BOOL',
};

const CALLABLE = new Set(['collections.OrderedDict', 'torch._utils._rebuild_tensor_v2', 'torch._utils._rebuild_parameter', 'torch.Size']);

/** Left beside the weights by training code; accepted, never called (ComfyUI and A1111 accept the same). */
const INERT = new Set([
  'pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint',
  'numpy.core.multiarray.scalar',
  'numpy._core.multiarray.scalar',
  'numpy.dtype',
  '_codecs.encode',
]);

const asCount = (v: PyValue, what: string): number => {
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new PickleError(`${what} is not a count`);
  return n;
};

const counts = (v: PyValue, what: string): number[] => {
  if (!(v instanceof PyTuple)) throw new PickleError(`${what} is not a tuple`);
  return v.items.map((x) => asCount(x, what));
};

/** Applies an allowed callable (REDUCE). */
function call(fn: Global, args: PyValue): PyValue {
  const a = args instanceof PyTuple ? args.items : null;
  if (!a) throw new PickleError(`${fn.name} called without an argument tuple`);
  switch (fn.name) {
    case 'collections.OrderedDict':
      return new Map();
    case 'torch.Size':
      return new PyTuple(counts(a[0] ?? null, 'a torch.Size'));
    case 'torch._utils._rebuild_parameter':
      if (!(a[0] instanceof TorchTensor)) throw new PickleError('a parameter without a tensor');
      return a[0];
    default: {
      const [storage, offset, shape, stride] = a;
      if (!(storage instanceof TorchStorage)) throw new PickleError('_rebuild_tensor_v2 without a storage');
      const dims = counts(shape ?? null, 'a tensor shape');
      const strides = counts(stride ?? null, 'a tensor stride');
      if (dims.length !== strides.length) throw new PickleError('a tensor whose shape and strides differ in length');
      return new TorchTensor(storage, asCount(offset ?? null, 'a storage offset'), dims, strides);
    }
  }
}

/** The storage a persistent id names: ('storage', StorageClass, key, location, numel). */
function persistent(pid: PyValue): TorchStorage {
  const t = pid instanceof PyTuple ? pid.items : null;
  if (!t || t[0] !== 'storage' || !(t[1] instanceof Global)) throw new PickleError('a persistent id that is not a storage');
  const dtype = STORAGES[t[1].name];
  if (!dtype) throw new PickleError(`a storage of unknown type ${t[1].name}`);
  if (typeof t[2] !== 'string' || !/^[A-Za-z0-9_]+$/.test(t[2])) throw new PickleError('a storage with an invalid key');
  return new TorchStorage(dtype, t[2], asCount(t[4] ?? null, 'a storage size'));
}

/** Reads one pickle; throws a PickleError naming the first thing it refuses. */
export function readPickle(data: Buffer): PyValue {
  return new Machine(data).run();
}

class Machine {
  private pos = 0;
  private stack: PyValue[] = [];
  private readonly marks: PyValue[][] = [];
  private readonly memo = new Map<number, PyValue>();

  constructor(private readonly data: Buffer) {}

  private take(n: number): Buffer {
    if (this.pos + n > this.data.length) throw new PickleError('the pickle ends in the middle of an instruction');
    const out = this.data.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  private pop(): PyValue {
    if (this.stack.length === 0) throw new PickleError('an instruction pops an empty stack');
    return this.stack.pop()!;
  }

  private top(): PyValue {
    if (this.stack.length === 0) throw new PickleError('an instruction reads an empty stack');
    return this.stack[this.stack.length - 1]!;
  }

  private popMark(): PyValue[] {
    const items = this.stack;
    const below = this.marks.pop();
    if (!below) throw new PickleError('an instruction pops a mark that was never set');
    this.stack = below;
    return items;
  }

  private line(): string {
    const end = this.data.indexOf(0x0a, this.pos);
    if (end < 0 || end - this.pos > 256) throw new PickleError('a GLOBAL without its name');
    const s = this.data.toString('latin1', this.pos, end);
    this.pos = end + 1;
    return s;
  }

  private global(): Global | Inert {
    const name = `${this.line()}.${this.line()}`;
    if (INERT.has(name)) return new Inert(name);
    if (CALLABLE.has(name) || name in STORAGES) return new Global(name);
    throw new PickleError(`the pickle asks for ${name}, which is not a tensor, a storage or a container: refused (nothing was run)`);
  }

  run(): PyValue {
    for (;;) {
      const op = this.take(1)[0]!;
      if (op === 0x2e) return this.pop(); // STOP
      this.step(op);
    }
  }

  private step(op: number): void {
    if (this.structure(op) || this.scalar(op)) return;
    throw new PickleError(`opcode 0x${op.toString(16).padStart(2, '0')} at byte ${this.pos - 1} is not one a weights file uses`);
  }

  /** Containers, globals, calls and the memo. */
  private structure(op: number): boolean {
    const s = this.stack;
    switch (op) {
      case 0x63: // GLOBAL
        s.push(this.global());
        break;
      case 0x52: {
        // REDUCE
        const args = this.pop();
        const fn = this.pop();
        if (fn instanceof Inert) s.push(fn);
        else if (fn instanceof Global && CALLABLE.has(fn.name)) s.push(call(fn, args));
        else throw new PickleError('REDUCE on something that is not an allowed function');
        break;
      }
      case 0x81: {
        // NEWOBJ
        this.pop();
        const cls = this.pop();
        if (!(cls instanceof Inert)) throw new PickleError('NEWOBJ of a class that is not allowed');
        s.push(cls);
        break;
      }
      case 0x62: {
        // BUILD: an OrderedDict's or a tensor's state, or an inert object's: nothing to keep
        this.pop();
        const inst = this.top();
        if (!(inst instanceof Map || inst instanceof TorchTensor || inst instanceof Inert)) throw new PickleError('BUILD on an object that is not allowed');
        break;
      }
      case 0x61: // APPEND
      case 0x65: {
        // APPENDS
        const items = op === 0x61 ? [this.pop()] : this.popMark();
        const list = this.top();
        if (!Array.isArray(list)) throw new PickleError('APPEND to something that is not a list');
        for (const item of items) list.push(item);
        break;
      }
      case 0x73: // SETITEM
      case 0x75: {
        // SETITEMS
        const items = op === 0x73 ? [this.pop(), this.pop()].reverse() : this.popMark();
        const dict = this.top();
        if (!(dict instanceof Map) || items.length % 2 !== 0) throw new PickleError('SETITEM on something that is not a dict');
        for (let i = 0; i < items.length; i += 2) dict.set(items[i], items[i + 1]!);
        break;
      }
      case 0x28: // MARK
        this.marks.push(this.stack);
        this.stack = [];
        break;
      case 0x74: {
        // TUPLE (popMark first: it changes which stack is current)
        const items = this.popMark();
        this.stack.push(new PyTuple(items));
        break;
      }
      case 0x85: // TUPLE1
      case 0x86: // TUPLE2
      case 0x87: {
        // TUPLE3
        const n = op - 0x84;
        if (s.length < n) throw new PickleError('a tuple of more items than the stack holds');
        s.push(new PyTuple(s.splice(s.length - n, n)));
        break;
      }
      case 0x51: // BINPERSID
        s.push(persistent(this.pop()));
        break;
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET
        const i = op === 0x68 ? this.take(1)[0]! : this.take(4).readUInt32LE(0);
        if (!this.memo.has(i)) throw new PickleError(`a memo entry ${i} that was never stored`);
        s.push(this.memo.get(i)!);
        break;
      }
      case 0x71: // BINPUT
      case 0x72: // LONG_BINPUT
        this.memo.set(op === 0x71 ? this.take(1)[0]! : this.take(4).readUInt32LE(0), this.top());
        break;
      default:
        return false;
    }
    return true;
  }

  /** Constants. */
  private scalar(op: number): boolean {
    const s = this.stack;
    switch (op) {
      case 0x80: // PROTO
        this.take(1);
        break;
      case 0x4e: // NONE
        s.push(null);
        break;
      case 0x88: // NEWTRUE
      case 0x89: // NEWFALSE
        s.push(op === 0x88);
        break;
      case 0x29: // EMPTY_TUPLE
        s.push(new PyTuple([]));
        break;
      case 0x5d: // EMPTY_LIST
        s.push([]);
        break;
      case 0x7d: // EMPTY_DICT
        s.push(new Map());
        break;
      case 0x8f: // EMPTY_SET (kept as a list: nothing reads it)
        s.push([]);
        break;
      case 0x4a: // BININT
        s.push(this.take(4).readInt32LE(0));
        break;
      case 0x4b: // BININT1
        s.push(this.take(1)[0]!);
        break;
      case 0x4d: // BININT2
        s.push(this.take(2).readUInt16LE(0));
        break;
      case 0x47: // BINFLOAT
        s.push(this.take(8).readDoubleBE(0));
        break;
      case 0x58: // BINUNICODE
        s.push(this.take(this.take(4).readUInt32LE(0)).toString('utf8'));
        break;
      case 0x55: // SHORT_BINSTRING
        s.push(Buffer.from(this.take(this.take(1)[0]!)));
        break;
      case 0x8a: {
        // LONG1: a little-endian two's-complement integer
        const bytes = this.take(this.take(1)[0]!);
        let v = 0n;
        for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]!);
        if (bytes.length > 0 && bytes[bytes.length - 1]! & 0x80) v -= 1n << BigInt(8 * bytes.length);
        s.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      default:
        return false;
    }
    return true;
  }
}

/**
 * Writes tensors as `torch.save` does since torch 1.6, without Python: a zip of STORED members
 * (`archive/data.pkl`, `archive/data/<key>`, `archive/version`, `archive/byteorder`), the data members
 * padded to 64-byte positions with an extra field as torch pads them, and a protocol-2 pickle with
 * torch's opcodes: GLOBAL (memoized, then BINGET), `_rebuild_tensor_v2` called by REDUCE on
 * (storage by BINPERSID, offset, shape, stride, requires_grad, OrderedDict()), dicts filled by MARK …
 * SETITEMS in batches of 1000, every object BINPUT / LONG_BINPUT into the memo. Optionally wrapped as a
 * Lightning checkpoint ({state_dict, global_step, callbacks: ModelCheckpoint object}).
 */
import { crc32 } from 'node:zlib';
import { tensorBytes, type TensorToWrite } from '../../server/models/convert/safetensors.ts';

const STORAGE_CLASS = { F32: 'FloatStorage', F16: 'HalfStorage', BF16: 'BFloat16Storage' } as const;

/** A protocol-2 pickle, written opcode by opcode. */
export class PickleWriter {
  private readonly parts: Buffer[] = [Buffer.from([0x80, 2])];
  private memoNext = 0;
  private readonly globals = new Map<string, number>();

  op(...bytes: number[]): this {
    this.parts.push(Buffer.from(bytes));
    return this;
  }

  put(): this {
    const i = this.memoNext++;
    if (i < 256) return this.op(0x71, i);
    const b = Buffer.alloc(5);
    b[0] = 0x72;
    b.writeUInt32LE(i, 1);
    this.parts.push(b);
    return this;
  }

  global(module: string, name: string): this {
    const key = `${module}\n${name}\n`;
    const at = this.globals.get(key);
    if (at !== undefined) {
      if (at < 256) return this.op(0x68, at);
      const b = Buffer.alloc(5);
      b[0] = 0x6a;
      b.writeUInt32LE(at, 1);
      this.parts.push(b);
      return this;
    }
    this.parts.push(Buffer.from(`c${key}`, 'latin1'));
    this.globals.set(key, this.memoNext);
    return this.put();
  }

  str(s: string): this {
    const bytes = Buffer.from(s, 'utf8');
    const head = Buffer.alloc(5);
    head[0] = 0x58;
    head.writeUInt32LE(bytes.length, 1);
    this.parts.push(head, bytes);
    return this.put();
  }

  int(n: number): this {
    if (n >= 0 && n < 256) return this.op(0x4b, n);
    if (n >= 0 && n < 65536) return this.op(0x4d, n & 0xff, n >> 8);
    const b = Buffer.alloc(5);
    b[0] = 0x4a;
    b.writeInt32LE(n, 1);
    this.parts.push(b);
    return this;
  }

  /** A tuple of small ints, as pickle writes one: EMPTY_TUPLE, TUPLE1–3, or MARK … TUPLE. */
  ints(values: number[]): this {
    if (values.length === 0) return this.op(0x29);
    if (values.length > 3) this.op(0x28);
    for (const v of values) this.int(v);
    return (values.length <= 3 ? this.op(0x84 + values.length) : this.op(0x74)).put();
  }

  emptyOrderedDict(): this {
    return this.global('collections', 'OrderedDict').op(0x29, 0x52).put();
  }

  bytes(): Buffer {
    return Buffer.concat([...this.parts, Buffer.from('.')]);
  }
}

/** The pickle of a state dict whose tensor i lies in storage "i"; `lightning` wraps it as Lightning does. */
function statePickle(tensors: TensorToWrite[], lightning: boolean): Buffer {
  const w = new PickleWriter();
  if (lightning) w.op(0x7d).put().op(0x28).str('state_dict');
  w.emptyOrderedDict();
  tensors.forEach((t, i) => {
    if (i % 1000 === 0) w.op(0x28);
    w.str(t.name).global('torch._utils', '_rebuild_tensor_v2').op(0x28);
    w.op(0x28)
      .str('storage')
      .global('torch', STORAGE_CLASS[t.dtype ?? 'F32'])
      .str(String(i))
      .str('cpu')
      .int(t.data.length)
      .op(0x74)
      .put()
      .op(0x51);
    const stride = t.shape.map((_, d) => t.shape.slice(d + 1).reduce((a, b) => a * b, 1));
    w.int(0).ints(t.shape).ints(stride).op(0x89).emptyOrderedDict().op(0x74).put().op(0x52).put();
    if (i % 1000 === 999 || i === tensors.length - 1) w.op(0x75);
  });
  if (lightning) {
    w.str('global_step').int(470000);
    w.str('callbacks').global('pytorch_lightning.callbacks.model_checkpoint', 'ModelCheckpoint').op(0x29, 0x81).put().op(0x7d).put();
    w.str('monitor').op(0x4e).op(0x73).op(0x62);
    w.op(0x75);
  }
  return w.bytes();
}

/** A zip of STORED members, data at 64-byte positions (torch's layout). */
export function storedZip(members: [string, Buffer][]): Buffer {
  const out: Buffer[] = [];
  const central: Buffer[] = [];
  let at = 0;
  for (const [name, data] of members) {
    const nameBytes = Buffer.from(name, 'utf8');
    const pad = (64 - ((at + 30 + nameBytes.length + 4) % 64)) % 64;
    const extra = Buffer.alloc(4 + pad);
    extra.writeUInt16LE(0x4246, 0); // "FB": torch's padding field
    extra.writeUInt16LE(pad, 2);
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    local.writeUInt16LE(extra.length, 28);
    const entry = Buffer.alloc(46);
    entry.writeUInt32LE(0x02014b50, 0);
    entry.writeUInt16LE(20, 4);
    entry.writeUInt16LE(20, 6);
    entry.writeUInt32LE(crc, 16);
    entry.writeUInt32LE(data.length, 20);
    entry.writeUInt32LE(data.length, 24);
    entry.writeUInt16LE(nameBytes.length, 28);
    entry.writeUInt32LE(at, 42);
    central.push(entry, nameBytes);
    out.push(local, nameBytes, extra, data);
    at += 30 + nameBytes.length + extra.length + data.length;
  }
  const directory = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(members.length, 8);
  end.writeUInt16LE(members.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(at, 16);
  return Buffer.concat([...out, directory, end]);
}

/** The bytes of a torch.save zip holding `tensors` (each in its own storage, of its dtype). */
export function encodeTorchCheckpoint(tensors: TensorToWrite[], options: { lightning?: boolean } = {}): Buffer {
  return storedZip([
    ['archive/data.pkl', statePickle(tensors, options.lightning ?? false)],
    ['archive/byteorder', Buffer.from('little')],
    ...tensors.map((t, i): [string, Buffer] => [`archive/data/${i}`, tensorBytes(t)]),
    ['archive/version', Buffer.from('3\n')],
  ]);
}

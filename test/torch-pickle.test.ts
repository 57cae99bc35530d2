/**
 * PyTorch checkpoints through the restricted reader (pickle.ts, torch-zip.ts, torch-file.ts), on files
 * written here as torch.save writes them (support/torch-checkpoint.ts): tensors of each dtype read back
 * exactly, from plain and Lightning-wrapped dicts; a pickle that asks for os.system (or any global outside
 * the tensor table) is refused naming that global, and nothing runs; the legacy bare-pickle format, a
 * compressed member and a non-contiguous tensor are refused with a message naming the file; fuzzed bytes
 * (fast-check) give only such refusals, and a conversion of them leaves nothing in the cache.
 */
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConversionError, ensureConverted } from '../server/models/convert/index.ts';
import { PickleError, readPickle } from '../server/models/convert/pickle.ts';
import { SafetensorsError, type TensorToWrite } from '../server/models/convert/safetensors.ts';
import { openTorchFile } from '../server/models/convert/torch-file.ts';
import { FUZZ_SEED } from './support/fuzz.ts';
import { encodeTorchCheckpoint, PickleWriter, storedZip } from './support/torch-checkpoint.ts';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'dualstyle-torch-pickle-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const values = (n: number, scale: number) => Float32Array.from({ length: n }, (_, i) => (i - n / 2) * scale);
const tensors: TensorToWrite[] = [
  { name: 'model.diffusion_model.out.2.weight', shape: [4, 3, 3, 3], data: values(108, 0.01) },
  { name: 'a.half', shape: [5], data: values(5, 0.25), dtype: 'F16' },
  { name: 'a.bf16', shape: [2, 2], data: values(4, 0.5), dtype: 'BF16' },
  { name: 'scalar', shape: [], data: new Float32Array([0.9999]) },
];

async function write(name: string, bytes: Buffer): Promise<string> {
  const file = path.join(tmp, name);
  await writeFile(file, bytes);
  return file;
}

/** A checkpoint whose data.pkl is `pickle`. */
const withPickle = (pickle: Buffer) => storedZip([['archive/data.pkl', pickle]]);

/** The error opening `file` gives (it must fail). */
function refusal(file: string): Error {
  try {
    openTorchFile(file).close();
  } catch (e) {
    return e as Error;
  }
  throw new Error(`${file} opened`);
}

describe('restricted PyTorch checkpoint reader', () => {
  for (const lightning of [false, true])
    it(`reads every tensor back exactly (F32, F16, BF16, a scalar), ${lightning ? 'from state_dict of a Lightning checkpoint' : 'from a plain dict'}`, async () => {
      const file = await write(`plain-${lightning}.ckpt`, encodeTorchCheckpoint(tensors, { lightning }));
      const f = openTorchFile(file);
      try {
        expect(f.keys()).toEqual(tensors.map((t) => t.name));
        for (const t of tensors) {
          expect(f.info(t.name)).toMatchObject({ dtype: t.dtype ?? 'F32', shape: t.shape });
          // The values chosen are exact in every dtype.
          expect([...f.readFloat32(t.name)]).toEqual([...t.data]);
        }
      } finally {
        f.close();
      }
    });

  it('refuses a GLOBAL outside the tensor table, naming it, and runs nothing', async () => {
    const witness = path.join(tmp, 'pwned');
    for (const [module, name] of [
      ['os', 'system'],
      ['posix', 'system'],
      ['builtins', 'eval'],
      ['subprocess', 'Popen'],
      ['torch', 'load'],
    ]) {
      const w = new PickleWriter().global(module!, name!).str(`touch ${witness}`).op(0x85, 0x52);
      const file = await write(`${module}-${name}.ckpt`, withPickle(w.bytes()));
      const e = refusal(file);
      expect(e).toBeInstanceOf(ConversionError);
      expect(e.message).toContain(`${module}-${name}.ckpt: the pickle asks for ${module}.${name}`);
      expect(e.message).toMatch(/refused \(nothing was run\).*\.safetensors version/s);
    }
    expect(existsSync(witness)).toBe(false);
  });

  it('refuses the legacy format, a compressed member, a missing storage and a non-contiguous tensor, naming the file', async () => {
    const legacy = await write('legacy.pt', Buffer.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]));
    expect(refusal(legacy).message).toMatch(
      /^legacy\.pt: not a PyTorch zip checkpoint \(a bare pickle, as torch wrote before 1\.6, is never opened\)\. Download the \.safetensors/,
    );
    const zip = encodeTorchCheckpoint(tensors.slice(0, 1));
    // Mark the first member deflated in the central directory.
    const compressed = Buffer.from(zip);
    compressed.writeUInt16LE(8, compressed.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02])) + 10);
    expect(refusal(await write('deflated.ckpt', compressed)).message).toMatch(/deflated\.ckpt: member archive\/data\.pkl is compressed/);
    const noStorage = storedZip([['archive/data.pkl', zipMember(zip, 'archive/data.pkl')]]);
    expect(refusal(await write('nostorage.ckpt', noStorage)).message).toMatch(/names storage 0, which the zip does not hold/);
    // A transposed view: shape (3, 2) with strides (1, 3).
    const w = new PickleWriter().emptyOrderedDict().op(0x28).str('t').global('torch._utils', '_rebuild_tensor_v2').op(0x28);
    w.op(0x28).str('storage').global('torch', 'FloatStorage').str('0').str('cpu').int(6).op(0x74).put().op(0x51);
    w.int(0).ints([3, 2]).ints([1, 3]).op(0x89).emptyOrderedDict().op(0x74).put().op(0x52).put().op(0x75);
    const strided = storedZip([
      ['archive/data.pkl', w.bytes()],
      ['archive/data/0', Buffer.alloc(24)],
    ]);
    expect(refusal(await write('strided.ckpt', strided)).message).toMatch(/tensor "t" is not contiguous/);
  });

  it('fuzzed pickles and files are refused with a PickleError or ConversionError; a conversion of one leaves nothing behind', async () => {
    const good = encodeTorchCheckpoint(tensors, { lightning: true });
    const goodPickle = zipMember(good, 'archive/data.pkl');
    // Pickle programs from the opcodes the reader knows and others, with their arguments as random bytes.
    const opcodes = fc.constantFrom(...Buffer.from('(.0123456789NGJKMQRUXabcehjlqrstu}])\x80\x81\x85\x86\x87\x88\x89\x8a\x8f', 'latin1'));
    const program = fc.array(fc.tuple(opcodes, fc.uint8Array({ maxLength: 6 })), { maxLength: 60 });
    fc.assert(
      fc.property(program, (ops) => {
        const bytes = Buffer.concat(ops.flatMap(([op, arg]) => [Buffer.from([op]), Buffer.from(arg)]));
        try {
          readPickle(bytes);
        } catch (e) {
          expect(e, String(e)).toBeInstanceOf(PickleError);
        }
      }),
      { numRuns: 400, seed: FUZZ_SEED },
    );
    const cacheRoot = path.join(tmp, 'fuzz-cache');
    const file = path.join(tmp, 'fuzz.ckpt');
    const flips = fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 });
    await fc.assert(
      fc.asyncProperty(fc.boolean(), flips, async (inPickle, edits) => {
        const bytes = Buffer.from(good);
        const [from, span] = inPickle ? [good.indexOf(goodPickle), goodPickle.length] : [0, bytes.length];
        for (const [at, value] of edits) bytes[from + (at % span)] = value;
        await writeFile(file, bytes);
        try {
          await ensureConverted(file, { cacheRoot });
        } catch (e) {
          expect(e instanceof ConversionError || e instanceof SafetensorsError, String(e)).toBe(true);
        }
        expect(existsSync(cacheRoot) ? readdirSync(cacheRoot) : []).toEqual([]);
      }),
      { numRuns: 60, seed: FUZZ_SEED },
    );
  });
});

/** One member's bytes, found through the test's own layout (local header, name, padding field). */
function zipMember(zip: Buffer, name: string): Buffer {
  const at = zip.indexOf(Buffer.from(name));
  const local = at - 30;
  const size = zip.readUInt32LE(local + 18);
  const start = at + name.length + zip.readUInt16LE(local + 28);
  return zip.subarray(start, start + size);
}

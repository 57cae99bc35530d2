/**
 * The safetensors reader (issue #22): F32/F16/BF16 tensors read by position, and every way a header can
 * lie (too large, offsets past the end or overlapping, sizes that do not match the shape, unknown dtypes,
 * not JSON at all) refused with a SafetensorsError that names the file, fuzzed with fast-check.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeSafetensors, SafetensorsError, SafetensorsFile, withSafetensors } from '../server/models/convert/safetensors.ts';
import { FUZZ_SEED } from './support/fuzz.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'dualstyle-safetensors-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function write(bytes: Uint8Array, name = `f${n++}.safetensors`): string {
  const file = path.join(dir, name);
  writeFileSync(file, bytes);
  return file;
}

/** A file whose header is `header` (any JSON value or text) followed by `dataBytes` bytes of data. */
function withHeader(header: unknown, dataBytes = 0, name?: string): string {
  const text = typeof header === 'string' ? header : JSON.stringify(header);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(Buffer.byteLength(text)));
  return write(Buffer.concat([prefix, Buffer.from(text), Buffer.alloc(dataBytes)]), name);
}

function refusal(file: string, options?: Parameters<typeof SafetensorsFile.open>[1]): string {
  try {
    SafetensorsFile.open(file, options).close();
  } catch (e) {
    expect(e).toBeInstanceOf(SafetensorsError);
    return (e as Error).message;
  }
  throw new Error(`${file} was accepted`);
}

describe('reading', () => {
  const values = new Float32Array([0, 1, -2.5, 3.140625, 65504, -1e-3]);

  it('reads F32 exactly and F16/BF16 within their precision, by name, with shapes and metadata', () => {
    const file = write(
      encodeSafetensors(
        [
          { name: 'a.weight', shape: [2, 3], data: values },
          { name: 'b.half', shape: [6], data: values, dtype: 'F16' },
          { name: 'c.bf', shape: [3, 2], data: values, dtype: 'BF16' },
        ],
        { format: 'pt' },
      ),
    );
    withSafetensors(file, (f) => {
      expect(f.keys().sort()).toEqual(['a.weight', 'b.half', 'c.bf']);
      expect(f.metadata).toEqual({ format: 'pt' });
      expect(f.info('c.bf').shape).toEqual([3, 2]);
      expect([...f.readFloat32('a.weight')]).toEqual([...values]);
      const half = f.readFloat32('b.half');
      const bf = f.readFloat32('c.bf');
      values.forEach((v, i) => {
        expect(Math.abs(half[i]! - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -11 + 1e-7);
        expect(Math.abs(bf[i]! - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -8 + 1e-7);
      });
      expect(() => f.readFloat32('missing')).toThrow(/has no tensor "missing"/);
    });
  });

  it('refuses to read an integer tensor as a weight, naming file, tensor and dtype', () => {
    const file = withHeader({ ids: { dtype: 'I64', shape: [2], data_offsets: [0, 16] } }, 16, 'ints.safetensors');
    withSafetensors(file, (f) => expect(() => f.readFloat32('ids')).toThrow(/ints\.safetensors: tensor "ids" is I64; weights must be F32, F16, BF16/));
  });
});

describe('bad files', () => {
  it('names the problem', () => {
    const ok = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };
    expect(refusal(write(Buffer.alloc(4), 'short.safetensors'))).toMatch(/short\.safetensors: too short/);
    expect(refusal(withHeader({ x: ok }, 8), { maxHeaderBytes: 16 })).toMatch(/header claims \d+ bytes, more than the 16 allowed/);
    const huge = Buffer.alloc(16);
    huge.writeBigUInt64LE(2n ** 62n);
    expect(refusal(write(huge))).toMatch(/more than the \d+ allowed/);
    const lying = Buffer.alloc(16);
    lying.writeBigUInt64LE(1000n);
    expect(refusal(write(lying))).toMatch(/claims 1000 bytes but the file has 8/);
    expect(refusal(withHeader('{not json'))).toMatch(/not valid JSON/);
    expect(refusal(withHeader([1, 2]))).toMatch(/not a JSON object/);
    expect(refusal(withHeader({ x: { ...ok, dtype: 'Q4' } }, 8, 'q4.safetensors'))).toMatch(/q4\.safetensors: tensor "x" has the unknown dtype "Q4"/);
    expect(refusal(withHeader({ x: { ...ok, data_offsets: [0, 16] } }, 8))).toMatch(/"x" runs past the end of the file/);
    expect(refusal(withHeader({ x: { ...ok, data_offsets: [4, 0] } }, 8))).toMatch(/ends \(0\) before it begins \(4\)/);
    expect(refusal(withHeader({ x: { ...ok, shape: [3] } }, 8))).toMatch(/8 bytes for shape \[3\] of F32 \(12 expected\)/);
    expect(refusal(withHeader({ x: { ...ok, shape: [-1] } }, 8))).toMatch(/invalid shape/);
    expect(refusal(withHeader({ x: ok, y: { ...ok, data_offsets: [4, 12] } }, 12))).toMatch(/"x" and "y" overlap/);
    expect(refusal(withHeader({ __metadata__: { a: 1 } }))).toMatch(/__metadata__.a is not a string/);
    expect(refusal(path.join(dir, 'absent.safetensors'))).toMatch(/absent\.safetensors: cannot open \(ENOENT\)/);
  });

  it('fuzzed headers: opening and reading every tensor never throws anything but a SafetensorsError, and writes nothing', () => {
    const fuzzDir = mkdtempSync(path.join(dir, 'fuzz-'));
    const dtype = fc.oneof(fc.constantFrom('F32', 'F16', 'BF16', 'I64', 'U8', 'F64'), fc.string({ maxLength: 6 }));
    const count = fc.oneof(fc.nat(64), fc.integer(), fc.double(), fc.constant(2 ** 53), fc.string({ maxLength: 3 }));
    const entry = fc.oneof(
      fc.record({ dtype, shape: fc.array(count, { maxLength: 4 }), data_offsets: fc.array(count, { minLength: 0, maxLength: 3 }) }, { requiredKeys: [] }),
      fc.jsonValue({ maxDepth: 2 }),
    );
    const header = fc.oneof(
      fc.dictionary(fc.oneof(fc.string({ maxLength: 8 }), fc.constant('__metadata__')), entry, { maxKeys: 5 }),
      fc.jsonValue({ maxDepth: 3 }),
      fc.string({ maxLength: 40 }),
    );
    // Bytes after the header, and a header length that may lie.
    const body = fc.record({
      header,
      data: fc.nat(256),
      lengthDelta: fc.oneof(fc.constant(0), fc.integer({ min: -8, max: 8 }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })),
    });
    let accepted = 0;
    let refused = 0;
    fc.assert(
      fc.property(body, ({ header: h, data, lengthDelta }) => {
        const text = Buffer.from(typeof h === 'string' ? h : (JSON.stringify(h) ?? 'null'));
        const prefix = Buffer.alloc(8);
        const claimed = typeof lengthDelta === 'bigint' ? lengthDelta : BigInt(Math.max(0, text.length + lengthDelta));
        prefix.writeBigUInt64LE(claimed);
        const file = path.join(fuzzDir, 'case.safetensors');
        writeFileSync(file, Buffer.concat([prefix, text, Buffer.alloc(data)]));
        try {
          withSafetensors(file, (f) => {
            for (const k of f.keys()) {
              try {
                f.readFloat32(k);
              } catch (e) {
                if (!(e instanceof SafetensorsError)) throw e;
              }
            }
          });
          accepted++;
        } catch (e) {
          if (!(e instanceof SafetensorsError)) throw e;
          expect((e as Error).message.startsWith('case.safetensors: ')).toBe(true);
          refused++;
        }
      }),
      { numRuns: 400, seed: FUZZ_SEED },
    );
    expect(accepted + refused).toBe(400);
    expect(readdirSync(fuzzDir)).toEqual(['case.safetensors']);
  });
});

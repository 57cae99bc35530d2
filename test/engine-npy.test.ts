import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { encodeNpy, parseNpy, readNpy } from '../server/conformance/npy.ts';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const reference = path.resolve(projectRoot, '../shared/fixtures/tiny-sd/reference');

function header(dict: string): Uint8Array {
  let h = dict;
  h += ' '.repeat(64 - ((10 + h.length + 1) % 64)) + '\n';
  const out = new Uint8Array(10 + h.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0);
  new DataView(out.buffer).setUint16(8, h.length, true);
  for (let i = 0; i < h.length; i++) out[10 + i] = h.charCodeAt(i);
  return out;
}

describe('npy', () => {
  it('round-trips float32, float64, int32 and int64 with their shapes', () => {
    const cases = [
      [Float32Array.from([1.5, -2, 3e-8, 4]), [2, 2]],
      [Float64Array.from([Math.PI, -1e300]), [2]],
      [Int32Array.from([1, -2, 3, 4, 5, 6]), [1, 2, 3]],
      [BigInt64Array.from([1n, -(2n ** 40n)]), [2, 1]],
    ] as const;
    for (const [data, shape] of cases) {
      const bytes = encodeNpy(data, shape);
      const headerLen = new DataView(bytes.buffer).getUint16(8, true);
      expect((10 + headerLen) % 64).toBe(0);
      const back = parseNpy(bytes);
      expect(back.shape).toEqual([...shape]);
      expect(back.data.constructor).toBe(data.constructor);
      expect(Array.from(back.data as ArrayLike<number | bigint>)).toEqual(Array.from(data as ArrayLike<number | bigint>));
    }
    expect(parseNpy(encodeNpy(new Float32Array([7]), [])).shape).toEqual([]);
  });

  it('reads big-endian data and refuses Fortran order, bad magic and truncation', () => {
    const be = new Uint8Array(8);
    new DataView(be.buffer).setFloat32(0, 1.25, false);
    new DataView(be.buffer).setFloat32(4, -3, false);
    const h = header("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }");
    const file = new Uint8Array(h.length + 8);
    file.set(h);
    file.set(be, h.length);
    expect(Array.from(parseNpy(file).data as Float32Array)).toEqual([1.25, -3]);
    const f = header("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }");
    expect(() => parseNpy(f, 'x.npy')).toThrow(/x\.npy: Fortran-order/);
    expect(() => parseNpy(new Uint8Array(20), 'y.npy')).toThrow(/y\.npy is not a \.npy file/);
    expect(() => parseNpy(file.subarray(0, file.length - 1), 'z.npy')).toThrow(/z\.npy: truncated/);
    expect(() => parseNpy(header("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }"))).toThrow(/unsupported dtype <c8/);
  });

  it.skipIf(!existsSync(path.join(reference, 'x0.npy')))('reads the fixture arrays', async () => {
    const a = await readNpy(path.join(reference, 'noise.npy'));
    expect(a.dtype).toBe('<f4');
    expect(a.shape.length).toBe(5);
    expect(a.data.length).toBe(a.shape.reduce((x, y) => x * y, 1));
  });
});

import { describe, expect, it } from 'vitest';
import { arrayNoise, seededNoise, splitChunks, Xoshiro128 } from '../server/engine/diffusion/noise.ts';

describe('seededNoise', () => {
  it('is reproducible for a seed, across calls split differently', () => {
    const a = new Float32Array(1001);
    seededNoise(42).fill(a);
    const b1 = new Float32Array(500);
    const b2 = new Float32Array(501);
    const src = seededNoise(42);
    src.fill(b1);
    src.fill(b2);
    expect(Array.from(b1)).toEqual(Array.from(a.subarray(0, 500)));
    expect(Array.from(b2)).toEqual(Array.from(a.subarray(500)));
    const c = new Float32Array(1001);
    seededNoise(43).fill(c);
    expect(Array.from(c)).not.toEqual(Array.from(a));
  });

  it('draws standard normal samples (mean≈0, std≈1, symmetric tails)', () => {
    const n = 200_000;
    const x = new Float32Array(n);
    seededNoise(7).fill(x);
    let sum = 0;
    let sq = 0;
    let beyond2 = 0;
    for (const v of x) {
      sum += v;
      sq += v * v;
      if (Math.abs(v) > 1.959964) beyond2++;
    }
    const mean = sum / n;
    const std = Math.sqrt(sq / n - mean * mean);
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(Math.abs(std - 1)).toBeLessThan(0.01);
    expect(Math.abs(beyond2 / n - 0.05)).toBeLessThan(0.003);
    expect(x.every(Number.isFinite)).toBe(true);
  });

  it('uses xoshiro128** with a pinned output (platform independent)', () => {
    const r = new Xoshiro128(1);
    const first = [r.nextU32(), r.nextU32(), r.nextU32()];
    const again = new Xoshiro128(1);
    expect([again.nextU32(), again.nextU32(), again.nextU32()]).toEqual(first);
    expect(first.every((v) => Number.isInteger(v) && v >= 0 && v < 2 ** 32)).toBe(true);
    const u = new Xoshiro128(3);
    for (let i = 0; i < 1000; i++) {
      const v = u.nextUniform();
      expect(v).toBeGreaterThan(0);
      expect(v).toBeLessThan(1);
    }
  });
});

describe('arrayNoise', () => {
  it('hands out the arrays in order and complains when exhausted or mismatched', () => {
    const chunks = splitChunks(Float32Array.from([1, 2, 3, 4, 5, 6]), 3);
    const src = arrayNoise(chunks);
    const out = new Float32Array(2);
    src.fill(out);
    expect(Array.from(out)).toEqual([1, 2]);
    src.fill(out);
    expect(Array.from(out)).toEqual([3, 4]);
    expect(() => src.fill(new Float32Array(3))).toThrow(/has 2 values/);
    src.fill(out);
    expect(() => src.fill(out)).toThrow(/exhausted/);
    expect(() => splitChunks(new Float32Array(5), 2)).toThrow(/equal/);
  });
});

/**
 * Masks of N styles: weights in [0, 1] that sum to 1 at every pixel, for every gradient, direction,
 * angle, centre, size and random painting (property tests); the paper's two-style masks bit for bit;
 * where N regions and painted strokes land; the N-style blend; the compact, bounded stroke format.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { blendInto, cumulativeWeight, makeMask, type MaskOptions } from '../server/engine/diffusion/mask.ts';
import type { MaskValue } from '../server/engine/values.ts';
import { decodePoints, encodePoints, MAX_POINTS, MAX_STROKES, POINT_SCALE, StrokesSchema, type Stroke } from '../server/protocol/painting.ts';

/** The largest |Σ_k w_k − 1| and the smallest and largest weight over a grid. */
function partition(mask: MaskValue, w: number, h: number) {
  const planes = mask.weights(w, h);
  let worstSum = 0;
  let min = Infinity;
  let max = -Infinity;
  for (let p = 0; p < w * h; p++) {
    let sum = 0;
    for (const plane of planes) {
      const v = plane[p]!;
      sum += v;
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    worstSum = Math.max(worstSum, Math.abs(sum - 1));
  }
  return { planes: planes.length, worstSum, min, max };
}

const size = fc.integer({ min: 1, max: 48 });
const styles = fc.integer({ min: 2, max: 8 });
const point = fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }));
const strokesOf = (n: number) =>
  fc.array(
    fc.record({
      style: fc.integer({ min: 0, max: n }),
      radius: fc.double({ min: 0.002, max: 0.5, noNaN: true }),
      points: fc.array(point, { minLength: 1, maxLength: 12 }).map((ps) => encodePoints(ps.flat())),
    }),
    { maxLength: 12 },
  );

describe('N-style masks are a partition of unity (property tests)', () => {
  it('gradients: every shape, direction, angle, centre, sharpness, N and grid size', () => {
    const gradient = fc.record({
      styles,
      shape: fc.constantFrom('linear' as const, 'logistic' as const),
      direction: fc.constantFrom(
        'left-right' as const,
        'right-left' as const,
        'top-bottom' as const,
        'bottom-top' as const,
        'angle' as const,
        'radial' as const,
      ),
      angle: fc.double({ min: -360, max: 360, noNaN: true }),
      center: fc.record({ x: fc.double({ min: 0, max: 1, noNaN: true }), y: fc.double({ min: 0, max: 1, noNaN: true }) }),
      sharpness: fc.double({ min: 0.1, max: 200, noNaN: true }),
    });
    fc.assert(
      fc.property(gradient, size, size, (options: MaskOptions, w, h) => {
        const r = partition(makeMask(options), w, h);
        expect(r.planes).toBe(options.styles);
        expect(r.min).toBeGreaterThanOrEqual(0);
        expect(r.max).toBeLessThanOrEqual(1);
        expect(r.worstSum).toBeLessThan(1e-6);
      }),
      { numRuns: 300 },
    );
  });

  it('random paintings: strokes of any style and the eraser, any fill, feather, N and grid size', () => {
    const painting = styles.chain((n) =>
      fc.record({
        styles: fc.constant(n),
        fill: fc.integer({ min: 1, max: n }),
        feather: fc.double({ min: 0, max: 0.25, noNaN: true }),
        strokes: strokesOf(n),
      }),
    );
    fc.assert(
      fc.property(painting, fc.integer({ min: 1, max: 700 }), fc.integer({ min: 1, max: 700 }), (p, w, h) => {
        const mask = makeMask({ styles: p.styles, shape: 'painted', direction: 'left-right', sharpness: 20, painting: p });
        const r = partition(mask, w, h);
        expect(r.planes).toBe(p.styles);
        expect(r.min).toBeGreaterThanOrEqual(0);
        expect(r.max).toBeLessThanOrEqual(1 + 1e-6);
        expect(r.worstSum).toBeLessThan(1e-5);
      }),
      { numRuns: 60 },
    );
  });

  it('an image mask of N styles: white is style 1, black style N, mid-gray between', () => {
    fc.assert(
      fc.property(styles, fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 4, maxLength: 4 }), (n, gray) => {
        const image = { width: 2, height: 2, data: Float32Array.from([...gray, ...gray, ...gray]) };
        expect(partition(makeMask({ styles: n, shape: 'image', direction: 'left-right', sharpness: 0, image }), 5, 3).worstSum).toBeLessThan(1e-6);
      }),
    );
    const image = { width: 3, height: 1, data: Float32Array.from([1, 0.5, 0, 1, 0.5, 0, 1, 0.5, 0]) };
    const planes = makeMask({ styles: 3, shape: 'image', direction: 'left-right', sharpness: 0, image }).weights(3, 1);
    expect(planes.map((p) => Array.from(p))).toEqual([
      [1, 0, 0],
      [0, 1, 0],
      [0, 0, 1],
    ]);
  });
});

describe("two styles are the paper's mask, bit for bit", () => {
  it('logistic and linear in the four directions: M = 1/(1 + exp(k(u − 0.5))) and 1 − u, and the second plane is 1 − M', () => {
    const [w, h, k] = [13, 7, 20];
    for (const direction of ['left-right', 'right-left', 'top-bottom', 'bottom-top'] as const) {
      const horizontal = direction === 'left-right' || direction === 'right-left';
      const reversed = direction === 'right-left' || direction === 'bottom-top';
      for (const shape of ['linear', 'logistic'] as const) {
        const [m1, m2] = makeMask({ shape, direction, sharpness: k }).weights(w, h);
        for (let y = 0; y < h; y++) {
          for (let x = 0; x < w; x++) {
            const u0 = ((horizontal ? x : y) + 0.5) / (horizontal ? w : h);
            const u = reversed ? 1 - u0 : u0;
            const paper = shape === 'linear' ? 1 - u : 1 / (1 + Math.exp(k * (u - 0.5)));
            expect(m1![y * w + x]).toBe(Math.fround(paper));
            expect(m2![y * w + x]).toBe(Math.fround(1 - paper));
          }
        }
      }
    }
  });

  it("an image mask of two styles is the image's brightness", () => {
    const gray = [0.1, 0.3, 0.7, 0.9].map(Math.fround);
    const image = { width: 4, height: 1, data: Float32Array.from([...gray, ...gray, ...gray]) };
    const [m] = makeMask({ shape: 'image', direction: 'left-right', sharpness: 0, image }).weights(4, 1);
    // 0.299 + 0.587 + 0.114 sums to 1 up to rounding: the luma of a gray is the gray within 1 ulp.
    for (let i = 0; i < 4; i++) expect(m![i]).toBeCloseTo(gray[i]!, 6);
  });
});

describe('where N regions land', () => {
  it('logistic N = 3 left-right: three regions of equal width, each style dominant in its third', () => {
    const w = 30;
    const planes = makeMask({ styles: 3, shape: 'logistic', direction: 'left-right', sharpness: 40 }).weights(w, 1);
    const winner = (x: number) => planes.map((p) => p[x]!).reduce((best, v, k, all) => (v > all[best]! ? k : best), 0);
    expect(Array.from({ length: w }, (_, x) => winner(x))).toEqual([...Array(10).fill(0), ...Array(10).fill(1), ...Array(10).fill(2)]);
    // The centre of each third is almost pure.
    expect(planes[0]![4]).toBeGreaterThan(0.99);
    expect(planes[1]![14]).toBeGreaterThan(0.98);
    expect(planes[2]![25]).toBeGreaterThan(0.99);
  });

  it('linear N = 3: a gradient through three stops, each style pure at its stop', () => {
    const planes = makeMask({ styles: 3, shape: 'linear', direction: 'left-right', sharpness: 20 }).weights(5, 1);
    // u = 0.1, 0.3, 0.5, 0.7, 0.9 against stops at 0, 0.5, 1.
    expect(planes.map((p) => Array.from(p, (v) => Math.round(v * 1e6) / 1e6))).toEqual([
      [0.8, 0.4, 0, 0, 0],
      [0.2, 0.6, 1, 0.6, 0.2],
      [0, 0, 0, 0.4, 0.8],
    ]);
    expect(cumulativeWeight('linear', 0.25, 1, 3, 20)).toBe(0.5);
  });

  it('any angle: 0° and 90° are left-right and top-bottom, 45° follows the diagonal', () => {
    const close = (a: Float32Array, b: Float32Array) => a.every((v, i) => Math.abs(v - b[i]!) < 1e-6);
    const at = (direction: MaskOptions['direction'], angle = 0) => makeMask({ styles: 3, shape: 'logistic', direction, angle, sharpness: 20 }).weights(9, 6);
    expect(at('angle', 0).every((p, k) => close(p, at('left-right')[k]!))).toBe(true);
    expect(at('angle', 90).every((p, k) => close(p, at('top-bottom')[k]!))).toBe(true);
    expect(at('angle', 180).every((p, k) => close(p, at('right-left')[k]!))).toBe(true);
    expect(at('angle', -90).every((p, k) => close(p, at('bottom-top')[k]!))).toBe(true);
    // 45° on a square: constant along each anti-diagonal x + y = c, style 1 top-left, style 3 bottom-right.
    const [first, , last] = makeMask({ styles: 3, shape: 'logistic', direction: 'angle', angle: 45, sharpness: 20 }).weights(8, 8);
    for (let x = 1; x < 8; x++) expect(first![(7 - x) * 8 + x]).toBeCloseTo(first![7 * 8], 6);
    expect(first![0]).toBeGreaterThan(0.99);
    expect(last![63]).toBeGreaterThan(0.99);
  });

  it('radial: style 1 at the centre, the last style at the farthest corner, symmetric about the centre', () => {
    const [w, h] = [16, 12];
    const [inner, , outer] = makeMask({ styles: 3, shape: 'logistic', direction: 'radial', sharpness: 30, center: { x: 0.5, y: 0.5 } }).weights(w, h);
    expect(inner![(h / 2) * w + w / 2]).toBeGreaterThan(0.99);
    expect(outer![0]).toBeGreaterThan(0.9);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) expect(inner![y * w + x]).toBeCloseTo(inner![(h - 1 - y) * w + (w - 1 - x)]!, 6);
    // Off-centre: style 1 follows the centre.
    const [moved] = makeMask({ styles: 2, shape: 'logistic', direction: 'radial', sharpness: 30, center: { x: 0.1, y: 0.2 } }).weights(20, 20);
    expect(moved![4 * 20 + 2]).toBeGreaterThan(0.99);
    expect(moved![19 * 20 + 19]).toBeLessThan(0.01);
  });
});

describe('painted masks', () => {
  const dot = (style: number, x: number, y: number, radius: number): Stroke => ({ style, radius, points: encodePoints([x, y]) });
  const painted = (strokes: Stroke[], feather = 0, fill = 1, n = 3) =>
    makeMask({ styles: n, shape: 'painted', direction: 'left-right', sharpness: 20, painting: { strokes, fill, feather } });

  it('a stroke paints its style, the rest is the fill style; the eraser paints the fill back', () => {
    const [w, h] = [40, 30];
    const [s1, s2] = painted([dot(2, 0.5, 0.5, 0.2)]).weights(w, h);
    expect(s2![15 * w + 20]).toBeCloseTo(1, 6); // centre
    expect(s1![0]).toBe(1); // corner: unpainted, the fill style
    // The disc has radius 0.2 × 30 = 6 px: pixel 24 (4..5 px from the centre) is in, pixel 27 (7..8 px) out.
    expect(s2![15 * w + 24]).toBeCloseTo(1, 6);
    expect(s2![15 * w + 27]).toBeCloseTo(0, 6);
    const erased = painted([dot(2, 0.5, 0.5, 0.2), dot(0, 0.5, 0.5, 0.1)]).weights(w, h);
    expect(erased[0]![15 * w + 20]).toBeCloseTo(1, 6); // erased back to style 1
    expect(erased[1]![15 * w + 24]).toBeCloseTo(1, 6); // the ring outside the eraser stays
    // Later strokes cover earlier ones.
    const over = painted([dot(2, 0.5, 0.5, 0.2), dot(3, 0.5, 0.5, 0.1)]).weights(w, h);
    expect(over[2]![15 * w + 20]).toBeCloseTo(1, 6);
    expect(over[1]![15 * w + 20]).toBeCloseTo(0, 6);
  });

  it('a line of points paints the whole segment between them', () => {
    const stroke: Stroke = { style: 2, radius: 0.05, points: encodePoints([0.1, 0.5, 0.9, 0.5]) };
    const [, s2] = painted([stroke]).weights(50, 20);
    for (let x = 6; x < 44; x++) expect(s2![10 * 50 + x], `x ${x}`).toBeCloseTo(1, 5);
    expect(s2![2 * 50 + 25]).toBeCloseTo(0, 6);
  });

  it('feather turns the border into a ramp, and the same painting reads the same at every size', () => {
    const strokes = [dot(2, 0.5, 0.5, 0.25)];
    const line = (feather: number, w: number) => {
      const [, s2] = painted(strokes, feather).weights(w, w);
      return Array.from({ length: w }, (_, x) => s2![Math.floor(w / 2) * w + x]!);
    };
    const crisp = line(0, 64);
    const soft = line(0.08, 64);
    const between = (xs: number[]) => xs.filter((v) => v > 0.05 && v < 0.95).length;
    expect(between(soft)).toBeGreaterThan(between(crisp) + 4);
    // Resolution independence: a latent-sized grid and an image-sized one sample the same mask.
    const small = line(0.05, 16);
    const large = line(0.05, 512);
    for (let x = 0; x < 16; x++) expect(Math.abs(small[x]! - large[x * 32 + 16]!), `x ${x}`).toBeLessThan(0.06);
  });

  it('rejects a stroke of a style the mask does not have, and a fill outside it', () => {
    expect(() => painted([dot(4, 0.5, 0.5, 0.1)]).weights(8, 8)).toThrow(/stroke 1 paints style 4, but the mask has 3 styles/);
    expect(() => painted([], 0, 5).weights(8, 8)).toThrow(/fill style must be 1..3, got 5/);
  });
});

describe('strokes as the graph stores them', () => {
  it('points round-trip through 4 base64url characters each, at 1/4095 precision', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 2, maxLength: 40 }).filter((a) => a.length % 2 === 0),
        (xy) => {
          const text = encodePoints(xy);
          expect(text).toMatch(/^[A-Za-z0-9_-]*$/);
          expect(text.length).toBe(2 * xy.length);
          const back = decodePoints(text);
          for (let i = 0; i < xy.length; i++) expect(Math.abs(back[i]! - xy[i]!)).toBeLessThanOrEqual(0.5 / POINT_SCALE + 1e-12);
          expect(encodePoints(back)).toBe(text);
        },
      ),
    );
    expect(() => decodePoints('AB')).toThrow(/groups of 4/);
    expect(() => decodePoints('AB!C')).toThrow(/not base64url/);
  });

  it('the schema bounds a painting: strokes, points, characters, styles and radius', () => {
    const stroke = (points: number) => ({ style: 1, radius: 0.05, points: 'AAAA'.repeat(points) });
    expect(StrokesSchema.safeParse([stroke(10)]).success).toBe(true);
    expect(StrokesSchema.safeParse(Array.from({ length: MAX_STROKES + 1 }, () => stroke(1))).success).toBe(false);
    const tooMany = StrokesSchema.safeParse(Array.from({ length: 5 }, () => stroke(MAX_POINTS / 4 + 1)));
    expect(tooMany.success).toBe(false);
    expect(tooMany.error!.issues[0]!.message).toBe(`a painting may have at most ${MAX_POINTS} points in all, got ${5 * (MAX_POINTS / 4 + 1)}`);
    for (const bad of [
      { ...stroke(1), points: 'AAA' },
      { ...stroke(1), points: 'AA?A' },
      { ...stroke(1), points: '' },
      { ...stroke(1), style: 9 },
      { ...stroke(1), radius: 0 },
      { ...stroke(1), radius: 0.9 },
    ]) {
      expect(StrokesSchema.safeParse([bad]).success, JSON.stringify(bad)).toBe(false);
    }
    // A full painting stays well under the 64 KiB a node's parameters may take.
    const full = Array.from({ length: 40 }, () => stroke(MAX_POINTS / 40));
    expect(StrokesSchema.safeParse(full).success).toBe(true);
    expect(JSON.stringify(full).length).toBeLessThan(40_000);
  });
});

describe('the N-style blend', () => {
  it("two styles: M·a + (1 − M)·b, the same arithmetic as the paper's expression", () => {
    const n = 64;
    const a = Float64Array.from({ length: 2 * n }, (_, i) => Math.sin(i) * 3.7);
    const b = Float64Array.from({ length: 2 * n }, (_, i) => Math.cos(i * 1.3) * 2.1);
    const M = Float32Array.from({ length: n }, (_, i) => (i * 0.37) % 1);
    const out = new Float32Array(2 * n);
    blendInto(out, [a, b], [M, M.map((m) => 1 - m)]);
    for (let i = 0; i < 2 * n; i++) expect(out[i]).toBe(Math.fround(M[i % n]! * a[i]! + (1 - M[i % n]!) * b[i]!));
  });

  it('N styles: Σ_k M_k·e_k, the last weight what the others leave; one-hot weights pick a part exactly', () => {
    const n = 6;
    const parts = [1, 2, 3].map((s) => Float32Array.from({ length: n }, (_, i) => s * 10 + i + 0.25));
    const oneHot = (k: number) => [0, 1, 2].map((j) => new Float32Array(n).fill(j === k ? 1 : 0));
    for (const k of [0, 1, 2]) {
      const out = new Float32Array(n);
      blendInto(out, parts, oneHot(k));
      expect(out).toEqual(parts[k]);
    }
    const out = new Float32Array(n);
    blendInto(out, parts, [new Float32Array(n).fill(0.5), new Float32Array(n).fill(0.25), new Float32Array(n).fill(0.25)]);
    for (let i = 0; i < n; i++) expect(out[i]).toBeCloseTo(0.5 * parts[0]![i]! + 0.25 * parts[1]![i]! + 0.25 * parts[2]![i]!, 5);
  });
});

/**
 * The randomness of CycleDiffusion inversion, injectable: a seeded Gaussian source for real runs
 * (same seed → same bits on every platform: 32-bit integer PRNG + Box–Muller in float64), or a fixed
 * list of arrays (the fixtures' noise.npy) for conformance.
 */

export interface NoiseSource {
  /** Fills `out` with independent standard normal samples (one draw per call, in call order). */
  fill(out: Float32Array): void;
}

/** splitmix32: spreads a small integer seed over the 128-bit PRNG state. */
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** xoshiro128** (Blackman & Vigna): a small, well-studied generator with exact 32-bit integer math. */
export class Xoshiro128 {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new Error(`seed must be a finite number, got ${seed}`);
    // Fold seeds beyond 32 bits (JS integers up to 2^53) into the mixer so they stay distinct.
    const st = { s: (Math.floor(seed) >>> 0) ^ Math.floor(seed / 4294967296) };
    this.a = splitmix32(st);
    this.b = splitmix32(st);
    this.c = splitmix32(st);
    this.d = splitmix32(st);
    if ((this.a | this.b | this.c | this.d) === 0) this.d = 1;
  }

  /** Next 32-bit unsigned integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  /** Uniform in the open interval (0, 1) with 53 bits (two draws), never 0 so log() is safe. */
  nextUniform(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo + 0.5) / 9007199254740992;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** Seeded standard normal noise (Box–Muller). Reproducible for a given seed and call sequence. */
export function seededNoise(seed: number): NoiseSource {
  const rng = new Xoshiro128(seed);
  let spare = 0;
  let hasSpare = false;
  return {
    fill(out) {
      for (let i = 0; i < out.length; i++) {
        if (hasSpare) {
          out[i] = spare;
          hasSpare = false;
          continue;
        }
        const r = Math.sqrt(-2 * Math.log(rng.nextUniform()));
        const theta = 2 * Math.PI * rng.nextUniform();
        out[i] = r * Math.cos(theta);
        spare = r * Math.sin(theta);
        hasSpare = true;
      }
    },
  };
}

/** Hands out the given arrays in order, one per fill; sizes must match exactly. */
export function arrayNoise(chunks: readonly Float32Array[]): NoiseSource {
  let next = 0;
  return {
    fill(out) {
      const chunk = chunks[next];
      if (!chunk) throw new Error(`noise exhausted: ${chunks.length} arrays were given, draw ${next + 1} was asked for`);
      if (chunk.length !== out.length) {
        throw new Error(`noise array ${next} has ${chunk.length} values, the draw needs ${out.length}`);
      }
      out.set(chunk);
      next++;
    },
  };
}

/** Splits a flat [n, ...] array into n equal chunks (e.g. noise.npy [R+1,1,4,h,w]). */
export function splitChunks(data: Float32Array, n: number): Float32Array[] {
  if (n < 1 || data.length % n !== 0) throw new Error(`cannot split ${data.length} values into ${n} equal arrays`);
  const size = data.length / n;
  return Array.from({ length: n }, (_, i) => data.subarray(i * size, (i + 1) * size));
}

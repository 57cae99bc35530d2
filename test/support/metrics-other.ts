/**
 * The pictures of the metrics fixture with other sizes and aspects (test/fixtures/metrics-other): a
 * 48×26 landscape and a 24×40 portrait original, each with two generated variants (shifted and
 * shaded; noisy), HWC float32 in [0, 1]. They are made here, at test time, from closed forms and a
 * seeded generator; only their reference values (reference/metrics.json, computed by the Python
 * reference stack from these very arrays: scripts/metrics-reference.py) are in git.
 *   npx tsx test/support/metrics-other.ts DIR   writes them as DIR/<name>.npy for that script.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeNpy } from '../../server/conformance/npy.ts';

export interface Picture {
  data: Float32Array;
  width: number;
  height: number;
}

/** Standard normal samples from a seeded mulberry32 (Box–Muller). */
function gaussian(seed: number): () => number {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
}

const clamp01 = (v: number) => Math.min(1, Math.max(0, v));

function picture(width: number, height: number, seed: number): Picture {
  const noise = gaussian(seed);
  const data = new Float32Array(width * height * 3);
  const side = Math.max(width, height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const [u, v] = [x / side, y / side];
      const rgb = [0.5 + 0.4 * Math.sin(6 * u + seed), 0.5 + 0.4 * Math.cos(5 * v - seed), 0.3 + 0.6 * u * v];
      for (let c = 0; c < 3; c++) data[(y * width + x) * 3 + c] = clamp01(rgb[c]! + 0.05 * noise());
    }
  }
  return { data, width, height };
}

/** Shifted 3 columns right (wrapping) and shaded 0.7 → 1.1 left to right; and the original with noise. */
function variants(o: Picture, seed: number): [Picture, Picture] {
  const { width, height } = o;
  const noise = gaussian(seed);
  const shifted = new Float32Array(o.data.length);
  const noisy = new Float32Array(o.data.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const from = (y * width + ((x - 3 + width) % width)) * 3;
      const gain = 0.7 + (0.4 * x) / (width - 1);
      for (let c = 0; c < 3; c++) {
        const i = (y * width + x) * 3 + c;
        shifted[i] = clamp01(o.data[from + c]! * gain);
        noisy[i] = clamp01(o.data[i]! + 0.15 * noise());
      }
    }
  }
  return [
    { data: shifted, width, height },
    { data: noisy, width, height },
  ];
}

/** Every picture by its name in metrics.json: wide_original, wide_gen0, wide_gen1, tall_… */
export function metricsOtherPictures(): Map<string, Picture> {
  const out = new Map<string, Picture>();
  for (const [name, [w, h, seed]] of [
    ['wide', [48, 26, 1]],
    ['tall', [24, 40, 2]],
  ] as const) {
    const o = picture(w, h, seed);
    out.set(`${name}_original`, o);
    variants(o, seed + 10).forEach((g, i) => out.set(`${name}_gen${i}`, g));
  }
  return out;
}

/** Writes every picture as DIR/<name>.npy ([H, W, 3] float32), the fixture's image format. */
export async function writeMetricsOtherPictures(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [name, p] of metricsOtherPictures()) await writeFile(path.join(dir, `${name}.npy`), encodeNpy(p.data, [p.height, p.width, 3]));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await writeMetricsOtherPictures(process.argv[2] ?? '.');
}

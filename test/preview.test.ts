import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { encodePreview, imageToRgb, latentToRgb, previewSize } from '../server/executor/preview.ts';

// The SD1.x factors as written in the design (rows = latent channels, columns = R, G, B), kept
// separate from the implementation so a typo there fails here.
const F = [
  [0.3512, 0.2297, 0.3227],
  [0.325, 0.4974, 0.235],
  [-0.2829, 0.1762, 0.2721],
  [-0.212, -0.2616, -0.7177],
];

function expectedPixel(l: number[]): number[] {
  return [0, 1, 2].map((c) => {
    const v = l.reduce((sum, lk, k) => sum + lk * F[k]![c]!, 0);
    const clamped = Math.min(1, Math.max(-1, v));
    return Math.round(((clamped + 1) / 2) * 255);
  });
}

/** Builds a [4, h, w] latent from per-pixel 4-vectors (row-major pixels). */
function latentFrom(pixels: number[][], width: number, height: number): Float32Array {
  const plane = width * height;
  const out = new Float32Array(4 * plane);
  pixels.forEach((l, i) => l.forEach((v, k) => (out[k * plane + i] = v)));
  return out;
}

describe('latentToRgb', () => {
  it('projects each latent vector with the SD1.x factor matrix', () => {
    const pixels = [
      [0, 0, 0, 0],
      [1, 0, 0, 0],
      [0.5, -0.25, 0.75, -0.1],
      [-0.3, 0.6, -0.2, 0.4],
    ];
    const rgb = latentToRgb(latentFrom(pixels, 2, 2), 2, 2);
    expect(rgb.length).toBe(12);
    pixels.forEach((l, i) => {
      expect(Array.from(rgb.slice(3 * i, 3 * i + 3))).toEqual(expectedPixel(l));
    });
    // Spot-check one by hand: channel 0 = 1 gives (0.3512, 0.2297, 0.3227) → (172, 157, 169).
    expect(Array.from(rgb.slice(3, 6))).toEqual([172, 157, 169]);
    expect(Array.from(rgb.slice(0, 3))).toEqual([128, 128, 128]);
  });

  it('clamps to [-1, 1] before mapping to bytes', () => {
    const pixels = [
      [4, 4, 0, 0], // R = 2.70, G = 2.91, B = 2.23 → all clamp to 1
      [0, 0, 0, 3], // R = -0.636, G = -0.785, B = -2.15 → B clamps to -1
    ];
    const rgb = latentToRgb(latentFrom(pixels, 2, 1), 2, 1);
    expect(Array.from(rgb.slice(0, 3))).toEqual([255, 255, 255]);
    expect(rgb[5]).toBe(0);
    expect(Array.from(rgb.slice(3, 6))).toEqual(expectedPixel(pixels[1]!));
    expect(rgb[3]).toBeGreaterThan(0);
  });

  it('reuses an output buffer and rejects short inputs', () => {
    const out = new Uint8Array(3);
    expect(latentToRgb(latentFrom([[1, 0, 0, 0]], 1, 1), 1, 1, out)).toBe(out);
    expect(() => latentToRgb(new Float32Array(3), 1, 1)).toThrow(/expected 4×1×1/);
  });
});

describe('imageToRgb', () => {
  it('turns CHW [0,1] into HWC bytes, clamped', () => {
    // 2 pixels: (0, 0.5, 1) and (2, -1, 0.25)
    const chw = new Float32Array([0, 2, 0.5, -1, 1, 0.25]);
    expect(Array.from(imageToRgb(chw, 2, 1))).toEqual([0, 128, 255, 255, 0, 64]);
  });
});

describe('encodePreview', () => {
  it('upscales an 8×8 latent with nearest to 64×64 and encodes a decodable frame', async () => {
    const w = 8;
    const h = 8;
    const latent = new Float32Array(4 * w * h);
    // Left half: channel 0 = 1; right half: channel 3 = 1.
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) latent[(x < 4 ? 0 : 3) * w * h + y * w + x] = 1;
    const frame = await encodePreview({ kind: 'latent', data: latent, width: w, height: h });
    expect(frame).toMatchObject({ width: 64, height: 64 });
    expect(['image/png', 'image/jpeg']).toContain(frame.mime);
    const { data, info } = await sharp(frame.data).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([64, 64]);
    const at = (x: number, y: number) => Array.from(data.subarray((y * 64 + x) * info.channels, (y * 64 + x) * info.channels + 3));
    expect(at(3, 5)).toEqual(expectedPixel([1, 0, 0, 0]));
    expect(at(60, 40)).toEqual(expectedPixel([0, 0, 0, 1]));
    // Nearest: the block edge is sharp.
    expect(at(31, 0)).toEqual(expectedPixel([1, 0, 0, 0]));
    expect(at(32, 0)).toEqual(expectedPixel([0, 0, 0, 1]));
  });

  it('does not read the source buffer after it returns (samplers reuse theirs)', async () => {
    const latent = new Float32Array(4 * 4 * 4).fill(0);
    const pending = encodePreview({ kind: 'latent', data: latent, width: 4, height: 4 });
    latent.fill(5); // would turn the frame white if read late
    const frame = await pending;
    const { data } = await sharp(frame.data).raw().toBuffer({ resolveWithObject: true });
    expect(data[0]).toBe(128);
  });

  it('fits large images within maxSide', async () => {
    expect(previewSize({ kind: 'image', data: new Float32Array(0), width: 512, height: 256 }, 256)).toEqual({
      width: 256,
      height: 128,
      nearest: false,
    });
    expect(previewSize({ kind: 'latent', data: new Float32Array(0), width: 64, height: 64 }, 256)).toEqual({
      width: 256,
      height: 256,
      nearest: true,
    });
    const img = new Float32Array(3 * 300 * 200).fill(0.5);
    const frame = await encodePreview({ kind: 'image', data: img, width: 300, height: 200 }, 150);
    expect([frame.width, frame.height]).toEqual([150, 100]);
  });
});

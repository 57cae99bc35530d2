/**
 * Step previews: project what a node hands to the preview channel (a scaled SD latent or a CHW image)
 * to 8-bit RGB and encode it as a small frame for the socket.
 *
 * The projection is synchronous and cheap (4 multiply-adds per pixel and channel); encoding runs in
 * sharp's thread pool. `encodePreview` projects before its first await, so a sampler may reuse its
 * latent buffer as soon as the call returns. A latent that comes with a preview decoder (TAESD layout,
 * `--preview-decoder`) is decoded by it instead, asynchronously: its data must be the sender's copy;
 * when the decoder fails, that frame is projected as usual.
 */
import sharp from 'sharp';
import type { PreviewSource } from '../../nodes/types.ts';

/**
 * SD1.x latent → RGB factors: row k = latent channel k, columns R, G, B. Applied to the scaled latent
 * (the one the UNet sees); the result is in about [-1, 1].
 */
export const LATENT_RGB_FACTORS: readonly (readonly [number, number, number])[] = [
  [0.3512, 0.2297, 0.3227],
  [0.325, 0.4974, 0.235],
  [-0.2829, 0.1762, 0.2721],
  [-0.212, -0.2616, -0.7177],
];

/** [-1, 1] → 0..255, clamped. */
function signedToByte(v: number): number {
  const c = v < -1 ? -1 : v > 1 ? 1 : v;
  return Math.round((c + 1) * 127.5);
}

/**
 * Projects a latent [4, height, width] (channel-major) to interleaved RGB bytes (HWC).
 * Pass `out` (width·height·3 bytes) to reuse a buffer between steps.
 */
export function latentToRgb(latent: Float32Array, width: number, height: number, out?: Uint8Array): Uint8Array {
  const plane = width * height;
  const channels = LATENT_RGB_FACTORS.length;
  if (latent.length < channels * plane) {
    throw new Error(`latent preview: expected ${channels}×${height}×${width} values, got ${latent.length}`);
  }
  const rgb = out ?? new Uint8Array(plane * 3);
  if (rgb.length < plane * 3) throw new Error(`latent preview: output buffer too small (${rgb.length} < ${plane * 3})`);
  const [f0, f1, f2, f3] = LATENT_RGB_FACTORS as [
    readonly [number, number, number],
    readonly [number, number, number],
    readonly [number, number, number],
    readonly [number, number, number],
  ];
  for (let i = 0; i < plane; i++) {
    const l0 = latent[i]!;
    const l1 = latent[plane + i]!;
    const l2 = latent[2 * plane + i]!;
    const l3 = latent[3 * plane + i]!;
    rgb[3 * i] = signedToByte(l0 * f0[0] + l1 * f1[0] + l2 * f2[0] + l3 * f3[0]);
    rgb[3 * i + 1] = signedToByte(l0 * f0[1] + l1 * f1[1] + l2 * f2[1] + l3 * f3[1]);
    rgb[3 * i + 2] = signedToByte(l0 * f0[2] + l1 * f1[2] + l2 * f2[2] + l3 * f3[2]);
  }
  return rgb;
}

/** An RGB image, CHW float in [0, 1], to interleaved RGB bytes (HWC), clamped. */
export function imageToRgb(image: Float32Array, width: number, height: number, out?: Uint8Array): Uint8Array {
  const plane = width * height;
  if (image.length < 3 * plane) {
    throw new Error(`image preview: expected 3×${height}×${width} values, got ${image.length}`);
  }
  const rgb = out ?? new Uint8Array(plane * 3);
  if (rgb.length < plane * 3) throw new Error(`image preview: output buffer too small (${rgb.length} < ${plane * 3})`);
  for (let c = 0; c < 3; c++) {
    const base = c * plane;
    for (let i = 0; i < plane; i++) {
      const v = image[base + i]!;
      // NaN becomes 0 (black) rather than poisoning the frame.
      rgb[3 * i + c] = v > 0 ? (v < 1 ? Math.round(v * 255) : 255) : 0;
    }
  }
  return rgb;
}

export interface EncodedPreview {
  mime: string;
  width: number;
  height: number;
  data: Uint8Array;
}

/** What the frame's size depends on. */
type FrameShape = Pick<PreviewSource, 'kind' | 'width' | 'height'>;

/** A latent pixel covers 8×8 image pixels in SD1.x. */
const LATENT_SCALE = 8;

/** Size of the frame: latents are shown at image scale (nearest, so each latent pixel is a block), capped to `maxSide`. */
export function previewSize(source: PreviewSource | FrameShape, maxSide: number): { width: number; height: number; nearest: boolean } {
  const { width, height } = source;
  const longest = Math.max(width, height);
  let scale = source.kind === 'latent' ? LATENT_SCALE : 1;
  if (longest * scale > maxSide) scale = maxSide / longest;
  if (scale >= 1) {
    scale = Math.floor(scale);
    return { width: width * scale, height: height * scale, nearest: true };
  }
  return {
    width: Math.max(1, Math.round(width * scale)),
    height: Math.max(1, Math.round(height * scale)),
    nearest: false,
  };
}

/**
 * Encodes a preview frame: PNG for small frames (exact, and tiny for block-upscaled latents), JPEG
 * for larger ones.
 */
export async function encodePreview(source: PreviewSource, maxSide = 256): Promise<EncodedPreview> {
  const { width, height } = source;
  if (!(width > 0 && height > 0)) throw new Error(`preview: invalid size ${width}×${height}`);
  if (source.kind === 'latent' && source.decoder) {
    // A decoder that fails (it reports and retires itself) leaves this frame to the projection.
    const image = await source.decoder.decode(source.data, width, height).catch(() => null);
    if (image) return encodeRgb(imageToRgb(image.data, image.width, image.height), { kind: 'image', width: image.width, height: image.height }, maxSide);
  }
  // Synchronous projection first: the caller's buffer is not read after this line.
  const rgb = source.kind === 'latent' ? latentToRgb(source.data, width, height) : imageToRgb(source.data, width, height);
  return encodeRgb(rgb, source, maxSide);
}

/** Interleaved RGB bytes of a latent or image of this size → the frame, resized to the preview size. */
async function encodeRgb(rgb: Uint8Array, source: FrameShape, maxSide: number): Promise<EncodedPreview> {
  const { width, height } = source;
  const size = previewSize(source, maxSide);
  let pipeline = sharp(rgb, { raw: { width, height, channels: 3 } });
  if (size.width !== width || size.height !== height) {
    pipeline = pipeline.resize(size.width, size.height, {
      kernel: size.nearest ? sharp.kernel.nearest : sharp.kernel.lanczos3,
      fit: 'fill',
    });
  }
  const small = size.width * size.height <= 128 * 128;
  const { data, info } = small
    ? await pipeline.png({ compressionLevel: 3 }).toBuffer({ resolveWithObject: true })
    : await pipeline.jpeg({ quality: 80 }).toBuffer({ resolveWithObject: true });
  return {
    mime: small ? 'image/png' : 'image/jpeg',
    width: info.width,
    height: info.height,
    data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  };
}

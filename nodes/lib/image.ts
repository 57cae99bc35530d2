/**
 * Image plumbing for nodes: decode files into CHW float images, fit them to sizes the model accepts,
 * encode results as PNG. sharp does the decoding, resampling and encoding.
 */
import sharp from 'sharp';
import type { ImageValue } from '../values.ts';
import { UserError } from '../types.ts';

/** Largest side a Load Image node accepts after fitting, in pixels. */
export const MAX_IMAGE_SIDE = 2048;

export type FitMode = 'crop' | 'resize' | 'exact';

/** Interleaved RGB bytes (HWC) → CHW float in [0,1]. */
export function rgbBytesToImage(rgb: Uint8Array | Buffer, width: number, height: number): ImageValue {
  const plane = width * height;
  const data = new Float32Array(3 * plane);
  for (let p = 0; p < plane; p++) {
    data[p] = rgb[3 * p] / 255;
    data[plane + p] = rgb[3 * p + 1] / 255;
    data[2 * plane + p] = rgb[3 * p + 2] / 255;
  }
  return { width, height, data };
}

/** CHW float in [0,1] → interleaved RGB bytes (HWC), rounded and clamped. */
export function imageToRgbBytes(image: ImageValue): Buffer {
  const { width, height, data } = image;
  const plane = width * height;
  const out = Buffer.alloc(3 * plane);
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) {
      const v = data[c * plane + p];
      out[3 * p + c] = v >= 1 ? 255 : v > 0 ? Math.round(v * 255) : 0;
    }
  }
  return out;
}

export async function encodePng(image: ImageValue): Promise<Buffer> {
  return sharp(imageToRgbBytes(image), { raw: { width: image.width, height: image.height, channels: 3 } })
    .png()
    .toBuffer();
}

/** The image at another size (stretched to it; sharp's Lanczos). */
export async function resizeImage(image: ImageValue, width: number, height: number): Promise<ImageValue> {
  if (image.width === width && image.height === height) return image;
  const raw = await sharp(imageToRgbBytes(image), { raw: { width: image.width, height: image.height, channels: 3 } })
    .resize(width, height, { fit: 'fill' })
    .raw()
    .toBuffer();
  return rgbBytesToImage(raw, width, height);
}

/** The image sizes a model takes: each side fitted on its own, and a check of a whole size. */
export interface ImageSizes {
  /** The largest side at most `side` that the model takes along `axis` (0 = height, 1 = width). */
  fitSide(axis: 0 | 1, side: number): number;
  takes(width: number, height: number): boolean;
  /** What it takes, for messages: "sides that are multiples of 64". */
  describe: string;
}

/** Sides that are multiples of `m` (what every SD VAE takes with m = 8). */
export function multiplesOf(m: number): ImageSizes {
  return {
    fitSide: (_axis, side) => Math.max(m, Math.floor(side / m) * m),
    takes: (w, h) => w % m === 0 && h % m === 0,
    describe: `sides that are multiples of ${m}`,
  };
}

/** Target size for an image of w×h: longest side at most maxSide, each side the largest the model takes. */
export function fittedSize(w: number, h: number, maxSide: number, sizes: ImageSizes): { width: number; height: number } {
  const scale = Math.min(1, maxSide / Math.max(w, h));
  return { width: sizes.fitSide(1, Math.floor(w * scale)), height: sizes.fitSide(0, Math.floor(h * scale)) };
}

/**
 * Decode an image file and bring it to a size the model accepts (`sizes`): 'crop' scales down to fit
 * maxSide then centre-crops to that size, 'resize' stretches to it, 'exact' refuses any other size with a
 * message that says what would be accepted.
 */
export async function loadImageFile(
  file: string | Buffer,
  opts: { fit: FitMode; maxSide: number; sizes: ImageSizes; maxPixels?: number },
): Promise<{ image: ImageValue; original: { width: number; height: number } }> {
  const { input, original } = await openImage(file, opts.maxPixels);
  const target = fitTarget(original, opts);
  const { data, info } = await input
    .removeAlpha()
    .toColourspace('srgb')
    .resize(target.width, target.height, { fit: opts.fit === 'resize' ? 'fill' : 'cover', position: 'centre' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new UserError(`unexpected image channel count ${info.channels}`, 'image');
  return { image: rgbBytesToImage(data, info.width, info.height), original };
}

/** The size `loadImageFile` gives a file, read from its header alone (no pixel is decoded). */
export async function fittedFileSize(
  file: string | Buffer,
  opts: { fit: FitMode; maxSide: number; sizes: ImageSizes; maxPixels?: number },
): Promise<{ width: number; height: number }> {
  return fitTarget((await openImage(file, opts.maxPixels)).original, opts);
}

async function openImage(file: string | Buffer, maxPixels = 4096 * 4096): Promise<{ input: sharp.Sharp; original: { width: number; height: number } }> {
  let input: sharp.Sharp;
  let meta: sharp.Metadata;
  try {
    input = sharp(file, { limitInputPixels: maxPixels }).rotate();
    meta = await input.metadata();
  } catch (err) {
    throw new UserError(`cannot read the image: ${(err as Error).message}`, 'image');
  }
  const width = meta.autoOrient?.width ?? meta.width ?? 0;
  const height = meta.autoOrient?.height ?? meta.height ?? 0;
  if (!width || !height) throw new UserError('cannot read the image size', 'image');
  return { input, original: { width, height } };
}

/** The size an image of `original` size is brought to; 'exact' refuses other sizes, saying what would work. */
function fitTarget(original: { width: number; height: number }, opts: { fit: FitMode; maxSide: number; sizes: ImageSizes }): { width: number; height: number } {
  const { width: ow, height: oh } = original;
  if (opts.fit !== 'exact') return fittedSize(ow, oh, opts.maxSide, opts.sizes);
  if (!opts.sizes.takes(ow, oh) || Math.max(ow, oh) > opts.maxSide) {
    const s = fittedSize(ow, oh, opts.maxSide, opts.sizes);
    throw new UserError(
      `image is ${ow}×${oh}; with fit "exact" the model takes ${opts.sizes.describe}, at most ${opts.maxSide} ` +
        `(choose fit "crop" or "resize" to get ${s.width}×${s.height})`,
      'fit',
    );
  }
  return { width: ow, height: oh };
}

/**
 * The built-in sample picture, drawn procedurally so templates run on a fresh offline machine:
 * a sky gradient, a sun, hills and a house — enough structure to see an inversion keep its layout.
 */
export function sampleImage(width: number, height: number): ImageValue {
  const plane = width * height;
  const data = new Float32Array(3 * plane);
  for (let y = 0; y < height; y++) {
    const v = y / height;
    for (let x = 0; x < width; x++) {
      const u = x / width;
      let r = 0.35 + 0.3 * v,
        g = 0.55 + 0.25 * v,
        b = 0.95 - 0.2 * v; // sky
      const hill = 0.62 + 0.08 * Math.sin(u * 6.2 + 0.5);
      if ((u - 0.75) ** 2 + ((v - 0.22) * (height / width)) ** 2 < 0.008) {
        r = 1;
        g = 0.85;
        b = 0.3;
      } // sun
      if (v > hill) {
        r = 0.2 + 0.1 * u;
        g = 0.55 - 0.2 * (v - hill);
        b = 0.2;
      } // hills
      if (u > 0.22 && u < 0.42 && v > 0.55 && v < 0.78) {
        r = 0.75;
        g = 0.35;
        b = 0.25;
      } // house
      if (v > 0.42 && v <= 0.55 && Math.abs(u - 0.32) < (v - 0.42) * 0.85) {
        r = 0.45;
        g = 0.2;
        b = 0.15;
      } // roof
      if (u > 0.29 && u < 0.35 && v > 0.66 && v < 0.78) {
        r = 0.3;
        g = 0.2;
        b = 0.1;
      } // door
      const p = y * width + x;
      data[p] = r;
      data[plane + p] = g;
      data[2 * plane + p] = b;
    }
  }
  return { width, height, data };
}

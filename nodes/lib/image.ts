/**
 * Image plumbing for nodes: decode files into CHW float images and fit them to sizes the model
 * accepts. sharp does the decoding; the conversions, PNG encoding and resizing live in
 * server/engine/images/.
 */
import sharp from 'sharp';
import type { ImageValue } from '../values.ts';
import { UserError } from '../types.ts';
import { rgbBytesToImage } from '../../server/engine/images/pixels.ts';

/** Largest side a Load Image node accepts after fitting, in pixels. */
export const MAX_IMAGE_SIDE = 2048;

export type FitMode = 'crop' | 'resize' | 'exact';

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

/**
 * Images as the engine holds them (CHW float in [0,1]) and as files and libraries hold them
 * (interleaved RGB bytes, PNG): the conversions, PNG encoding and resizing. sharp does the encoding and
 * resampling. Nodes, the upload routes and the tools all convert through here.
 */
import sharp from 'sharp';
import type { ImageValue } from '../values.ts';

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

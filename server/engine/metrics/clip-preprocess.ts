/**
 * CLIP image preprocessing as a model folder's preprocessor config states it (the HF
 * CLIPImageProcessor pipeline): quantise to 8-bit RGB, resize the shortest edge to `size` with the
 * stated resample (bicubic for CLIP), centre-crop `crop × crop`, rescale by 1/255, normalise by the
 * mean and std per channel → pixel_values [3, crop, crop].
 * Two config formats are read: the HF `preprocessor_config.json` (size.shortest_edge, crop_size,
 * image_mean, ...) and the short `preprocessor.json` of the metrics fixture (image_size, mean, std).
 */
import type { ImageValue } from '../values.ts';
import { resizeRgb8 } from './resample.ts';

export interface ClipPreprocessor {
  /** Shortest edge after resizing. */
  size: number;
  /** Side of the centre crop. */
  crop: number;
  rescale: number;
  mean: [number, number, number];
  std: [number, number, number];
}

/** OpenAI CLIP's values, used for whatever a config leaves out. */
export const CLIP_DEFAULTS: ClipPreprocessor = {
  size: 224,
  crop: 224,
  rescale: 1 / 255,
  mean: [0.48145466, 0.4578275, 0.40821073],
  std: [0.26862954, 0.26130258, 0.27577711],
};

type Json = Record<string, unknown>;

function side(v: unknown, keys: string[]): number | undefined {
  if (typeof v === 'number') return v;
  if (v && typeof v === 'object') for (const k of keys) if (typeof (v as Json)[k] === 'number') return (v as Json)[k] as number;
  return undefined;
}

function triple(v: unknown, what: string): [number, number, number] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    throw new Error(`${what} must be a list of three numbers, got ${JSON.stringify(v)}`);
  }
  return v as [number, number, number];
}

/** Reads either config format; throws naming the field for values that cannot be right. */
export function parsePreprocessor(json: unknown, source = 'the preprocessor config'): ClipPreprocessor {
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new Error(`${source} must be a JSON object`);
  const j = json as Json;
  // A resample other than bicubic (PIL 3) would be silently different; say so instead.
  if (j.resample !== undefined && j.resample !== 3)
    throw new Error(`${source}: resample ${JSON.stringify(j.resample)} is not supported (CLIP uses bicubic, 3)`);
  if (j.do_resize === false || j.do_center_crop === false || j.do_normalize === false) {
    throw new Error(`${source}: resize, centre crop and normalise must be on for a CLIP image processor`);
  }
  const size = side(j.size, ['shortest_edge', 'height']) ?? side(j.image_size, []) ?? CLIP_DEFAULTS.size;
  const crop = side(j.crop_size, ['height', 'width']) ?? side(j.image_size, []) ?? size;
  const rescale = typeof j.rescale_factor === 'number' ? j.rescale_factor : typeof j.rescale === 'number' ? j.rescale : CLIP_DEFAULTS.rescale;
  const mean = triple(j.image_mean ?? j.mean, `${source}: mean`) ?? CLIP_DEFAULTS.mean;
  const std = triple(j.image_std ?? j.std, `${source}: std`) ?? CLIP_DEFAULTS.std;
  for (const [k, v] of [
    ['size', size],
    ['crop', crop],
  ] as const) {
    if (!Number.isInteger(v) || v < 1 || v > 4096) throw new Error(`${source}: ${k} must be a whole number of pixels, got ${v}`);
  }
  if (crop > size) throw new Error(`${source}: a ${crop}-pixel crop does not fit in a ${size}-pixel shortest edge`);
  if (std.some((s) => s <= 0)) throw new Error(`${source}: std must be positive, got ${JSON.stringify(std)}`);
  return { size, crop, rescale, mean, std };
}

/** Output size of "shortest edge to `size`": the long side is int(size · long / short), as HF computes it. */
export function shortestEdgeSize(width: number, height: number, size: number): { width: number; height: number } {
  if (width <= height) return { width: size, height: Math.trunc((size * height) / width) };
  return { width: Math.trunc((size * width) / height), height: size };
}

/** The image as 8-bit interleaved RGB: round(clamp(x, 0, 1) · 255). */
export function quantize(image: ImageValue): Uint8Array {
  const { width, height, data } = image;
  const plane = width * height;
  const out = new Uint8Array(3 * plane);
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) {
      const v = data[c * plane + p]!;
      out[3 * p + c] = v >= 1 ? 255 : v > 0 ? (v * 255 + 0.5) | 0 : 0; // round half up, as Math.round for v > 0
    }
  }
  return out;
}

/** pixel_values [3, crop, crop] of one image. */
export function clipPixelValues(image: ImageValue, pre: ClipPreprocessor): Float32Array {
  const { width: W, height: H } = image;
  if (W < 1 || H < 1) throw new Error(`cannot preprocess an empty ${W}×${H} image`);
  const target = shortestEdgeSize(W, H, pre.size);
  const rgb = resizeRgb8(quantize(image), W, H, target.width, target.height);
  const left = (target.width - pre.crop) >> 1;
  const top = (target.height - pre.crop) >> 1;
  const n = pre.crop * pre.crop;
  const out = new Float32Array(3 * n);
  for (let y = 0; y < pre.crop; y++) {
    for (let x = 0; x < pre.crop; x++) {
      const s = 3 * ((top + y) * target.width + left + x);
      for (let c = 0; c < 3; c++) out[c * n + y * pre.crop + x] = (rgb[s + c]! * pre.rescale - pre.mean[c]!) / pre.std[c]!;
    }
  }
  return out;
}

/**
 * The columns of an image as a new image: the left half is the columns j < W/2, the right half the
 * columns j ≥ W/2 (an odd middle column goes left, as "columns < W/2" says).
 */
export function halves(image: ImageValue): { left: ImageValue; right: ImageValue } {
  const split = Math.ceil(image.width / 2);
  const { width: W, height: H } = image;
  return { left: crop(image, { x0: 0, y0: 0, x1: split, y1: H }), right: crop(image, { x0: split, y0: 0, x1: W, y1: H }) };
}

/** A rectangle of pixels, x0 ≤ x < x1 and y0 ≤ y < y1. */
export interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/** The pixels of `box` as a new image. */
export function crop(image: ImageValue, box: Box): ImageValue {
  const { width: W, height: H, data } = image;
  const { x0, y0, x1, y1 } = box;
  const [w, h] = [x1 - x0, y1 - y0];
  if (w < 1 || h < 1 || x0 < 0 || y0 < 0 || x1 > W || y1 > H) throw new Error(`a ${W}×${H} image has no pixels ${x0}..${x1 - 1} × ${y0}..${y1 - 1}`);
  const out = new Float32Array(3 * w * h);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < h; y++) out.set(data.subarray(c * W * H + (y0 + y) * W + x0, c * W * H + (y0 + y) * W + x1), c * w * h + y * w);
  }
  return { width: w, height: h, data: out };
}

/**
 * Where each style is the picture's: the bounding box of the pixels where its weight is the largest
 * (a tie goes to the lower style, so the middle column of an odd width goes to style 1, as in halves);
 * null for a style that is largest nowhere. For two styles left and right of a left-right mask these
 * are exactly the halves.
 */
export function regionBoxes(weights: readonly Float32Array[], width: number, height: number): (Box | null)[] {
  const boxes: (Box | null)[] = weights.map(() => null);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = y * width + x;
      let best = 0;
      for (let k = 1; k < weights.length; k++) if (weights[k]![p]! > weights[best]![p]!) best = k;
      const b = boxes[best];
      if (!b) boxes[best] = { x0: x, y0: y, x1: x + 1, y1: y + 1 };
      else {
        b.x0 = Math.min(b.x0, x);
        b.y0 = Math.min(b.y0, y);
        b.x1 = Math.max(b.x1, x + 1);
        b.y1 = Math.max(b.y1, y + 1);
      }
    }
  }
  return boxes;
}

/**
 * The spatial mask M of dual-style merging: M weights style 1 (c1), 1 − M weights style 2.
 * Resolution independent: evaluated at pixel centres of whatever grid asks (latent for the samplers,
 * image for pixel merge), so the same mask drives every stage consistently.
 */
import type { ImageValue, MaskDirection, MaskShape, MaskValue } from '../values.ts';

export interface MaskOptions {
  shape: MaskShape;
  direction: MaskDirection;
  /** k of the logistic transition; ignored by 'linear' and 'image'. */
  sharpness: number;
  /** Grayscale source of an 'image' mask (white = style 1). RGB is reduced to Rec. 601 luma. */
  image?: ImageValue;
}

/** The transition profile along u ∈ (0,1): 1 at the style-1 end, 0 at the style-2 end. */
export function maskProfile(shape: 'linear' | 'logistic', u: number, sharpness: number): number {
  return shape === 'linear' ? 1 - u : 1 / (1 + Math.exp(sharpness * (u - 0.5)));
}

export function makeMask(options: MaskOptions): MaskValue {
  const { shape, direction, sharpness } = options;
  if (shape === 'image') {
    if (!options.image) throw new Error('an image mask needs an image');
    const gray = toGray(options.image);
    const srcW = options.image.width;
    const srcH = options.image.height;
    return {
      shape,
      direction,
      sharpness,
      // The image is taken as drawn; direction does not apply to it.
      sample: (w, h) => resizeBilinear(gray, srcW, srcH, w, h),
    };
  }
  if (shape !== 'linear' && shape !== 'logistic') throw new Error(`unknown mask shape "${String(shape)}"`);
  if (!Number.isFinite(sharpness)) throw new Error(`mask sharpness must be a finite number, got ${sharpness}`);
  return {
    shape,
    direction,
    sharpness,
    sample(w, h) {
      checkSize(w, h);
      const horizontal = direction === 'left-right' || direction === 'right-left';
      const reversed = direction === 'right-left' || direction === 'bottom-top';
      if (!horizontal && direction !== 'top-bottom' && direction !== 'bottom-top') {
        throw new Error(`unknown mask direction "${String(direction)}"`);
      }
      const n = horizontal ? w : h;
      const line = new Float64Array(n);
      for (let j = 0; j < n; j++) {
        const u = (j + 0.5) / n;
        line[j] = maskProfile(shape, reversed ? 1 - u : u, sharpness);
      }
      const out = new Float32Array(w * h);
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) out[y * w + x] = line[horizontal ? x : y]!;
      }
      return out;
    },
  };
}

/** The mask at a w×h grid: a MaskValue is sampled there; an array must already have w·h values. */
export function sampleMask(mask: MaskValue | Float32Array, w: number, h: number): Float32Array {
  const m = mask instanceof Float32Array ? mask : mask.sample(w, h);
  if (m.length !== w * h) throw new Error(`mask has ${m.length} values, the ${w}×${h} grid needs ${w * h}`);
  return m;
}

/**
 * The blend of dual-style merging, out = M·a + (1 − M)·b, for every plane of a and b (channels of a
 * latent or an image), M [plane] shared by all planes. `out` may be `a` or `b`.
 */
export function blendInto(out: Float32Array, a: Float32Array | Float64Array, b: Float32Array | Float64Array, M: Float32Array): void {
  const plane = M.length;
  for (let c = 0; c < out.length; c += plane) {
    for (let p = 0; p < plane; p++) {
      const i = c + p;
      const m = M[p]!;
      out[i] = m * a[i]! + (1 - m) * b[i]!;
    }
  }
}

function checkSize(w: number, h: number): void {
  if (!Number.isInteger(w) || !Number.isInteger(h) || w < 1 || h < 1) {
    throw new Error(`mask size must be positive integers, got ${w}×${h}`);
  }
}

function toGray(img: ImageValue): Float32Array {
  const n = img.width * img.height;
  const channels = img.data.length / n;
  if (channels === 1) return img.data;
  if (channels !== 3 && channels !== 4) {
    throw new Error(`mask image must have 1, 3 or 4 channels, got ${img.data.length} values for ${img.width}×${img.height}`);
  }
  const d = img.data;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = 0.299 * d[i]! + 0.587 * d[n + i]! + 0.114 * d[2 * n + i]!;
  return out;
}

/**
 * Bilinear resize of one plane with half-pixel centres and no antialias (ONNX Resize linear,
 * half_pixel; PyTorch interpolate align_corners=False), edges clamped.
 */
export function resizeBilinear(src: Float32Array, srcW: number, srcH: number, w: number, h: number): Float32Array {
  checkSize(w, h);
  const out = new Float32Array(w * h);
  const sx = srcW / w;
  const sy = srcH / h;
  for (let y = 0; y < h; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), srcH - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, srcH - 1);
    const wy = fy - y0;
    for (let x = 0; x < w; x++) {
      const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), srcW - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, srcW - 1);
      const wx = fx - x0;
      const top = src[y0 * srcW + x0]! * (1 - wx) + src[y0 * srcW + x1]! * wx;
      const bottom = src[y1 * srcW + x0]! * (1 - wx) + src[y1 * srcW + x1]! * wx;
      out[y * w + x] = top * (1 - wy) + bottom * wy;
    }
  }
  return out;
}

/** Resizing a plane (a mask's weights) between grids, as ONNX Resize and PyTorch interpolate do it. */

export function checkSize(w: number, h: number): void {
  if (!Number.isInteger(w) || !Number.isInteger(h) || w < 1 || h < 1) {
    throw new Error(`mask size must be positive integers, got ${w}×${h}`);
  }
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

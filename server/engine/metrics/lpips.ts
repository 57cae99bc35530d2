/**
 * LPIPS (Zhang et al. 2018, the `lpips` package's LPIPS(net=..., version='0.1')) from the feature
 * maps of a network that the user exports to ONNX (evaluation-models/lpips-model.ts runs it):
 *   inputs in [−1, 1], scaled per channel: (x − shift) / scale
 *   for each layer l: f̂ = f / (‖f‖₂ over channels + 1e-10) at every position,
 *   d_l = mean over positions of Σ_c w_lc · (f̂_a − f̂_b)²       (the linear head: a 1×1 conv, no bias)
 *   LPIPS = Σ_l d_l
 */

/** The `lpips` package's ScalingLayer constants (ImageNet statistics in [−1, 1] units). */
export const LPIPS_SHIFT = [-0.03, -0.088, -0.188] as const;
export const LPIPS_SCALE = [0.458, 0.448, 0.45] as const;
const EPS = 1e-10;

/** A feature map [C, h, w] of one image. */
export interface FeatureMap {
  channels: number;
  height: number;
  width: number;
  data: Float32Array;
}

/** RGB CHW in [0,1] → the network's input: 2x − 1, then (x − shift) / scale per channel. */
export function lpipsInput(data: Float32Array, plane: number, shift: readonly number[] = LPIPS_SHIFT, scale: readonly number[] = LPIPS_SCALE): Float32Array {
  const out = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    for (let p = 0; p < plane; p++) out[c * plane + p] = (2 * data[c * plane + p]! - 1 - shift[c]!) / scale[c]!;
  }
  return out;
}

/** d_l of one layer: the head-weighted squared difference of unit-normalised features, averaged over positions. */
export function layerDistance(a: FeatureMap, b: FeatureMap, head: ArrayLike<number>): number {
  const { channels: C, height: h, width: w } = a;
  if (b.channels !== C || b.height !== h || b.width !== w)
    throw new Error(`feature maps differ: [${C}, ${h}, ${w}] and [${b.channels}, ${b.height}, ${b.width}]`);
  if (head.length !== C) throw new Error(`a linear head of ${head.length} weights for a layer of ${C} channels`);
  const plane = h * w;
  let total = 0;
  for (let p = 0; p < plane; p++) {
    let na = 0,
      nb = 0;
    for (let c = 0; c < C; c++) {
      na += a.data[c * plane + p]! ** 2;
      nb += b.data[c * plane + p]! ** 2;
    }
    na = Math.sqrt(na) + EPS;
    nb = Math.sqrt(nb) + EPS;
    let s = 0;
    for (let c = 0; c < C; c++) s += head[c]! * (a.data[c * plane + p]! / na - b.data[c * plane + p]! / nb) ** 2;
    total += s;
  }
  return total / plane;
}

/** LPIPS from the feature maps of both images, layer by layer, with one head per layer. */
export function lpipsDistance(a: FeatureMap[], b: FeatureMap[], heads: ArrayLike<number>[]): number {
  if (a.length !== heads.length || b.length !== heads.length) {
    throw new Error(`the network gave ${a.length} feature maps, the LPIPS config has ${heads.length} linear heads`);
  }
  return a.reduce((sum, f, l) => sum + layerDistance(f, b[l]!, heads[l]!), 0);
}

/**
 * The engine's vocabulary: plain data the diffusion math and the ONNX pipeline pass around.
 * Arrays are Float32Array in C order (NCHW) so they go to onnxruntime without copies.
 * Nodes present these on their sockets (nodes/values.ts re-exports them).
 */

/** RGB image, CHW float32 in [0,1]. */
export interface ImageValue {
  width: number;
  height: number;
  data: Float32Array;
}

export type MaskShape = 'linear' | 'logistic' | 'image';
export type MaskDirection = 'left-right' | 'right-left' | 'top-bottom' | 'bottom-top';

/**
 * A spatial mask M, weight of style 1 (c1), 1 − M goes to style 2. Resolution independent:
 * `sample(w, h)` evaluates it at pixel centres of a w×h grid (latent size for the samplers,
 * image size for pixel merge).
 */
export interface MaskValue {
  shape: MaskShape;
  direction: MaskDirection;
  sharpness: number;
  sample(width: number, height: number): Float32Array;
}

/** DDIM schedule (LDM / CycleDiffusion uniform spacing), index k = 0..S-1 ascending in t. */
export interface Schedule {
  steps: number;
  eta: number;
  timesteps: number[];
  alphas: number[];
  alphasPrev: number[];
  sigmas: number[];
}

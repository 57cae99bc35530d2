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
  /** A batch's pictures 2..B (same size), after this one; nodes that take one picture use this one. */
  others?: Float32Array[];
}

export type MaskShape = 'linear' | 'logistic' | 'image' | 'painted' | 'words';

/**
 * Where a prompt's words are in a picture: the cross-attention maps the UNet computed for each text
 * token while inverting it (averaged over layers, heads and steps), at the latent grid, and which token
 * positions each word of the prompt has. What a words mask is made of.
 */
export interface AttentionMapsValue {
  width: number;
  height: number;
  /** Text tokens L (the maps of every token position, BOS and padding included). */
  tokens: number;
  /** [L, height, width], token-major. */
  maps: Float32Array;
  /** The prompt's words in order, with the positions of their tokens (1 = the first after BOS). */
  words: { word: string; positions: number[] }[];
}
export type MaskDirection = 'left-right' | 'right-left' | 'top-bottom' | 'bottom-top' | 'angle' | 'radial';

/**
 * A spatial mask of N ≥ 2 styles: at every point a weight per style, each in [0, 1], summing to 1.
 * With two styles, weights[0] is the paper's M (style 1) and weights[1] is 1 − M. Resolution
 * independent: `weights(w, h)` evaluates it at pixel centres of a w×h grid (latent size for the
 * samplers, image size for pixel merge), N planes of [h·w]; they may be cached by the mask, so treat
 * them as read-only.
 */
export interface MaskValue {
  readonly styles: number;
  /** How it was made, for messages ("logistic left-right, 3 styles"). */
  readonly description: string;
  weights(width: number, height: number): Float32Array[];
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

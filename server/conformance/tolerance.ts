/**
 * The conformance tolerances: fp32 runs within 1e-3·max(1, max|ref|) (the cross-library differences the
 * reference stack itself shows against onnxruntime), fp16 runs (the UNet converted at load) within
 * FP16_TOLERANCE_FACTOR times that, and the decoded images of an fp16 run also within what the fp32 VAE
 * decoder makes of a latent error at its case's tolerance (decodedTolerance). Apart from the harness so
 * that the cases can compute the last one.
 */
import { Xoshiro128 } from '../engine/diffusion/noise.ts';

/**
 * The fp16 run's tolerances, relative to the fp32 ones (1e-3·max(1, |ref|), set by cross-library
 * differences, not rounding). fp16's unit roundoff is 2⁻¹¹ ≈ 4.9e-4, 8192× fp32's: every activation the
 * converted UNet stores is rounded that much, and a UNet's longest path stores ~20 of them in sequence
 * (each block's output, re-normalised by the next GroupNorm, so errors add rather than multiply):
 * ≈ 20·4.9e-4 ≈ 1e-2 relative for one call, 10× the fp32 tolerance; decodes of R steps add one call's
 * error per step, damped by the scheduler's coefficients (< 1). 16× the fp32 tolerance (1.6e-2 relative)
 * covers one call with margin; measured on tiny-sd (CPU, time embedding in fp32): one call 1.2e-3
 * (0.06 of its tolerance), decodes ≤ 0.29 of theirs.
 */
export const FP16_TOLERANCE_FACTOR = 16;

export function tolerance(ref: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < ref.length; i++) m = Math.max(m, Math.abs(ref[i]!));
  return 1e-3 * Math.max(1, m);
}

/**
 * A decoded image's tolerance in an fp16 run: the VAE decoder is not converted (it runs in fp32, as in
 * fp32 runs), but it amplifies the error of the latent it decodes, and by how much depends on the decoder
 * and the latent, not on fp16. So the image may differ from the reference by as much as the decoder turns
 * a latent error *at the edge of the latent case's tolerance* into: `decode(ref + t·s) − decode(ref)`,
 * t the fp16 latent tolerance and s a fixed pattern of random signs (every element off by t, a
 * worst case in max-norm), and never less than the fp16 image tolerance. A latent outside its own
 * tolerance fails its own case.
 */
export async function decodedTolerance(referenceLatent: Float32Array, decode: (latent: Float32Array) => Promise<ArrayLike<number>>): Promise<number> {
  const t = FP16_TOLERANCE_FACTOR * tolerance(referenceLatent);
  const rng = new Xoshiro128(0x5eed);
  const moved = referenceLatent.map((v) => v + (rng.nextU32() & 1 ? t : -t));
  const [a, b] = [await decode(referenceLatent), await decode(moved)];
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

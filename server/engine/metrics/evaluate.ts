/**
 * All metrics of one generated image against its original, the way the seed's tables report them.
 * The models are ports (like the Denoiser of the diffusion math): a CLIP encoder and a perceptual
 * distance, implemented over onnxruntime sessions in onnx/clip-model.ts and onnx/lpips-model.ts.
 * Without a model its metrics are left out, never guessed.
 */
import type { ImageValue } from '../values.ts';
import { clipScores, type ImageEmbeddings } from './clip-score.ts';
import { l2, psnr, requireSameSize, totalVariation, tvSeam } from './image-metrics.ts';
import type { MetricValues } from './names.ts';
import { ssim } from './ssim.ts';

export interface ClipEncoder {
  /** Embeddings of the image and of its left and right halves (implementations cache by content). */
  imageEmbeddings(image: ImageValue): Promise<ImageEmbeddings>;
  /** The projected text embedding of a prompt. */
  textEmbedding(prompt: string): Promise<Float32Array>;
}

export interface PerceptualDistance {
  distance(a: ImageValue, b: ImageValue): Promise<number>;
}

export interface StylePrompts {
  source: string;
  /** The left style (weighted by the mask M). */
  style1: string;
  /** The right style (1 − M). */
  style2: string;
}

export interface EvaluationModels {
  clip?: ClipEncoder;
  lpips?: PerceptualDistance;
}

/** Pixel metrics, then LPIPS and CLIP where their models (and, for CLIP, the prompts) are given. */
export async function evaluateImage(
  generated: ImageValue,
  original: ImageValue,
  prompts: StylePrompts | undefined,
  models: EvaluationModels = {},
): Promise<MetricValues> {
  requireSameSize(generated, original);
  const values: MetricValues = {
    l2: l2(generated, original),
    psnr: psnr(generated, original),
    ssim: ssim(generated, original),
    tv: totalVariation(generated),
    tv_seam: tvSeam(generated),
  };
  if (models.lpips) values.lpips = await models.lpips.distance(generated, original);
  if (models.clip && prompts) {
    const clip = models.clip;
    const [g, o, source, style1, style2] = await Promise.all([
      clip.imageEmbeddings(generated),
      clip.imageEmbeddings(original),
      clip.textEmbedding(prompts.source),
      clip.textEmbedding(prompts.style1),
      clip.textEmbedding(prompts.style2),
    ]);
    Object.assign(values, clipScores(g, o, { source, style1, style2 }));
  }
  return values;
}

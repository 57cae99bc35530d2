/**
 * All metrics of one generated image against its original, the way the seed's tables report them.
 * The models are ports (like the Denoiser of the diffusion math): a CLIP encoder and a perceptual
 * distance, implemented over onnxruntime sessions in evaluation-models/clip-model.ts and evaluation-models/lpips-model.ts.
 * Without a model its metrics are left out, never guessed.
 */
import type { ImageValue, MaskValue } from '../values.ts';
import { crop, regionBoxes } from './clip-preprocess.ts';
import { clipScores, regionBleedScores, regionClipScores, type ImageEmbeddings } from './clip-score.ts';
import { borderTv, l2, psnr, regionLabels, requireSameSize, totalVariation, tvSeam } from './image-metrics.ts';
import { bleedMetric, borderMetric, regionMetric, type MetricValues } from './names.ts';
import { ssim } from './ssim.ts';

export interface ClipEncoder {
  /** Embeddings of the image and of its left and right halves (implementations cache by content). */
  imageEmbeddings(image: ImageValue): Promise<ImageEmbeddings>;
  /** Embeddings of several images (in one batch where the model takes one). */
  embedImages(images: ImageValue[]): Promise<Float32Array[]>;
  /** The projected text embedding of a prompt. */
  textEmbedding(prompt: string): Promise<Float32Array>;
}

export interface PerceptualDistance {
  distance(a: ImageValue, b: ImageValue): Promise<number>;
}

export interface StylePrompts {
  source: string;
  /** One per style in the mask's order: two are the left (M) and the right (1 − M) style. */
  styles: string[];
}

export interface EvaluationModels {
  clip?: ClipEncoder;
  lpips?: PerceptualDistance;
}

/**
 * Pixel metrics, then LPIPS and CLIP where their models (and, for CLIP, the prompts) are given; with a
 * mask, the seam TV along its region borders (tv_border, tv_border1..N); with a mask of as many styles
 * as prompts, CLIP of each style's region too (clip_region1..N and their mean) and its bleed, the region
 * against the other styles (clip_bleed1..N and their mean).
 */
export async function evaluateImage(
  generated: ImageValue,
  original: ImageValue,
  prompts: StylePrompts | undefined,
  models: EvaluationModels = {},
  mask?: MaskValue,
): Promise<MetricValues> {
  requireSameSize(generated, original);
  const values: MetricValues = {
    l2: l2(generated, original),
    psnr: psnr(generated, original),
    ssim: ssim(generated, original),
    tv: totalVariation(generated),
    tv_seam: tvSeam(generated),
  };
  if (mask) Object.assign(values, borderScores(generated, mask));
  if (models.lpips) values.lpips = await models.lpips.distance(generated, original);
  if (models.clip && prompts) {
    const clip = models.clip;
    const [g, o, source, ...styles] = await Promise.all([
      clip.imageEmbeddings(generated),
      clip.imageEmbeddings(original),
      clip.textEmbedding(prompts.source),
      ...prompts.styles.map((s) => clip.textEmbedding(s)),
    ]);
    Object.assign(values, clipScores(g, o, { source, styles }));
    if (mask) Object.assign(values, await regionScores(clip, generated, mask, styles));
  }
  return values;
}

/** clip_region_k of every style that weighs most somewhere, and their mean as clip_region. */
async function regionScores(clip: ClipEncoder, image: ImageValue, mask: MaskValue, styles: Float32Array[]): Promise<MetricValues> {
  if (mask.styles !== styles.length) throw new Error(`the mask has ${mask.styles} styles, but ${styles.length} style prompts are given`);
  const boxes = regionBoxes(mask.weights(image.width, image.height), image.width, image.height);
  const present = boxes.flatMap((b, k) => (b ? [k] : []));
  const embedded = await clip.embedImages(present.map((k) => crop(image, boxes[k]!)));
  const crops = boxes.map((b, k) => (b ? embedded[present.indexOf(k)]! : null));
  const values: MetricValues = {};
  const scores = regionClipScores(crops, styles);
  const bleed = regionBleedScores(crops, styles);
  scores.forEach((s, k) => {
    if (s !== null) values[regionMetric(k + 1)] = s;
    if (bleed[k] !== null) values[bleedMetric(k + 1)] = bleed[k]!;
  });
  const mean = (list: (number | null)[]) => {
    const found = list.filter((s): s is number => s !== null);
    return found.length > 0 ? found.reduce((a, b) => a + b, 0) / found.length : undefined;
  };
  const [region, bled] = [mean(scores), mean(bleed)];
  if (region !== undefined) values.clip_region = region;
  if (bled !== undefined) values.clip_bleed = bled;
  return values;
}

/** tv_border along all region borders and tv_border_k along each region's; none where the mask has a single region. */
function borderScores(image: ImageValue, mask: MaskValue): MetricValues {
  const { width, height } = image;
  const { all, regions } = borderTv(image, regionLabels(mask.weights(width, height), width, height), mask.styles);
  const values: MetricValues = {};
  if (all !== null) values.tv_border = all;
  regions.forEach((v, k) => {
    if (v !== null) values[borderMetric(k + 1)] = v;
  });
  return values;
}

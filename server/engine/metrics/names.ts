/**
 * The metrics the studio reports, in the seed's table order, with what a reader needs to read them:
 * a short label, which direction is better, and how many decimals the seed prints.
 */
export const METRIC_NAMES = [
  'l2',
  'lpips',
  'psnr',
  'ssim',
  'tv',
  'tv_seam',
  'tv_border',
  'tv_border1',
  'tv_border2',
  'tv_border3',
  'tv_border4',
  'tv_border5',
  'tv_border6',
  'tv_border7',
  'tv_border8',
  'clip',
  'clip_left',
  'clip_right',
  'dclip',
  'dclip_left',
  'dclip_right',
  'clip_region',
  'clip_region1',
  'clip_region2',
  'clip_region3',
  'clip_region4',
  'clip_region5',
  'clip_region6',
  'clip_region7',
  'clip_region8',
  'clip_bleed',
  'clip_bleed1',
  'clip_bleed2',
  'clip_bleed3',
  'clip_bleed4',
  'clip_bleed5',
  'clip_bleed6',
  'clip_bleed7',
  'clip_bleed8',
] as const;

export type MetricName = (typeof METRIC_NAMES)[number];

/** The metrics of style k's own region (1-based): its CLIP score, its bleed, the seam TV along its borders. */
export const regionMetric = (k: number) => `clip_region${k}` as MetricName;
export const bleedMetric = (k: number) => `clip_bleed${k}` as MetricName;
export const borderMetric = (k: number) => `tv_border${k}` as MetricName;
/** The metrics of regions (with a mask only). */
export const REGION_METRICS = new Set<MetricName>(METRIC_NAMES.filter((m) => /^(clip_region|clip_bleed|tv_border)/.test(m)));

/** One evaluation: a value per metric that was computed (CLIP and LPIPS only with their models). */
export type MetricValues = Partial<Record<MetricName, number>>;

export interface MetricInfo {
  label: string;
  /** Seed table group. */
  group: 'Similarity' | 'Image quality' | 'CLIP';
  better: 'higher' | 'lower';
  digits: number;
  description: string;
}

export const METRICS: Record<MetricName, MetricInfo> = {
  l2: {
    label: 'L2',
    group: 'Similarity',
    better: 'lower',
    digits: 1,
    description: 'Euclidean distance to the original, √Σ(g − o)² over pixels and channels in [0,1]',
  },
  lpips: { label: 'LPIPS', group: 'Similarity', better: 'lower', digits: 3, description: 'learned perceptual distance to the original (an LPIPS ONNX folder)' },
  psnr: { label: 'PSNR', group: 'Image quality', better: 'higher', digits: 2, description: '10·log10(1/MSE) against the original, in dB' },
  ssim: { label: 'SSIM', group: 'Image quality', better: 'higher', digits: 3, description: 'structural similarity to the original (Gaussian 11×11 window)' },
  tv: { label: 'Smooth.', group: 'Image quality', better: 'lower', digits: 3, description: 'total variation per pixel of the whole image' },
  tv_seam: {
    label: 'Seam TV',
    group: 'Image quality',
    better: 'lower',
    digits: 3,
    description: 'total variation per pixel of the central 20% of the width, where a seam shows',
  },
  tv_border: {
    label: 'Border TV',
    group: 'Image quality',
    better: 'lower',
    digits: 3,
    description: "seam TV along every border between the mask's regions (a band of half-width 10% of the shorter side around them), per band pixel",
  },
  ...(Object.fromEntries(
    [1, 2, 3, 4, 5, 6, 7, 8].map((k) => [
      `tv_border${k}`,
      {
        label: `Border TV ${k}`,
        group: 'Image quality',
        better: 'lower',
        digits: 3,
        description: `seam TV along the borders of style ${k}'s region (where the mask weighs it most) with the others`,
      },
    ]),
  ) as Record<`tv_border${1 | 2 | 3 | 4 | 5 | 6 | 7 | 8}`, MetricInfo>),
  clip: { label: 'CLIP', group: 'CLIP', better: 'higher', digits: 3, description: 'mean cosine of the image with style 1 and with style 2' },
  clip_left: { label: 'CLIP l.', group: 'CLIP', better: 'higher', digits: 3, description: 'cosine of the left half with style 1' },
  clip_right: { label: 'CLIP r.', group: 'CLIP', better: 'higher', digits: 3, description: 'cosine of the right half with style 2' },
  dclip: { label: 'DCLIP', group: 'CLIP', better: 'higher', digits: 3, description: 'directional CLIP: image change vs prompt change, mean over both styles' },
  dclip_left: { label: 'DCLIP l.', group: 'CLIP', better: 'higher', digits: 3, description: 'directional CLIP of the left half towards style 1' },
  dclip_right: { label: 'DCLIP r.', group: 'CLIP', better: 'higher', digits: 3, description: 'directional CLIP of the right half towards style 2' },
  clip_region: {
    label: 'CLIP reg.',
    group: 'CLIP',
    better: 'higher',
    digits: 3,
    description: "mean over the styles of the cosine of each style's region (where the mask weighs it most) with that style",
  },
  ...(Object.fromEntries(
    [1, 2, 3, 4, 5, 6, 7, 8].map((k) => [
      `clip_region${k}`,
      {
        label: `CLIP reg. ${k}`,
        group: 'CLIP',
        better: 'higher',
        digits: 3,
        description: `cosine of style ${k}'s region (the bounding box of where the mask weighs it most) with style ${k}`,
      },
    ]),
  ) as Record<`clip_region${1 | 2 | 3 | 4 | 5 | 6 | 7 | 8}`, MetricInfo>),
  clip_bleed: {
    label: 'Bleed',
    group: 'CLIP',
    better: 'lower',
    digits: 3,
    description: "mean over the styles of the cosine of each style's region with the other styles (how much of them bleeds in)",
  },
  ...(Object.fromEntries(
    [1, 2, 3, 4, 5, 6, 7, 8].map((k) => [
      `clip_bleed${k}`,
      {
        label: `Bleed ${k}`,
        group: 'CLIP',
        better: 'lower',
        digits: 3,
        description: `mean cosine of style ${k}'s region (the bounding box of where the mask weighs it most) with the other styles`,
      },
    ]),
  ) as Record<`clip_bleed${1 | 2 | 3 | 4 | 5 | 6 | 7 | 8}`, MetricInfo>),
};

/** A value as the seed prints it (fixed decimals; ±∞ for PSNR of identical images). */
export function formatMetric(name: MetricName, value: number): string {
  if (!Number.isFinite(value)) return Number.isNaN(value) ? 'NaN' : value > 0 ? '∞' : '−∞';
  return value.toFixed(METRICS[name].digits);
}

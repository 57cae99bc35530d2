import { z } from 'zod';
import { defineNode, UserError } from './types.ts';
import { makeMask } from '../server/engine/diffusion/mask.ts';
import { STYLE_COLORS, StrokesSchema } from '../server/protocol/painting.ts';
import { encodePng, resizeImage } from './lib/image.ts';
import { stylesParam } from './lib/styles.ts';
import type { ImageValue, MaskValue } from './values.ts';

/** Long side of the preview the node shows (its short side follows the picture's shape). */
const PREVIEW = 128;

export const maskNode = defineNode({
  type: 'Mask',
  title: 'Mask',
  category: 'Conditioning',
  description:
    'Where each style goes: a weight per style at every point, summing to 1 (two styles: M and 1 − M). A linear or logistic ' +
    'gradient through the styles in order (across the picture in a direction or at any angle, or out from a centre), ' +
    'regions painted by hand (brush, eraser, feather), or a grayscale image (white = style 1). The preview shows each ' +
    'region in its style\'s colour, over the picture when one is connected.',
  inputs: {
    image: { type: 'Image', label: 'image', optional: true, description: 'only for shape "image": its brightness places the styles' },
    picture: { type: 'Image', label: 'picture', optional: true, description: 'shown under the regions in the preview (and gives it the picture\'s shape); does not change the mask' },
  },
  outputs: { mask: { type: 'Mask', label: 'mask', countParam: 'styles' } },
  params: z.object({
    styles: stylesParam('How many styles (regions) the mask has; the sampler it drives must merge as many.'),
    shape: z
      .enum(['linear', 'logistic', 'image', 'painted'])
      .default('logistic')
      .describe(
        'linear: a gradient through the styles (two styles: M = 1 − u); logistic: regions of equal width with soft borders of sharpness k ' +
          '(two styles: M = 1/(1 + exp(k(u − 0.5)))); image: from the connected image; painted: the strokes painted on this node.',
      ),
    direction: z
      .enum(['left-right', 'right-left', 'top-bottom', 'bottom-top', 'angle', 'radial'])
      .default('left-right')
      .describe('Style 1 starts on the first side and the last style ends on the second; angle: along Angle; radial: style 1 at the centre, the last at the farthest corner.'),
    angle: z.number().min(-360).max(360).default(0).describe('Direction "angle": degrees, 0 = left to right, 90 = top to bottom.').meta({ ui: { slider: true }, step: 1 }),
    centerX: z.number().min(0).max(1).default(0.5).describe('Direction "radial": the centre, as a fraction of the width.').meta({ label: 'Centre x', step: 0.01 }),
    centerY: z.number().min(0).max(1).default(0.5).describe('Direction "radial": the centre, as a fraction of the height.').meta({ label: 'Centre y', step: 0.01 }),
    sharpness: z.number().min(0.1).max(200).default(20).describe('k of the logistic transition (the paper uses 20; 70 is sharper).').meta({ ui: { slider: true }, step: 1 }),
    fill: z.number().int().min(1).max(8).default(1).describe('Painted: the style of everything no stroke covers (the eraser paints it back).'),
    feather: z
      .number()
      .min(0)
      .max(0.25)
      .default(0.03)
      .describe('Painted: softness of the borders between painted regions (a Gaussian of this width, as a fraction of the picture\'s shorter side; 0 = crisp).')
      .meta({ step: 0.005 }),
    strokes: StrokesSchema.default([]).describe('Painted: the strokes, painted on the node (brush and eraser, one colour per style).').meta({ ui: { kind: 'painting' } }),
  }),
  check(params) {
    const problems: { field: string; message: string }[] = [];
    if (params.fill > params.styles) problems.push({ field: 'fill', message: `must be a style of the mask (1..${params.styles}), got ${params.fill}` });
    const beyond = params.strokes.findIndex((s) => s.style > params.styles);
    if (beyond >= 0) {
      problems.push({ field: 'strokes', message: `stroke ${beyond + 1} paints style ${params.strokes[beyond]!.style}, but the mask has ${params.styles} styles; raise Styles or erase it` });
    }
    return problems;
  },
  async run({ inputs, params, ctx }) {
    if (params.shape === 'image' && !inputs.image) throw new UserError('shape "image" needs an image connected to the mask', 'image');
    if (params.shape !== 'image' && inputs.image) ctx.warn(`the connected image is ignored for shape "${params.shape}"`);
    if (params.shape === 'painted' && params.strokes.length === 0) ctx.warn(`nothing is painted yet: the whole picture is style ${params.fill}`);
    const mask = makeMask({
      styles: params.styles,
      shape: params.shape,
      direction: params.direction,
      sharpness: params.sharpness,
      angle: params.angle,
      center: { x: params.centerX, y: params.centerY },
      image: inputs.image,
      painting: { strokes: params.strokes, fill: params.fill, feather: params.feather },
    });
    const preview = await regionPreview(mask, inputs.picture);
    const thumbnail = await ctx.saveResult('mask', await encodePng(preview), { width: preview.width, height: preview.height });
    return { outputs: { mask }, result: { images: [thumbnail] } };
  },
});

/** "#rrggbb" → [r, g, b] in 0..1. */
function rgb(hex: string): [number, number, number] {
  return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255) as [number, number, number];
}

/**
 * Each region in its style's colour (STYLE_COLORS, as the editor's painter draws them), the colours
 * mixed by the weights so soft borders show as blends; over the picture's brightness when there is one,
 * at the picture's shape.
 */
export async function regionPreview(mask: MaskValue, picture?: ImageValue): Promise<ImageValue> {
  const aspect = picture ? picture.width / picture.height : 1;
  const width = Math.max(1, Math.round(aspect >= 1 ? PREVIEW : PREVIEW * aspect));
  const height = Math.max(1, Math.round(aspect >= 1 ? PREVIEW / aspect : PREVIEW));
  const n = width * height;
  const weights = mask.weights(width, height);
  const under = picture ? (await resizeImage(picture, width, height)).data : null;
  const colors = weights.map((_, k) => rgb(STYLE_COLORS[k % STYLE_COLORS.length]!));
  const data = new Float32Array(3 * n);
  for (let p = 0; p < n; p++) {
    const light = under ? 0.3 + 0.7 * (0.299 * under[p]! + 0.587 * under[n + p]! + 0.114 * under[2 * n + p]!) : 1;
    for (let c = 0; c < 3; c++) {
      let v = 0;
      for (let k = 0; k < weights.length; k++) v += weights[k]![p]! * colors[k]![c]!;
      data[c * n + p] = v * light;
    }
  }
  return { width, height, data };
}

import { z } from 'zod';
import { defineNode, UserError } from './types.ts';
import { makeMask } from '../server/engine/diffusion/mask.ts';
import { parseWordGroups } from '../server/engine/diffusion/words-mask.ts';
import { MAX_STYLES, STYLE_COLORS, StrokesSchema } from '../server/protocol/painting.ts';
import { encodePng, resizeImage } from '../server/engine/images/pixels.ts';
import { stylesParam } from './lib/styles.ts';
import type { ImageValue, MaskValue } from './values.ts';

/** Long side of the preview the node shows (its short side follows the picture's shape). */
const PREVIEW = 128;
/** The shapes that are gradients (direction, angle and centre apply to them). */
const GRADIENTS = ['linear', 'logistic'];

export const maskNode = defineNode({
  type: 'Mask',
  title: 'Mask',
  category: 'Conditioning',
  description:
    'Where each style goes: a weight per style at every point, summing to 1 (two styles: M and 1 − M). A linear or logistic ' +
    'gradient through the styles in order (across the picture in a direction or at any angle, or out from a centre), ' +
    'regions painted by hand (brush, eraser, feather), a grayscale image (white = style 1), or the words of the source prompt ' +
    '("cat" → style 1, the rest → style 2) placed where the UNet attended to them during an inversion (paint over them to correct). ' +
    "The preview shows each region in its style's colour, over the picture when one is connected.",
  inputs: {
    image: { type: 'Image', label: 'image', optional: true, description: 'only for shape "image": its brightness places the styles' },
    inversion: {
      type: 'Inversion',
      label: 'inversion',
      optional: true,
      description: 'only for shape "words": an inversion with attention maps recorded, whose source prompt has the words',
    },
    picture: {
      type: 'Image',
      label: 'picture',
      optional: true,
      description: "shown under the regions in the preview (and gives it the picture's shape); does not change the mask",
    },
  },
  outputs: { mask: { type: 'Mask', label: 'mask', countParam: 'styles' } },
  params: z.object({
    styles: stylesParam('How many styles (regions) the mask has; the sampler it drives must merge as many.'),
    shape: z
      .enum(['linear', 'logistic', 'image', 'painted', 'words'])
      .default('logistic')
      .describe(
        'linear: a gradient through the styles (two styles: M = 1 − u); logistic: regions of equal width with soft borders of sharpness k ' +
          '(two styles: M = 1/(1 + exp(k(u − 0.5)))); image: from the connected image; painted: the strokes painted on this node; ' +
          "words: where the inversion's UNet attended to the words of each style (strokes paint over it).",
      ),
    direction: z
      .enum(['left-right', 'right-left', 'top-bottom', 'bottom-top', 'angle', 'radial'])
      .default('left-right')
      .describe(
        'Style 1 starts on the first side and the last style ends on the second; angle: along Angle; radial: style 1 at the centre, the last at the farthest corner.',
      )
      .meta({ ui: { when: { shape: GRADIENTS } } }),
    angle: z
      .number()
      .min(-360)
      .max(360)
      .default(0)
      .describe('Direction "angle": degrees, 0 = left to right, 90 = top to bottom.')
      .meta({ ui: { slider: true, when: { shape: GRADIENTS, direction: ['angle'] } }, step: 1 }),
    centerX: z
      .number()
      .min(0)
      .max(1)
      .default(0.5)
      .describe('Direction "radial": the centre, as a fraction of the width.')
      .meta({ label: 'Centre x', step: 0.01, ui: { when: { shape: GRADIENTS, direction: ['radial'] } } }),
    centerY: z
      .number()
      .min(0)
      .max(1)
      .default(0.5)
      .describe('Direction "radial": the centre, as a fraction of the height.')
      .meta({ label: 'Centre y', step: 0.01, ui: { when: { shape: GRADIENTS, direction: ['radial'] } } }),
    sharpness: z
      .number()
      .min(0.1)
      .max(200)
      .default(20)
      .describe('k of the logistic transition (the paper uses 20; 70 is sharper); words: κ of the soft argmax of the normalised attention.')
      .meta({ ui: { slider: true, when: { shape: ['logistic', 'words'] } }, step: 1 }),
    words: z
      .string()
      .max(500)
      .default('')
      .describe('Words: the source prompt\'s words of each style, styles separated by "|" ("cat" → style 1, the rest → style 2; "cat | sofa" with 3 styles).')
      .meta({ ui: { when: { shape: ['words'] } } }),
    fill: z
      .number()
      .int()
      .min(1)
      .max(MAX_STYLES)
      .default(1)
      .describe('Painted: the style of everything no stroke covers (the eraser paints it back; over words, the eraser paints this style).')
      .meta({ ui: { when: { shape: ['painted', 'words'] } } }),
    feather: z
      .number()
      .min(0)
      .max(0.25)
      .default(0.03)
      .describe("Painted: softness of the borders between painted regions (a Gaussian of this width, as a fraction of the picture's shorter side; 0 = crisp).")
      .meta({ step: 0.005, ui: { slider: true, when: { shape: ['painted', 'words'] } } }),
    strokes: StrokesSchema.default([])
      .describe('Painted: the strokes, painted on the node (brush and eraser, one colour per style).')
      // The editor paints them on the node's picture, with the brushes of `styles` and the look of `fill` and `feather`.
      // Over a words mask the painter paints over the derived regions (the node's second picture), not over the fill.
      .meta({
        ui: { kind: 'painting', when: { shape: ['painted', 'words'] }, styles: 'styles', fill: 'fill', feather: 'feather', over: { shape: ['words'] } },
      }),
  }),
  check(params) {
    const problems: { field: string; message: string }[] = [];
    if (params.shape === 'words') {
      try {
        parseWordGroups(params.words, params.styles);
      } catch (e) {
        problems.push({ field: 'words', message: (e as Error).message });
      }
    }
    if (params.shape !== 'painted' && params.shape !== 'words') return problems;
    if (params.fill > params.styles) problems.push({ field: 'fill', message: `must be a style of the mask (1..${params.styles}), got ${params.fill}` });
    const beyond = params.strokes.findIndex((s) => s.style > params.styles);
    if (beyond >= 0) {
      problems.push({
        field: 'strokes',
        message: `stroke ${beyond + 1} paints style ${params.strokes[beyond]!.style}, but the mask has ${params.styles} styles; raise Styles or erase it`,
      });
    }
    return problems;
  },
  async run({ inputs, params, ctx }) {
    if (params.shape === 'image' && !inputs.image) throw new UserError('shape "image" needs an image connected to the mask', 'image');
    if (params.shape !== 'image' && inputs.image) ctx.warn(`the connected image is ignored for shape "${params.shape}"`);
    if (params.shape === 'painted' && params.strokes.length === 0) ctx.warn(`nothing is painted yet: the whole picture is style ${params.fill}`);
    if (params.shape !== 'words' && inputs.inversion) ctx.warn(`the connected inversion is ignored for shape "${params.shape}"`);
    const attention = inputs.inversion?.attention;
    if (params.shape === 'words' && !attention) {
      throw new UserError(
        inputs.inversion
          ? 'shape "words" needs the attention maps of the inversion: turn on "Attention maps" on the Invert node'
          : 'shape "words" needs an inversion connected to the mask (an Invert node with "Attention maps" on)',
        'inversion',
      );
    }
    const options = {
      styles: params.styles,
      shape: params.shape,
      direction: params.direction,
      sharpness: params.sharpness,
      angle: params.angle,
      center: { x: params.centerX, y: params.centerY },
      image: inputs.image,
      painting: { strokes: params.strokes, fill: params.fill, feather: params.feather },
      ...(params.shape === 'words' && attention ? { words: { attention, groups: parseWordGroups(params.words, params.styles) } } : {}),
    };
    const mask = makeMask(options);
    const size = previewSize(inputs.picture);
    const under = inputs.picture ? await resizeImage(inputs.picture, size.width, size.height) : undefined;
    const preview = regionPreview(mask, size, under);
    const thumbnail = await ctx.saveResult('mask', await encodePng(preview), size);
    // What the editor's painter paints over, at the preview's size: the picture alone; for a words mask, the
    // regions the words make before any stroke (the painter then draws the strokes alone, without a fill).
    const base = params.shape === 'words' ? regionPreview(makeMask({ ...options, painting: { ...options.painting, strokes: [] } }), size, under) : under;
    const picture = base ? [await ctx.saveResult('mask-picture', await encodePng(base), size)] : [];
    // The size the mask is drawn at: the picture's (the preview is only its shape).
    const text = inputs.picture ? `${inputs.picture.width}×${inputs.picture.height}` : undefined;
    return { outputs: { mask }, result: { images: [thumbnail, ...picture], ...(text ? { text } : {}) } };
  },
});

/** "#rrggbb" → [r, g, b] in 0..1. */
function rgb(hex: string): [number, number, number] {
  return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255) as [number, number, number];
}

/** The preview's size: PREVIEW on the long side, the picture's shape (square without one). */
function previewSize(picture?: ImageValue): { width: number; height: number } {
  const aspect = picture ? picture.width / picture.height : 1;
  return {
    width: Math.max(1, Math.round(aspect >= 1 ? PREVIEW : PREVIEW * aspect)),
    height: Math.max(1, Math.round(aspect >= 1 ? PREVIEW / aspect : PREVIEW)),
  };
}

/**
 * Each region in its style's colour (STYLE_COLORS, as the editor's painter draws them), the colours
 * mixed by the weights so soft borders show as blends; over the picture's brightness when there is one
 * (`picture`, already at the preview's size).
 */
function regionPreview(mask: MaskValue, size: { width: number; height: number }, picture?: ImageValue): ImageValue {
  const { width, height } = size;
  const n = width * height;
  const weights = mask.weights(width, height);
  const under = picture?.data;
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

import { z } from 'zod';
import { defineNode, UserError } from './types.ts';
import { makeMask } from '../server/engine/diffusion/mask.ts';
import { encodePng } from './lib/image.ts';

/** Side of the thumbnail the node shows. */
const THUMB = 96;

export const maskNode = defineNode({
  type: 'Mask',
  title: 'Mask',
  category: 'Conditioning',
  description:
    'The spatial mask M: the weight of style 1 at each point (style 2 gets 1 − M). Linear or logistic transition along a direction, or taken from a grayscale image (white = style 1).',
  inputs: {
    image: { type: 'Image', label: 'image', optional: true, description: 'only for shape "image"' },
  },
  outputs: { mask: { type: 'Mask', label: 'mask' } },
  params: z.object({
    shape: z.enum(['linear', 'logistic', 'image']).default('logistic').describe('linear: M = 1 − u; logistic: M = 1/(1 + exp(k(u − 0.5))); image: from the connected image.'),
    direction: z
      .enum(['left-right', 'right-left', 'top-bottom', 'bottom-top'])
      .default('left-right')
      .describe('Style 1 starts on the first side, style 2 ends on the second.'),
    sharpness: z.number().min(0.1).max(200).default(20).describe('k of the logistic transition (the paper uses 20; 70 is sharper).').meta({ ui: { slider: true }, step: 1 }),
  }),
  async run({ inputs, params, ctx }) {
    if (params.shape === 'image' && !inputs.image) throw new UserError('shape "image" needs an image connected to the mask', 'image');
    if (params.shape !== 'image' && inputs.image) ctx.warn(`the connected image is ignored for shape "${params.shape}"`);
    const mask = makeMask({ shape: params.shape, direction: params.direction, sharpness: params.sharpness, image: inputs.image });
    // Thumbnail: M as gray, so the user sees where each style goes.
    const m = mask.sample(THUMB, THUMB);
    const data = new Float32Array(3 * m.length);
    data.set(m, 0); data.set(m, m.length); data.set(m, 2 * m.length);
    const thumbnail = await ctx.saveResult('mask', await encodePng({ width: THUMB, height: THUMB, data }), { width: THUMB, height: THUMB });
    return { outputs: { mask }, result: { images: [thumbnail] } };
  },
});

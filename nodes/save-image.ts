import { z } from 'zod';
import { defineNode } from './types.ts';
import { encodePng } from '../server/engine/images/pixels.ts';

export const saveImage = defineNode({
  type: 'SaveImage',
  title: 'Save Image',
  category: 'Image',
  description: 'Writes the image as PNG to the results folder and shows it (every picture of a batch, one file each). Results survive a restart.',
  inputs: { image: { type: 'Image', label: 'image' } },
  outputs: {},
  output: true,
  params: z.object({
    prefix: z
      .string()
      .max(40)
      .regex(/^[A-Za-z0-9_-]*$/, 'use letters, digits, "_" and "-" only')
      .default('dualstyle')
      .describe('File name prefix; the rest of the name is a hash of the picture.'),
  }),
  async run({ inputs, params, ctx }) {
    const { width, height, others = [] } = inputs.image;
    const images = [];
    for (const data of [inputs.image.data, ...others]) {
      images.push(await ctx.saveResult(params.prefix || 'image', await encodePng({ width, height, data }), { width, height }));
    }
    return { outputs: {}, result: { images } };
  },
});

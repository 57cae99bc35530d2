import { z } from 'zod';
import { createHash } from 'node:crypto';
import { defineNode } from './types.ts';
import { encodePng } from './lib/image.ts';
import { resultsDir, resolveInside } from '../server/store/paths.ts';
import { writeFileAtomic } from '../server/util/atomic.ts';

export const saveImage = defineNode({
  type: 'SaveImage',
  title: 'Save Image',
  category: 'Image',
  description: 'Writes the image as PNG to the results folder and shows it. Results survive a restart.',
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
    const png = await encodePng(inputs.image);
    // Named by content: re-running an unchanged graph does not pile up copies.
    const name = `${params.prefix || 'image'}-${createHash('sha256').update(png).digest('hex').slice(0, 16)}.png`;
    await writeFileAtomic(resolveInside(resultsDir(ctx.services.dataDir), name), png);
    const { width, height } = inputs.image;
    return { outputs: {}, result: { images: [{ url: `/api/results/${name}`, name, width, height }] } };
  },
});

import { z } from 'zod';
import { defineNode, UserError } from './types.ts';
import { pixelMerge } from '../server/engine/diffusion/pixel-merge.ts';
import { PER_STYLE, requireStyles, stylesParam } from './lib/styles.ts';

export const pixelMergeNode = defineNode({
  type: 'PixelMerge',
  title: 'Pixel Merge',
  category: 'Image',
  description: 'Baseline of the paper: Σ_k M_k·image_k pixel by pixel (two styles: M·image1 + (1 − M)·image2), with the mask at image resolution.',
  inputs: {
    image: { type: 'Image', label: 'image', description: "one picture per style, in the mask's order", variadic: PER_STYLE },
    mask: { type: 'Mask', label: 'mask', countParam: 'styles' },
  },
  outputs: { image: { type: 'Image', label: 'image' } },
  params: z.object({ styles: stylesParam('How many pictures are merged: one image input per style, and the mask must have as many regions.') }),
  async run({ inputs }) {
    const { image, mask } = inputs;
    const [first] = image;
    const other = image.findIndex((i) => i.width !== first!.width || i.height !== first!.height);
    if (other > 0) {
      throw new UserError(`images differ in size: ${first!.width}×${first!.height} and ${image[other]!.width}×${image[other]!.height}`, `image${other + 1}`);
    }
    requireStyles(mask, image.length);
    return { outputs: { image: pixelMerge(image, mask) } };
  },
});

import { z } from 'zod';
import { defineNode, UserError } from './types.ts';
import { pixelMerge } from '../server/engine/diffusion/pixel-merge.ts';

export const pixelMergeNode = defineNode({
  type: 'PixelMerge',
  title: 'Pixel Merge',
  category: 'Image',
  description: 'Baseline of the paper: M·image1 + (1 − M)·image2, pixel by pixel, with M at image resolution.',
  inputs: {
    image1: { type: 'Image', label: 'image 1 (M)' },
    image2: { type: 'Image', label: 'image 2 (1 − M)' },
    mask: { type: 'Mask', label: 'mask' },
  },
  outputs: { image: { type: 'Image', label: 'image' } },
  params: z.object({}),
  async run({ inputs }) {
    const { image1, image2, mask } = inputs;
    if (image1.width !== image2.width || image1.height !== image2.height) {
      throw new UserError(`images differ in size: ${image1.width}×${image1.height} and ${image2.width}×${image2.height}`, 'image2');
    }
    return { outputs: { image: pixelMerge(image1, image2, mask) } };
  },
});

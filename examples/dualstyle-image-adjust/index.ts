/**
 * The package's entry (package.json → "dualstyle".entry): the studio calls it with its node API and
 * gets the Adjust Image node back. Everything comes from the API it is handed (its zod, defineNode),
 * so the package imports nothing of the studio at run time; the type import is erased.
 */
import type { NodeApi } from '../../nodes/api.ts';
import { adjustImage } from './adjust.ts';

export default function register(api: NodeApi) {
  const { z, defineNode } = api;
  const adjust = defineNode({
    type: 'AdjustImage',
    title: 'Adjust Image',
    category: 'Image',
    description: 'Brightness, contrast and saturation of an image (from the example node package dualstyle-image-adjust).',
    inputs: { image: { type: 'Image', label: 'image' } },
    outputs: { image: { type: 'Image', label: 'image' } },
    params: z.object({
      brightness: z
        .number()
        .min(-1)
        .max(1)
        .default(0)
        .describe('Added to every channel: -1 black … 1 white')
        .meta({ step: 0.05, ui: { slider: true } }),
      contrast: z
        .number()
        .min(0)
        .max(3)
        .default(1)
        .describe('Distance from mid-grey, scaled: 0 flat grey, 1 unchanged')
        .meta({ step: 0.05, ui: { slider: true } }),
      saturation: z
        .number()
        .min(0)
        .max(3)
        .default(1)
        .describe('Colour, scaled: 0 greyscale, 1 unchanged')
        .meta({ step: 0.05, ui: { slider: true } }),
    }),
    plan({ inputs }) {
      // The size passes through, so a memory estimate downstream still knows it.
      return { outputs: { image: { ...inputs.image } } };
    },
    async run({ inputs, params }) {
      return { outputs: { image: adjustImage(inputs.image, params) } };
    },
  });
  return { nodes: [adjust] };
}

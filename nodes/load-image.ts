import { z } from 'zod';
import { createHash } from 'node:crypto';
import { defineNode, UserError } from './types.ts';
import { loadImageFile, sampleImage, fittedSize, MAX_IMAGE_SIDE } from './lib/image.ts';

/** The built-in picture, so templates run without an upload. */
export const SAMPLE_IMAGE = 'builtin:sample';

/** The sample picture is drawn at any size; this is its nominal 4:3 size before fitting. */
const SAMPLE_SIZE = { width: 1024, height: 768 };

/** SD1.x UNets halve the latent three times: image sides must be multiples of 64. */
const SIDE_MULTIPLE = 64;

export const loadImage = defineNode({
  type: 'LoadImage',
  title: 'Load Image',
  category: 'Image',
  description:
    'An uploaded picture (or the built-in sample), brought to a size the model accepts: sides multiples of 64, longest side at most "max side".',
  inputs: {},
  outputs: { image: { type: 'Image', label: 'image' } },
  params: z.object({
    image: z
      .string()
      .min(1)
      .default(SAMPLE_IMAGE)
      .describe('An uploaded image, or "builtin:sample" for the procedural sample picture.')
      .meta({ ui: { kind: 'image' } }),
    fit: z
      .enum(['crop', 'resize', 'exact'])
      .default('crop')
      .describe('crop: scale down and centre-crop to multiples of 64; resize: stretch to them; exact: refuse other sizes.'),
    max_side: z.number().int().min(64).max(MAX_IMAGE_SIDE).default(512).describe('Longest side after fitting, in pixels.').meta({ step: 64 }),
  }),
  async identity(params, services) {
    // The upload's name is its content hash, but hash the bytes anyway: a replaced file must not be served from cache.
    if (params.image === SAMPLE_IMAGE) return 'sample-v1';
    const bytes = await services.readUpload(params.image).catch(() => null);
    // A missing or unreadable upload: run() reports the problem.
    return bytes ? createHash('sha256').update(bytes).digest('hex') : 'missing';
  },
  async run({ params, ctx }) {
    if (params.image === SAMPLE_IMAGE) {
      const size = fittedSize(SAMPLE_SIZE.width, SAMPLE_SIZE.height, params.max_side, SIDE_MULTIPLE);
      return { outputs: { image: sampleImage(size.width, size.height) } };
    }
    const file = await ctx.services.readUpload(params.image);
    if (!file) throw new UserError(`image "${params.image}" is not in the uploads folder; upload it again`, 'image');
    const { image, original } = await loadImageFile(file, { fit: params.fit, maxSide: params.max_side, multiple: SIDE_MULTIPLE });
    if (image.width !== original.width || image.height !== original.height) {
      ctx.warn(`image ${original.width}×${original.height} was ${params.fit === 'crop' ? 'scaled and cropped' : 'resized'} to ${image.width}×${image.height}`);
    }
    return { outputs: { image } };
  },
});

import { z } from 'zod';
import { createHash } from 'node:crypto';
import { defineNode, UserError } from './types.ts';
import { fittedFileSize, loadImageFile, fittedSize, multiplesOf, MAX_IMAGE_SIDE } from './lib/image.ts';
import { sampleImage } from '../server/engine/images/sample.ts';
import { isSafeName, MAX_FILE_NAME_LENGTH } from '../server/protocol/names.ts';
import { modelImageSizes, pipelineOf } from './lib/model.ts';

/** The built-in picture, so templates run without an upload. */
export const SAMPLE_IMAGE = 'builtin:sample';

/** The sample picture is drawn at any size; this is its nominal 4:3 size before fitting. */
const SAMPLE_SIZE = { width: 1024, height: 768 };

/**
 * Without a model: multiples of 8, which every SD VAE takes. Whether the UNet takes the latent too is
 * the model's to say (exports traced at 64×64 need multiples of 64): connect the model and Load Image
 * fits to exactly what it takes; otherwise VAE Encode refuses a size the UNet does not take, before any
 * UNet call, naming the nearest sizes it does.
 */
const VAE_MULTIPLE = 8;

const missingUpload = (name: string) => `image "${name}" is not in the uploads folder; upload it again`;

export const loadImage = defineNode({
  type: 'LoadImage',
  title: 'Load Image',
  category: 'Image',
  description:
    'An uploaded picture (or the built-in sample), brought to a size the model takes, longest side at most "max side". ' +
    'With the model connected, each side becomes the largest the model takes (read from its UNet: any multiple of 8, or of 64 for exports traced at 64×64); without it, multiples of 8.',
  inputs: {
    model: {
      type: 'Model',
      label: 'model',
      optional: true,
      description: 'fit the picture to the sizes this model takes (else sides that are multiples of 8)',
    },
  },
  outputs: { image: { type: 'Image', label: 'image' } },
  params: z.object({
    image: z
      .string()
      .min(1)
      // Checked with the graph, so a path ("../../etc/passwd") is refused before any job runs.
      .refine((name) => name === SAMPLE_IMAGE || isSafeName(name, MAX_FILE_NAME_LENGTH), {
        message: `must be "${SAMPLE_IMAGE}" or the name of an uploaded image (letters, digits, "_", "-" and "."; no folders)`,
      })
      .default(SAMPLE_IMAGE)
      .describe('An uploaded image, or "builtin:sample" for the procedural sample picture.')
      .meta({ ui: { kind: 'image' } }),
    fit: z
      .enum(['crop', 'resize', 'exact'])
      .default('crop')
      .describe('crop: scale down and centre-crop to a size the model takes; resize: stretch to it; exact: refuse other sizes.'),
    max_side: z.number().int().min(64).max(MAX_IMAGE_SIDE).default(512).describe('Longest side after fitting, in pixels.').meta({ step: 64 }),
  }),
  async identity(params, services) {
    // The upload's name is its content hash, but hash the bytes anyway: a replaced file must not be served from cache.
    if (params.image === SAMPLE_IMAGE) return 'sample-v1';
    const bytes = await services.readUpload(params.image).catch(() => null);
    // A missing or unreadable upload: run() reports the problem.
    return bytes ? createHash('sha256').update(bytes).digest('hex') : 'missing';
  },
  /**
   * The size before the model is loaded: fitted to multiples of 8, which is at least what the model's
   * own sizes give (each side is the largest it takes up to the same bound), so the memory estimate
   * errs on the safe side.
   */
  async plan({ params, services }) {
    const sizes = multiplesOf(VAE_MULTIPLE);
    if (params.image === SAMPLE_IMAGE) return { outputs: { image: fittedSize(SAMPLE_SIZE.width, SAMPLE_SIZE.height, params.max_side, sizes) } };
    const file = await services.readUpload(params.image);
    if (!file) throw new UserError(missingUpload(params.image), 'image');
    return { outputs: { image: await fittedFileSize(file, { fit: params.fit, maxSide: params.max_side, sizes }) } };
  },
  async run({ inputs, params, ctx }) {
    const sizes = inputs.model ? modelImageSizes(await pipelineOf(inputs.model)) : multiplesOf(VAE_MULTIPLE);
    if (params.image === SAMPLE_IMAGE) {
      const size = fittedSize(SAMPLE_SIZE.width, SAMPLE_SIZE.height, params.max_side, sizes);
      return { outputs: { image: sampleImage(size.width, size.height) } };
    }
    const file = await ctx.services.readUpload(params.image);
    if (!file) throw new UserError(missingUpload(params.image), 'image');
    const { image, original } = await loadImageFile(file, { fit: params.fit, maxSide: params.max_side, sizes });
    if (image.width !== original.width || image.height !== original.height) {
      ctx.warn(`image ${original.width}×${original.height} was ${params.fit === 'crop' ? 'scaled and cropped' : 'resized'} to ${image.width}×${image.height}`);
    }
    return { outputs: { image } };
  },
});

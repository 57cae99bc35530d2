import { z } from 'zod';
import { defineNode, UserError } from './types.ts';
import { pipelineOf, requireSameModel } from './lib/model.ts';

export const vaeEncode = defineNode({
  type: 'VAEEncode',
  title: 'VAE Encode',
  category: 'Latent',
  description:
    "Encodes an image into the scaled SD latent x0 (VAE mean × scaling factor). Refuses a size the model's UNet does not take, naming the nearest sizes it does.",
  inputs: {
    model: { type: 'Model', label: 'model' },
    image: { type: 'Image', label: 'image' },
  },
  outputs: { latent: { type: 'Latent', label: 'latent' } },
  params: z.object({}),
  plan({ inputs: { model, image } }) {
    if (!model?.model || image?.width === undefined || image.height === undefined) return {};
    const f = model.model.vaeDownsample;
    const latent = { width: Math.floor(image.width / f), height: Math.floor(image.height / f) };
    return { outputs: { latent }, work: [{ model: model.model, stage: 'vae-encode', rows: 1, latentWidth: latent.width, latentHeight: latent.height }] };
  },
  async run({ inputs }) {
    const pipe = await pipelineOf(inputs.model);
    const f = pipe.info.vaeDownsample;
    const { width, height } = inputs.image;
    if (width % f || height % f) {
      throw new UserError(`image is ${width}×${height}; the VAE needs sides that are multiples of ${f} (use Load Image's "crop" fit)`, 'image');
    }
    // The latent is for this model's UNet: refuse a size it does not take now, not at the first sampler step.
    const problem = pipe.info.latentSizes.problem(width / f, height / f, f);
    if (problem) throw new UserError(`${problem}. Connect the model to Load Image's "model" input and it fits pictures to these sizes`, 'image');
    const data = await pipe.vaeEncode(inputs.image);
    return {
      outputs: {
        latent: { width: width / f, height: height / f, channels: pipe.info.latentChannels, data, modelId: inputs.model.id },
      },
    };
  },
});

export const vaeDecode = defineNode({
  type: 'VAEDecode',
  title: 'VAE Decode',
  category: 'Latent',
  description: 'Decodes a scaled latent into an image: (clamp(decoder(latent / scaling), −1, 1) + 1) / 2. Decodes every picture of a batch.',
  inputs: {
    model: { type: 'Model', label: 'model' },
    latent: { type: 'Latent', label: 'latent' },
  },
  outputs: { image: { type: 'Image', label: 'image' } },
  params: z.object({}),
  plan({ inputs: { model, latent } }) {
    if (!model?.model || latent?.width === undefined || latent.height === undefined) return {};
    const f = model.model.vaeDownsample;
    return {
      outputs: { image: { width: latent.width * f, height: latent.height * f, ...(latent.pictures ? { pictures: latent.pictures } : {}) } },
      work: [{ model: model.model, stage: 'vae-decode', rows: 1, latentWidth: latent.width, latentHeight: latent.height }],
    };
  },
  async run({ inputs }) {
    requireSameModel(inputs.model, inputs.latent, 'latent');
    const pipe = await pipelineOf(inputs.model);
    const { width, height, others = [] } = inputs.latent;
    const image = await pipe.vaeDecode(inputs.latent.data, width, height);
    // A batch's other pictures, one decoder call each (the VAE at full size is the memory peak).
    const rest: Float32Array[] = [];
    for (const latent of others) rest.push((await pipe.vaeDecode(latent, width, height)).data);
    return { outputs: { image: rest.length ? { ...image, others: rest } : image } };
  },
});

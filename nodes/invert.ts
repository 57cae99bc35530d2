import { z } from 'zod';
import { defineNode } from './types.ts';
import { invertBatch, MAX_BATCH } from '../server/engine/diffusion/batch.ts';
import { invert } from '../server/engine/diffusion/cycle.ts';
import { seededNoise } from '../server/engine/diffusion/noise.ts';
import { stepsProblem } from '../server/engine/diffusion/schedule.ts';
import { recordAttentionMaps } from '../server/engine/sd/attention-maps-recorder.ts';
import { pipelineOf, requireSameModel } from './lib/model.ts';
import { stepReporter } from './lib/sampling.ts';

export const invertNode = defineNode({
  type: 'Invert',
  title: 'Invert (CycleDiffusion)',
  category: 'Sampling',
  description:
    'CycleDiffusion encoder: records the latent code z (x_t plus one noise per step) of the image under the source prompt. ' +
    "Decoding z with any prompt keeps the picture's structure; decoding with the source prompt and guidance reproduces it.",
  inputs: {
    model: { type: 'Model', label: 'model' },
    latent: { type: 'Latent', label: 'latent', description: 'x0 from VAE Encode' },
    source: { type: 'Conditioning', label: 'source prompt', description: 'what the picture shows, e.g. "a photo of a cat"' },
  },
  outputs: { inversion: { type: 'Inversion', label: 'inversion' } },
  params: z.object({
    steps: z.number().int().min(2).max(1000).default(100).describe('DDIM steps of the full schedule.'),
    skip: z.number().int().min(0).max(999).default(10).describe('Noisiest steps left out: refinement runs steps − skip times.'),
    eta: z.number().gt(0).max(1).default(0.1).describe('η: the stochasticity of the DDPM-with-η sampler (σ scale).').meta({ step: 0.01 }),
    guidance: z.number().min(1).max(50).default(1).describe('Encoder guidance scale s_enc (1 = no guidance, one UNet row).').meta({ step: 0.5 }),
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 32 - 1)
      .default(0)
      .describe('Seed of the encoder noise; the same seed gives the same code.'),
    batch: z
      .number()
      .int()
      .min(1)
      .max(MAX_BATCH)
      .default(1)
      .describe(
        'Pictures per run: codes of seeds seed, seed + 1, …, each decoded by the samplers (all of them in one UNet call per step) ' +
          'and saved by Save Image; previews and single-picture nodes show the first.',
      )
      .meta({ label: 'Batch size' }),
    attentionMaps: z
      .boolean()
      .default(false)
      .describe(
        'Record where the UNet attends to each word of the source prompt during the inversion (a Mask of shape "words" needs them). ' +
          'Runs the same UNet calls on a derived graph with the maps as extra outputs.',
      )
      .meta({ label: 'Attention maps' }),
  }),
  check(p) {
    const problem = stepsProblem(p.steps, p.skip);
    const problems: { field: string; message: string }[] = problem ? [problem] : [];
    if (p.attentionMaps && p.batch > 1) problems.push({ field: 'batch', message: 'must be 1 when attention maps are recorded (turn them off for a batch)' });
    return problems;
  },
  plan({ inputs: { model, latent }, params }) {
    if (!model?.model || latent?.width === undefined || latent.height === undefined) return {};
    // Guidance 1 needs the source row only; otherwise ∅ too.
    const rows = (params.guidance === 1 ? 1 : 2) * params.batch;
    const size = { width: latent.width, height: latent.height };
    return {
      outputs: { inversion: { ...size, ...(params.batch > 1 ? { pictures: params.batch } : {}) } },
      work: [
        {
          model: model.model,
          stage: 'unet',
          rows,
          latentWidth: size.width,
          latentHeight: size.height,
          ...(params.attentionMaps ? { attentionMaps: true } : {}),
        },
      ],
    };
  },
  async run({ inputs, params, ctx }) {
    requireSameModel(inputs.model, inputs.latent, 'latent');
    requireSameModel(inputs.model, inputs.source, 'source');
    const pipe = await pipelineOf(inputs.model);
    const { width, height } = inputs.latent;
    const recording = params.attentionMaps ? await recordAttentionMaps(pipe, width, height) : undefined;
    const opts = {
      source: inputs.source.embedding,
      guidance: params.guidance,
      steps: params.steps,
      skip: params.skip,
      eta: params.eta,
      onStep: stepReporter(ctx, width, height),
      signal: ctx.signal,
    };
    // A batch: seeds seed, seed + 1, …, inverted together (one UNet call per step).
    const [code, ...others] =
      params.batch === 1
        ? [await invert(recording?.denoiser ?? pipe, inputs.latent.data, width, height, { ...opts, noise: seededNoise(params.seed) })]
        : await invertBatch(
            pipe,
            inputs.latent.data,
            width,
            height,
            opts,
            Array.from({ length: params.batch }, (_, k) => seededNoise(params.seed + k)),
          );
    const attention = recording && { width, height, ...recording.average.result(), words: pipe.promptWords(inputs.source.prompt, inputs.source.longPrompt) };
    return {
      outputs: {
        inversion: {
          ...code!,
          sourcePrompt: inputs.source.prompt,
          ...(inputs.source.longPrompt ? { sourceLongPrompt: inputs.source.longPrompt } : {}),
          modelId: inputs.model.id,
          ...(attention ? { attention } : {}),
          ...(others.length ? { others } : {}),
        },
      },
      result: {
        text: `${params.steps - params.skip} refinement steps${others.length ? ` × ${params.batch} seeds` : ''}${attention ? `, attention maps of ${attention.words.length} words` : ''}`,
      },
    };
  },
});

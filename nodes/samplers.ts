import { z } from 'zod';
import { defineNode } from './types.ts';
import { decode } from '../server/engine/diffusion/cycle.ts';
import { attentionMerge, epsilonMerge, singlePrompt, type EpsilonRule } from '../server/engine/diffusion/guidance.ts';
import { pipelineOf, requireSameModel } from './lib/model.ts';
import { stepReporter } from './lib/sampling.ts';
import type { NodeContext, NodePlan, PlannedValue } from './types.ts';
import type { ConditioningValue, InversionValue, LatentValue, MaskValue, ModelValue } from './values.ts';

const guidanceParam = z
  .number()
  .min(1)
  .max(50)
  .default(20)
  .describe('Decoder guidance scale s (the paper uses 20; 1 = no guidance).')
  .meta({ step: 0.5 });

/** Replays the inversion's code under `rule`: one UNet call per step, progress and previews on the way. */
async function decodeInversion(model: ModelValue, inversion: InversionValue, rule: EpsilonRule, ctx: NodeContext): Promise<LatentValue> {
  const pipe = await pipelineOf(model);
  const { width, height } = inversion;
  const data = await decode(pipe, inversion, rule, { onStep: stepReporter(ctx, width, height), signal: ctx.signal });
  return { width, height, channels: pipe.info.latentChannels, data, modelId: model.id };
}

/**
 * A sampler's plan: its UNet calls at the inversion's latent size with `rows` rows (the rule's: see
 * engine/diffusion/guidance.ts), and a latent of that size.
 */
function samplerPlan(model: PlannedValue | undefined, inversion: PlannedValue | undefined, rows: number, attentionMerge = false): NodePlan {
  if (!model?.model || inversion?.width === undefined || inversion.height === undefined) return {};
  const size = { width: inversion.width, height: inversion.height };
  return {
    outputs: { latent: size },
    work: [{ model: model.model, stage: 'unet', rows, latentWidth: size.width, latentHeight: size.height, attentionMerge }],
  };
}

/** The merge rules of the paper: both take c1, c2, the guidance s and the mask M (weighting c1). */
type MergeRule = (c1: Float32Array, c2: Float32Array, s: number, mask: MaskValue) => EpsilonRule;

/** A dual-style sampler node: same inputs, parameters and behaviour for every merge rule. */
function mergeSampler(spec: { type: string; title: string; description: string; rule: MergeRule; rows: (s: number) => number; attentionMerge?: boolean }) {
  return defineNode({
    type: spec.type,
    title: spec.title,
    category: 'Sampling',
    description: spec.description,
    inputs: {
      model: { type: 'Model', label: 'model' },
      inversion: { type: 'Inversion', label: 'inversion' },
      style1: { type: 'Conditioning', label: 'style 1 (M)' },
      style2: { type: 'Conditioning', label: 'style 2 (1 − M)' },
      mask: { type: 'Mask', label: 'mask' },
    },
    outputs: { latent: { type: 'Latent', label: 'latent' } },
    params: z.object({ guidance: guidanceParam }),
    plan({ inputs, params }) {
      return samplerPlan(inputs.model, inputs.inversion, spec.rows(params.guidance), spec.attentionMerge);
    },
    async run({ inputs, params, ctx }) {
      const { model, inversion, style1, style2, mask } = inputs;
      const checked: [InversionValue | ConditioningValue, string][] = [[inversion, 'inversion'], [style1, 'style1'], [style2, 'style2']];
      for (const [v, what] of checked) requireSameModel(model, v, what);
      const rule = spec.rule(style1.embedding, style2.embedding, params.guidance, mask);
      return { outputs: { latent: await decodeInversion(model, inversion, rule, ctx) } };
    },
  });
}

export const epsilonMergeSampler = mergeSampler({
  type: 'EpsilonMergeSampler',
  title: 'Epsilon Merge Sampler',
  description:
    'Dual-style decoding by noise merging: at every step ê = M·ê(c1) + (1 − M)·ê(c2), each classifier-free guided; ' +
    '∅, c1 and c2 go through the UNet in one batched call.',
  rule: epsilonMerge,
  rows: (s) => (s === 1 ? 2 : 3), // [c1, c2], or [∅, c1, c2]
});

export const attentionMergeSampler = mergeSampler({
  type: 'AttentionMergeSampler',
  title: 'Attention Merge Sampler',
  description:
    'Dual-style decoding by cross-attention merging: every cross-attention layer attends to c1 and to c2 and blends ' +
    'per pixel, M·A1 + (1 − M)·A2 (the mask resized to each layer), then ê = e∅ + s·(e_dual − e∅). Rows ∅ and dual ' +
    'go through a rewritten UNet in one call; the rewrite is made once per model and cached beside its UNet. ' +
    'The paper finds a sharper mask (70) and stronger guidance (30) help this method.',
  rule: attentionMerge,
  rows: (s) => (s === 1 ? 1 : 2), // [dual], or [∅, dual]
  attentionMerge: true,
});

export const singlePromptSampler = defineNode({
  type: 'SinglePromptSampler',
  title: 'Single Prompt Sampler',
  category: 'Sampling',
  description: 'CycleDiffusion decoding under one prompt (the single-style baseline, and the inputs of pixel merge).',
  inputs: {
    model: { type: 'Model', label: 'model' },
    inversion: { type: 'Inversion', label: 'inversion' },
    prompt: { type: 'Conditioning', label: 'prompt' },
  },
  outputs: { latent: { type: 'Latent', label: 'latent' } },
  params: z.object({ guidance: guidanceParam }),
  plan({ inputs, params }) {
    return samplerPlan(inputs.model, inputs.inversion, params.guidance === 1 ? 1 : 2);
  },
  async run({ inputs, params, ctx }) {
    const { model, inversion, prompt } = inputs;
    requireSameModel(model, inversion, 'inversion');
    requireSameModel(model, prompt, 'prompt');
    const rule = singlePrompt(prompt.embedding, params.guidance);
    return { outputs: { latent: await decodeInversion(model, inversion, rule, ctx) } };
  },
});

import { z } from 'zod';
import { defineNode } from './types.ts';
import { decodeBatch } from '../server/engine/diffusion/batch.ts';
import { decode } from '../server/engine/diffusion/cycle.ts';
import type { EpsilonRule } from '../server/engine/diffusion/guidance.ts';
import { regionalAttentionMerge, regionalMerge, regionPrompt, type BasePrompt, type Region } from '../server/engine/diffusion/regions.ts';
import { pipelineOf, requireSameModel } from './lib/model.ts';
import { stepReporter } from './lib/sampling.ts';
import { PER_STYLE, requireStyles, stylesParam } from './lib/styles.ts';
import { ownModel, regionWeightsWork, requireOneWeightSet, requireSameBase, weightsText } from './lib/region-models.ts';
import type { NodeContext, NodePlan, PlannedValue } from './types.ts';
import type { ConditioningValue, InversionValue, LatentValue, MaskValue, ModelValue } from './values.ts';

const guidanceParam = z.number().min(1).max(50).default(20).describe('Decoder guidance scale s (the paper uses 20; 1 = no guidance).').meta({ step: 0.5 });

/**
 * Replays the inversion's code under `rule`: one UNet call per step, progress and previews (of the first
 * picture) on the way. A batch's codes are decoded together, rows × B in each call.
 */
async function decodeInversion(model: ModelValue, inversion: InversionValue, rule: EpsilonRule, ctx: NodeContext): Promise<LatentValue> {
  const pipe = await pipelineOf(model);
  const { width, height } = inversion;
  const opts = { onStep: stepReporter(ctx, width, height), signal: ctx.signal };
  const [data, ...others] = inversion.others?.length
    ? await decodeBatch(pipe, [inversion, ...inversion.others], rule, opts)
    : [await decode(pipe, inversion, rule, opts)];
  return { width, height, channels: pipe.info.latentChannels, data: data!, modelId: model.id, ...(others.length ? { others } : {}) };
}

/**
 * A sampler's plan: its UNet calls at the inversion's latent size with `rows` rows per picture (the rule's: see
 * engine/diffusion/guidance.ts), and a latent of that size. An attention merge of N styles runs the
 * rewritten UNet of N conditionings (`styles`).
 */
function samplerPlan(model: PlannedValue | undefined, inversion: PlannedValue | undefined, rows: number, attentionMerge?: { styles: number }): NodePlan {
  if (!model?.model || inversion?.width === undefined || inversion.height === undefined) return {};
  const size = { width: inversion.width, height: inversion.height };
  const merge = attentionMerge ? { attentionMerge: true, styles: attentionMerge.styles } : {};
  const pictures = inversion.pictures ?? 1;
  return {
    outputs: { latent: { ...size, ...(pictures > 1 ? { pictures } : {}) } },
    work: [{ model: model.model, stage: 'unet', rows: rows * pictures, latentWidth: size.width, latentHeight: size.height, ...merge }],
  };
}

/** The merge rules of the paper, for N styles (with their regional settings), the guidance s, the mask's N weights and an optional base prompt. */
type MergeRule = (regions: readonly Region[], s: number, mask: MaskValue, base?: BasePrompt) => EpsilonRule;

/**
 * A style's prompt as the engine's Region: its embedding and, when a Region node set them, its negative,
 * guidance, window (whose fallback is the inversion's source prompt unless one was connected) and the
 * model it runs on (a LoRA per region; its own text encoder encodes the fallback).
 */
async function regionOf(c: ConditioningValue, model: ModelValue, inversion: InversionValue, what: string): Promise<Region> {
  const own = ownModel(model, c);
  if (own) requireSameBase(model, own, what);
  else requireSameModel(model, c, what);
  const settings = c.region;
  if (!settings) return { prompt: c.embedding };
  const weights = own ?? model;
  if (settings.negative) requireSameModel(weights, settings.negative, `${what}'s negative`);
  const window = settings.window;
  const fallback = window
    ? (window.fallback?.embedding ?? (await (await pipelineOf(weights)).encodeText(inversion.sourcePrompt, inversion.sourceLongPrompt)).embedding)
    : undefined;
  return {
    prompt: c.embedding,
    ...(settings.negative ? { negative: settings.negative.embedding } : {}),
    ...(settings.guidance !== undefined ? { guidance: settings.guidance } : {}),
    ...(window && fallback ? { window: { start: window.start, end: window.end, fallback } } : {}),
    ...(own ? { model: await pipelineOf(own) } : {}),
  };
}

/** Rows an epsilon merge adds for regional settings and a base prompt (an upper bound: equal prompts share a row). */
function regionalRows(inputs: Record<string, PlannedValue | undefined>, styles: number): number {
  let extra = inputs['base'] ? 1 : 0;
  for (let k = 1; k <= styles; k++) extra += Math.max(0, (inputs[`style${k}`]?.rows ?? 1) - 1);
  return extra;
}

/** An N-style sampler node: same inputs, parameters and behaviour for every merge rule. */
function mergeSampler(spec: {
  type: string;
  title: string;
  description: string;
  rule: MergeRule;
  rows: (s: number, styles: number) => number;
  attentionMerge?: boolean;
}) {
  return defineNode({
    type: spec.type,
    title: spec.title,
    category: 'Sampling',
    description: spec.description,
    inputs: {
      model: { type: 'Model', label: 'model' },
      inversion: { type: 'Inversion', label: 'inversion' },
      style: { type: 'Conditioning', label: 'style', description: "one prompt per style, in the mask's order", variadic: PER_STYLE },
      mask: { type: 'Mask', label: 'mask', countParam: 'styles' },
      base: {
        type: 'Conditioning',
        label: 'base',
        optional: true,
        description: 'a prompt every region shares, at the base ratio (holds the regions together)',
      },
    },
    outputs: { latent: { type: 'Latent', label: 'latent' } },
    params: z.object({
      styles: stylesParam('How many styles are merged: one style input each, and the mask must have as many regions.'),
      guidance: guidanceParam,
      baseRatio: z
        .number()
        .min(0)
        .max(1)
        .default(0.2)
        .describe('The share r of the base prompt, when one is connected: r·base + (1 − r)·regions.')
        .meta({ label: 'Base ratio', step: 0.05 }),
    }),
    plan({ inputs, params, services }) {
      const planned = inputs as Record<string, PlannedValue | undefined>;
      const base = planned['base'] !== undefined && params.baseRatio > 0;
      const styles = Array.from({ length: params.styles }, (_, k) => planned[`style${k + 1}`]);
      if (spec.attentionMerge) {
        requireOneWeightSet(inputs.model?.model, styles);
        return samplerPlan(inputs.model, inputs.inversion, spec.rows(params.guidance, params.styles), { styles: params.styles + (base ? 1 : 0) });
      }
      const plan = samplerPlan(inputs.model, inputs.inversion, spec.rows(params.guidance, params.styles) + regionalRows(planned, params.styles), undefined);
      const [unet] = plan.work ?? [];
      if (!unet) return plan;
      const extra = regionWeightsWork(unet, styles, params.guidance !== 1, planned['inversion']?.pictures ?? 1, () => services.models.pipelines.maxLoaded);
      return { ...plan, work: [unet, ...extra] };
    },
    async run({ inputs, params, ctx }) {
      const { model, inversion, style, mask, base } = inputs;
      requireSameModel(model, inversion, 'inversion');
      if (base) requireSameModel(model, base, 'base');
      requireStyles(mask, style.length);
      const regions = await Promise.all(style.map((c, k) => regionOf(c, model, inversion, `style${k + 1}`)));
      const rule = spec.rule(regions, params.guidance, mask, base && params.baseRatio > 0 ? { prompt: base.embedding, ratio: params.baseRatio } : undefined);
      const latent = await decodeInversion(model, inversion, rule, ctx);
      const text = weightsText(model, style);
      return { outputs: { latent }, ...(text ? { result: { text } } : {}) };
    },
  });
}

export const epsilonMergeSampler = mergeSampler({
  type: 'EpsilonMergeSampler',
  title: 'Epsilon Merge Sampler',
  description:
    'N-style decoding by noise merging: at every step ê = Σ_k M_k·ê(c_k), each classifier-free guided (two styles: ' +
    "M·ê(c1) + (1 − M)·ê(c2), the paper's); ∅ and every style go through the UNet in one batched call (N + 1 rows). " +
    'A style from a Region with a model of its own (a LoRA per region) runs on that model: one UNet call per distinct weight set per step.',
  rule: regionalMerge,
  rows: (s, n) => (s === 1 ? n : n + 1), // [c1..cN], or [∅, c1..cN]; regional settings add their distinct prompts
});

export const attentionMergeSampler = mergeSampler({
  type: 'AttentionMergeSampler',
  title: 'Attention Merge Sampler',
  description:
    'N-style decoding by cross-attention merging: every cross-attention layer attends to each style and blends per ' +
    'pixel, Σ_k M_k·A_k (two styles: M·A1 + (1 − M)·A2; the mask resized to each layer), then ê = e∅ + s·(e_merged − e∅). ' +
    'Rows ∅ and merged go through a rewritten UNet in one call; the rewrite is made once per model and number of styles ' +
    'and cached beside its UNet. The paper finds a sharper mask (70) and stronger guidance (30) help this method.',
  rule: regionalAttentionMerge,
  rows: (s) => (s === 1 ? 1 : 2), // [merged], or [∅, merged]: the merged row attends to all N conditionings
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
    prompt: { type: 'Conditioning', label: 'prompt', description: 'a prompt, or a Region (its negative, guidance and window apply)' },
    negative: { type: 'Conditioning', label: 'negative', optional: true, description: 'what the picture should not look like (∅ when unconnected)' },
  },
  outputs: { latent: { type: 'Latent', label: 'latent' } },
  params: z.object({ guidance: guidanceParam }),
  plan({ inputs, params, services }) {
    const plan = samplerPlan(
      inputs.model,
      inputs.inversion,
      (params.guidance === 1 ? 1 : 2) + (inputs.negative ? 1 : 0) + Math.max(0, (inputs.prompt?.rows ?? 1) - 1),
    );
    const [unet] = plan.work ?? [];
    if (!unet) return plan;
    const extra = regionWeightsWork(unet, [inputs.prompt], params.guidance !== 1, inputs.inversion?.pictures ?? 1, () => services.models.pipelines.maxLoaded);
    return { ...plan, work: [unet, ...extra] };
  },
  async run({ inputs, params, ctx }) {
    const { model, inversion, prompt, negative } = inputs;
    requireSameModel(model, inversion, 'inversion');
    const region = await regionOf(prompt, model, inversion, 'prompt');
    if (negative) requireSameModel(ownModel(model, prompt) ?? model, negative, 'negative');
    // The Region's own negative, else the sampler's.
    const rule = regionPrompt(negative && !region.negative ? { ...region, negative: negative.embedding } : region, params.guidance);
    return { outputs: { latent: await decodeInversion(model, inversion, rule, ctx) } };
  },
});

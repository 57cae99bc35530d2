/**
 * Region: what a regional-prompting user sets per region (A1111's Regional Prompter, InvokeAI's
 * regional guidance), attached to a style's prompt. Its output goes into a merge sampler's style input
 * (or a Single Prompt Sampler's prompt), which then gives that region its own negative prompt, its own
 * guidance scale, and a step window outside which the region follows a fallback prompt (the source
 * prompt by default): keep the original structure early, add the style late. A model connected to the
 * Region (the sampler's model through Load LoRA) is the weight set the region runs on in an epsilon merge:
 * a LoRA per region (nodes/lib/region-models.ts). The formulas are in server/engine/diffusion/regions.ts.
 */
import { z } from 'zod';
import { defineNode, UserError } from './types.ts';
import type { RegionSettings } from './values.ts';
import { describeWeights } from './lib/region-models.ts';

export const regionNode = defineNode({
  type: 'Region',
  title: 'Region',
  category: 'Conditioning',
  description:
    'Per-region settings for a style: its own negative prompt and guidance scale, and the part of the decode where it applies ' +
    '(outside it, the region follows the fallback prompt, or the source prompt). Connect it where the style prompt went.',
  inputs: {
    prompt: { type: 'Conditioning', label: 'prompt', description: 'the style prompt of this region' },
    negative: { type: 'Conditioning', label: 'negative', optional: true, description: 'what this region should not look like (∅ when unconnected)' },
    fallback: {
      type: 'Conditioning',
      label: 'fallback',
      optional: true,
      description: "the prompt outside the window (the inversion's source prompt when unconnected)",
    },
    model: {
      type: 'Model',
      label: 'model',
      optional: true,
      description: "the weights this region runs on in an epsilon merge: the sampler's model with a LoRA (the sampler's model when unconnected)",
    },
  },
  outputs: { conditioning: { type: 'Conditioning', label: 'conditioning' } },
  params: z.object({
    guidance: z.number().min(0).max(50).default(0).describe("This region's guidance scale (0 = the sampler's).").meta({ step: 0.5 }),
    start: z.number().min(0).max(1).default(0).describe('Where in the decode the style starts (0 = from the first step).').meta({ step: 0.05 }),
    end: z.number().min(0).max(1).default(1).describe('Where in the decode the style ends (1 = to the last step).').meta({ step: 0.05 }),
  }),
  check(p) {
    const issues = [];
    if (p.start >= p.end) issues.push({ field: 'end', message: `must be more than start (${p.start}), got ${p.end}` });
    if (p.guidance > 0 && p.guidance < 1) issues.push({ field: 'guidance', message: `is 0 (the sampler's) or at least 1, got ${p.guidance}` });
    return issues;
  },
  plan({ inputs, params }) {
    const windowed = params.start > 0 || params.end < 1;
    const weights = inputs.model?.model;
    return { outputs: { conditioning: { rows: 1 + (inputs.negative ? 1 : 0) + (windowed ? 1 : 0), ...(weights ? { weights } : {}) } } };
  },
  async run({ inputs, params }) {
    const { prompt, negative, fallback, model } = inputs;
    for (const [what, value] of [
      ['negative', negative],
      ['fallback', fallback],
    ] as const) {
      if (value && value.modelId !== prompt.modelId)
        throw new UserError(`${what} was encoded with a different model than the prompt; encode both with the same Load Model`, what);
    }
    // The region's prompts go through its model's text encoder (its LoRA's text part).
    if (model && prompt.modelId !== model.id)
      throw new UserError(
        `the prompt was encoded with a different model than the one connected to model; encode this region's prompts with ${model.label}`,
        'prompt',
      );
    const windowed = params.start > 0 || params.end < 1;
    const region: RegionSettings = {
      ...(negative ? { negative } : {}),
      ...(params.guidance > 0 ? { guidance: params.guidance } : {}),
      ...(windowed ? { window: { start: params.start, end: params.end, ...(fallback ? { fallback } : {}) } } : {}),
      ...(model ? { model } : {}),
    };
    const parts = [
      negative ? `negative "${short(negative.prompt)}"` : '',
      params.guidance > 0 ? `guidance ${params.guidance}` : '',
      windowed ? `steps ${pct(params.start)}–${pct(params.end)}` : '',
      model ? `on ${describeWeights(model)}` : '',
    ];
    return { outputs: { conditioning: { ...prompt, region } }, result: { text: parts.filter(Boolean).join(' · ') || 'as the sampler' } };
  },
});

const short = (text: string) => (text.length > 24 ? `${text.slice(0, 23)}…` : text);
const pct = (f: number) => `${Math.round(f * 100)}%`;

/**
 * A LoRA per region: a Region node may carry a model of its own (the sampler's model with a LoRA merged,
 * through Load LoRA), and an epsilon merge then runs that region's rows on it: one UNet call per distinct
 * weight set per step (engine/diffusion/regions.ts). What the samplers need for it lives here: which
 * weight set a style runs on, the check that it shares the sampler's latent space, the plan's extra UNet
 * sessions, and the text saying which LoRA each region used.
 */
import path from 'node:path';
import type { InferenceWork, ModelMemoryProfile, PlannedValue } from '../types.ts';
import { UserError } from '../types.ts';
import type { ConditioningValue, ModelValue } from '../values.ts';

/** The model a style's region runs on when it is not the sampler's own; undefined for the sampler's. */
export function ownModel(model: ModelValue, c: ConditioningValue): ModelValue | undefined {
  const own = c.region?.model;
  return own && own.id !== model.id ? own : undefined;
}

/**
 * A region's model must be the sampler's model with LoRAs (the same source, VAE and config): the code of
 * the inversion and the merged latent live in that model's latent space, which a LoRA leaves as it is.
 */
export function requireSameBase(model: ModelValue, own: ModelValue, what: string): void {
  const a = model.source;
  const b = own.source;
  if (a && b && a.path === b.path && a.vae === b.vae && a.configDir === b.configDir) return;
  throw new UserError(
    `${what}'s Region runs on ${own.label}, which is not ${model.label} with LoRAs: a region's model must be the sampler's model ` +
      "(a safetensors model) with LoRAs added by Load LoRA, so that every region shares the inversion's latent space",
    what,
  );
}

/** "tiny + tiny-style.safetensors @0.8": a model and the LoRAs merged into it, with their UNet strengths. */
export function describeWeights(model: ModelValue): string {
  const loras = model.source?.loras ?? [];
  if (loras.length === 0) return model.label;
  const base = model.label.split(' + ')[0];
  return `${base} + ${loras.map((l) => `${path.basename(l.file)} @${l.unet}`).join(' + ')}`;
}

/** What the sampler's result says when regions run on weight sets of their own: each region's model. */
export function weightsText(model: ModelValue, styles: readonly ConditioningValue[]): string | undefined {
  if (!styles.some((c) => ownModel(model, c))) return undefined;
  return styles.map((c, k) => `region ${k + 1}: ${describeWeights(ownModel(model, c) ?? model)}`).join(' · ');
}

/** The weight sets the styles' Regions bring besides the sampler's model, with the styles of each. */
function plannedWeightSets(model: ModelMemoryProfile, styles: readonly (PlannedValue | undefined)[]): Map<ModelMemoryProfile, number> {
  const sets = new Map<ModelMemoryProfile, number>();
  for (const style of styles) {
    const own = style?.weights;
    if (own && own !== model) sets.set(own, (sets.get(own) ?? 0) + 1);
  }
  return sets;
}

/**
 * The plan's UNet calls on the regions' own models, one per weight set and step: rows ∅ and its styles
 * (an upper bound, like the sampler's own entry), each such model a UNet session of its own in memory.
 */
export function regionWeightsWork(
  sampler: InferenceWork,
  styles: readonly (PlannedValue | undefined)[],
  guided: boolean,
  pictures: number,
  maxLoaded: () => number,
): InferenceWork[] {
  const sets = plannedWeightSets(sampler.model, styles);
  if (sets.size === 0) return [];
  // Every weight set stays loaded through the decode: the registry must hold them all at once.
  if (sets.size + 1 > maxLoaded())
    throw new UserError(
      `the styles run on ${sets.size + 1} weight sets (the sampler's model and ${sets.size} Region model${sets.size > 1 ? 's' : ''}), ` +
        `but the studio keeps at most ${maxLoaded()} models loaded at once; give the regions fewer distinct models (LoRAs)`,
    );
  return [...sets].map(([model, count]) => ({ ...sampler, model, rows: (count + (guided ? 1 : 0)) * pictures }));
}

/** Attention merge runs every style in one UNet call: a Region with a model of its own is refused before the job starts. */
export function requireOneWeightSet(model: ModelMemoryProfile | undefined, styles: readonly (PlannedValue | undefined)[]): void {
  if (!model) return;
  const k = styles.findIndex((s) => s?.weights && s.weights !== model);
  if (k < 0) return;
  throw new UserError(
    `style${k + 1} comes from a Region with a model of its own (${styles[k]!.weights!.label}), but attention merge blends every style ` +
      "inside one UNet call of the sampler's model; use the Epsilon Merge Sampler for a LoRA per region, or connect the same model to both",
    `style${k + 1}`,
  );
}

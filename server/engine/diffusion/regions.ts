/**
 * Regional control on the epsilon merge, the controls regional-prompting users know (A1111's Regional
 * Prompter, InvokeAI's regional guidance), each one rule on ê at decoding step i of R:
 *
 *   ê = r·ê_s(c_base) + (1 − r)·Σ_k M_k·[e(n_k) + g_k·(e(c′_k) − e(n_k))]
 *
 * - per-region negative prompt n_k (∅ when a region has none) and guidance scale g_k (the sampler's s
 *   when it has none);
 * - a base prompt at ratio r, guided with ∅ at s, that holds the regions together (r = 0 without one);
 * - a step window [start_k, end_k) per region, as fractions of the decode: c′_k = c_k while
 *   ⌊start_k·R⌋ ≤ i < ⌊end_k·R⌋, the region's fallback prompt (the source prompt, by the nodes' default)
 *   outside it.
 *
 * Still one UNet call per step: its rows are the distinct embeddings all of this needs (∅ when a
 * negative or the base asks for it, the N styles, the distinct negatives, fallbacks and the base), in
 * that order, so the plain merge keeps the rows [∅, c1, …, cN] (just [c1, …, cN] at s = 1) and its
 * numbers. The guided parts stay in float64 until blended, as one expression would keep them.
 *
 * A LoRA per region: a region may carry its own weight set (`Region.model`, the sampler's model with a
 * LoRA merged), and then all of its rows, ∅ included, run on that model, e_k(·) = ε_{model_k}(x, t, ·).
 * The rows are grouped by weight set: one UNet call per distinct weight set per step, the sampler's model
 * first (with the base prompt), the groups' outputs laid end to end and combined by the formula above.
 * Regions without a model of their own are the single call of before, the same rows in the same order.
 *
 * The same controls in attention merge (regionalAttentionMerge), where the blend happens inside every
 * cross-attention layer: the unconditional half blends the regions' negatives the way the conditional
 * half blends their styles (the ∅ row of conditioning k carries n_k); the base prompt is one more
 * conditioning taking r of every layer's attention, r·A_base + (1 − r)·Σ_k M_k·A_k; per-region guidance
 * becomes a guidance map over the latent, g(p) = r·s + (1 − r)·Σ_k M_k(p)·g_k; a step window swaps the
 * region's conditioning for its fallback (one set of conditionings per phase of the windows, built when
 * first reached).
 */
import type { MaskValue } from '../values.ts';
import { blendInto, maskWeights } from './mask.ts';
import type { Denoiser } from './denoiser.ts';
import {
  batchedEvaluator,
  checkGuidance,
  guide,
  mostChunks,
  stackRows,
  type Combine,
  type EpsilonEvaluator,
  type EpsilonRule,
  type Row,
  type StepAt,
} from './rows.ts';

/** Where a region's own prompt applies; outside it, the fallback prompt. */
export interface StepWindow {
  /** Fractions of the decode, 0 ≤ start < end ≤ 1. */
  start: number;
  end: number;
  fallback: Float32Array;
}

export interface Region {
  prompt: Float32Array;
  /** Its negative prompt n_k; ∅ when absent. */
  negative?: Float32Array;
  /** Its guidance scale g_k; the sampler's s when absent. */
  guidance?: number;
  window?: StepWindow;
  /**
   * The weight set this region's rows run on (the sampler's model with a LoRA merged, say); the
   * sampler's model when absent. Its embeddings must come from its own text encoder.
   */
  model?: Denoiser;
}

export interface BasePrompt {
  prompt: Float32Array;
  /** r in [0, 1]: the share of ê the base prompt takes. */
  ratio: number;
}

/** Whether decoding step `at` lies in the window (always, without one). */
export function inWindow(window: StepWindow | undefined, at: StepAt): boolean {
  if (!window) return true;
  return Math.floor(window.start * at.steps) <= at.step && at.step < Math.floor(window.end * at.steps);
}

/** The rows of one call, each distinct embedding once (compared by value), ∅ as its own row. */
class RowTable {
  readonly rows: Row[] = [];

  /** The row index of `embedding` (∅ when undefined), added when new. */
  index(embedding: Float32Array | undefined, what: string): number {
    const found = this.rows.findIndex((row) =>
      row === 'unconditional' ? embedding === undefined : embedding !== undefined && sameValues(row.embedding, embedding),
    );
    if (found >= 0) return found;
    this.rows.push(embedding === undefined ? 'unconditional' : { embedding, what });
    return this.rows.length - 1;
  }
}

function sameValues(a: Float32Array, b: Float32Array): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** How one region's ê comes out of the call: its rows and its guidance. */
interface RegionPlan {
  prompt: number;
  fallback: number;
  negative: number;
  guidance: number;
  window: StepWindow | undefined;
}

export function checkRegions(regions: readonly Region[], s: number, base?: BasePrompt, least = 2): void {
  checkGuidance(s);
  if (regions.length < least) throw new Error(`merging needs at least two styles, got ${regions.length}`);
  regions.forEach((r, k) => {
    if (r.guidance !== undefined) checkGuidance(r.guidance, `style ${k + 1}'s guidance scale`);
    const w = r.window;
    if (w && !(w.start >= 0 && w.start < w.end && w.end <= 1))
      throw new Error(`style ${k + 1}'s step window must satisfy 0 ≤ start < end ≤ 1, got ${w.start}..${w.end}`);
  });
  if (base && !(base.ratio >= 0 && base.ratio <= 1)) throw new Error(`the base prompt's ratio must be in [0, 1], got ${base.ratio}`);
}

/** The regional epsilon merge (see the header); with no regional option it is the paper's merge. */
export function regionalMerge(regions: readonly Region[], s: number, mask: MaskValue | readonly Float32Array[], base?: BasePrompt): EpsilonRule {
  checkRegions(regions, s, base);
  return regional(regions, s, mask, base, base || regions.some((r) => r.negative || r.guidance !== undefined || r.window) ? 'regional-merge' : 'epsilon-merge');
}

/** One prompt with a region's settings (its negative, guidance and window): the single-prompt sampler's rule. */
export function regionPrompt(region: Region, s: number): EpsilonRule {
  checkRegions([region], s, undefined, 1);
  return regional([region], s, null, undefined, 'single');
}

/** The rows of one weight set: its model and its call's row table. */
interface WeightSet {
  model: Denoiser;
  table: RowTable;
}

/**
 * The regions' weight sets, the sampler's model first (index 0, holding the base prompt), then each
 * distinct `Region.model` in the order the regions name them; `of[k]` is region k's. In a batch the
 * sampler's model is a picture's view, and so is every other weight set (Denoiser.companion).
 */
function weightSets(model: Denoiser, regions: readonly Region[]): { sets: WeightSet[]; of: number[] } {
  const own: (Denoiser | undefined)[] = [undefined];
  const of = regions.map((r) => {
    const at = own.indexOf(r.model);
    if (at >= 0) return at;
    own.push(r.model);
    return own.length - 1;
  });
  const sets = own.map((m) => ({ model: m ? (model.companion?.(m) ?? m) : model, table: new RowTable() }));
  return { sets, of };
}

/**
 * One UNet call per weight set that has rows, each set's output laid after the previous ones' in one
 * buffer, then `combine` on that buffer: a combine written for one call's rows works unchanged with the
 * rows numbered across the calls. One set with rows is the plain batched call.
 */
async function groupedEvaluator(sets: readonly WeightSet[], w: number, h: number, combine: Combine): Promise<EpsilonEvaluator> {
  const used = sets.filter((set) => set.table.rows.length > 0);
  if (used.length === 1) return batchedEvaluator(used[0]!.model, w, h, used[0]!.table.rows, combine);
  const n = used[0]!.model.info.latentChannels * w * h;
  const total = used.reduce((sum, set) => sum + set.table.rows.length, 0);
  const out = new Float32Array(total * n);
  const scratch = new Float32Array(n);
  let offset = 0;
  const calls = await Promise.all(
    used.map((set) => {
      const at = offset * n;
      const size = set.table.rows.length * n;
      offset += set.table.rows.length;
      return batchedEvaluator(set.model, w, h, set.table.rows, (raw) => out.set(raw.subarray(0, size), at));
    }),
  );
  return {
    rows: total,
    async evaluate(x, t, eps, at) {
      for (const call of calls) await call.evaluate(x, t, scratch, at);
      combine(out, eps, n, at);
      return out;
    },
  };
}

function regional(
  regions: readonly Region[],
  s: number,
  mask: MaskValue | readonly Float32Array[] | null,
  base: BasePrompt | undefined,
  name: string,
): EpsilonRule {
  const N = regions.length;
  return {
    name,
    bind(model, w, h) {
      const M = mask ? maskWeights(mask, N, w, h) : [];
      const n = model.info.latentChannels * w * h;
      const { sets, of } = weightSets(model, regions);
      const tableOf = (k: number) => sets[of[k]!]!.table;
      const guidanceOf = (r: Region) => r.guidance ?? s;
      const withBase = base !== undefined && base.ratio > 0;
      // Per weight set, ∅ first when anything of it needs it, then its styles: the plain merge's rows, in its order.
      sets.forEach((set, g) => {
        const needs = regions.some((r, k) => of[k] === g && !r.negative && guidanceOf(r) !== 1) || (g === 0 && withBase && s !== 1);
        if (needs) set.table.index(undefined, 'unconditional');
      });
      const prompts = regions.map((r, k) => tableOf(k).index(r.prompt, `style ${k + 1}`));
      const local: RegionPlan[] = regions.map((r, k) => ({
        prompt: prompts[k]!,
        fallback: r.window ? tableOf(k).index(r.window.fallback, `style ${k + 1}'s fallback prompt`) : prompts[k]!,
        negative: guidanceOf(r) === 1 ? -1 : tableOf(k).index(r.negative, `style ${k + 1}'s negative prompt`),
        guidance: guidanceOf(r),
        window: r.window,
      }));
      const baseRows = withBase
        ? { prompt: sets[0]!.table.index(base.prompt, 'base prompt'), negative: s === 1 ? -1 : sets[0]!.table.index(undefined, 'unconditional') }
        : undefined;
      // Rows numbered across the calls: weight set g's rows follow those of the sets before it.
      const offsets = sets.map((_, g) => sets.slice(0, g).reduce((sum, set) => sum + set.table.rows.length, 0));
      const plans = local.map((p, k) => {
        const o = offsets[of[k]!]!;
        return { ...p, prompt: p.prompt + o, fallback: p.fallback + o, negative: p.negative < 0 ? -1 : p.negative + o };
      });

      const parts = Array.from({ length: N }, () => new Float64Array(n));
      const blended = baseRows ? new Float64Array(n) : undefined;
      const baseEps = baseRows ? new Float64Array(n) : undefined;
      return groupedEvaluator(sets, w, h, (out, eps, _n, at) => {
        for (let k = 0; k < N; k++) {
          const p = plans[k]!;
          const c = (inWindow(p.window, at) ? p.prompt : p.fallback) * n;
          if (p.negative < 0) parts[k]!.set(out.subarray(c, c + n));
          else guide(out, p.negative * n, c, p.guidance, parts[k]!, n);
        }
        if (N === 1) return eps.set(parts[0]!);
        if (!baseRows) return blendInto(eps, parts, M);
        if (baseRows.negative < 0) baseEps!.set(out.subarray(baseRows.prompt * n, (baseRows.prompt + 1) * n));
        else guide(out, baseRows.negative * n, baseRows.prompt * n, s, baseEps!, n);
        blendInto(blended!, parts, M);
        const r = base!.ratio;
        for (let i = 0; i < n; i++) eps[i] = r * baseEps![i]! + (1 - r) * blended![i]!;
      });
    },
  };
}

/** The regional controls inside every cross-attention layer (see the header); with none, the paper's attention merge. */
export function regionalAttentionMerge(regions: readonly Region[], s: number, mask: MaskValue | readonly Float32Array[], base?: BasePrompt): EpsilonRule {
  checkRegions(regions, s, base);
  const own = regions.findIndex((r) => r.model);
  if (own >= 0)
    throw new Error(
      `attention merge blends the styles inside one UNet call, so every style runs on the sampler's model; style ${own + 1} has a model of its own (use the epsilon merge for a LoRA per region)`,
    );
  const N = regions.length;
  const scales = regions.map((r) => r.guidance ?? s);
  const uniform = scales.every((g) => g === s);
  const guided = !(uniform && s === 1); // rows [negative, merged], or just [merged]
  const r = base && base.ratio > 0 ? base.ratio : 0;
  const rowsOf = (prompt: Float32Array, negative: Float32Array | undefined, what: string): Row[] => {
    const row: Row = { embedding: prompt, what };
    return guided ? [negative ? { embedding: negative, what: `${what}'s negative prompt` } : 'unconditional', row] : [row];
  };
  return {
    name: base || regions.some((x) => x.negative || x.guidance !== undefined || x.window) ? 'regional-attention-merge' : 'attention-merge',
    async bind(model, w, h) {
      const M = maskWeights(mask, N, w, h);
      const plane = w * h;
      // The rewrite takes the weights of conditionings 1..K−1; the last takes what they leave.
      const K = N + (r > 0 ? 1 : 0);
      const weights = new Float32Array((K - 1) * plane);
      for (let k = 0; k < K - 1; k++) for (let p = 0; p < plane; p++) weights[k * plane + p] = (1 - r) * M[k]![p]!;
      let gmap: Float64Array | undefined;
      if (!uniform) {
        gmap = new Float64Array(plane);
        const parts = scales.map((g) => new Float64Array(plane).fill(g));
        blendInto(gmap, parts, M);
        for (let p = 0; p < plane; p++) gmap[p] = r * s + (1 - r) * gmap[p]!;
      }
      const combine = (out: Float32Array, eps: Float32Array, n: number) => {
        if (!guided) return eps.set(out.subarray(0, n));
        if (!gmap) return guide(out, 0, n, s, eps, n);
        for (let i = 0; i < n; i++) {
          const e0 = out[i]!;
          eps[i] = e0 + gmap[i % plane]! * (out[n + i]! - e0);
        }
      };
      // One evaluator per phase of the windows ("which regions are in theirs"), built when first reached.
      const phases = new Map<string, Promise<EpsilonEvaluator>>();
      const build = async (phase: boolean[]): Promise<EpsilonEvaluator> => {
        const conditionings = regions.map((x, k) => rowsOf(phase[k] ? x.prompt : x.window!.fallback, x.negative, `style ${k + 1}`));
        if (r > 0) conditionings.push(rowsOf(base!.prompt, undefined, 'base prompt'));
        const [first, ...others] = conditionings;
        // Every style's rows as long as the longest prompt's (long prompts in chunks; rows.ts pads with ∅).
        const chunks = mostChunks(model, ...conditionings);
        const stacked = await Promise.all(others.map((rows) => stackRows(model, rows, chunks)));
        const extras = await model.attentionMergeExtras(stacked, first!.length, weights, w, h);
        return batchedEvaluator(model, w, h, first!, combine, extras, chunks);
      };
      const evaluatorAt = (at: StepAt): Promise<EpsilonEvaluator> => {
        const phase = regions.map((x) => inWindow(x.window, at));
        const key = phase.map(Number).join('');
        let hit = phases.get(key);
        if (!hit) phases.set(key, (hit = build(phase)));
        return hit;
      };
      // The phase of the first step is built now, so a model that cannot merge fails before the loop.
      await evaluatorAt({ step: 0, steps: 1 });
      return {
        rows: guided ? 2 : 1,
        async evaluate(x, t, eps, at) {
          return (await evaluatorAt(at)).evaluate(x, t, eps, at);
        },
      };
    },
  };
}

/**
 * Regional control on the epsilon merge (server/engine/diffusion/regions.ts), as properties of the rule
 * on a model whose every row's ε depends only on that row (so "equal" means equal, bit for bit):
 * - a one-hot mask gives each region the single-prompt ê with that region's negative and guidance;
 * - a base prompt at r = 1 is the base prompt alone; at r = 0 it is no base at all;
 * - a window covering the whole decode is no window; outside a window, the fallback prompt's ê;
 * - the rows of the one call: ∅ only when needed, each distinct embedding once;
 * - bad settings are refused with the setting named.
 * The reference fixture's three cases (region_*_linear_latent) are conformance cases (sd-cases.ts).
 */
import { describe, expect, it } from 'vitest';
import type { Denoiser } from '../server/engine/diffusion/denoiser.ts';
import { epsilonMerge, singlePrompt, type EpsilonRule } from '../server/engine/diffusion/guidance.ts';
import { regionalMerge, type Region } from '../server/engine/diffusion/regions.ts';
import { seededValues } from './support/numeric.ts';
import { planJob } from '../server/executor/memory-plan.ts';
import { loadTemplate, Runner, shrink, withParams } from './support/pipeline-harness.ts';

const [C, L, D, W, H] = [4, 3, 2, 6, 4];
const n = C * W * H;
const text = (seed: number) => seededValues(L * D, seed);
const EMPTY = text(1);

/** ε of a row: a nonlinear function of x, t and that row's text alone. Counts calls and rows. */
function rowModel() {
  const calls: number[] = [];
  const model: Denoiser = {
    info: { latentChannels: C, textLength: L, textDim: D, scheduler: {} as Denoiser['info']['scheduler'] },
    checkLatentSize() {},
    unconditional: async () => EMPTY,
    async unet(sample, batch, _h, _w, t, ehs) {
      calls.push(batch);
      const out = new Float32Array(batch * n);
      for (let r = 0; r < batch; r++) {
        const e = ehs.subarray(r * L * D, (r + 1) * L * D);
        for (let i = 0; i < n; i++) out[r * n + i] = Math.sin(sample[r * n + i]! * e[i % e.length]! + t * 1e-3) + e[(i * 7) % e.length]!;
      }
      return out;
    },
    attentionMergeExtras: async () => ({}),
  };
  return { model, calls };
}

/** ê of `rule` at decoding step `step` of `steps`, for a fixed x and t. */
async function epsOf(rule: EpsilonRule, step = 0, steps = 10): Promise<Float32Array> {
  const { model } = rowModel();
  const evaluator = await rule.bind(model, W, H);
  const eps = new Float32Array(n);
  await evaluator.evaluate(seededValues(n, 99), 500, eps, { step, steps });
  return eps;
}

/** One-hot vertical bands: style k owns the columns [k·W/N, (k+1)·W/N). */
function bands(N: number): Float32Array[] {
  return Array.from({ length: N }, (_, k) => {
    const m = new Float32Array(W * H);
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) if (Math.floor((x * N) / W) === k) m[y * W + x] = 1;
    return m;
  });
}

function inBand(k: number, N: number): number[] {
  const out: number[] = [];
  for (let c = 0; c < C; c++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) if (Math.floor((x * N) / W) === k) out.push(c * W * H + y * W + x);
  return out;
}

const ramp = (): Float32Array[] => {
  const m = new Float32Array(W * H);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) m[y * W + x] = 1 - (x + 0.5) / W;
  return [m, m.map((v) => 1 - v)];
};

describe('regional epsilon merge', () => {
  const [c1, c2, c3, src, neg] = [text(11), text(12), text(13), text(14), text(15)];

  it('one-hot regions: each region is the single-prompt ê with its own negative and guidance, exactly', async () => {
    const regions: Region[] = [{ prompt: c1 }, { prompt: c2, negative: src, guidance: 3.75 }, { prompt: c3, negative: neg, guidance: 1 }];
    const merged = await epsOf(regionalMerge(regions, 7.5, bands(3)));
    const singles = await Promise.all([epsOf(singlePrompt(c1, 7.5)), epsOf(singlePrompt(c2, 3.75, src)), epsOf(singlePrompt(c3, 1))]);
    for (let k = 0; k < 3; k++) {
      const idx = inBand(k, 3);
      expect(
        idx.map((i) => merged[i]),
        `region ${k + 1}`,
      ).toEqual(idx.map((i) => singles[k]![i]));
    }
    // A negative is a real change: region 2 without it differs.
    const plain = await epsOf(singlePrompt(c2, 3.75));
    expect(inBand(1, 3).some((i) => plain[i] !== merged[i])).toBe(true);
  });

  it('without regional settings it is the plain epsilon merge, on the same rows', async () => {
    const { model, calls } = rowModel();
    const evaluator = await regionalMerge([{ prompt: c1 }, { prompt: c2 }], 7.5, ramp()).bind(model, W, H);
    expect(evaluator.rows).toBe(3); // ∅, c1, c2
    expect(await epsOf(regionalMerge([{ prompt: c1 }, { prompt: c2 }], 7.5, ramp()))).toEqual(await epsOf(epsilonMerge([c1, c2], 7.5, ramp())));
    expect(calls).toEqual([]);
  });

  it('rows: ∅ only when needed, every distinct embedding once, still one UNet call per step', async () => {
    const rowsOf = async (rule: EpsilonRule) => {
      const { model, calls } = rowModel();
      const evaluator = await rule.bind(model, W, H);
      await evaluator.evaluate(seededValues(n, 3), 500, new Float32Array(n), { step: 0, steps: 4 });
      expect(calls).toHaveLength(1);
      return evaluator.rows;
    };
    // Every region has its own negative: no ∅ row. Two regions share theirs: one row for it.
    expect(
      await rowsOf(
        regionalMerge(
          [
            { prompt: c1, negative: neg },
            { prompt: c2, negative: neg },
          ],
          7.5,
          ramp(),
        ),
      ),
    ).toBe(3);
    expect(
      await rowsOf(
        regionalMerge(
          [
            { prompt: c1, negative: src },
            { prompt: c2, negative: neg },
          ],
          7.5,
          ramp(),
        ),
      ),
    ).toBe(4);
    // Equal values count as one embedding, whatever the array.
    expect(
      await rowsOf(
        regionalMerge(
          [
            { prompt: c1, negative: Float32Array.from(neg) },
            { prompt: c2, negative: neg },
          ],
          7.5,
          ramp(),
        ),
      ),
    ).toBe(3);
    // A base and a fallback that are the same prompt share a row; guidance 1 needs no negative.
    const win = { start: 0.4, end: 1, fallback: src };
    expect(
      await rowsOf(
        regionalMerge(
          [
            { prompt: c1, window: win, guidance: 1 },
            { prompt: c2, guidance: 1 },
          ],
          1,
          ramp(),
          { prompt: Float32Array.from(src), ratio: 0.3 },
        ),
      ),
    ).toBe(3);
  });

  it('a base prompt: r = 1 is the base prompt alone, r = 0 no base, in between the mix', async () => {
    const regions: Region[] = [{ prompt: c1 }, { prompt: c2, negative: neg }];
    const alone = await epsOf(singlePrompt(src, 7.5));
    expect(await epsOf(regionalMerge(regions, 7.5, ramp(), { prompt: src, ratio: 1 }))).toEqual(alone);
    const none = await epsOf(regionalMerge(regions, 7.5, ramp()));
    expect(await epsOf(regionalMerge(regions, 7.5, ramp(), { prompt: src, ratio: 0 }))).toEqual(none);
    const mixed = await epsOf(regionalMerge(regions, 7.5, ramp(), { prompt: src, ratio: 0.3 }));
    for (let i = 0; i < n; i++) expect(mixed[i]).toBeCloseTo(0.3 * alone[i]! + 0.7 * none[i]!, 5);
  });

  it('step windows: one covering the whole decode is no window; outside its window a region follows its fallback', async () => {
    const none = regionalMerge([{ prompt: c1 }, { prompt: c2 }], 7.5, bands(2));
    const whole = regionalMerge([{ prompt: c1, window: { start: 0, end: 1, fallback: src } }, { prompt: c2 }], 7.5, bands(2));
    for (let step = 0; step < 10; step++) expect(await epsOf(whole, step), `step ${step}`).toEqual(await epsOf(none, step));

    const late = regionalMerge([{ prompt: c1, window: { start: 0.4, end: 0.8, fallback: src } }, { prompt: c2 }], 7.5, bands(2));
    const [own, fallback] = await Promise.all([epsOf(singlePrompt(c1, 7.5)), epsOf(singlePrompt(src, 7.5))]);
    const band = inBand(0, 2);
    // R = 10: style 1 applies for ⌊0.4·10⌋ = 4 ≤ i < ⌊0.8·10⌋ = 8.
    for (let step = 0; step < 10; step++) {
      const eps = await epsOf(late, step, 10);
      const expected = step >= 4 && step < 8 ? own : fallback;
      expect(
        band.map((i) => eps[i]),
        `step ${step}`,
      ).toEqual(band.map((i) => expected[i]));
    }
  });

  it('refuses settings that make no sense, naming them', () => {
    expect(() => regionalMerge([{ prompt: c1 }], 7.5, ramp())).toThrow(/at least two styles/);
    expect(() => regionalMerge([{ prompt: c1, guidance: NaN }, { prompt: c2 }], 7.5, ramp())).toThrow(/style 1's guidance scale/);
    expect(() => regionalMerge([{ prompt: c1 }, { prompt: c2, window: { start: 0.6, end: 0.5, fallback: src } }], 7.5, ramp())).toThrow(
      /style 2's step window/,
    );
    expect(() => regionalMerge([{ prompt: c1 }, { prompt: c2 }], 7.5, ramp(), { prompt: src, ratio: 1.5 })).toThrow(/base prompt's ratio/);
  });
});

describe('Region node and the samplers, on the demo model', () => {
  /** The content hash of the saved picture (result files are named prefix-<hash>.png). */
  const eps = (summary: { results: Record<string, { images?: { url: string }[] }> }) => summary.results['save_eps']!.images![0]!.url.split('-').at(-1);

  it('a Region left at its defaults is the plain prompt; each setting changes the picture; the plan counts the extra rows', async () => {
    const runner = await Runner.create();
    const template = shrink(await loadTemplate('regional-controls'));
    const neutral = withParams(template, { region1: { start: 0, end: 1 }, region2: { guidance: 0 }, eps_merge: { baseRatio: 0 } });
    // Without the negative as well, both regions are their plain prompts: the epsilon-merge template's picture.
    const plain = { ...neutral, edges: neutral.edges.filter((e) => !(e.to.node === 'region1' && e.to.input === 'negative')) };
    const reference = shrink(await loadTemplate('epsilon-merge'));
    const [a, b] = [await runner.run(plain), await runner.run(withParams(reference, { mask: { shape: 'logistic' } }))];
    expect(eps(a)).toBe(eps(b)); // content-named files: the same bytes

    const urls = new Set([eps(a)]);
    for (const variant of [
      neutral,
      withParams(neutral, { region1: { start: 0.3 } }),
      withParams(neutral, { region2: { guidance: 30 } }),
      withParams(neutral, { eps_merge: { baseRatio: 0.2 } }),
      template,
    ]) {
      urls.add(eps(await runner.run(variant)));
    }
    expect(urls.size).toBe(6);
    // The plan's rows (an upper bound): ∅ and the two styles, region 1's negative and fallback, the base.
    const work = await planJob(runner.validate(template), runner.catalog, runner.services);
    expect(work.find((w) => w.nodeId === 'eps_merge')).toMatchObject({ rows: 3 + 2 + 1 });
  });
});

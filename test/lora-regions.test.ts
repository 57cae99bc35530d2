/**
 * A LoRA per region (engine/diffusion/regions.ts, nodes/lib/region-models.ts): in an epsilon merge a region
 * may run on a weight set of its own, one UNet call per distinct weight set per step.
 * - on row models (each row's ε depends only on that row and the weight set): the calls and rows per weight
 *   set, ê inside each one-hot region equal to that weight set's single-prompt ê, the base prompt on the
 *   sampler's model, batches joining each weight set's calls, attention merge refusing;
 * - on tiny-sd-diffusers and its LoRA, whole decodes, bit for bit: with the mask all on region B (on the
 *   LoRA model) the merge is the LoRA model's single-prompt decode; all on A, the base model's; both regions
 *   on the LoRA model, the LoRA model's own epsilon merge;
 * - the bench's figures: calls and rows per step with one weight set and with two;
 * - through the executor: a Region given the sampler's own model changes nothing, given the LoRA model the
 *   sampler says which LoRA each region used, the plan counts a second weight set, and attention merge and
 *   a prompt encoded by the wrong model are refused, naming the node and the input.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Denoiser } from '../server/engine/diffusion/denoiser.ts';
import { decodeBatch } from '../server/engine/diffusion/batch.ts';
import { decode, type CycleCode } from '../server/engine/diffusion/cycle.ts';
import { epsilonMerge, singlePrompt } from '../server/engine/diffusion/guidance.ts';
import { regionalAttentionMerge, regionalMerge, type Region } from '../server/engine/diffusion/regions.ts';
import { ddimSchedule } from '../server/engine/diffusion/schedule.ts';
import { SdPipeline } from '../server/engine/sd/pipeline.ts';
import { ensureConverted } from '../server/models/convert/index.ts';
import { planJob } from '../server/executor/memory-plan.ts';
import { estimateJobMemory } from '../server/engine/sd/memory.ts';
import type { Graph } from '../server/protocol/graph.ts';
import { seededValues } from './support/numeric.ts';
import { epsilonMergeSampler } from '../nodes/samplers.ts';
import type { ModelMemoryProfile, Services } from '../nodes/types.ts';
import { benchWeightSets, printWeightSets } from '../server/bench/weight-sets.ts';
import { loadTemplate, projectRoot, Runner, shrink, withParams } from './support/pipeline-harness.ts';

const [C, L, D, W, H] = [4, 3, 2, 6, 4];
const n = C * W * H;
const text = (seed: number) => seededValues(L * D, seed);

/** A weight set `shift` on row models: ε of a row depends on x, t, that row's text and the weights. Counts calls. */
function rowModel(shift: number) {
  const calls: number[] = [];
  const empty = text(1 + shift * 100);
  const model: Denoiser = {
    info: { latentChannels: C, textLength: L, textDim: D, scheduler: {} as Denoiser['info']['scheduler'] },
    checkLatentSize() {},
    unconditional: async () => empty,
    async unet(sample, batch, _h, _w, t, ehs) {
      calls.push(batch);
      const out = new Float32Array(batch * n);
      for (let r = 0; r < batch; r++) {
        const e = ehs.subarray(r * L * D, (r + 1) * L * D);
        for (let i = 0; i < n; i++) out[r * n + i] = Math.sin(sample[r * n + i]! * e[i % e.length]! + t * 1e-3 + shift) + e[(i * 7) % e.length]!;
      }
      return out;
    },
    attentionMergeExtras: async () => ({}),
  };
  return { model, calls };
}

/** One-hot vertical bands: style k owns the columns [k·W/N, (k+1)·W/N). */
function bands(N: number, w = W, h = H): Float32Array[] {
  return Array.from({ length: N }, (_, k) => {
    const m = new Float32Array(w * h);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if (Math.floor((x * N) / w) === k) m[y * w + x] = 1;
    return m;
  });
}

/** ê of a rule bound to `model` at one x and t. */
async function epsOf(rule: ReturnType<typeof singlePrompt>, model: Denoiser): Promise<Float32Array> {
  const eps = new Float32Array(n);
  await (await rule.bind(model, W, H)).evaluate(seededValues(n, 99), 500, eps, { step: 0, steps: 10 });
  return eps;
}

/** The values of `a` where the one-hot band `m` is 1, channel after channel. */
function inside(a: Float32Array, m: Float32Array): number[] {
  return Array.from(a).filter((_, i) => m[i % m.length] === 1);
}

describe('a LoRA per region on row models', () => {
  const [c1, c2, c3, neg] = [text(2), text(3), text(4), text(5)];

  it('one UNet call per distinct weight set per step; inside each region, that weight set’s single-prompt ê', async () => {
    const A = rowModel(0);
    const B = rowModel(1);
    const M = bands(3);
    const regions: Region[] = [{ prompt: c1 }, { prompt: c2, model: B.model }, { prompt: c3, negative: neg, model: B.model }];
    const eps = await epsOf(regionalMerge(regions, 7.5, M), A.model);
    // A: [∅_A, c1]; B: [∅_B, c2, c3, neg] (its own ∅: the LoRA's text encoder encodes its empty prompt).
    expect(A.calls).toEqual([2]);
    expect(B.calls).toEqual([4]);
    expect(inside(eps, M[0]!)).toEqual(inside(await epsOf(singlePrompt(c1, 7.5), rowModel(0).model), M[0]!));
    expect(inside(eps, M[1]!)).toEqual(inside(await epsOf(singlePrompt(c2, 7.5), rowModel(1).model), M[1]!));
    expect(inside(eps, M[2]!)).toEqual(inside(await epsOf(singlePrompt(c3, 7.5, neg), rowModel(1).model), M[2]!));
  });

  it('every region on one other weight set is that model’s own merge; none is the single call of before', async () => {
    const A = rowModel(0);
    const B = rowModel(1);
    const M = bands(2);
    const own = await epsOf(
      regionalMerge(
        [
          { prompt: c1, model: B.model },
          { prompt: c2, model: B.model },
        ],
        7.5,
        M,
      ),
      A.model,
    );
    expect(A.calls).toEqual([]);
    expect(own).toEqual(await epsOf(epsilonMerge([c1, c2], 7.5, M), rowModel(1).model));
    const plain = rowModel(0);
    await epsOf(regionalMerge([{ prompt: c1 }, { prompt: c2 }], 7.5, M), plain.model);
    expect(plain.calls).toEqual([3]);
  });

  it('the base prompt runs on the sampler’s model, beside the regions of the other weight set', async () => {
    const A = rowModel(0);
    const B = rowModel(1);
    const M = bands(2);
    const base = { prompt: c3, ratio: 1 };
    const eps = await epsOf(regionalMerge([{ prompt: c1 }, { prompt: c2, model: B.model }], 7.5, M, base), A.model);
    expect(A.calls).toEqual([3]); // ∅_A, c1, base
    expect(B.calls).toEqual([2]);
    expect(eps).toEqual(await epsOf(singlePrompt(c3, 7.5), rowModel(0).model)); // r = 1: the base alone
  });

  it('a batch joins each weight set’s calls: two calls per step, rows × B, each picture as alone', async () => {
    const schedule = ddimSchedule(6, 0.5);
    const codes: CycleCode[] = [7, 8].map((seed) => ({
      z: Array.from({ length: 5 }, (_, i) => seededValues(n, seed * 10 + i)),
      schedule,
      skip: 2,
      width: W,
      height: H,
    }));
    const M = bands(2);
    const A = rowModel(0);
    const B = rowModel(1);
    const rule = () => regionalMerge([{ prompt: c1 }, { prompt: c2, model: B.model }], 7.5, M);
    const batch = await decodeBatch(A.model, codes, rule());
    expect(A.calls).toEqual([4, 4, 4, 4]);
    expect(B.calls).toEqual([4, 4, 4, 4]);
    for (const [k, code] of codes.entries()) expect(batch[k]).toEqual(await decode(rowModel(0).model, code, rule()));
  });

  it('the plan refuses more weight sets than the studio keeps loaded at once', async () => {
    const profile = (label: string) => ({ label, weightsBytes: 1, unetWeightsBytes: 1, vaeDownsample: 8 }) as unknown as ModelMemoryProfile;
    const [a, b, c] = [profile('base'), profile('base + LoRA 1'), profile('base + LoRA 2')];
    const plan = (maxLoaded: number, style2: ModelMemoryProfile, style3: ModelMemoryProfile) =>
      epsilonMergeSampler.plan!({
        params: { styles: 3, guidance: 7.5, baseRatio: 0 },
        // The variadic sockets style1..style3, as the planner passes them.
        inputs: { model: { model: a }, inversion: { width: 8, height: 8 }, style1: {}, style2: { weights: style2 }, style3: { weights: style3 } } as Parameters<
          NonNullable<typeof epsilonMergeSampler.plan>
        >[0]['inputs'],
        services: { models: { pipelines: { maxLoaded } } } as unknown as Services,
      });
    expect(() => plan(2, b, c)).toThrow(/3 weight sets .* at most 2 models loaded at once/);
    expect((await plan(3, b, c)).work?.map((w) => [w.model, w.rows])).toEqual([
      [a, 4],
      [b, 2],
      [c, 2],
    ]);
    expect((await plan(2, b, b)).work?.map((w) => [w.model, w.rows])).toEqual([
      [a, 4],
      [b, 3],
    ]);
  });

  it('attention merge refuses a region with a model of its own', () => {
    expect(() => regionalAttentionMerge([{ prompt: c1 }, { prompt: c2, model: rowModel(1).model }], 7.5, bands(2))).toThrow(
      /attention merge .* one UNet call.*style 2 has a model of its own/,
    );
  });
});

const fixture = path.resolve(projectRoot, '../shared/fixtures/tiny-sd-diffusers');
const hasFixture = existsSync(path.join(fixture, 'lora/manifest.json'));
if (!hasFixture) console.warn(`lora-regions: fixture ${fixture} not found; the tests on tiny-sd-diffusers are skipped`);

describe.skipIf(!hasFixture)('a LoRA per region on tiny-sd-diffusers', () => {
  let tmp: string;
  let base: SdPipeline;
  let lora: SdPipeline;
  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'dualstyle-lora-regions-'));
    const cacheRoot = path.join(tmp, 'cache');
    const file = path.join(fixture, 'lora/tiny-style.safetensors');
    base = await SdPipeline.load(await ensureConverted(fixture, { cacheRoot }), { executionProvider: 'cpu' });
    lora = await SdPipeline.load(await ensureConverted(fixture, { cacheRoot, loras: [{ file, unet: 0.8, text: 0.8 }] }), { executionProvider: 'cpu' });
  });
  afterAll(async () => {
    await base?.release();
    await lora?.release();
    await rm(tmp, { recursive: true, force: true });
  });

  /** A latent code of the fixture's 8×8 latent, 6 steps with skip 2. */
  function code(): CycleCode {
    const schedule = ddimSchedule(6, 0.1, base.info.scheduler);
    return { z: Array.from({ length: 5 }, (_, i) => seededValues(4 * 8 * 8, 40 + i)), schedule, skip: 2, width: 8, height: 8 };
  }

  it('mask all on the LoRA region: the LoRA model’s decode; all on the base region: the base’s; both on the LoRA: its own merge', async () => {
    const prompts = ['a house', 'a house in the style']; // each region's prompt, through its model's text encoder
    const [c1, c2] = await Promise.all(prompts.map(async (p) => (await base.encodeText(p)).embedding));
    const [l1, l2] = await Promise.all(prompts.map(async (p) => (await lora.encodeText(p)).embedding));
    const ones = new Float32Array(64).fill(1);
    const zeros = new Float32Array(64);
    const z = code();
    const perRegion = (M: Float32Array[]) =>
      decode(
        base,
        z,
        regionalMerge(
          [
            { prompt: c1!, model: undefined },
            { prompt: l2!, model: lora },
          ],
          7.5,
          M,
        ),
      );
    expect(await perRegion([zeros, ones])).toEqual(await decode(lora, z, singlePrompt(l2!, 7.5)));
    expect(await perRegion([ones, zeros])).toEqual(await decode(base, z, singlePrompt(c1!, 7.5)));
    const linear = bands(2, 8, 8);
    const both = regionalMerge(
      [
        { prompt: l1!, model: lora },
        { prompt: l2!, model: lora },
      ],
      7.5,
      linear,
    );
    expect(await decode(base, z, both)).toEqual(await decode(lora, z, epsilonMerge([l1!, l2!], 7.5, linear)));
    // And the LoRA shows: the per-region merge is neither model's merge.
    const mixed = await perRegion(linear);
    expect(mixed).not.toEqual(await decode(base, z, epsilonMerge([c1!, c2!], 7.5, linear)));
  });

  it('the bench: one UNet call per distinct weight set per step, the rows split between them', async () => {
    const costs = await benchWeightSets(base, lora, 8, 8, 1);
    const lines: string[] = [];
    printWeightSets(costs, (l) => lines.push(l));
    console.log(lines.join('\n'));
    expect(costs.map((c) => [c.weightSets, c.unetCallsPerStep, c.rowsPerStep])).toEqual([
      [1, 1, 3], // [∅, c1, c2]
      [2, 2, 4], // [∅, c1] and [∅', c2]
    ]);
    expect(lines[0]).toMatch(/one UNet call per distinct weight set per step/);
  });
});

/** The epsilon-merge template on tiny-sd-diffusers, region 2 through a Region whose model is `regionModel`. */
function perRegionGraph(template: Graph, regionModel: 'model' | 'lora', sampler = 'EpsilonMergeSampler'): Graph {
  const g = withParams(template, { Invert: { steps: 6, skip: 2 } });
  const nodes = [
    ...g.nodes.map((node) => (node.id === 'eps_merge' ? { ...node, type: sampler } : node)),
    { id: 'lora', type: 'LoadLora', params: { lora: 'tiny-sd-diffusers/lora/tiny-style.safetensors', strength_unet: 0.8, strength_text: 0.8 } },
    { id: 'region2', type: 'Region', params: {} },
  ];
  const edges = [
    ...g.edges.filter((e) => !(e.to.node === 'eps_merge' && e.to.input === 'style2') && !(e.to.node === 'encode_style2' && e.to.input === 'model')),
    { from: { node: 'model', output: 'model' }, to: { node: 'lora', input: 'model' } },
    { from: { node: regionModel, output: 'model' }, to: { node: 'encode_style2', input: 'model' } },
    { from: { node: 'encode_style2', output: 'conditioning' }, to: { node: 'region2', input: 'prompt' } },
    { from: { node: regionModel, output: 'model' }, to: { node: 'region2', input: 'model' } },
    { from: { node: 'region2', output: 'conditioning' }, to: { node: 'eps_merge', input: 'style2' } },
  ];
  return { ...g, nodes, edges } as Graph;
}

describe.skipIf(!hasFixture)('a LoRA per region through the executor', () => {
  const saved = (r: Awaited<ReturnType<Runner['run']>>) => JSON.stringify(r.results['save_eps']?.images?.map((i) => i.name));

  it('the same model changes nothing; the LoRA model runs region 2 and says so; the plan counts its weight set', async () => {
    const runner = await Runner.create();
    const template = shrink(await loadTemplate('epsilon-merge'), 'tiny-sd-diffusers', 6, 2);
    const plain = await runner.run(template);
    const same = await runner.run(perRegionGraph(template, 'model'));
    expect(saved(same)).toBe(saved(plain)); // content-named files: the same bytes
    const perRegion = await runner.run(perRegionGraph(template, 'lora'));
    expect(saved(perRegion)).not.toBe(saved(plain));
    expect(perRegion.results['eps_merge']?.text).toBe('region 1: tiny-sd-diffusers · region 2: tiny-sd-diffusers + tiny-style.safetensors @0.8');
    expect(perRegion.results['region2']?.text).toMatch(/on tiny-sd-diffusers \+ tiny-style\.safetensors @0\.8/);
    // Two weight sets, two UNet sessions: the plan has a call on each, and their weights count twice.
    const work = (await planJob(runner.validate(perRegionGraph(template, 'lora')), runner.catalog, runner.services)).filter((w) => w.nodeId === 'eps_merge');
    expect(work.map((w) => w.rows)).toEqual([3, 2]);
    expect(work[0]!.model).not.toBe(work[1]!.model);
    const one = estimateJobMemory([work[0]!]).weightsBytes;
    expect(estimateJobMemory(work).weightsBytes).toBe(2 * one);
  });

  it('attention merge and a prompt from another model’s text encoder are refused, naming the node and the input', async () => {
    const runner = await Runner.create();
    const template = shrink(await loadTemplate('epsilon-merge'), 'tiny-sd-diffusers', 6, 2);
    await expect(runner.run(perRegionGraph(template, 'lora', 'AttentionMergeSampler'))).rejects.toThrow(
      /eps_merge\) failed: style2 comes from a Region with a model of its own .*use the Epsilon Merge Sampler/,
    );
    const wrongEncoder = perRegionGraph(template, 'lora');
    wrongEncoder.edges = wrongEncoder.edges.map((e) =>
      e.to.node === 'encode_style2' && e.to.input === 'model' ? { ...e, from: { node: 'model', output: 'model' } } : e,
    );
    await expect(runner.run(wrongEncoder)).rejects.toThrow(
      /region2\) failed: the prompt was encoded with a different model .*encode this region's prompts with/,
    );
  });
});

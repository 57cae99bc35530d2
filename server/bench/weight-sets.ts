/**
 * What a LoRA per region costs (engine/diffusion/regions.ts): the epsilon merge of two styles on one
 * weight set, against the same merge with region 2 on a second weight set. One UNet call per distinct
 * weight set per step: the rows split between the calls ([∅, c1] and [∅, c2] instead of [∅, c1, c2]), so
 * the second set costs a second call's fixed overhead and one more ∅ row, and a second UNet session in
 * memory. The second weight set is a second session of the same model folder: a LoRA merged into the
 * weights changes their values, not their shapes, so it runs at the same cost as the studio's merged copy.
 * Each figure is the median of `reps` steps after one warm-up step.
 */
import { regionalMerge, type Region } from '../engine/diffusion/regions.ts';
import { makeMask } from '../engine/diffusion/mask.ts';
import { SdPipeline } from '../engine/sd/pipeline.ts';
import { median } from './unet-timing.ts';

export interface WeightSetCost {
  weightSets: number;
  /** UNet calls per step, over every weight set: one per distinct weight set. */
  unetCallsPerStep: number;
  /** Rows of all of a step's calls together. */
  rowsPerStep: number;
  msPerStep: number;
  /** msPerStep over the one-weight-set merge's. */
  relative: number;
}

/** Times the two-style epsilon merge at `w`×`h` with region 2 on `pipe` itself (1 weight set) and on `second` (2). */
export async function benchWeightSets(pipe: SdPipeline, second: SdPipeline, w: number, h: number, reps = 3, guidance = 7.5): Promise<WeightSetCost[]> {
  const [c1, c2] = await Promise.all(
    ['a painting in the style of Van Gogh', 'a house made of Minecraft blocks'].map(async (p) => (await pipe.encodeText(p)).embedding),
  );
  const mask = makeMask({ shape: 'logistic', direction: 'left-right', sharpness: 20 });
  const n = pipe.info.latentChannels * w * h;
  const x = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37));
  const eps = new Float32Array(n);
  const at = { step: 0, steps: 10 };
  const out: WeightSetCost[] = [];
  for (const regions of [
    [{ prompt: c1! }, { prompt: c2! }],
    [{ prompt: c1! }, { prompt: c2!, model: second }],
  ] satisfies Region[][]) {
    const evaluator = await regionalMerge(regions, guidance, mask).bind(pipe, w, h);
    await evaluator.evaluate(x, 500, eps, at);
    const calls = () => pipe.stats.unetCalls + second.stats.unetCalls;
    const rows = () => pipe.stats.unetRows + second.stats.unetRows;
    const [calls0, rows0] = [calls(), rows()];
    const times: number[] = [];
    for (let i = 0; i < reps; i++) {
      const t = performance.now();
      await evaluator.evaluate(x, 500, eps, at);
      times.push(performance.now() - t);
    }
    const msPerStep = median(times);
    out.push({
      weightSets: regions.some((r) => 'model' in r) ? 2 : 1,
      unetCallsPerStep: (calls() - calls0) / reps,
      rowsPerStep: (rows() - rows0) / reps,
      msPerStep,
      relative: msPerStep / (out[0]?.msPerStep ?? msPerStep),
    });
  }
  return out;
}

/** The bench's figures: a second session of `pipe`'s folder is loaded for the second weight set, and released after. */
export async function benchLoraPerRegion(pipe: SdPipeline, gpu: number, w: number, h: number, reps = 3): Promise<WeightSetCost[]> {
  const second = await SdPipeline.load(pipe.info.dir, { executionProvider: pipe.info.executionProvider, session: { deviceId: gpu } });
  try {
    return await benchWeightSets(pipe, second, w, h, reps);
  } finally {
    await second.release();
  }
}

/** The lines the bench prints. */
export function printWeightSets(costs: readonly WeightSetCost[], log: (line: string) => void): void {
  log('LoRA per region, epsilon merge of two styles: one UNet call per distinct weight set per step');
  for (const c of costs) {
    log(
      `  ${c.weightSets} weight set${c.weightSets > 1 ? 's' : ' '}: ${c.unetCallsPerStep} UNet call${c.unetCallsPerStep > 1 ? 's' : ''}/step, ` +
        `${c.rowsPerStep} rows/step, ${c.msPerStep.toFixed(1).padStart(7)} ms/step (${c.relative.toFixed(2)}×)`,
    );
  }
}

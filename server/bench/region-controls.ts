/**
 * What each regional control costs (issue 24): the rows of the one UNet call per step and the time
 * per step of epsilon and attention merge with a per-region negative, a per-region guidance, a base
 * prompt, a step window, and all of them, against the plain merge of the same two styles; and the
 * inversion step recording the attention maps of a words mask against the plain inversion step.
 * Measured on the loaded pipeline at the run's latent size, each figure the median of `reps` steps
 * after one warm-up step (the first step of a rule builds its rows and, for attention merge, its UNet).
 */
import { singlePrompt, type EpsilonRule } from '../engine/diffusion/guidance.ts';
import { makeMask } from '../engine/diffusion/mask.ts';
import { regionalAttentionMerge, regionalMerge, type BasePrompt, type Region } from '../engine/diffusion/regions.ts';
import type { Denoiser } from '../engine/diffusion/denoiser.ts';
import { recordAttentionMaps } from '../engine/sd/attention-maps-recorder.ts';
import type { SdPipeline } from '../engine/sd/pipeline.ts';
import { median } from './unet-timing.ts';

export interface ControlCost {
  method: 'epsilon merge' | 'attention merge' | 'inversion';
  control: string;
  /** Rows of the one UNet call per step. */
  rowsPerCall: number;
  unetCallsPerStep: number;
  msPerStep: number;
  /** msPerStep over the plain method's. */
  relative: number;
}

/** Times `reps` steps of a rule on `model` (one warm-up step first) at a step inside every window. */
async function timeRule(pipe: SdPipeline, model: Denoiser, rule: EpsilonRule, w: number, h: number, reps: number) {
  const n = pipe.info.latentChannels * w * h;
  const x = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37));
  const eps = new Float32Array(n);
  const evaluator = await rule.bind(model, w, h);
  const at = { step: 9, steps: 10 };
  await evaluator.evaluate(x, 500, eps, at);
  const before = { ...pipe.stats };
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    await evaluator.evaluate(x, 500, eps, at);
    times.push(performance.now() - t);
  }
  const calls = pipe.stats.unetCalls - before.unetCalls;
  return { msPerStep: median(times), unetCallsPerStep: calls / reps, rowsPerCall: (pipe.stats.unetRows - before.unetRows) / calls };
}

export async function benchRegionControls(pipe: SdPipeline, w: number, h: number, reps = 3, guidance = 7.5): Promise<ControlCost[]> {
  const text = async (prompt: string) => (await pipe.encodeText(prompt)).embedding;
  const [c1, c2, source, negative] = await Promise.all(
    ['a painting in the style of Van Gogh', 'a house made of Minecraft blocks', 'a photo of a house', 'blurry, low detail'].map(text),
  );
  const mask = makeMask({ shape: 'logistic', direction: 'left-right', sharpness: 20 });
  const plain: Region[] = [{ prompt: c1! }, { prompt: c2! }];
  const base: BasePrompt = { prompt: source!, ratio: 0.2 };
  const controls: { control: string; regions: Region[]; base?: BasePrompt }[] = [
    { control: 'plain', regions: plain },
    { control: 'negative (region 1)', regions: [{ ...plain[0]!, negative: negative! }, plain[1]!] },
    { control: 'guidance (region 2: 30)', regions: [plain[0]!, { ...plain[1]!, guidance: 30 }] },
    { control: 'base prompt (r = 0.2)', regions: plain, base },
    { control: 'step window (region 1 from 30%)', regions: [{ ...plain[0]!, window: { start: 0.3, end: 1, fallback: source! } }, plain[1]!] },
    {
      control: 'all of them',
      regions: [
        { ...plain[0]!, negative: negative!, window: { start: 0.3, end: 1, fallback: source! } },
        { ...plain[1]!, guidance: 30 },
      ],
      base,
    },
  ];
  const out: ControlCost[] = [];
  for (const [method, make] of [
    ['epsilon merge', regionalMerge],
    ['attention merge', regionalAttentionMerge],
  ] as const) {
    let reference = NaN;
    for (const c of controls) {
      const measured = await timeRule(pipe, pipe, make(c.regions, guidance, mask, c.base), w, h, reps);
      if (c.control === 'plain') reference = measured.msPerStep;
      out.push({ method, control: c.control, ...measured, relative: measured.msPerStep / reference });
    }
  }
  // The inversion's step (guidance 1: one row), plain and recording the maps of a words mask.
  const inversion = singlePrompt(source!, 1);
  const plainInversion = await timeRule(pipe, pipe, inversion, w, h, reps);
  out.push({ method: 'inversion', control: 'plain', ...plainInversion, relative: 1 });
  const recording = await recordAttentionMaps(pipe, w, h);
  const recorded = await timeRule(pipe, recording.denoiser, inversion, w, h, reps);
  out.push({ method: 'inversion', control: 'attention maps (words mask)', ...recorded, relative: recorded.msPerStep / plainInversion.msPerStep });
  return out;
}

/** The table the bench prints: one line per method and control. */
export function printControlCosts(costs: readonly ControlCost[], log: (line: string) => void): void {
  log('regional controls, per step (rows of the one UNet call; time vs the plain method):');
  for (const c of costs) {
    log(
      `  ${c.method.padEnd(15)} ${c.control.padEnd(33)} ${String(c.rowsPerCall).padStart(2)} rows × ${c.unetCallsPerStep} call, ` +
        `${c.msPerStep.toFixed(1).padStart(7)} ms/step (${c.relative.toFixed(2)}×)`,
    );
  }
}

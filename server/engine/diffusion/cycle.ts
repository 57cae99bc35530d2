/**
 * CycleDiffusion (Wu & De la Torre): the DDPM-with-η encoder that records the latent code
 * z = (x_t, ε_1..ε_R) of a real image, and the decoder that replays the code under another
 * epsilon rule (single prompt, epsilon merge, attention merge). Decoding with the encoder's own
 * prompt and guidance reproduces x0 up to float error.
 *
 * Index convention (fixtures/README.md): schedule index k = 0..S−1 ascends in t; with
 * R = steps − skip refinement steps, step i = 0..R−1 works at k = R−1−i.
 * Per-step math runs in place on buffers allocated once per call.
 */
import { CancelledError, UserError } from '../errors.ts';
import type { Schedule } from '../values.ts';
import type { Denoiser } from './denoiser.ts';
import { singlePrompt, type EpsilonRule } from './guidance.ts';
import type { NoiseSource } from './noise.ts';
import { ddimSchedule, refinementSteps } from './schedule.ts';

/** The latent code of an image: what an Inversion socket carries, minus prompt and model identity. */
export interface CycleCode {
  /** z[0] = x_t (at k = R−1), then z[i+1] = the posterior noise of step i; each [C·h·w]. */
  z: Float32Array[];
  schedule: Schedule;
  skip: number;
  width: number;
  height: number;
}

export type StepCallback = (step: number, total: number, x0hat: Float32Array) => void;

export interface InvertOptions {
  /** Source-prompt embedding [L·D], guided with `guidance` (∅ is fetched from the model when ≠ 1). */
  source: Float32Array;
  guidance: number;
  steps: number;
  skip: number;
  eta: number;
  noise: NoiseSource;
  /** Called after each step with 1-based step, R, and the current x̂0 (a reused buffer: copy to keep). */
  onStep?: StepCallback;
  signal?: AbortSignal;
}

export interface DecodeOptions {
  onStep?: StepCallback;
  signal?: AbortSignal;
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new CancelledError();
}

/** Throws naming the step when the UNet produced NaN or ±Inf (a broken model, fp16 overflow, bad input). */
export function checkFinite(out: Float32Array, step: number, total: number, phase: string): void {
  for (let i = 0; i < out.length; i++) {
    const v = out[i]!;
    if (v - v !== 0) {
      const what = Number.isNaN(v) ? 'NaN' : 'Inf';
      throw new UserError(`${what} in the UNet output at step ${step} of ${total} (${phase})`);
    }
  }
}

function checkLatent(model: Denoiser, x: Float32Array, w: number, h: number, what: string): number {
  const n = model.info.latentChannels * w * h;
  if (!Number.isInteger(w) || !Number.isInteger(h) || w < 1 || h < 1) throw new Error(`latent size must be positive integers, got ${w}×${h}`);
  model.checkLatentSize(w, h);
  if (x.length !== n) throw new Error(`${what} has ${x.length} values, a ${model.info.latentChannels}×${h}×${w} latent has ${n}`);
  return n;
}

/** The DDIM coefficients of schedule index k, computed once per run instead of once per step. */
interface StepCoefficients {
  /** √a_k, √(1 − a_k), √a_prev_k, √(1 − a_prev_k − σ_k²) (the direction to x_t), σ_k. */
  sa: number;
  s1a: number;
  sap: number;
  dir: number;
  sigma: number;
}

function stepCoefficients(schedule: Schedule): StepCoefficients[] {
  return schedule.alphas.map((a, k) => {
    const ap = schedule.alphasPrev[k]!;
    const sigma = schedule.sigmas[k]!;
    return { sa: Math.sqrt(a), s1a: Math.sqrt(1 - a), sap: Math.sqrt(ap), dir: Math.sqrt(Math.max(0, 1 - ap - sigma * sigma)), sigma };
  });
}

/**
 * The DDIM step both directions share: x̂0 = (x − √(1 − a_k)·ê)/√a_k and the posterior mean
 * μ = √a_prev_k·x̂0 + √(1 − a_prev_k − σ_k²)·ê, written into `x0hat` and `mu`.
 */
function ddimMean(x: Float32Array, eps: Float32Array, c: StepCoefficients, x0hat: Float32Array, mu: Float64Array): void {
  const { sa, s1a, sap, dir } = c;
  for (let j = 0; j < x.length; j++) {
    const e = eps[j]!;
    const xh = (x[j]! - s1a * e) / sa;
    x0hat[j] = xh;
    mu[j] = sap * xh + dir * e;
  }
}

/** CycleDiffusion encoder: x0 (scaled latent) → latent code z under the source prompt. */
export async function invert(model: Denoiser, x0: Float32Array, latentW: number, latentH: number, opts: InvertOptions): Promise<CycleCode> {
  const R = refinementSteps(opts.steps, opts.skip);
  if (!(opts.eta > 0) || opts.eta > 1) {
    // σ = 0 would make every z = (x' − μ)/σ undefined: the code lives in the posterior noise.
    throw new UserError(`eta must be in (0, 1] for CycleDiffusion inversion, got ${opts.eta}`, 'eta');
  }
  const n = checkLatent(model, x0, latentW, latentH, 'x0');
  const schedule = ddimSchedule(opts.steps, opts.eta, model.info.scheduler);
  const { alphas, timesteps } = schedule;
  const coeffs = stepCoefficients(schedule);
  const evaluator = await singlePrompt(opts.source, opts.guidance).bind(model, latentW, latentH);

  const z = Array.from({ length: R + 1 }, () => new Float32Array(n));
  const noise = new Float32Array(n);
  let x = new Float32Array(n);
  let next = new Float32Array(n);
  const eps = new Float32Array(n);
  const x0hat = new Float32Array(n);
  const mu = new Float64Array(n); // float64, as the one expression it stands for would be

  throwIfAborted(opts.signal);
  opts.noise.fill(noise);
  {
    const a = alphas[R - 1]!;
    const sa = Math.sqrt(a);
    const s1a = Math.sqrt(1 - a);
    for (let j = 0; j < n; j++) x[j] = sa * x0[j]! + s1a * noise[j]!;
    z[0]!.set(x);
  }

  for (let i = 0; i < R; i++) {
    throwIfAborted(opts.signal);
    const k = R - 1 - i;
    const c = coeffs[k]!;
    const { sa, s1a, sap, dir, sigma } = c;

    // x' ~ q(x_{t−1} | x_t, x0): drawn even at k = 0 so noise[i+1] always belongs to step i.
    opts.noise.fill(noise);
    if (k === 0) next.set(x0);
    else {
      for (let j = 0; j < n; j++) {
        const x0j = x0[j]!;
        next[j] = sap * x0j + (dir * (x[j]! - sa * x0j)) / s1a + sigma * noise[j]!;
      }
    }

    const raw = await evaluator.evaluate(x, timesteps[k]!, eps, { step: i, steps: R });
    checkFinite(raw, i + 1, R, 'inversion');
    ddimMean(x, eps, c, x0hat, mu);
    const zi = z[i + 1]!;
    for (let j = 0; j < n; j++) zi[j] = sigma > 0 ? (next[j]! - mu[j]!) / sigma : 0;
    [x, next] = [next, x];
    opts.onStep?.(i + 1, R, x0hat);
  }
  return { z, schedule, skip: opts.skip, width: latentW, height: latentH };
}

/** CycleDiffusion decoder: replays the code z under `rule`; returns the final latent x0 [C·h·w]. */
export async function decode(model: Denoiser, code: CycleCode, rule: EpsilonRule, opts: DecodeOptions = {}): Promise<Float32Array> {
  const { schedule, skip, width: w, height: h } = code;
  const R = refinementSteps(schedule.steps, skip);
  if (code.z.length !== R + 1) {
    throw new Error(`latent code has ${code.z.length} arrays; ${schedule.steps} steps with skip ${skip} need ${R + 1}`);
  }
  const n = checkLatent(model, code.z[0]!, w, h, 'z[0]');
  for (const zi of code.z) if (zi.length !== n) throw new Error(`latent code arrays differ in size (${zi.length} vs ${n})`);
  const { timesteps } = schedule;
  const coeffs = stepCoefficients(schedule);
  const evaluator = await rule.bind(model, w, h);

  const x = Float32Array.from(code.z[0]!);
  const eps = new Float32Array(n);
  const x0hat = new Float32Array(n);
  const mu = new Float64Array(n); // float64, as the one expression it stands for would be
  for (let i = 0; i < R; i++) {
    throwIfAborted(opts.signal);
    const k = R - 1 - i;
    const c = coeffs[k]!;
    const raw = await evaluator.evaluate(x, timesteps[k]!, eps, { step: i, steps: R });
    checkFinite(raw, i + 1, R, 'decoding');
    ddimMean(x, eps, c, x0hat, mu);
    const zi = code.z[i + 1]!;
    for (let j = 0; j < n; j++) x[j] = mu[j]! + c.sigma * zi[j]!;
    opts.onStep?.(i + 1, R, x0hat);
  }
  return x;
}

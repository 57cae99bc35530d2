/**
 * DDIM schedule as LDM / CycleDiffusion use it ("uniform" spacing): S of the T training timesteps,
 * τ_k = k·(T div S) + steps_offset, with the η-scaled posterior standard deviation σ_k.
 * Computed in float64; index k = 0..S−1 runs ascending in t.
 */
import { UserError } from '../errors.ts';
import type { Schedule } from '../values.ts';

export interface SchedulerConfig {
  betaStart: number;
  betaEnd: number;
  numTrainTimesteps: number;
  stepsOffset: number;
  betaSchedule: 'scaled_linear' | 'linear';
}

/** The SD 1.x training schedule (diffusers' scheduler_config.json of every SD 1.x export). */
export const SD1_SCHEDULER: SchedulerConfig = {
  betaStart: 0.00085,
  betaEnd: 0.012,
  numTrainTimesteps: 1000,
  stepsOffset: 1,
  betaSchedule: 'scaled_linear',
};

/** Reads a diffusers scheduler_config.json object; missing fields keep the SD 1.x values. */
export function schedulerConfigFromJson(json: unknown): SchedulerConfig {
  const j = (json && typeof json === 'object' ? json : {}) as Record<string, unknown>;
  const num = (key: string, fallback: number): number => {
    const v = j[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`scheduler_config.json: ${key} must be a number, got ${JSON.stringify(v)}`);
    return v;
  };
  const schedule = j.beta_schedule ?? SD1_SCHEDULER.betaSchedule;
  if (schedule !== 'scaled_linear' && schedule !== 'linear') {
    throw new Error(`scheduler_config.json: beta_schedule "${String(schedule)}" is not supported (scaled_linear or linear)`);
  }
  return {
    betaStart: num('beta_start', SD1_SCHEDULER.betaStart),
    betaEnd: num('beta_end', SD1_SCHEDULER.betaEnd),
    numTrainTimesteps: num('num_train_timesteps', SD1_SCHEDULER.numTrainTimesteps),
    stepsOffset: num('steps_offset', SD1_SCHEDULER.stepsOffset),
    betaSchedule: schedule,
  };
}

/** ᾱ_t = Π_{s≤t} (1 − β_s) for t = 0..T−1. */
export function alphasCumprod(config: SchedulerConfig = SD1_SCHEDULER): Float64Array {
  const T = config.numTrainTimesteps;
  const out = new Float64Array(T);
  const scaled = config.betaSchedule === 'scaled_linear';
  const lo = scaled ? Math.sqrt(config.betaStart) : config.betaStart;
  const hi = scaled ? Math.sqrt(config.betaEnd) : config.betaEnd;
  let prod = 1;
  for (let t = 0; t < T; t++) {
    const b = T === 1 ? lo : lo + ((hi - lo) * t) / (T - 1);
    prod *= 1 - (scaled ? b * b : b);
    out[t] = prod;
  }
  return out;
}

export function ddimSchedule(steps: number, eta: number, config: Partial<SchedulerConfig> = {}): Schedule {
  const cfg: SchedulerConfig = { ...SD1_SCHEDULER, ...config };
  const T = cfg.numTrainTimesteps;
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`steps must be a positive integer, got ${steps}`);
  if (steps > T) throw new Error(`steps must be at most ${T} (the training timesteps), got ${steps}`);
  if (!Number.isFinite(eta) || eta < 0) throw new Error(`eta must be ≥ 0, got ${eta}`);
  const ac = alphasCumprod(cfg);
  const c = Math.floor(T / steps);
  const timesteps: number[] = [];
  const alphas: number[] = [];
  const alphasPrev: number[] = [];
  const sigmas: number[] = [];
  for (let k = 0; k < steps; k++) {
    // steps_offset shifts every timestep; clamp so the last one stays a valid training index.
    const t = Math.min(k * c + cfg.stepsOffset, T - 1);
    const a = ac[t]!;
    const aPrev = k === 0 ? ac[0]! : alphas[k - 1]!;
    timesteps.push(t);
    alphas.push(a);
    alphasPrev.push(aPrev);
    sigmas.push(eta * Math.sqrt(((1 - aPrev) / (1 - a)) * (1 - a / aPrev)));
  }
  return { steps, eta, timesteps, alphas, alphasPrev, sigmas };
}

/**
 * The rule on steps and skip, in one place: CycleDiffusion refines R = steps − skip times, so skip must
 * leave at least one step. Returns the problem (the field it is about, and what is wrong with it), or null.
 */
export function stepsProblem(steps: number, skip: number): { field: 'steps' | 'skip'; message: string } | null {
  if (!Number.isInteger(steps) || steps < 1) return { field: 'steps', message: `must be a positive integer, got ${steps}` };
  if (!Number.isInteger(skip) || skip < 0) return { field: 'skip', message: `must be a non-negative integer, got ${skip}` };
  if (steps <= skip) return { field: 'skip', message: `must be less than steps (${steps}), got ${skip}` };
  return null;
}

/** R = steps − skip, the number of refinement steps; throws the user-facing problem otherwise. */
export function refinementSteps(steps: number, skip: number): number {
  const problem = stepsProblem(steps, skip);
  if (problem) throw new UserError(`${problem.field} ${problem.message}`, problem.field);
  return steps - skip;
}

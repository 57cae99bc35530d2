import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { alphasCumprod, ddimSchedule, schedulerConfigFromJson } from '../server/engine/diffusion/schedule.ts';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fixture = path.resolve(projectRoot, '../shared/fixtures/tiny-sd');
const hasFixture = existsSync(path.join(fixture, 'reference/schedule.json'));
if (!hasFixture) console.warn(`engine-schedule: fixture ${fixture} not found; reference comparison skipped`);

describe('ddimSchedule', () => {
  it('follows the uniform DDIM spacing with steps_offset', () => {
    const s = ddimSchedule(10, 0.5);
    expect(s.timesteps).toEqual([1, 101, 201, 301, 401, 501, 601, 701, 801, 901]);
    const ac = alphasCumprod();
    expect(s.alphas[3]).toBe(ac[301]);
    expect(s.alphasPrev[0]).toBe(ac[0]);
    expect(s.alphasPrev[4]).toBe(s.alphas[3]);
    // σ = η·sqrt((1 − a_prev)/(1 − a)·(1 − a/a_prev)), computed independently here.
    const a = ac[501]!;
    const ap = ac[401]!;
    expect(s.sigmas[5]).toBeCloseTo(0.5 * Math.sqrt(((1 - ap) / (1 - a)) * (1 - a / ap)), 15);
  });

  it('has σ = 0 for η = 0 and ᾱ decreasing', () => {
    const s = ddimSchedule(25, 0);
    expect(s.sigmas.every((x) => x === 0)).toBe(true);
    for (let k = 1; k < s.steps; k++) expect(s.alphas[k]!).toBeLessThan(s.alphas[k - 1]!);
  });

  it('reads a diffusers scheduler config', () => {
    const cfg = schedulerConfigFromJson({ beta_start: 0.001, beta_end: 0.02, num_train_timesteps: 500, steps_offset: 0, beta_schedule: 'linear' });
    expect(cfg).toEqual({ betaStart: 0.001, betaEnd: 0.02, numTrainTimesteps: 500, stepsOffset: 0, betaSchedule: 'linear' });
    const s = ddimSchedule(5, 0.1, cfg);
    expect(s.timesteps).toEqual([0, 100, 200, 300, 400]);
    expect(s.alphas[0]).toBeCloseTo(1 - 0.001, 15);
    expect(() => schedulerConfigFromJson({ beta_schedule: 'squaredcos_cap_v2' })).toThrow(/not supported/);
  });

  it('rejects bad arguments', () => {
    expect(() => ddimSchedule(0, 0.1)).toThrow(/steps/);
    expect(() => ddimSchedule(2.5, 0.1)).toThrow(/steps/);
    expect(() => ddimSchedule(10, -1)).toThrow(/eta/);
  });

  it.skipIf(!hasFixture)('matches reference/schedule.json', () => {
    const ref = JSON.parse(readFileSync(path.join(fixture, 'reference/schedule.json'), 'utf8'));
    const cfg = schedulerConfigFromJson(JSON.parse(readFileSync(path.join(fixture, 'scheduler/scheduler_config.json'), 'utf8')));
    const s = ddimSchedule(ref.steps, ref.eta, cfg);
    expect(s.timesteps).toEqual(ref.timesteps);
    for (const [ours, theirs] of [
      [s.alphas, ref.alphas],
      [s.alphasPrev, ref.alphas_prev],
      [s.sigmas, ref.sigmas],
    ] as const) {
      expect(ours.length).toBe(theirs.length);
      ours.forEach((v: number, i: number) => expect(Math.abs(v - theirs[i])).toBeLessThan(1e-12));
    }
  });
});

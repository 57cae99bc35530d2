/**
 * The bench's promises, measured by the bench itself: one UNet call per sampler step carrying every
 * row the step needs (attention merge included, its step time reported relative to epsilon merge), the inversion served from cache after a decoder-only change, and previews that
 * cost under 5% of run time.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runBench, type BenchReport } from '../server/bench/bench.ts';

const tinySd = path.resolve(import.meta.dirname, '../../shared/fixtures/tiny-sd');

function checkReport(r: BenchReport, steps: number, skip: number) {
  const byNode = Object.fromEntries(r.samplers.map((s) => [s.node, s]));
  expect(Object.keys(byNode).sort()).toEqual(['attn_merge', 'eps_merge', 'invert', 'single_style1', 'single_style2']);
  for (const s of r.samplers) {
    expect(s.steps).toBe(steps - skip);
    expect(s.unetCalls).toBe(steps - skip); // exactly one UNet call per step
  }
  // Encoder guidance 1: the source row only; decoder guidance 20: ∅ + c (single), ∅ + c1 + c2 (epsilon merge).
  expect(byNode['invert']!.rowsPerCall).toBe(1);
  expect(byNode['single_style1']!.rowsPerCall).toBe(2);
  expect(byNode['eps_merge']!.rowsPerCall).toBe(3);
  // Attention merge: ∅ and the dual row, in the rewritten UNet; its cost relative to epsilon merge is reported.
  expect(byNode['attn_merge']!.rowsPerCall).toBe(2);
  expect(r.attentionVsEpsilon!.msPerStep).toBeGreaterThan(0);
  expect(Number.isFinite(r.attentionVsEpsilon!.msPerStep)).toBe(true);
  expect(r.rerun.inversionFromCache).toBe(true);
  expect(r.rerun.computed).not.toContain('invert');
  expect(r.rerun.computed).not.toContain('single_style2');
  expect(r.previews.framesOn).toBeGreaterThan(0);
  expect(r.previews.framesEveryStep).toBeGreaterThan(r.previews.framesOn);
}

describe.skipIf(!existsSync(tinySd))('bench on the reference tiny-sd model', () => {
  it('one UNet call per step, cached inversion, previews under 5%', async () => {
    const r = await runBench({ model: tinySd, executionProvider: 'cpu', steps: 100, skip: 10, maxSide: 64, previewReps: 5 });
    checkReport(r, 100, 10);
    const p = r.previews;
    console.log(`[bench.test] preview work ${p.workMs.toFixed(2)} ms for ${p.framesOn} frames (encode ${p.encodeMs.toFixed(2)} ms each) = ${(100 * p.workShare).toFixed(2)}% of the run; every step ${(100 * p.everyStepWorkShare).toFixed(1)}%; wall clock on vs off ${(100 * p.overhead).toFixed(1)}%`);
    // The promise, on the work previews add (median of 5 reps; server/bench.ts says why not the
    // wall-clock difference). Previews at every step add more of it, so the measure is live.
    expect(p.encodeMs).toBeGreaterThan(0);
    expect(p.workShare).toBeLessThan(0.05);
    expect(p.everyStepWorkMs).toBeGreaterThan(p.workMs);
  });
});
if (!existsSync(tinySd)) console.warn(`tiny-sd fixture not found at ${tinySd}: bench test on it skipped`);

describe('bench on the built-in demo model', () => {
  it('keeps the same promises', async () => {
    const r = await runBench({ model: 'demo', executionProvider: 'cpu', steps: 20, skip: 4, maxSide: 64, previewReps: 1 });
    checkReport(r, 20, 4);
  });
});

/**
 * The bench's promises, measured by the bench itself: one UNet call per sampler step carrying every
 * row the step needs (attention merge included, its step time reported relative to epsilon merge), the inversion served from cache after a decoder-only change, and previews that
 * cost under 5% of run time.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runBench, type BenchReport } from '../server/bench.ts';

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
    // Timing on a shared 2-core box: the fastest of five interleaved runs each way.
    expect(r.previews.overhead).toBeLessThan(0.05);
  });
});
if (!existsSync(tinySd)) console.warn(`tiny-sd fixture not found at ${tinySd}: bench test on it skipped`);

describe('bench on the built-in demo model', () => {
  it('keeps the same promises', async () => {
    const r = await runBench({ model: 'demo', executionProvider: 'cpu', steps: 20, skip: 4, maxSide: 64, previewReps: 1 });
    checkReport(r, 20, 4);
  });
});

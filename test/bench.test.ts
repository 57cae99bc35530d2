/**
 * The bench's promises, measured by the bench itself: one UNet call per sampler step carrying every
 * row the step needs (attention merge included, its step time reported relative to epsilon merge), the inversion served from cache after a decoder-only change, and previews that
 * cost under 5% of run time.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runBench } from '../server/bench/bench.ts';
import type { BenchReport } from '../server/bench/report.ts';
import { checkTargets, figureLines } from '../server/bench/report.ts';
import { writePreviewDecoder } from '../server/models/demo/taesd.ts';

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
  // The first frame is always sent; at interval 0 the sampler offers one per step. How many of those are
  // sent rather than dropped while the previous one encodes depends on the machine's speed: not asserted.
  expect(r.previews.framesOn).toBeGreaterThan(0);
  expect(r.previews.offeredEveryStep).toBe(steps - skip);
  expect(r.previews.framesEveryStep).toBeGreaterThan(0);
  expect(r.previews.framesEveryStep).toBeLessThanOrEqual(r.previews.offeredEveryStep);
  // UNet calls at the batches the samplers use, session creation cold and from the optimized-graph cache.
  expect(r.unetCalls.map((u) => u.batch)).toEqual([1, 2, 3]);
  for (const u of r.unetCalls) expect(u.ms).toBeGreaterThan(0);
  if (r.sessionCreation) {
    expect(r.sessionCreation.allCached).toBe(true);
    expect(Object.keys(r.sessionCreation.perSession).sort()).toEqual([
      'text_encoder/model.onnx',
      'unet/model.onnx',
      'vae_decoder/model.onnx',
      'vae_encoder/model.onnx',
    ]);
  }
  expect(r.dualStyleRunMs).toBe(byNode['invert']!.wallMs + byNode['eps_merge']!.wallMs);
  expect(r.peakDeviceMiB).toBeNull(); // CPU
  // The graph optimizer's UNet call against the exported graph's, when timed.
  if (r.optimizer) {
    expect(r.optimizer.fusions).toMatch(/MultiHeadAttention fused/);
    expect(r.optimizer.ratio).toBeCloseTo(r.optimizer.optimizedMs / r.optimizer.plainMs);
  }
  // One copy of the weights: the figures the RSS target is judged on are there.
  expect(r.weightsMiB).toBeGreaterThan(0);
  expect(r.sessionsOpen).toBeGreaterThanOrEqual(4);
  // Targets: one call per step passes; the absolute ones are only judged on CUDA.
  const targets = Object.fromEntries(checkTargets(r).map((t) => [t.name, t.status]));
  expect(targets['UNet calls per sampler step']).toBe('pass');
  expect(targets['batch-2 UNet call']).toBe('n/a');
  expect(targets['peak RSS / model weights']).toBe('n/a'); // judged at SD scale only (weights ≥ 1 GiB)
  expect(targets['dual-style run (inversion + epsilon merge)']).toBe('n/a');
  // One self-contained JSON line per figure.
  const lines = figureLines(r);
  for (const l of lines)
    expect(JSON.parse(JSON.stringify(l))).toMatchObject({
      bench: 'dualstyle',
      model: r.model,
      ep: 'cpu',
      figure: expect.any(String),
      unit: expect.any(String),
    });
  expect(lines.filter((l) => l.figure === 'unet_call_ms').map((l) => l.batch)).toEqual([1, 2, 3]);
  expect(lines.filter((l) => l.figure === 'step_ms').map((l) => l.node)).toEqual(r.samplers.map((m) => m.node));
  // Pictures per second at batch 1, 2, 4: one UNet call per step, rows × B (inversion B, epsilon merge 3·B).
  if (r.batches.length) {
    expect(r.batches.map((b) => b.batch)).toEqual([1, 2, 4]);
    for (const b of r.batches) {
      expect(b.unetCallsPerStep, `B = ${b.batch}`).toBe(1);
      expect(b.rowsPerCall, `B = ${b.batch}`).toBe(2 * b.batch);
      expect(b.picturesPerSecond).toBeCloseTo((1000 * b.batch) / b.ms);
    }
    expect(lines.filter((l) => l.figure === 'pictures_per_second').map((l) => l.batch)).toEqual([1, 2, 4]);
  }
  for (const f of [
    'peak_rss_mib',
    'preview_work_share',
    'dual_style_run_ms',
    ...(r.sessionCreation ? ['session_create_cold_ms', 'session_create_cached_ms'] : []),
  ]) {
    expect(lines.find((l) => l.figure === f)?.value, f).toEqual(expect.any(Number));
  }
}

describe.skipIf(!existsSync(tinySd))('bench on the reference tiny-sd model', () => {
  // A whole bench (a first run, UNet timings, a re-run, 3 × 3 sampler runs of 90 steps) takes ~40 s idle;
  // with both cores busy several times that.
  it('one UNet call per step, cached inversion, previews under 5%', { timeout: 900_000 }, async () => {
    // Session timing (two more loads) is covered on the demo model below; this test's budget goes to the previews.
    // Batches are timed on the demo model below.
    const r = await runBench({
      model: tinySd,
      executionProvider: 'cpu',
      steps: 100,
      skip: 10,
      maxSide: 64,
      previewReps: 3,
      unetReps: 1,
      sessionTiming: false,
      batches: [],
    });
    expect(r.sessionCreation).toBeNull();
    checkReport(r, 100, 10);
    const p = r.previews;
    console.log(
      `[bench.test] preview work ${p.workMs.toFixed(2)} ms for ${p.framesOn} frames (encode ${p.encodeMs.toFixed(2)} ms each) = ${(100 * p.workShare).toFixed(2)}% of the run; ` +
        `every step ${(100 * p.everyStepWorkShare).toFixed(1)}%; wall clock on vs off ${(100 * p.overhead).toFixed(1)}%`,
    );
    // The promise, on the work previews add (median of 3 reps; server/bench.ts says why not the
    // wall-clock difference).
    expect(p.encodeMs).toBeGreaterThan(0);
    expect(p.workShare).toBeLessThan(0.05);
    expect(p.everyStepWorkMs).toBeGreaterThan(0);
  });
});
if (!existsSync(tinySd)) console.warn(`tiny-sd fixture not found at ${tinySd}: bench test on it skipped`);

describe('bench on the built-in demo model', () => {
  it('keeps the same promises', async () => {
    const r = await runBench({ model: 'demo', executionProvider: 'cpu', steps: 20, skip: 4, maxSide: 64, previewReps: 1 });
    checkReport(r, 20, 4);
    expect(r.sessionCreation).not.toBeNull();
    expect(r.batches).toHaveLength(3);
    // A LoRA per region: one UNet call per distinct weight set per step.
    expect(r.weightSets?.map((c) => c.unetCallsPerStep)).toEqual([1, 2]);
  });
});

describe('bench with a preview decoder (TAESD layout, narrow, random weights)', () => {
  it('decodes the previews and reports a frame against the projection', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'dualstyle-bench-taesd-'));
    try {
      await writePreviewDecoder(dir, { arch: { channels: 8, blocks: 1 }, seed: 3 });
      const r = await runBench({
        model: 'demo',
        executionProvider: 'cpu',
        steps: 10,
        skip: 2,
        maxSide: 64,
        previewReps: 1,
        unetReps: 1,
        sessionTiming: false,
        previewDecoder: dir,
      });
      const d = r.previews.decoder!;
      expect(d.dir).toBe(dir);
      expect(d.decodes).toBeGreaterThan(0);
      expect(d.frameMs).toBeGreaterThan(0);
      expect(d.projectionFrameMs).toBeGreaterThan(0);
      const lines = figureLines(r);
      expect(lines.find((l) => l.figure === 'preview_frame_decoder_ms')?.value).toBe(d.frameMs);
      expect(lines.find((l) => l.figure === 'preview_frame_projection_ms')?.value).toBe(d.projectionFrameMs);
      expect(lines.find((l) => l.figure === 'preview_frame_encode_ms')).toMatchObject({ decoded: true });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('bench under a small job memory budget', () => {
  it('keeps its sessions loaded across runs where the server would release them after a big job', async () => {
    // The server releases loaded models after a job that leaves the process above half the budget; at a
    // budget of this process's size plus 128 MiB every run would, and the UNet timing's pipeline with them.
    const budget = process.memoryUsage.rss() + (128 << 20);
    const r = await runBench({
      model: 'demo',
      executionProvider: 'cpu',
      steps: 4,
      skip: 1,
      maxSide: 64,
      previewReps: 1,
      unetReps: 1,
      sessionTiming: false,
      maxJobMemory: budget,
    });
    expect(r.unetCalls.map((u) => u.batch)).toEqual([1, 2, 3]);
    expect(r.rerun.inversionFromCache).toBe(true);
  });
});

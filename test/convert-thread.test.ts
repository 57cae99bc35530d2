/**
 * Conversions off the main thread (convert-thread.ts), on ../shared/fixtures/tiny-sd-diffusers: while a
 * model converts, the main thread's event loop keeps turning between the conversion's progress reports
 * (on the main thread a graph's tensors are all written in one synchronous stretch, so its reports would
 * share one turn); a cancelled conversion leaves nothing in the cache; and a conversion two callers wait
 * on goes on when one of them cancels. On a node, the conversion's progress is labelled, so that the
 * Queue panel says "converting 42%", and the job's cancel reaches the thread.
 */
import { existsSync, readdirSync } from 'node:fs';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CancelledError } from '../server/engine/errors.ts';
import { convertOffThread } from '../server/models/convert/convert-thread.ts';
import { convertedPath, isConverted } from '../server/models/convert/index.ts';
import { progressOf } from '../server/executor/eta.ts';
import { stepText } from '../client/src/app/QueuePanel.tsx';
import { convertedDir } from '../nodes/lib/converted.ts';
import type { NodeContext } from '../nodes/types.ts';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fixture = path.resolve(projectRoot, '../shared/fixtures/tiny-sd-diffusers');
const hasFixture = existsSync(path.join(fixture, 'model_index.json'));
if (!hasFixture) console.warn(`convert-thread: fixture ${fixture} not found; tests skipped`);

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'dualstyle-convert-thread-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Counts turns of the event loop (one per setImmediate) until stopped. */
function turnCounter(): { turns: () => number; stop: () => void } {
  let turns = 0;
  let on = true;
  const tick = () => {
    turns++;
    if (on) setImmediate(tick);
  };
  setImmediate(tick);
  return { turns: () => turns, stop: () => (on = false) };
}

/** Every model.onnx under `dir`: the graphs a conversion wrote. */
const graphCount = (dir: string): number => readdirSync(dir, { recursive: true }).filter((f) => String(f).endsWith('model.onnx')).length;

describe.skipIf(!hasFixture)('conversion thread', () => {
  it('converts while the event loop turns between its progress reports', async () => {
    const cacheRoot = path.join(tmp, 'responsive');
    const counter = turnCounter();
    const turnsAtReport: number[] = [];
    let dir: string;
    try {
      dir = await convertOffThread(fixture, { cacheRoot, progress: () => turnsAtReport.push(counter.turns()) });
    } finally {
      counter.stop();
    }
    expect(isConverted(dir)).toBe(true);
    // In one thread, every report of a graph would come within one turn: at most one distinct turn per graph.
    const distinct = new Set(turnsAtReport).size;
    expect(distinct, `${turnsAtReport.length} reports in ${distinct} turns`).toBeGreaterThan(graphCount(dir) + 1);
    // Cached now: the second call answers without a thread.
    await expect(convertOffThread(fixture, { cacheRoot })).resolves.toBe(dir);
  });

  it('a cancelled conversion leaves nothing in the cache, and the next one starts afresh', async () => {
    const cacheRoot = path.join(tmp, 'cancelled');
    const controller = new AbortController();
    let reports = 0;
    const converting = convertOffThread(fixture, {
      cacheRoot,
      signal: controller.signal,
      progress: () => {
        if (++reports === 1) controller.abort();
      },
    });
    await expect(converting).rejects.toBeInstanceOf(CancelledError);
    expect(reports).toBeGreaterThan(0);
    expect(existsSync(cacheRoot) ? readdirSync(cacheRoot) : []).toEqual([]);
    const dir = await convertOffThread(fixture, { cacheRoot });
    expect(isConverted(dir)).toBe(true);
    expect(readdirSync(cacheRoot)).toEqual([path.basename(dir)]);
  });

  it('two callers share one conversion; one cancelling leaves it to the other', async () => {
    const cacheRoot = path.join(tmp, 'shared');
    const controller = new AbortController();
    const first = convertOffThread(fixture, {
      cacheRoot,
      signal: controller.signal,
      progress: () => controller.abort(),
    });
    const second = convertOffThread(fixture, { cacheRoot });
    await expect(first).rejects.toBeInstanceOf(CancelledError);
    const dir = await second;
    expect(isConverted(dir)).toBe(true);
    expect(readdirSync(cacheRoot)).toEqual([path.basename(dir)]);
  });

  it('an aborted signal converts nothing', async () => {
    const cacheRoot = path.join(tmp, 'aborted');
    await expect(convertOffThread(fixture, { cacheRoot, signal: AbortSignal.abort() })).rejects.toBeInstanceOf(CancelledError);
    expect(existsSync(cacheRoot)).toBe(false);
  });
});

describe.skipIf(!hasFixture)('conversion on a node', () => {
  it('reports labelled progress, and the job cancel stops the thread and leaves nothing cached', async () => {
    // A copy under a fresh name: its cache entry (named after the folder) cannot exist yet.
    const model = path.join(tmp, `thread-node-${process.pid}`);
    for (const sub of ['model_index.json', 'unet', 'vae', 'text_encoder', 'tokenizer', 'scheduler'])
      await cp(path.join(fixture, sub), path.join(model, sub), { recursive: true });
    const controller = new AbortController();
    const reports: { step: number; total: number; label?: string }[] = [];
    const noop = () => undefined;
    const ctx: Pick<NodeContext, 'progress' | 'log' | 'signal'> = {
      signal: controller.signal,
      progress: (step, total, label) => {
        reports.push({ step, total, label });
        controller.abort();
      },
      log: { debug: noop, info: noop, warn: noop, error: noop },
    };
    const source = { path: model, dtype: 'float32' as const, loras: [] };
    await expect(convertedDir(source, 'thread-node', ctx)).rejects.toBeInstanceOf(CancelledError);
    expect(reports[0]).toMatchObject({ total: 1000, label: 'converting' });
    const dir = convertedPath(model, { dtype: 'float32', loras: [] });
    expect(existsSync(dir)).toBe(false);
    expect(readdirSync(path.dirname(dir)).filter((n) => n.startsWith(path.basename(model)))).toEqual([]);
  });

  it("the Queue panel shows a labelled phase as a percentage, a node's own steps as a count", () => {
    const plan = [{ id: 'load', type: 'load_model', title: 'Load Model' }];
    const live = { done: [], current: { nodeId: 'load', type: 'load_model', startedAt: 0, step: 421, steps: 1000, label: 'converting' } };
    const converting = progressOf(plan, live);
    expect(converting).toMatchObject({ nodeTitle: 'Load Model', stepLabel: 'converting' });
    expect(stepText(converting)).toBe(' converting 42%');
    const { label: _label, ...sampling } = live.current;
    expect(stepText(progressOf(plan, { done: [], current: { ...sampling, step: 12, steps: 30 } }))).toBe(' 12/30');
  });
});

/**
 * The bench's cost of each regional control (server/bench/region-controls.ts) on the demo model: the
 * rows of the one UNet call per step are the ones the regional rules promise, and every figure is there.
 * Times are printed, not asserted.
 */
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { benchRegionControls, printControlCosts } from '../server/bench/region-controls.ts';
import { SdPipeline } from '../server/engine/sd/pipeline.ts';
import { ensureDemoModel } from '../server/models/demo/index.ts';

let tmp: string;
let pipe: SdPipeline;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'region-bench-'));
  await cp(await ensureDemoModel(), tmp, { recursive: true, filter: (src) => !/attention-(merge|maps)/.test(path.basename(src)) });
  pipe = await SdPipeline.load(tmp, { executionProvider: 'cpu' });
}, 120_000);
afterAll(async () => {
  await pipe?.release();
  await rm(tmp, { recursive: true, force: true });
});

describe('bench: cost of each regional control', () => {
  it('one UNet call per step, with the rows each control adds', async () => {
    const costs = await benchRegionControls(pipe, 8, 8, 1);
    const lines: string[] = [];
    printControlCosts(costs, (l) => lines.push(l));
    console.log(lines.join('\n'));
    const rows = Object.fromEntries(costs.map((c) => [`${c.method}: ${c.control}`, c.rowsPerCall]));
    expect(rows).toEqual({
      // ∅, c1, c2; a negative, a window's fallback and the base prompt are one more row each (the fallback and
      // the base are both the source prompt here: one row for the two).
      'epsilon merge: plain': 3,
      'epsilon merge: negative (region 1)': 4,
      'epsilon merge: guidance (region 2: 30)': 3,
      'epsilon merge: base prompt (r = 0.2)': 4,
      'epsilon merge: step window (region 1 from 30%)': 4,
      'epsilon merge: all of them': 5,
      // Attention merge: rows [negatives, merged] whatever the controls (they are conditionings of the rewritten UNet).
      'attention merge: plain': 2,
      'attention merge: negative (region 1)': 2,
      'attention merge: guidance (region 2: 30)': 2,
      'attention merge: base prompt (r = 0.2)': 2,
      'attention merge: step window (region 1 from 30%)': 2,
      'attention merge: all of them': 2,
      'inversion: plain': 1,
      'inversion: attention maps (words mask)': 1,
    });
    for (const c of costs) {
      expect(c.unetCallsPerStep, `${c.method}: ${c.control}`).toBe(1);
      expect(c.msPerStep).toBeGreaterThan(0);
    }
  }, 180_000);
});

/**
 * One copy of the UNet weights (issue 23): a model holds one UNet session whatever its samplers ask for.
 * The stock graph until an attention merge; then the rewrite of N conditionings replaces it (closed
 * first), and serves stock calls (all-ones mask, zero-weight pads) and merges of fewer styles, with the
 * same numbers as the sessions it replaces.
 */
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDemoModel } from '../server/models/demo/index.ts';
import { openSessionCount } from '../server/engine/runtime/inference-thread.ts';
import { SdPipeline } from '../server/engine/sd/pipeline.ts';
import { maxAbs, maxAbsDiff, seededValues } from './support/numeric.ts';

let tmp: string;
let pipe: SdPipeline;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'dss-one-unet-'));
  const dir = path.join(tmp, 'demo');
  await cp(await ensureDemoModel(), dir, { recursive: true, filter: (src) => !/attention-merge/.test(path.basename(src)) });
  pipe = await SdPipeline.load(dir, { executionProvider: 'cpu', attentionCacheDir: path.join(tmp, 'cache') });
});
afterAll(async () => {
  await pipe?.release();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('one UNet session per model', () => {
  it('stock, attention merge of 2 and of 3 styles: one UNet session, the same numbers as separate sessions', async () => {
    const { latentChannels: C, textLength: L, textDim: D } = pipe.info;
    const [w, h] = [12, 8];
    const sample = seededValues(2 * C * h * w, 1);
    const [c1, c2, c3] = [2, 3, 4].map((seed) => seededValues(2 * L * D, seed)) as [Float32Array, Float32Array, Float32Array];
    const copy = (a: Float32Array) => Float32Array.from(a);
    const sessions = openSessionCount();
    expect(pipe.unetConditionings).toBe(1);

    const stock = copy(await pipe.unet(sample, 2, h, w, 500, c1));
    const ramp = new Float32Array(w * h).map((_, p) => (p % w) / (w - 1));
    const merge2 = async () => copy(await pipe.unet(sample, 2, h, w, 500, c1, await pipe.attentionMergeExtras([c2], 2, ramp, w, h)));
    const twoOnTwo = await merge2();
    expect(pipe.unetConditionings).toBe(2);
    const stockOnTwo = copy(await pipe.unet(sample, 2, h, w, 500, c1));

    const thirds = new Float32Array(2 * w * h).fill(1 / 3);
    const threeOnThree = copy(await pipe.unet(sample, 2, h, w, 500, c1, await pipe.attentionMergeExtras([c2, c3], 2, thirds, w, h)));
    expect(pipe.unetConditionings).toBe(3);
    const stockOnThree = copy(await pipe.unet(sample, 2, h, w, 500, c1));
    const twoOnThree = await merge2();

    // One UNet session at all times: the count of open sessions never grew, the slot opened two more in turn.
    expect(openSessionCount()).toBe(sessions);
    expect(pipe.unetSessionsOpened).toBe(3);
    const tolerance = 1e-6 * Math.max(1, maxAbs(stock));
    expect(maxAbsDiff(stockOnTwo, stock)).toBeLessThanOrEqual(tolerance);
    expect(maxAbsDiff(stockOnThree, stock)).toBeLessThanOrEqual(tolerance);
    expect(maxAbsDiff(twoOnThree, twoOnTwo)).toBeLessThanOrEqual(tolerance);
    // Not vacuous: the merges differ from the stock UNet and from each other.
    expect(maxAbsDiff(twoOnTwo, stock)).toBeGreaterThan(1e-4);
    expect(maxAbsDiff(threeOnThree, twoOnTwo)).toBeGreaterThan(1e-4);
  });

  it('a merge of more styles than the session takes is refused before it reaches the session', async () => {
    const { textLength: L, textDim: D } = pipe.info;
    await expect(pipe.attentionMergeExtras([seededValues(L * D, 7)], 2, new Float32Array(64), 8, 8)).rejects.toThrow(/conditioning 2 has/);
  });
});

/**
 * Session creation: the options each provider gets, and the optimized-graph cache (written on the first
 * start, read on the second, the same outputs, invalidated by a changed weights file).
 */
import { mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSession, graphShapingOptions, sessionOptions } from '../server/engine/runtime/sessions.ts';
import { ort, type InferenceSession } from '../server/engine/runtime/runtime.ts';
import { writeDemoModel } from '../server/models/demo/index.ts';
import { maxAbsDiff } from './support/numeric.ts';

let root: string;
let model: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'dualstyle-sessions-'));
  await writeDemoModel(path.join(root, 'model'));
  model = path.join(root, 'model/unet/model.onnx');
});
afterAll(() => rm(root, { recursive: true, force: true }));

describe('sessionOptions', () => {
  it('CUDA: the device id, and weights outside the arena; CPU: neither', () => {
    const cuda = sessionOptions('cuda', { deviceId: 1 });
    expect(cuda.executionProviders).toEqual([{ name: 'cuda', deviceId: 1 }]);
    expect(cuda.extra).toEqual({ session: { use_device_allocator_for_initializers: '1' } });
    expect(cuda.graphOptimizationLevel).toBe('all');
    const cpu = sessionOptions('cpu', { deviceId: 1 });
    expect(cpu.executionProviders).toEqual(['cpu']);
    expect(cpu.extra).toBeUndefined();
    // CPU: the arena stays, the memory pattern goes (memory.ts); neither is part of the optimized graph's key.
    expect(cpu).toMatchObject({ enableCpuMemArena: true, enableMemPattern: false });
    expect(graphShapingOptions(cpu)).not.toHaveProperty('enableMemPattern');
    expect(graphShapingOptions(cpu)).toMatchObject({ executionProviders: ['cpu'], graphOptimizationLevel: 'all' });
    // Options cross to the inference thread by structured clone: plain data only.
    expect(structuredClone(cuda)).toEqual(cuda);
    expect(structuredClone(cpu)).toEqual(cpu);
  });
});

async function run(session: InferenceSession): Promise<Float32Array> {
  const n = 2 * 4 * 8 * 8;
  const out = await session.run({
    sample: new ort.Tensor(
      'float32',
      Float32Array.from({ length: n }, (_, i) => Math.sin(i)),
      [2, 4, 8, 8],
    ),
    timestep: new ort.Tensor('float32', new Float32Array([500, 500]), [2]),
    encoder_hidden_states: new ort.Tensor(
      'float32',
      Float32Array.from({ length: 2 * 77 * 32 }, (_, i) => Math.cos(i)),
      [2, 77, 32],
    ),
  });
  return out.out_sample!.data as Float32Array;
}

describe('optimized-graph cache', () => {
  it('writes the optimized graph on the first start, loads it on the second, same outputs', async () => {
    const cache = { dir: path.join(root, 'cache'), minBytes: 0 };
    const plain = await createSession(model, 'cpu', { optimizedCache: null });
    expect(plain.cache).toBe('off');
    const first = await createSession(model, 'cpu', { optimizedCache: cache });
    expect(first.cache).toBe('written');
    const entries = await readdir(cache.dir);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatch(/^[0-9a-f]{16}-cpu-[0-9a-f]{16}$/);
    const files = await readdir(path.join(cache.dir, entries[0]!));
    expect(files.sort()).toEqual(['model.onnx', 'model.onnx.data']);
    const second = await createSession(model, 'cpu', { optimizedCache: cache });
    expect(second.cache).toBe('hit');
    const [a, b, c] = [await run(plain.session), await run(first.session), await run(second.session)];
    expect(maxAbsDiff(a, b)).toBeLessThan(1e-5);
    expect(maxAbsDiff(a, c)).toBeLessThan(1e-5);
    await Promise.all([plain, first, second].map((s) => s.session.release()));
  });

  it('a changed weights file is a different model: optimized again, the old entry removed', async () => {
    const cache = { dir: path.join(root, 'cache2'), minBytes: 0 };
    const first = await createSession(model, 'cpu', { optimizedCache: cache });
    const [before] = await readdir(cache.dir);
    const weights = path.join(path.dirname(model), 'weights.pb');
    const later = new Date((await stat(weights)).mtimeMs + 5000);
    await utimes(weights, later, later);
    const second = await createSession(model, 'cpu', { optimizedCache: cache });
    expect(second.cache).toBe('written');
    const after = await readdir(cache.dir);
    expect(after).toHaveLength(1);
    expect(after[0]).not.toBe(before);
    await Promise.all([first, second].map((s) => s.session.release()));
  });

  it('a cache folder that cannot be written opens the model without the cache', async () => {
    // A file where the cache folder should be: mkdir fails with ENOTDIR, as on a read-only install.
    const blocked = path.join(root, 'not-a-folder');
    await writeFile(blocked, 'x');
    const s = await createSession(model, 'cpu', { optimizedCache: { dir: path.join(blocked, 'cache'), minBytes: 0 } });
    expect(s.cache).toBe('off');
    const plain = await createSession(model, 'cpu', { optimizedCache: null });
    expect(maxAbsDiff(await run(s.session), await run(plain.session))).toBe(0);
    await Promise.all([s, plain].map((x) => x.session.release()));
  });

  it('small models are not cached (below minBytes), nor when the cache is off', async () => {
    const cache = { dir: path.join(root, 'cache3'), minBytes: 1 << 30 };
    const s = await createSession(model, 'cpu', { optimizedCache: cache });
    expect(s.cache).toBe('off');
    await expect(readdir(cache.dir)).rejects.toThrow();
    await s.session.release();
  });
});

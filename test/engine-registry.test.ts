/** The pipeline registry keeps a bounded number of models loaded and reloads a released one on use. */
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ensureDemoModel, writeDemoModel } from '../server/models/demo/index.ts';
import { fingerprintFolder } from '../server/engine/sd/model-folder.ts';
import { PipelineRegistry } from '../server/engine/sd/pipelines.ts';

describe('PipelineRegistry', () => {
  it('releases the least recently used pipeline beyond its bound, and loads it again when asked', async () => {
    const dirA = await ensureDemoModel();
    const dirB = path.join(await mkdtemp(path.join(os.tmpdir(), 'dualstyle-reg-')), 'model-b');
    await writeDemoModel(dirB, { seed: 5 });
    const registry = new PipelineRegistry(1);
    const a = registry.handle(dirA, 'cpu', await fingerprintFolder(dirA));
    const b = registry.handle(dirB, 'cpu', await fingerprintFolder(dirB));

    const pa = await a.acquire();
    expect(await a.acquire()).toBe(pa); // reused while loaded
    await pa.encodeText('a cat');

    const pb = await b.acquire();
    expect(registry.size).toBe(1);
    // A was released to make room: its sessions are gone...
    await expect(pa.encodeText('a dog')).rejects.toThrow(/released/);
    // ...and the handle loads it again.
    const pa2 = await a.acquire();
    expect(pa2).not.toBe(pa);
    expect((await pa2.encodeText('a dog')).embedding.length).toBe(77 * pa2.info.textDim);
    await expect(pb.encodeText('x')).rejects.toThrow(/released/);
  });

  it('forgets a failed load so the next use retries', async () => {
    const registry = new PipelineRegistry(2);
    const h = registry.handle('/nonexistent/model', 'cpu', 'x');
    await expect(h.acquire()).rejects.toThrow(/nonexistent/);
    expect(registry.size).toBe(0);
  });
});

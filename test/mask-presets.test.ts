/**
 * Mask presets (server/store/mask-presets.ts, /api/mask-presets): a Mask node's settings saved under a
 * name, checked against the Mask node's parameters, listed, read back, applied to another graph's Mask
 * node (the same mask there), deleted; bad names, bad settings and a full store are refused.
 */
import { promises as fs } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Studio } from '../server/app.ts';
import { MaskPresetStore } from '../server/store/mask-presets.ts';
import { StoreError } from '../server/store/errors.ts';
import { encodePoints } from '../server/protocol/painting.ts';
import { loadTemplate, Runner, shrink, withParams } from './support/pipeline-harness.ts';
import { nodeDefinitions } from '../nodes/index.ts';
import { api, startTestStudio, tempDir } from './support/api-harness.ts';

let dataDir: string;
let studio: Studio;

beforeAll(async () => {
  dataDir = await tempDir('mask-presets');
  studio = await startTestStudio(dataDir, { catalog: nodeDefinitions });
});
afterAll(async () => {
  await studio?.close();
  await fs.rm(dataDir, { recursive: true, force: true });
});

describe('mask presets over HTTP', () => {
  it('saves the painted mask of one graph and gives the same mask in another', async () => {
    const painted = await loadTemplate('painted-mask');
    const params = painted.nodes.find((n) => n.type === 'Mask')!.params!;
    const saved = await api(studio, 'PUT', '/api/mask-presets/house%20and%20hills', { params });
    expect(saved.status).toBe(200);
    expect(saved.body).toMatchObject({ name: 'house and hills', params: { shape: 'painted', styles: 3, strokes: params.strokes } });
    // Defaults are filled in: a preset holds every setting of the node.
    expect(saved.body.params.sharpness).toBe(20);
    const list = await api(studio, 'GET', '/api/mask-presets');
    expect(list.body).toEqual([{ name: 'house and hills', shape: 'painted', styles: 3, savedAt: expect.any(Number) }]);
    const read = await api(studio, 'GET', '/api/mask-presets/house%20and%20hills');
    expect(read.body.params).toEqual(saved.body.params);

    // Applied to the Mask node of another graph (three styles, logistic before): the same mask as the painted template's.
    const runner = await Runner.create();
    const preview = async (graph: Parameters<typeof shrink>[0]) => (await runner.run(shrink(graph))).results['mask']!.images![0]!.url;
    const other = await loadTemplate('three-styles');
    expect(other.nodes.find((n) => n.type === 'Mask')!.params!.shape).not.toBe('painted');
    const applied = withParams(other, { mask: read.body.params });
    expect(await preview(applied)).toBe(await preview(painted));
    expect(await preview(applied)).not.toBe(await preview(other));
  }, 120_000);

  it('keeps a words mask (shape, words, strokes over it)', async () => {
    const strokes = [{ style: 1, radius: 0.1, points: encodePoints([0.5, 0.5]) }];
    const res = await api(studio, 'PUT', '/api/mask-presets/the-house', { params: { shape: 'words', words: 'house', strokes, fill: 2 } });
    expect(res.status).toBe(200);
    expect((await api(studio, 'GET', '/api/mask-presets/the-house')).body.params).toMatchObject({ shape: 'words', words: 'house', strokes });
    expect((await api(studio, 'DELETE', '/api/mask-presets/the-house')).body).toEqual({ deleted: 'the-house' });
    expect((await api(studio, 'GET', '/api/mask-presets/the-house')).status).toBe(404);
  });

  it('refuses settings a Mask node would refuse, and bad names, saying why', async () => {
    const sharp = await api(studio, 'PUT', '/api/mask-presets/too-sharp', { params: { sharpness: 500 } });
    expect(sharp.status).toBe(400);
    expect(sharp.body.error).toMatchObject({ code: 'invalid_preset', message: expect.stringMatching(/sharpness/) });
    const beyond = await api(studio, 'PUT', '/api/mask-presets/beyond', {
      params: { shape: 'painted', styles: 2, strokes: [{ style: 3, radius: 0.1, points: encodePoints([0.5, 0.5]) }] },
    });
    expect(beyond.status).toBe(400);
    expect(beyond.body.error.message).toMatch(/stroke 1 paints style 3, but the mask has 2 styles/);
    const words = await api(studio, 'PUT', '/api/mask-presets/no-words', { params: { shape: 'words', words: '' } });
    expect(words.body.error.message).toMatch(/needs words of the source prompt/);
    expect((await api(studio, 'PUT', '/api/mask-presets/.hidden', { params: {} })).status).toBe(400);
    expect((await api(studio, 'GET', '/api/mask-presets/missing')).status).toBe(404);
    expect((await api(studio, 'DELETE', '/api/mask-presets/missing')).status).toBe(404);
  });
});

describe('mask preset store', () => {
  it('refuses a new preset beyond its limit, still replaces an existing one', async () => {
    const dir = await tempDir('mask-preset-store');
    try {
      const store = new MaskPresetStore(dir, 2);
      await store.save('a', { shape: 'linear' });
      await store.save('b', { shape: 'logistic' });
      await expect(store.save('c', { shape: 'painted' })).rejects.toThrow(StoreError);
      await expect(store.save('c', { shape: 'painted' })).rejects.toThrow(/2 mask presets already/);
      await store.save('a', { shape: 'radial' });
      expect((await store.read('a')).params).toEqual({ shape: 'radial' });
      await fs.writeFile(`${dir}/broken.json`, '{');
      await expect(store.read('broken')).rejects.toThrow(/not valid JSON/);
      expect((await store.list()).map((e) => e.name)).toEqual(['a', 'b']);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

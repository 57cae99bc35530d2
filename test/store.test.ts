import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Graph } from '../server/protocol/graph.ts';
import { writeFileAtomic } from '../server/util/atomic.ts';
import { StoreError } from '../server/store/errors.ts';
import { GraphStore } from '../server/store/graphs.ts';
import { isSafeName, resolveInside, uploadsDir } from '../server/store/paths.ts';
import { findStoredFile, storeUpload } from '../server/store/uploads.ts';

let tmp: string;
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'dualstyle-store-'));
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

const graph = (title: string): Graph => ({
  format: 'dualstyle-graph',
  version: 1,
  nodes: [],
  edges: [],
  meta: { title },
});

describe('names', () => {
  it.each(['a', 'My graph 2', 'epsilon-merge_v1.2', 'x'.repeat(64)])('accepts %j', (name) => {
    expect(isSafeName(name)).toBe(true);
  });
  it.each(['', '.hidden', '..', '../etc/passwd', '..%2F..%2Fx', 'a/b', 'a\\b', 'a..b', 'x'.repeat(65), ' lead', 'nul\0', 'ü'])('refuses %j', (name) => {
    expect(isSafeName(name)).toBe(false);
  });
  it('resolveInside refuses anything that leaves the folder', () => {
    expect(resolveInside('/data/graphs', 'a.json')).toBe(path.resolve('/data/graphs/a.json'));
    expect(() => resolveInside('/data/graphs', '../a.json')).toThrow(/escapes/);
    expect(() => resolveInside('/data/graphs', 'sub/a.json')).toThrow(/escapes/);
  });
});

describe('writeFileAtomic', () => {
  it('writes, replaces and leaves no temp files behind', async () => {
    const file = path.join(tmp, 'atomic', 'f.txt');
    await writeFileAtomic(file, 'one');
    await writeFileAtomic(file, 'two');
    expect(await fs.readFile(file, 'utf8')).toBe('two');
    expect(await fs.readdir(path.dirname(file))).toEqual(['f.txt']);
  });
});

describe('GraphStore', () => {
  it('lists templates and user graphs, saves atomically, refuses template names', async () => {
    const templates = path.join(tmp, 'templates');
    await fs.mkdir(templates);
    await fs.writeFile(path.join(templates, 'epsilon-merge.json'), JSON.stringify(graph('Epsilon merge')));
    await fs.writeFile(path.join(templates, 'notes.txt'), 'not a graph');
    const store = new GraphStore(templates, path.join(tmp, 'user'));

    expect(await store.list()).toEqual([{ name: 'epsilon-merge', source: 'template', title: 'Epsilon merge', updatedAt: expect.any(Number) }]);
    const saved = await store.save('mine', graph('Mine'));
    expect(saved).toMatchObject({ name: 'mine', source: 'user', title: 'Mine' });
    expect((await store.list()).map((g) => `${g.source}:${g.name}`)).toEqual(['template:epsilon-merge', 'user:mine']);
    expect(await store.read('mine')).toEqual({ source: 'user', graph: graph('Mine') });
    expect((await store.read('epsilon-merge')).source).toBe('template');

    await expect(store.save('epsilon-merge', graph('x'))).rejects.toMatchObject({ code: 'read_only' });
    await expect(store.delete('epsilon-merge')).rejects.toMatchObject({ code: 'read_only' });
    await expect(store.save('../escape', graph('x'))).rejects.toMatchObject({ code: 'invalid_name' });
    await expect(store.read('../../etc/passwd')).rejects.toBeInstanceOf(StoreError);

    await store.delete('mine');
    await expect(store.read('mine')).rejects.toMatchObject({ code: 'not_found' });
    await expect(store.delete('mine')).rejects.toMatchObject({ code: 'not_found' });
  });

  it('reports a corrupt file clearly but still lists it', async () => {
    const store = new GraphStore(path.join(tmp, 'none'), path.join(tmp, 'user2'));
    await fs.mkdir(store.userDir, { recursive: true });
    await fs.writeFile(path.join(store.userDir, 'broken.json'), '{ nope');
    expect((await store.list()).map((g) => g.name)).toEqual(['broken']);
    await expect(store.read('broken')).rejects.toMatchObject({ code: 'corrupt' });
  });
});

describe('storeUpload', () => {
  it('stores a PNG under its content hash and dedupes', async () => {
    const dataDir = path.join(tmp, 'data');
    const jpeg = await sharp({ create: { width: 12, height: 7, channels: 3, background: '#3366cc' } })
      .jpeg()
      .toBuffer();
    const a = await storeUpload(dataDir, jpeg, 1000);
    expect(a).toMatchObject({ width: 12, height: 7 });
    expect(a.name).toMatch(/^[0-9a-f]{32}\.png$/);
    expect(isSafeName(a.name)).toBe(true);
    const b = await storeUpload(dataDir, jpeg, 1000);
    expect(b.name).toBe(a.name);
    const file = await findStoredFile(uploadsDir(dataDir), a.name, 'upload');
    expect((await sharp(file).metadata()).format).toBe('png');
    await expect(findStoredFile(uploadsDir(dataDir), 'missing.png', 'upload')).rejects.toMatchObject({ code: 'not_found' });
    await expect(findStoredFile(uploadsDir(dataDir), '../x.png', 'upload')).rejects.toMatchObject({ code: 'invalid_name' });
  });

  it('refuses garbage, other formats and images over the pixel limit', async () => {
    const dataDir = path.join(tmp, 'data2');
    await expect(storeUpload(dataDir, Buffer.from('hello, not an image'), 1000)).rejects.toMatchObject({
      code: 'unsupported_image',
      message: expect.stringMatching(/not a supported image \(png, jpeg, webp\)/),
    });
    const gif = await sharp({ create: { width: 2, height: 2, channels: 3, background: 'red' } })
      .gif()
      .toBuffer();
    await expect(storeUpload(dataDir, gif, 1000)).rejects.toMatchObject({ code: 'unsupported_image' });
    const big = await sharp({ create: { width: 40, height: 30, channels: 3, background: 'red' } })
      .png()
      .toBuffer();
    await expect(storeUpload(dataDir, big, 1000)).rejects.toMatchObject({
      code: 'image_too_large',
      message: expect.stringContaining('40×30'),
    });
    // Truncated PNG: header fine, pixels missing.
    const truncated = big.subarray(0, Math.floor(big.length / 2));
    await expect(storeUpload(dataDir, truncated, 10_000)).rejects.toMatchObject({ code: 'unsupported_image' });
  });
});

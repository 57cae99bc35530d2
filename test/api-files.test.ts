/**
 * The studio's files over HTTP: saved graphs and templates (listing, read-only templates, names,
 * survival across a restart) and uploads (kept names, PNG storage, refusals), against a real studio.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Studio } from '../server/app.ts';
import { api, graphOf, startTestStudio, tempDir } from './support/api-harness.ts';

let dataDir: string;
let templatesDir: string;
let studio: Studio;

const TEMPLATE = graphOf(
  [
    { id: 'n', type: 'Constant' },
    { id: 'save', type: 'Save' },
  ],
  ['n.value -> save.value'],
  'Demo template',
);

beforeAll(async () => {
  dataDir = await tempDir('api-files');
  templatesDir = await tempDir('api-files-templates');
  await fs.writeFile(path.join(templatesDir, 'demo-template.json'), JSON.stringify(TEMPLATE));
  studio = await startTestStudio(dataDir, { graphsDir: templatesDir });
});

afterAll(async () => {
  await studio?.close();
  await fs.rm(dataDir, { recursive: true, force: true });
  await fs.rm(templatesDir, { recursive: true, force: true });
});

describe('graphs', () => {
  const wip = graphOf(
    [
      { id: 'add', type: 'Add', params: { offset: 0 } },
      { id: 'save', type: 'Save' },
    ],
    ['add.sum -> save.value'],
    'Work in progress',
  );

  it('refuses a graph too deeply nested to write back, with a 400', async () => {
    // JSON.parse reads this; JSON.stringify's recursion cannot write it (it was a 500).
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    const body = `{"graph":{"format":"dualstyle-graph","version":1,"nodes":[],"edges":[],"meta":{"x":${deep}}}}`;
    const res = await api(studio, 'PUT', '/api/graphs/too-deep', body);
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'invalid_graph', message: expect.stringMatching(/nested too deeply/) });
    expect((await api(studio, 'GET', '/api/graphs/too-deep')).status).toBe(404);
  });

  it('lists templates and refuses to overwrite or delete them', async () => {
    const list = await api(studio, 'GET', '/api/graphs');
    expect(list.body).toContainEqual({ name: 'demo-template', source: 'template', title: 'Demo template', updatedAt: expect.any(Number) });
    const read = await api(studio, 'GET', '/api/graphs/demo-template');
    expect(read.status).toBe(200);
    expect(read.body).toEqual(TEMPLATE);
    const put = await api(studio, 'PUT', '/api/graphs/demo-template', { graph: wip });
    expect(put.status).toBe(409);
    expect(put.body.error).toMatchObject({ code: 'read_only', message: expect.stringMatching(/templates are read-only; save under another name/) });
    const del = await api(studio, 'DELETE', '/api/graphs/demo-template');
    expect(del.status).toBe(409);
    expect(del.body.error.code).toBe('read_only');
    expect((await api(studio, 'GET', '/api/graphs/demo-template')).body).toEqual(TEMPLATE);
  });

  it.each([
    ['GET', encodeURIComponent('../etc/passwd')],
    ['GET', '..%2F..%2Fx'],
    ['PUT', '..%2F..%2Fx'],
    ['DELETE', '..%2F..%2Fx'],
    ['GET', 'a/b'],
    ['PUT', 'a/b'],
    ['PUT', ''],
    ['DELETE', ''],
    ['PUT', 'x'.repeat(65)],
    ['PUT', '.hidden'],
    ['PUT', encodeURIComponent('a\\b')],
  ])('%s /api/graphs/%s is refused as an invalid name', async (method, name) => {
    const res = await api(studio, method, `/api/graphs/${name}`, method === 'PUT' ? { graph: wip } : undefined);
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(/^invalid graph name/);
  });

  it('refuses to save something that is not a graph', async () => {
    const res = await api(studio, 'PUT', '/api/graphs/garbage', { graph: { format: 'comfyui', nodes: 3 } });
    expect(res.status).toBe(400);
    expect(res.body.error.issues.length).toBeGreaterThan(0);
    expect((await api(studio, 'GET', '/api/graphs/garbage')).status).toBe(404);
  });

  it('saves, lists, reads and deletes a user graph, which survives a restart', async () => {
    const put = await api(studio, 'PUT', '/api/graphs/My graph 1', { graph: wip });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    expect(put.body.saved).toMatchObject({ name: 'My graph 1', source: 'user', title: 'Work in progress' });
    // Saved although the adder has no inputs; the problems come back as warnings.
    expect(put.body.warnings.map((i: { code: string }) => i.code)).toContain('missing_input');
    const files = await fs.readdir(path.join(dataDir, 'graphs'));
    expect(files).toEqual(['My graph 1.json']); // no temp files left behind

    const list = await api(studio, 'GET', '/api/graphs');
    expect(list.body.map((g: { name: string; source: string }) => `${g.source}:${g.name}`)).toEqual(['template:demo-template', 'user:My graph 1']);

    // Restart on the same data folder.
    const second = await startTestStudio(dataDir, { graphsDir: templatesDir });
    try {
      const read = await api(second, 'GET', `/api/graphs/${encodeURIComponent('My graph 1')}`);
      expect(read.status).toBe(200);
      expect(read.body).toEqual(wip);
      const del = await api(second, 'DELETE', '/api/graphs/My%20graph%201');
      expect(del.status).toBe(200);
      expect((await api(second, 'GET', '/api/graphs/My%20graph%201')).status).toBe(404);
      const again = await api(second, 'DELETE', '/api/graphs/My%20graph%201');
      expect(again.status).toBe(404);
      expect(again.body.error.code).toBe('not_found');
    } finally {
      await second.close();
    }
  });
});

describe('uploads', () => {
  it('keeps the name of the uploaded file beside it, and serves the built-in sample as a thumbnail', async () => {
    const png = await sharp({ create: { width: 40, height: 30, channels: 3, background: '#3366cc' } })
      .png()
      .toBuffer();
    const up = await fetch(new URL('/api/uploads', studio.url), {
      method: 'POST',
      headers: { 'content-type': 'image/png', 'x-file-name': encodeURIComponent('C:\\photos\\Ferienhaus ü.png') },
      body: new Uint8Array(png),
    });
    expect(up.status).toBe(201);
    const stored = (await up.json()) as { name: string; fileName: string };
    expect(stored.fileName).toBe('Ferienhaus ü.png');
    const info = await api(studio, 'GET', `/api/uploads/${stored.name}/info`);
    expect(info.status).toBe(200);
    expect(info.body).toEqual({ name: stored.name, width: 40, height: 30, url: `/api/uploads/${stored.name}`, fileName: 'Ferienhaus ü.png' });
    expect((await api(studio, 'GET', '/api/uploads/nope.png/info')).status).toBe(404);

    const sample = await fetch(new URL('/api/builtin/sample.png', studio.url));
    expect(sample.status).toBe(200);
    expect(sample.headers.get('content-type')).toBe('image/png');
    const meta = await sharp(Buffer.from(await sample.arrayBuffer())).metadata();
    expect([meta.width, meta.height]).toEqual([256, 192]);
    expect((await api(studio, 'GET', '/api/builtin/other.png')).status).toBe(404);
  });

  it('stores an uploaded image as PNG and serves it back', async () => {
    const jpeg = await sharp({ create: { width: 20, height: 10, channels: 3, background: { r: 200, g: 40, b: 10 } } })
      .jpeg()
      .toBuffer();
    const res = await fetch(new URL('/api/uploads', studio.url), { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: new Uint8Array(jpeg) });
    expect(res.status).toBe(201);
    const body = (await res.json()) as { name: string; width: number; height: number; url: string };
    expect(body).toMatchObject({ width: 20, height: 10, url: `/api/uploads/${body.name}` });
    const back = await fetch(new URL(body.url, studio.url));
    expect(back.status).toBe(200);
    expect(back.headers.get('content-type')).toBe('image/png');
    const meta = await sharp(Buffer.from(await back.arrayBuffer())).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 20, 10]);
    // It is a file in the data folder, so it survives a restart.
    expect(await fs.readdir(path.join(dataDir, 'uploads'))).toContain(body.name);
  });

  it('refuses bytes that are not an image', async () => {
    const res = await api(studio, 'POST', '/api/uploads', 'definitely not a PNG', { 'content-type': 'image/png' });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(/^not a supported image \(png, jpeg, webp\)/);
    const wrongType = await api(studio, 'POST', '/api/uploads', 'hello', { 'content-type': 'text/plain' });
    expect(wrongType.status).toBe(415);
  });

  it('answers missing or badly named files with JSON errors', async () => {
    const missing = await api(studio, 'GET', '/api/uploads/0123456789abcdef.png');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('not_found');
    expect((await api(studio, 'GET', '/api/results/..%2F..%2Fpackage.json')).status).toBe(400);
    expect((await api(studio, 'GET', '/api/results/missing.png')).status).toBe(404);
  });
});

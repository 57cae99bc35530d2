/**
 * Size discipline of the data folder (issue: hardening): a graph is stored at its own size whatever its
 * nesting, free-form JSON is bounded, saved graphs and uploads have quotas (507 when full), listing
 * reads an index instead of parsing every file, and temporary files of killed writes are removed at
 * start. Each case was an open hole before.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Studio } from '../server/app.ts';
import { createCatalog } from '../server/catalog.ts';
import { validateGraph } from '../server/graph/validate.ts';
import { nodeDefinitions } from '../nodes/index.ts';
import { api, graphOf, startTestStudio, tempDir } from './support/api-harness.ts';

let dataDir: string;
let studio: Studio;

beforeAll(async () => {
  dataDir = await tempDir('store-limits');
  studio = await startTestStudio(dataDir, { limits: { graphCount: 3, graphBytes: 64 * 1024, uploadsTotalBytes: 4000 } });
});

afterAll(async () => {
  await studio?.close();
  await fs.rm(dataDir, { recursive: true, force: true });
});

const graphFile = (name: string) => path.join(dataDir, 'graphs', `${name}.json`);
const small = (title: string) =>
  graphOf(
    [
      { id: 'n', type: 'Constant' },
      { id: 's', type: 'Save' },
    ],
    ['n.value -> s.value'],
    title,
  );

function nestedMeta(depth: number): string {
  return `{"graph":{"format":"dualstyle-graph","version":1,"nodes":[],"edges":[],"meta":{"x":${'['.repeat(depth)}${']'.repeat(depth)}}}}`;
}

describe('amplification through meta and params', () => {
  it('refuses the 8 KB body that used to become a 32 MB file', async () => {
    const body = nestedMeta(4000);
    expect(body.length).toBeLessThan(8200);
    const res = await api(studio, 'PUT', '/api/graphs/amplified', body);
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(/meta.*nested too deeply \(more than 32 levels\)/);
    await expect(fs.stat(graphFile('amplified'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('stores an allowed graph compactly: the file is no larger than the request', async () => {
    const body = nestedMeta(30);
    const res = await api(studio, 'PUT', '/api/graphs/nested-ok', body);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect((await fs.stat(graphFile('nested-ok'))).size).toBeLessThanOrEqual(body.length + 1);
    expect((await api(studio, 'GET', '/api/graphs/nested-ok')).body.meta.x).toEqual(JSON.parse(body).graph.meta.x);
    await api(studio, 'DELETE', '/api/graphs/nested-ok');
  });

  it('bounds node parameters too, even of node types it does not know', async () => {
    const deep = {
      format: 'dualstyle-graph',
      version: 1,
      nodes: [{ id: 'x', type: 'Unknown', params: { p: JSON.parse('['.repeat(40) + ']'.repeat(40)) } }],
      edges: [],
    };
    const res = await api(studio, 'PUT', '/api/graphs/deep-params', { graph: deep });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(/params.*nested too deeply/);
    const wide = graphOf([{ id: 'n', type: 'Constant', params: { note: 'x'.repeat(70 * 1024) } }]);
    const big = await api(studio, 'POST', '/api/validate', { graph: wide });
    expect(big.body.issues.map((i: { message: string }) => i.message).join()).toMatch(/too large \(more than 64 KiB/);
  });
});

describe('quotas', () => {
  it('refuses a new graph beyond the count with 507, while saving over one still works', async () => {
    for (const name of ['q1', 'q2', 'q3']) expect((await api(studio, 'PUT', `/api/graphs/${name}`, { graph: small(name) })).status).toBe(200);
    const full = await api(studio, 'PUT', '/api/graphs/q4', { graph: small('q4') });
    expect(full.status).toBe(507);
    expect(full.body.error).toMatchObject({ code: 'quota_exceeded', message: expect.stringMatching(/at most 3 saved graphs/) });
    expect((await api(studio, 'PUT', '/api/graphs/q2', { graph: small('q2 again') })).status).toBe(200);
    expect((await api(studio, 'DELETE', '/api/graphs/q3')).status).toBe(200);
    expect((await api(studio, 'PUT', '/api/graphs/q4', { graph: small('q4') })).status).toBe(200);
    for (const name of ['q1', 'q2', 'q4']) await api(studio, 'DELETE', `/api/graphs/${name}`);
  });

  it('refuses graphs beyond the total size with 507', async () => {
    const padded = (n: number) => ({ ...small('big'), meta: { title: 'big', description: 'x'.repeat(n) } });
    // Work in progress may hold node types the studio does not know; their parameters are kept as they are.
    const heavy = graphOf(Array.from({ length: 6 }, (_, i) => ({ id: `n${i}`, type: 'FromANewerVersion', params: { note: 'y'.repeat(6_000) } })));
    expect((await api(studio, 'PUT', '/api/graphs/heavy1', { graph: heavy })).status).toBe(200);
    const res = await api(studio, 'PUT', '/api/graphs/heavy2', { graph: heavy });
    expect(res.status).toBe(507);
    expect(res.body.error.message).toMatch(/in all and would take/);
    expect((await api(studio, 'PUT', '/api/graphs/light', { graph: padded(100) })).status).toBe(200);
    await api(studio, 'DELETE', '/api/graphs/heavy1');
    await api(studio, 'DELETE', '/api/graphs/light');
  });

  it('refuses uploads beyond the folder quota with 507; the same picture again takes no room', async () => {
    const png = (r: number) =>
      sharp({ create: { width: 24, height: 24, channels: 3, background: { r, g: 3, b: 200 } } })
        .png()
        .toBuffer();
    const upload = async (bytes: Buffer) =>
      fetch(new URL('/api/uploads', studio.url), { method: 'POST', headers: { 'content-type': 'image/png' }, body: new Uint8Array(bytes) });
    const first = await png(10);
    // Fill the folder up to the quota with files the user put there by hand.
    await fs.writeFile(path.join(dataDir, 'uploads', 'filler.bin'), Buffer.alloc(4000 - first.length - 10));
    expect((await upload(first)).status).toBe(201);
    expect((await upload(first)).status).toBe(201);
    const second = await upload(await png(250));
    expect(second.status).toBe(507);
    expect(((await second.json()) as { error: { code: string; message: string } }).error).toMatchObject({
      code: 'quota_exceeded',
      message: expect.stringMatching(/^the uploads folder is full/),
    });
    await fs.rm(path.join(dataDir, 'uploads', 'filler.bin'));
    expect((await upload(await png(250))).status).toBe(201);
  });
});

describe('listing', () => {
  it('reads titles from the index: an unchanged file is not parsed again, a changed one is', async () => {
    expect((await api(studio, 'PUT', '/api/graphs/indexed', { graph: small('Indexed title') })).status).toBe(200);
    const file = graphFile('indexed');
    const { size, mtime } = await fs.stat(file);
    // Same size and time, other bytes: only a listing that parses every file would notice.
    await fs.writeFile(file, 'x'.repeat(size));
    await fs.utimes(file, mtime, mtime);
    const list = async () => (await api(studio, 'GET', '/api/graphs')).body as { name: string; title: string }[];
    expect((await list()).find((g) => g.name === 'indexed')?.title).toBe('Indexed title');
    // An edit by hand (new time) is picked up.
    await fs.writeFile(file, JSON.stringify(small('Edited by hand')));
    expect((await list()).find((g) => g.name === 'indexed')?.title).toBe('Edited by hand');
    // The index survives a restart (it is kept in the data folder, not in graphs/).
    expect(await fs.readdir(path.join(dataDir, 'graphs'))).toEqual(['indexed.json']);
    await fs.stat(path.join(dataDir, '.graphs-index.json'));
    await api(studio, 'DELETE', '/api/graphs/indexed');
  });
});

describe('start-up', () => {
  it('removes temporary files of writers that died, and keeps those of live ones', async () => {
    const dir = await tempDir('store-temps');
    const graphs = path.join(dir, 'graphs');
    await fs.mkdir(graphs, { recursive: true });
    const dead = `.g.json.999999999.0123456789ab.tmp`;
    const live = `.g.json.${process.pid}.0123456789ab.tmp`;
    await fs.writeFile(path.join(graphs, dead), 'half a graph');
    await fs.writeFile(path.join(graphs, live), 'being written');
    await fs.writeFile(path.join(graphs, 'g.json'), JSON.stringify(small('kept')));
    const s = await startTestStudio(dir);
    try {
      expect((await fs.readdir(graphs)).sort()).toEqual([live, 'g.json'].sort());
    } finally {
      await s.close();
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

describe('Load Image names', () => {
  it('are checked with the graph, before any job runs', () => {
    const catalog = createCatalog(nodeDefinitions);
    for (const image of ['../../etc/passwd', '/etc/passwd', '.hidden.png', 'a/b.png']) {
      const graph = { format: 'dualstyle-graph', version: 1, nodes: [{ id: 'img', type: 'LoadImage', params: { image } }], edges: [] };
      const issues = validateGraph(graph, catalog, { requireOutput: false }).issues;
      expect(issues, image).toEqual([expect.objectContaining({ nodeId: 'img', field: 'image', message: expect.stringMatching(/name of an uploaded image/) })]);
    }
    for (const image of ['builtin:sample', '0123456789abcdef0123456789abcdef.png']) {
      const graph = { format: 'dualstyle-graph', version: 1, nodes: [{ id: 'img', type: 'LoadImage', params: { image } }], edges: [] };
      expect(validateGraph(graph, catalog, { requireOutput: false }).issues, image).toEqual([]);
    }
  });
});

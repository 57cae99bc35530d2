/**
 * The studio's API against a real studio on a random loopback port, driven over HTTP (fetch) and a
 * socket.io client, with the test node catalog (test/support/test-nodes.ts): health, catalog, models,
 * validation, jobs and their events, the queue. Files: api-files.test.ts; access and the command line:
 * api-access.test.ts.
 */
import { diagnoseCuda } from '../server/engine/cuda/cuda-doctor.ts';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Studio } from '../server/app.ts';
import { writeDemoModel } from '../server/models/demo/index.ts';
import { testNodes } from './support/test-nodes.ts';
import { api, EventLog, graphOf, slowGraph, startTestStudio, tempDir } from './support/api-harness.ts';

let dataDir: string;
let studio: Studio;
let events: EventLog;

beforeAll(async () => {
  dataDir = await tempDir('api');
  studio = await startTestStudio(dataDir);
  events = await EventLog.connect(studio);
});

afterAll(async () => {
  events?.close();
  await studio?.close();
  await fs.rm(dataDir, { recursive: true, force: true });
});

async function submit(graph: unknown, outputs?: string[]) {
  const res = await api(studio, 'POST', '/api/jobs', { graph, ...(outputs ? { outputs } : {}) });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body.job.id as string;
}

describe('basics', () => {
  it('reports health and the catalog', async () => {
    const health = await api(studio, 'GET', '/api/health');
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ ok: true, queue: { backend: 'embedded', ok: true }, version: expect.any(String), executionProvider: 'auto' });
    // What auto resolves to and why, with the CUDA diagnosis the editor shows (the same one sessions use).
    const d = diagnoseCuda();
    expect(health.body.executionProviderUsed).toBe(d.ready ? 'cuda' : 'cpu');
    expect(health.body.executionProviderNote).toContain(d.summary);
    expect(health.body.cuda).toMatchObject({
      ready: d.ready,
      summary: d.summary,
      fixes: d.fixes,
      gpu: 0,
      provider: { installed: d.provider.installed, onnxruntime: '1.29.0' },
    });
    expect(health.body.cuda.missing.map((m: { name: string }) => m.name)).toEqual(d.missing);
    expect(health.body.cuda.libraries.map((l: { name: string; path: string | null }) => [l.name, l.path])).toEqual(d.libraries.map((l) => [l.name, l.path]));
    if (!d.ready) expect(health.body.cuda.fixes.length).toBeGreaterThan(0);
    expect(['cpu', 'cuda']).toContain(health.body.executionProviderUsed);
    expect(health.body.executionProviderNote).toMatch(
      health.body.executionProviderUsed === 'cpu' ? /^auto: CUDA unavailable \(.+\); using CPU$/ : /^auto: CUDA/,
    );

    const catalog = await api(studio, 'GET', '/api/catalog');
    expect(catalog.status).toBe(200);
    expect(catalog.body.nodes.map((n: { type: string }) => n.type)).toEqual(testNodes.map((n) => n.type));
    const slow = catalog.body.nodes.find((n: { type: string }) => n.type === 'SlowCounter');
    expect(slow.params.find((p: { name: string }) => p.name === 'steps')).toMatchObject({ kind: 'integer', default: 5, min: 1 });
    expect(catalog.body.nodes.find((n: { type: string }) => n.type === 'Save').output).toBe(true);
  });

  it('answers unknown API routes with JSON 404 and other paths with the not-built page', async () => {
    const res = await api(studio, 'GET', '/api/nope');
    expect(res.status).toBe(404);
    expect(res.body.error).toMatchObject({ code: 'not_found' });
    const page = await fetch(new URL('/some/editor/route', studio.url));
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('npm run build');
  });

  it('lists the models Load Model can use, the demo labelled as such', async () => {
    await writeDemoModel(path.join(dataDir, 'models', 'mini-sd'));
    await fs.mkdir(path.join(dataDir, 'models', 'half-downloaded', 'unet'), { recursive: true });
    const res = await api(studio, 'GET', '/api/models');
    expect(res.status).toBe(200);
    const models = res.body.models as { model: string; label: string; demo: boolean; note?: string }[];
    expect(models[0]).toMatchObject({ model: 'demo', demo: true, note: expect.stringMatching(/random weights.*mean nothing/) });
    expect(models.map((m) => m.label)).toContain('mini-sd');
    expect(models.map((m) => m.label)).not.toContain('half-downloaded');
  });

  it('sends the queue state to a client that connects', async () => {
    const log = await EventLog.connect(studio);
    try {
      const q = await log.waitFor('queue');
      expect(q.args).toMatchObject({ pending: expect.any(Array) });
    } finally {
      log.close();
    }
  });
});

describe('validation', () => {
  it('returns issues as data, and requires an output only when asked', async () => {
    const noOutput = graphOf([{ id: 'n', type: 'Constant' }]);
    const live = await api(studio, 'POST', '/api/validate', { graph: noOutput });
    expect(live.status).toBe(200);
    expect(live.body).toEqual({ ok: true, issues: [], warnings: [] });
    const strict = await api(studio, 'POST', '/api/validate?requireOutput=1', { graph: noOutput });
    expect(strict.status).toBe(200);
    expect(strict.body.ok).toBe(false);
    expect(strict.body.issues.map((i: { code: string }) => i.code)).toContain('no_outputs');

    const bad = graphOf([
      { id: 'a', type: 'Add' },
      { id: 's', type: 'SlowCounter', params: { steps: 0 } },
    ]);
    const res = await api(studio, 'POST', '/api/validate', { graph: bad });
    expect(res.status).toBe(200);
    const codes = res.body.issues.map((i: { code: string; nodeId?: string }) => `${i.nodeId}:${i.code}`);
    expect(codes).toEqual(expect.arrayContaining(['a:missing_input']));
    expect(res.body.issues.some((i: { nodeId?: string; field?: string }) => i.nodeId === 's' && i.field === 'steps')).toBe(true);
  });

  it('refuses malformed JSON with a 400 JSON error', async () => {
    const res = await api(studio, 'POST', '/api/jobs', '{"graph": {"format": ');
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('malformed_json');
    expect(res.body.error.message).toMatch(/^malformed JSON: /);
  });

  it('refuses an oversize body with a 413 JSON error', async () => {
    const huge = JSON.stringify({ graph: { format: 'dualstyle-graph', padding: 'x'.repeat(2.5 * 1024 * 1024) } });
    const res = await api(studio, 'POST', '/api/validate', huge);
    expect(res.status).toBe(413);
    expect(res.body.error.message).toBe('request body too large (limit 2 MiB)');
  });

  it('refuses a body that is not JSON', async () => {
    const res = await api(studio, 'POST', '/api/jobs', 'graph=1', { 'content-type': 'text/plain' });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(/JSON body/);
  });

  it('refuses to queue an invalid graph, with every issue', async () => {
    const graph = graphOf(
      [
        { id: 'n', type: 'Constant' },
        { id: 'x', type: 'NoSuchNode' },
        { id: 'y', type: 'AlsoMissing' },
        { id: 'save', type: 'Save' },
      ],
      ['n.value -> save.value'],
    );
    const res = await api(studio, 'POST', '/api/jobs', { graph });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_graph');
    const unknown = res.body.error.issues.filter((i: { code: string }) => i.code === 'unknown_node_type');
    expect(unknown.map((i: { nodeId: string }) => i.nodeId).sort()).toEqual(['x', 'y']);
    expect(res.body.error.message).toMatch(/NoSuchNode|AlsoMissing/);
    // The same one-line summary as the runner's (it once said "1 more problems" here).
    expect(res.body.error.issues).toHaveLength(2);
    expect(res.body.error.message).toMatch(/\[unknown_node_type\] .* \(and 1 more problem\)$/);
    expect((await api(studio, 'GET', '/api/queue')).body).toEqual({ running: null, active: [], pending: [], workers: 1 });
  });

  it('refuses outputs that are not output nodes of the graph', async () => {
    const res = await api(studio, 'POST', '/api/jobs', { graph: slowGraph(1, 1), outputs: ['slow'] });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(/not an output node/);
    const missing = await api(studio, 'POST', '/api/jobs', { graph: slowGraph(1, 1), outputs: ['ghost'] });
    expect(missing.status).toBe(400);
    // An empty list would announce every node in job:started and then run none of them.
    const none = await api(studio, 'POST', '/api/jobs', { graph: slowGraph(1, 1), outputs: [] });
    expect(none.status).toBe(400);
    expect(none.body.error.message).toMatch(/"outputs" is empty/);
  });
});

describe('jobs', () => {
  it('runs a graph and streams its events in order, with previews and a result image', async () => {
    const jobId = await submit(slowGraph(3, 6, 10, 'first run'));
    const end = await events.waitForEnd(jobId);
    expect(end.name).toBe('job:done');
    const seq = events.forJob(jobId);
    const names = seq.map((e) => e.name);
    expect(names[0]).toBe('job:queued');
    expect(names[1]).toBe('job:started');
    expect(seq[1]!.args.nodes).toEqual(['n', 'slow', 'save']);
    expect(names.at(-1)).toBe('job:done');

    const ofSlow = seq.filter((e) => e.args.nodeId === 'slow').map((e) => e.name);
    expect(ofSlow[0]).toBe('node:started');
    expect(ofSlow.at(-1)).toBe('node:done');
    expect(ofSlow).toContain('node:progress');
    expect(ofSlow).toContain('node:preview');
    expect(ofSlow.indexOf('node:progress')).toBeLessThan(ofSlow.indexOf('node:preview'));
    // Nodes run one after another: every event of "n" precedes every event of "slow", etc.
    const nodeOrder = seq.filter((e) => e.name === 'node:started').map((e) => e.args.nodeId);
    expect(nodeOrder).toEqual(['n', 'slow', 'save']);
    const lastProgress = seq.filter((e) => e.name === 'node:progress' && e.args.nodeId === 'slow').at(-1)!;
    expect(lastProgress.args).toMatchObject({ step: 6, total: 6 });

    const preview = seq.find((e) => e.name === 'node:preview')!;
    expect(preview.args).toMatchObject({ nodeId: 'slow', total: 6, width: 64, height: 64 });
    const frame = await sharp(Buffer.from(preview.args.data)).metadata();
    expect([frame.width, frame.height]).toEqual([64, 64]);
    expect(`image/${frame.format}`).toBe(preview.args.mime);

    const done = seq.filter((e) => e.name === 'node:done');
    expect(done.map((e) => [e.args.nodeId, e.args.cached])).toEqual([
      ['n', false],
      ['slow', false],
      ['save', false],
    ]);
    const image = end.args.results.save.images[0];
    expect(image).toMatchObject({ width: 16, height: 16 });
    expect(end.args.computed).toEqual(['n', 'slow', 'save']);
    expect(end.args.results.save.text).toBe('value 9');

    const file = await fetch(new URL(image.url, studio.url));
    expect(file.status).toBe(200);
    expect(file.headers.get('content-type')).toBe('image/png');
    const { data, info } = await sharp(Buffer.from(await file.arrayBuffer()))
      .raw()
      .toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([16, 16]);
    expect([data[0], data[1], data[2]]).toEqual([9, 0, 246]); // the value 3 + 6 = 9 as red

    const detail = await api(studio, 'GET', `/api/jobs/${jobId}`);
    expect(detail.status).toBe(200);
    expect(detail.body.job).toMatchObject({ id: jobId, state: 'done', title: 'first run' });
    expect(detail.body.results.save.images[0].url).toBe(image.url);

    // The same graph again: everything comes from the cache.
    const again = await submit(slowGraph(3, 6, 10, 'first run'));
    const end2 = await events.waitForEnd(again);
    expect(end2.name).toBe('job:done');
    const done2 = events.forJob(again).filter((e) => e.name === 'node:done');
    expect(done2.map((e) => [e.args.nodeId, e.args.cached])).toEqual([
      ['n', true],
      ['slow', true],
      ['save', true],
    ]);
    expect(end2.args.computed).toEqual([]);
    expect(end2.args.results.save.images[0].url).toBe(image.url);
    expect(events.forJob(again).some((e) => e.name === 'node:progress')).toBe(false);
  });

  it('coalesces progress and drops preview frames rather than slowing a fast node', async () => {
    const jobId = await submit(slowGraph(21, 3000, 0));
    expect((await events.waitForEnd(jobId)).name).toBe('job:done');
    const progress = events.forJob(jobId).filter((e) => e.name === 'node:progress');
    const previews = events.forJob(jobId).filter((e) => e.name === 'node:preview');
    expect(progress.at(-1)!.args).toMatchObject({ step: 3000, total: 3000 });
    expect(progress.length).toBeLessThan(300);
    expect(previews.length).toBeGreaterThan(0);
    expect(previews.length).toBeLessThan(3000);
    const steps = progress.map((e) => e.args.step);
    expect(steps).toEqual([...steps].sort((x, y) => x - y));
  });

  it('cancels a running job mid-way', async () => {
    const jobId = await submit(slowGraph(7, 2000, 5));
    await events.waitFor('node:progress', (a) => a.jobId === jobId && a.step >= 2);
    const res = await api(studio, 'DELETE', `/api/jobs/${jobId}`);
    expect(res.status).toBe(200);
    expect(res.body.cancelled).toBe(true);
    const end = await events.waitForEnd(jobId);
    expect(end.name).toBe('job:cancelled');
    const steps = events
      .forJob(jobId)
      .filter((e) => e.name === 'node:progress')
      .map((e) => e.args.step);
    expect(Math.max(...steps)).toBeLessThan(2000);
    expect((await api(studio, 'GET', `/api/jobs/${jobId}`)).body.job.state).toBe('cancelled');
    const again = await api(studio, 'POST', `/api/jobs/${jobId}/cancel`);
    expect(again.status).toBe(409);
    expect((await api(studio, 'DELETE', '/api/jobs/no-such-job')).status).toBe(404);
  });

  it('fails a job cleanly when a node throws, and keeps serving', async () => {
    const graph = graphOf(
      [
        { id: 'n', type: 'Constant' },
        { id: 'boom', type: 'Thrower', params: { message: 'out of paint' } },
        { id: 'save', type: 'Save' },
      ],
      ['n.value -> boom.x', 'boom.y -> save.value'],
    );
    const jobId = await submit(graph);
    const end = await events.waitForEnd(jobId);
    expect(end.name).toBe('job:failed');
    expect(end.args.nodeId).toBe('boom');
    expect(end.args.message).toContain('out of paint');
    const detail = await api(studio, 'GET', `/api/jobs/${jobId}`);
    expect(detail.body).toMatchObject({ job: { state: 'failed' }, error: { nodeId: 'boom', message: expect.stringContaining('out of paint') } });
    expect((await api(studio, 'GET', '/api/health')).body.ok).toBe(true);
  });

  it('runs jobs first in, first out, reporting positions, and cancels a queued one', async () => {
    // A must outlast four HTTP round trips on a loaded 2-core machine (a cold run once took longer than 400 ms).
    const a = await submit(slowGraph(11, 150, 10, 'A'));
    const b = await submit(slowGraph(12, 1, 0, 'B'));
    const c = await submit(slowGraph(13, 1, 0, 'C'));
    const d = await submit(slowGraph(14, 1, 0, 'D'));
    const queue = await api(studio, 'GET', '/api/queue');
    const context = async () => JSON.stringify({ a: (await api(studio, 'GET', `/api/jobs/${a}`)).body, queue: queue.body });
    expect(queue.body.running?.id, await context()).toBe(a);
    expect(queue.body.running).toMatchObject({ state: 'running', position: 0, title: 'A' });
    expect(queue.body.pending.map((j: { id: string; position: number }) => [j.id, j.position])).toEqual([
      [b, 1],
      [c, 2],
      [d, 3],
    ]);
    expect((await events.waitFor('job:queued', (x) => x.jobId === c)).args.position).toBe(2);
    expect((await events.waitFor('job:queued', (x) => x.jobId === d)).args.position).toBe(3);
    const cancelQueued = await api(studio, 'POST', `/api/jobs/${c}/cancel`);
    expect(cancelQueued.status).toBe(200);
    expect((await events.waitForEnd(c)).name).toBe('job:cancelled');

    for (const id of [a, b, d]) expect((await events.waitForEnd(id)).name).toBe('job:done');
    const startOrder = events.events.filter((e) => e.name === 'job:started' && [a, b, c, d].includes(e.args.jobId)).map((e) => e.args.jobId);
    expect(startOrder).toEqual([a, b, d]);
    // Every queue change was broadcast; the last says the queue is empty.
    const lastQueue = events.events.filter((e) => e.name === 'queue').at(-1)!;
    expect(lastQueue.args).toEqual({ running: null, active: [], pending: [], workers: 1 });
  });
});

describe('queue for every tab', () => {
  it('puts a job first in line with front, and reports progress, elapsed time and estimates to every client', async () => {
    // A first run teaches the server how long each node type takes; the estimates come from it.
    const warm = await submit(slowGraph(31, 10, 10, 'warm-up'));
    expect((await events.waitForEnd(warm)).name).toBe('job:done');

    const a = await submit(slowGraph(32, 40, 25, 'A'));
    const b = await submit(slowGraph(33, 2, 1, 'B'));
    const front = await api(studio, 'POST', '/api/jobs', { graph: slowGraph(34, 2, 1, 'Urgent'), front: true });
    expect(front.status).toBe(202);
    expect(front.body.job.position).toBe(1);
    const urgent = front.body.job.id as string;
    expect((await api(studio, 'POST', '/api/jobs', { graph: slowGraph(35, 2, 1), front: 'yes' })).status).toBe(400);

    // While A runs: its progress (node, title, step) and estimates, broadcast as the queue state.
    const moving = await events.waitFor('queue', (q) => q.running?.id === a && q.running.progress?.step >= 5);
    expect(moving.args.running).toMatchObject({
      title: 'A',
      startedAt: expect.any(Number),
      elapsedMs: expect.any(Number),
      etaMs: expect.any(Number),
      progress: { nodesTotal: 3, nodeId: 'slow', nodeTitle: 'Slow Counter', steps: 40 },
    });
    expect(moving.args.pending.map((j: { id: string }) => j.id)).toEqual([urgent, b]);
    // Queued jobs finish later than the running one, in line order.
    const [u, bb] = moving.args.pending as { etaMs: number }[];
    expect(u.etaMs).toBeGreaterThan(moving.args.running.etaMs);
    expect(bb.etaMs).toBeGreaterThan(u.etaMs);
    const detail = await api(studio, 'GET', `/api/jobs/${a}`);
    expect(detail.body.graph.nodes.map((n: { id: string }) => n.id)).toEqual(['n', 'slow', 'save']);

    for (const id of [a, urgent, b]) expect((await events.waitForEnd(id)).name).toBe('job:done');
    const startOrder = events.events.filter((e) => e.name === 'job:started' && [a, b, urgent].includes(e.args.jobId)).map((e) => e.args.jobId);
    expect(startOrder).toEqual([a, urgent, b]);
    // A finished job keeps its graph, so the editor can re-open it from the history.
    expect((await api(studio, 'GET', `/api/jobs/${a}`)).body).toMatchObject({ job: { state: 'done' }, graph: { meta: { title: 'A' } } });
  });
});

describe('queue limits', () => {
  it('answers 429 when the queue is full', async () => {
    const dir = await tempDir('api-full');
    const small = await startTestStudio(dir, { limits: { maxPending: 1 } });
    try {
      const post = (value: number) => api(small, 'POST', '/api/jobs', { graph: slowGraph(value, 500, 5) });
      const first = await post(1);
      expect(first.status).toBe(202);
      // The first job starts on a microtask; wait until it runs so exactly one is pending.
      while ((await api(small, 'GET', '/api/queue')).body.running === null) await new Promise((r) => setTimeout(r, 5));
      expect((await post(2)).status).toBe(202);
      const full = await post(3);
      expect(full.status).toBe(429);
      expect(full.body.error.code).toBe('queue_full');
      expect(full.body.error.message).toMatch(/queue is full/);
    } finally {
      await small.close(); // cancels both jobs
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

describe('built client', () => {
  it('serves the client with a single-page fallback, never for /api', async () => {
    const dir = await tempDir('api-client');
    const clientDir = path.join(dir, 'client');
    await fs.mkdir(path.join(clientDir, 'assets'), { recursive: true });
    await fs.writeFile(path.join(clientDir, 'index.html'), '<!doctype html><title>studio shell</title>');
    await fs.writeFile(path.join(clientDir, 'assets', 'app.js'), 'console.log(1)');
    const withClient = await startTestStudio(path.join(dir, 'data'), { clientDir });
    try {
      const get = (p: string) => fetch(new URL(p, withClient.url));
      for (const p of ['/', '/graphs/epsilon-merge']) {
        const res = await get(p);
        expect(res.status).toBe(200);
        expect(await res.text()).toContain('studio shell');
      }
      const js = await get('/assets/app.js');
      expect(js.headers.get('content-type')).toMatch(/javascript/);
      expect((await get('/assets/missing.js')).status).toBe(404);
      const apiMiss = await api(withClient, 'GET', '/api/graphs-typo');
      expect(apiMiss.status).toBe(404);
      expect(apiMiss.body.error.code).toBe('not_found');
    } finally {
      await withClient.close();
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

/**
 * Fuzz: every HTTP route and socket event (issue: hardening). Generated requests (methods, paths with
 * traversal and odd encodings, Host and Origin headers, content types and encodings, graph bodies,
 * JSON, text, bytes, images) and socket traffic (events with any payload, raw engine.io frames) go to a
 * studio with the test catalog. Properties: no 5xx and no crash (every /api error is a JSON error, the
 * server answers to the end), no file outside the data folder is touched, memory stays bounded, and a
 * valid job still completes afterwards.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { io as connect } from 'socket.io-client';
import WebSocket from 'ws';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Studio } from '../server/app.ts';
import { PROJECT_ROOT } from '../server/util/project.ts';
import { api, EventLog, graphOf, slowGraph, startTestStudio, tempDir } from './support/api-harness.ts';
import { casesFor, FUZZ_SEED, FuzzReport, request, send } from './support/fuzz.ts';
import { testNodes } from './support/test-nodes.ts';

const MiB = 1024 * 1024;
let root: string;
let dataDir: string;
let templatesDir: string;
let studio: Studio;
let before: Map<string, string>;
let rssBefore: number;

/** Every file under `dir` with its size and mtime, except under `skip`. */
async function snapshot(dir: string, skip?: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string) => {
    for (const e of await fs.readdir(d, { withFileTypes: true }).catch(() => [])) {
      const full = path.join(d, e.name);
      if (full === skip) continue;
      if (e.isDirectory()) await walk(full);
      else {
        const s = await fs.stat(full).catch(() => null);
        out.set(full, s ? `${s.size}:${s.mtimeMs}` : 'gone');
      }
    }
  };
  await walk(dir);
  return out;
}

/** What the server may never write: everything around the data folder, the shipped templates and models. */
async function outside(): Promise<Map<string, string>> {
  const around = await snapshot(root, dataDir);
  for (const [k, v] of await snapshot(path.join(PROJECT_ROOT, 'graphs'))) around.set(k, v);
  around.set(
    'project models/ exists',
    String(
      await fs.stat(path.join(PROJECT_ROOT, 'models')).then(
        () => true,
        () => false,
      ),
    ),
  );
  return around;
}

beforeAll(async () => {
  root = await tempDir('fuzz-http');
  dataDir = path.join(root, 'data');
  templatesDir = path.join(root, 'templates');
  await fs.mkdir(path.join(root, 'canary', 'deep'), { recursive: true });
  await fs.writeFile(path.join(root, 'canary', 'secret.json'), '{"secret": true}');
  await fs.writeFile(path.join(root, 'canary', 'deep', 'passwd'), 'root:x:0:0');
  await fs.mkdir(templatesDir);
  await fs.writeFile(
    path.join(templatesDir, 'demo-template.json'),
    JSON.stringify(
      graphOf(
        [
          { id: 'n', type: 'Constant' },
          { id: 's', type: 'Save' },
        ],
        ['n.value -> s.value'],
      ),
    ),
  );
  studio = await startTestStudio(dataDir, { graphsDir: templatesDir, limits: { maxPending: 20 } });
  before = await outside();
  rssBefore = process.memoryUsage.rss();
});

afterAll(async () => {
  await studio?.close();
  await fs.rm(root, { recursive: true, force: true });
});

const types = testNodes.map((n) => n.type);

it('answers every generated request without a 5xx, with JSON errors, and keeps running', async () => {
  const report = new FuzzReport('http');
  try {
    await fc.assert(
      fc.asyncProperty(request(studio.port, types), async (req) => {
        const res = await send(studio.port, req);
        if (res.status === -1) return report.count('unsendable');
        if (res.status === 0) {
          // The server may drop a connection it cannot use (a body it will not read); it must still be up.
          report.count('closed');
          const alive = await send(studio.port, { method: 'GET', path: '/api/health', headers: { host: `127.0.0.1:${studio.port}` } });
          if (alive.status !== 200) report.crashes.push(`${req.method} ${req.path}: ${res.error}`);
          expect(alive.status).toBe(200);
          return;
        }
        report.count(res.status);
        if (res.status >= 500) report.serverErrors.push(`${req.method} ${req.path} → ${res.status} ${res.body.toString().slice(0, 300)}`);
        expect(res.status, `${req.method} ${req.path}: ${res.body.toString().slice(0, 300)}`).toBeLessThan(500);
        const isFile = /^\/api\/(uploads|results|builtin)\//.test(req.path) && res.status === 200;
        // HEAD has no body; express answers OPTIONS itself with the allowed methods (text, no CORS headers).
        if (req.path.startsWith('/api') && req.method !== 'HEAD' && !(req.method === 'OPTIONS' && res.status < 400) && !isFile) {
          expect(String(res.headers['content-type']), req.path).toMatch(/application\/json/);
          if (res.status >= 400) expect(JSON.parse(res.body.toString()).error.code, req.path).toEqual(expect.any(String));
        }
      }),
      { numRuns: casesFor(0.45), seed: FUZZ_SEED },
    );
  } finally {
    // Printed whatever happens: the histogram says what the fuzzer reached before a failure.
    console.log(report.line());
  }
  expect(report.serverErrors).toEqual([]);
  expect(report.crashes).toEqual([]);
});

it('survives any socket traffic: events with any payload, raw engine.io frames', async () => {
  const report = new FuzzReport('socket');
  const watcher = await EventLog.connect(studio);
  const url = `ws://127.0.0.1:${studio.port}/socket.io/?EIO=4&transport=websocket`;
  const frame = fc.oneof(
    fc.string({ maxLength: 200 }),
    fc.constantFrom('40', '41', '2', '3', '5', '6', '42["job:subscribe"]', '42["job:subscribe",{"__proto__":1}]', '42[', '4', '0', '1'),
    fc.jsonValue({ maxDepth: 3 }).map((v) => `42${JSON.stringify(['job:subscribe', v])}`),
    fc.tuple(fc.string({ maxLength: 20 }), fc.jsonValue({ maxDepth: 3 })).map(([name, v]) => `42${JSON.stringify([name, v])}`),
    fc.uint8Array({ maxLength: 100 }).map((a) => Buffer.from(a)),
    fc.nat(200_000).map((n) => `42["job:subscribe","${'x'.repeat(n)}"]`),
  );
  const event = fc.record({
    // Names socket.io reserves cannot be emitted by its client (raw frames above send them anyway).
    name: fc
      .oneof(fc.constantFrom('job:subscribe', 'queue', 'job:done', '__proto__', 'constructor'), fc.string({ maxLength: 20 }))
      .filter((n) => !['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener'].includes(n)),
    args: fc.array(fc.oneof(fc.jsonValue({ maxDepth: 4 }), fc.string({ maxLength: 70_000 })), { maxLength: 3 }),
  });
  const client = connect(studio.url, { transports: ['websocket'], forceNew: true, reconnection: true, reconnectionDelay: 10 });
  try {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          frame.map((f) => ({ frame: f })),
          event.map((e) => ({ event: e })),
        ),
        async (c) => {
          if ('frame' in c) {
            // A raw connection: open, send the frame (with or without joining first), wait for the answer or the close.
            const ws = new WebSocket(url);
            const outcome = await new Promise<string>((resolve) => {
              const timer = setTimeout(() => resolve('open'), 300);
              ws.on('open', () => ws.send(c.frame));
              ws.on('close', () => {
                clearTimeout(timer);
                resolve('closed');
              });
              ws.on('error', () => {
                clearTimeout(timer);
                resolve('error');
              });
            });
            ws.terminate();
            report.count(`frame:${outcome}`);
          } else {
            if (!client.connected) await new Promise((r) => client.once('connect', r as () => void));
            (client.emit as (name: string, ...args: unknown[]) => void)(c.event.name, ...c.event.args);
            report.count('event');
          }
        },
      ),
      { numRuns: casesFor(0.1), seed: FUZZ_SEED },
    );
    // Still serving, and still telling other clients about jobs.
    const res = await api(studio, 'POST', '/api/jobs', { graph: slowGraph(5, 2, 0) });
    expect(res.status).toBe(202);
    expect((await watcher.waitForEnd(res.body.job.id)).name).toBe('job:done');
  } finally {
    client.close();
    watcher.close();
    console.log(report.line());
  }
});

it('touched nothing outside the data folder, kept memory bounded, and still completes a valid job', async () => {
  // Whatever the fuzzer queued: cancel it, then run one good job to the end.
  const queue = (await api(studio, 'GET', '/api/queue')).body as { running: { id: string } | null; pending: { id: string }[] };
  for (const job of [...queue.pending, ...(queue.running ? [queue.running] : [])]) await api(studio, 'DELETE', `/api/jobs/${job.id}`);
  const events = await EventLog.connect(studio);
  try {
    const res = await api(studio, 'POST', '/api/jobs', { graph: slowGraph(7, 3, 0, 'after the fuzz') });
    expect(res.status).toBe(202);
    const end = await events.waitForEnd(res.body.job.id, 60_000);
    expect(end.name).toBe('job:done');
    expect(end.args.results.save.images[0].url).toMatch(/^\/api\/results\//);
  } finally {
    events.close();
  }
  expect(await outside()).toEqual(before);
  const grew = process.memoryUsage.rss() - rssBefore;
  expect(grew, `RSS grew by ${Math.round(grew / MiB)} MiB`).toBeLessThan(300 * MiB);
  expect((await api(studio, 'GET', '/api/health')).status).toBe(200);
});

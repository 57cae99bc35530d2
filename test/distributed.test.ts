/**
 * Distributed mode with real processes on this machine: redis-server, 2 web servers (`--redis`) and
 * 2 workers, all with the test node catalog (test/support/studio-entry.ts) and one shared data folder.
 * Jobs submitted through either web server run on the workers; a socket on either server sees every
 * job's events and previews; a worker killed with SIGKILL mid-job hands its job to the other; every
 * job completes exactly once. Everything started here is stopped in afterAll, even after a failure.
 */
import { promises as fs } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, RedisRecords } from '../server/executor/redis-records.ts';
import { api, EventLog, graphOf, silentLogger, slowGraph, tempDir } from './support/api-harness.ts';
import { e2eSkipReason, launchChromium } from './support/e2e-browser.ts';
import { kill9, REDIS_SERVER, startRedis, startServer, startWorker, stopAll, type Child } from './support/processes.ts';

const hasRedis = REDIS_SERVER !== null;
if (!hasRedis) console.warn('distributed tests skipped: redis-server is not installed (apt-get install redis-server)');

let dataDir: string;
let redisUrl: string;
let servers: { url: string; child: Child }[] = [];
let workers: { name: string; child: Child }[] = [];
let sockets: EventLog[] = [];

beforeAll(async () => {
  if (!hasRedis) return;
  dataDir = await tempDir('distributed');
  const redis = await startRedis();
  redisUrl = redis.url;
  const flags = ['--redis', redis.url, '--data', dataDir];
  // Started together: four Node processes booting at once on two cores take a while.
  [servers, workers] = await Promise.all([
    Promise.all([startServer(flags), startServer(flags)]),
    Promise.all([startWorker([...flags, '--stall-timeout', '3']), startWorker([...flags, '--stall-timeout', '3'])]),
  ]);
  sockets = await Promise.all(servers.map((s) => EventLog.connect(s)));
}, 180_000);

afterAll(async () => {
  for (const s of sockets) s.close();
  await stopAll();
  if (dataDir) await fs.rm(dataDir, { recursive: true, force: true });
});

async function until(what: string, test: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await test())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function submit(server: { url: string }, graph: unknown): Promise<string> {
  const res = await api(server, 'POST', '/api/jobs', { graph });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body.job.id as string;
}

describe.runIf(hasRedis)('distributed: 2 web servers, 2 workers, one Redis', () => {
  it('runs 6 jobs submitted through both servers on both workers; either socket sees every job move', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(await submit(servers[i % 2]!, slowGraph(100 + i, 25, 20, `job ${i}`)));

    for (const log of sockets) for (const id of ids) expect((await log.waitForEnd(id, 90_000)).name).toBe('job:done');
    for (const log of sockets) {
      for (const id of ids) {
        const names = log.forJob(id).map((e) => e.name);
        expect(
          names.filter((n) => n === 'job:done'),
          `job:done of ${id}`,
        ).toHaveLength(1);
        expect(names).toContain('node:progress');
        expect(names).toContain('node:preview');
        const preview = log.forJob(id).find((e) => e.name === 'node:preview')!;
        expect(preview.args).toMatchObject({ nodeId: 'slow', width: 64, height: 64, mime: 'image/png' });
        expect(Buffer.from(preview.args.data).subarray(1, 4).toString()).toBe('PNG');
      }
    }
    // Both workers took jobs.
    const ranOn = new Set(sockets[0]!.events.filter((e) => e.name === 'job:started' && ids.includes(e.args.jobId)).map((e) => e.args.worker));
    expect([...ranOn].sort()).toEqual(workers.map((w) => w.name).sort());

    // The same history on both servers, with results either server serves (one shared data folder).
    for (const server of servers) {
      const history = await api(server, 'GET', '/api/history?limit=50');
      expect(history.body.jobs.filter((j: { id: string }) => ids.includes(j.id)).map((j: { state: string }) => j.state)).toEqual(Array(6).fill('done'));
      const last = history.body.jobs.find((j: { id: string }) => j.id === ids[5]);
      expect(last.results.save.text).toBe(`value ${105 + 25}`);
      const png = await fetch(new URL(last.results.save.images[0].url, server.url));
      expect(png.status).toBe(200);
      const detail = await api(server, 'GET', `/api/jobs/${ids[0]}`);
      expect(detail.body).toMatchObject({ job: { state: 'done', title: 'job 0', attempts: 1 }, graph: { meta: { title: 'job 0' } } });
    }
    const queue = await api(servers[1]!, 'GET', '/api/queue');
    expect(queue.body).toMatchObject({ running: null, active: [], pending: [], workers: 2 });
  });

  it('lists one queue on both servers, moves a job from one and cancels from the other', async () => {
    // Two long jobs occupy both workers; three wait.
    const long = [await submit(servers[0]!, slowGraph(1, 2000, 10, 'long A')), await submit(servers[1]!, slowGraph(2, 2000, 10, 'long B'))];
    for (const id of long) await sockets[0]!.waitFor('node:progress', (a) => a.jobId === id, 120_000);
    const waiting = [
      await submit(servers[0]!, slowGraph(3, 2, 0, 'W1')),
      await submit(servers[1]!, slowGraph(4, 2, 0, 'W2')),
      await submit(servers[0]!, slowGraph(5, 2, 0, 'W3')),
    ];
    const moved = await api(servers[1]!, 'POST', `/api/jobs/${waiting[2]}/move`, { position: 1 });
    expect(moved.status, JSON.stringify(moved.body)).toBe(200);
    for (const server of servers) {
      const q = (await api(server, 'GET', '/api/queue')).body;
      expect(q.active.map((j: { id: string }) => j.id).sort()).toEqual([...long].sort());
      expect(q.active.every((j: { progress?: { nodeId?: string } }) => j.progress?.nodeId === 'slow')).toBe(true);
      expect(q.pending.map((j: { title: string; position: number }) => [j.title, j.position])).toEqual([
        ['W3', 1],
        ['W1', 2],
        ['W2', 3],
      ]);
    }
    // A queued job cancelled while both workers are still busy with the long jobs (so no worker can take
    // it first), then a running job through the server that did not queue it. The other way round, the
    // freed worker could take the queued job and finish it before its cancel arrived.
    expect((await api(servers[0]!, 'DELETE', `/api/jobs/${waiting[1]}`)).status).toBe(200);
    for (const log of sockets) expect((await log.waitForEnd(waiting[1]!, 120_000)).name).toBe('job:cancelled');
    expect((await api(servers[1]!, 'DELETE', `/api/jobs/${long[0]}`)).status).toBe(200);
    for (const log of sockets) expect((await log.waitForEnd(long[0]!, 120_000)).name).toBe('job:cancelled');
    expect((await api(servers[0]!, 'DELETE', `/api/jobs/${long[1]}`)).status).toBe(200);
    for (const id of [waiting[2]!, waiting[0]!]) expect((await sockets[1]!.waitForEnd(id, 120_000)).name).toBe('job:done');
    const started = sockets[1]!.events.filter((e) => e.name === 'job:started').map((e) => e.args.jobId);
    expect(started.indexOf(waiting[2]!)).toBeLessThan(started.indexOf(waiting[0]!));
    expect(started).not.toContain(waiting[1]);
  });

  it('a cancel and the runs of a job claim its ending atomically: exactly one records it', async () => {
    const { redis, sub } = await connectRedis(redisUrl, silentLogger);
    try {
      const records = new RedisRecords(redis, `claim-test-${process.pid}`);
      const run1 = { run: 'w1 attempt 1' };
      const run2 = { run: 'w2 attempt 2' };
      // The cancel first: it is answered true; the first run that then ends records "cancelled", a second run nothing.
      expect(await records.requestCancel('a')).toBe(true);
      expect(await records.requestCancel('a')).toBe(true); // a second cancel of the same job
      expect(await records.claimEnd('a', run1)).toBe('cancelled');
      expect(await records.claimEnd('a', run2)).toBe('lost');
      expect(await records.claimEnd('a', run1)).toBe('cancelled'); // the same run asking again
      // A run first: the cancel is told the job finished (409), the run keeps its ending, another run loses.
      expect(await records.claimEnd('b', run1)).toBe('won');
      expect(await records.requestCancel('b')).toBe(false);
      expect(await records.claimEnd('b', run1)).toBe('won');
      expect(await records.claimEnd('b', run2)).toBe('lost');
      expect(await records.endedByRun('b')).toBe(run1.run);
      // Racing: exactly one of a cancel and two runs decides, and exactly one records, every time.
      for (let i = 0; i < 20; i++) {
        const [cancelled, a, b] = await Promise.all([records.requestCancel(`r${i}`), records.claimEnd(`r${i}`, run1), records.claimEnd(`r${i}`, run2)]);
        const recorders = [a, b].filter((c) => c !== 'lost');
        expect(recorders, `round ${i}`).toHaveLength(1);
        expect(cancelled, `round ${i}`).toBe(recorders[0] === 'cancelled');
      }
    } finally {
      redis.disconnect();
      sub.disconnect();
    }
  });

  it("prefers the worker that already holds a job's model", async () => {
    const withModel = (value: number) =>
      graphOf(
        [
          { id: 'm', type: 'ModelName', params: { model: 'alpha' } },
          { id: 'slow', type: 'SlowCounter', params: { steps: 2 + value, delayMs: 5 } },
          { id: 'save', type: 'Save' },
        ],
        ['m.value -> slow.start', 'slow.count -> save.value'],
      );
    const ranOn = async (value: number, server: { url: string }) => {
      const id = await submit(server, withModel(value));
      expect((await sockets[0]!.waitForEnd(id, 120_000)).name).toBe('job:done');
      return sockets[0]!.forJob(id).find((e) => e.name === 'job:started')!.args.worker as string;
    };
    const holder = await ranOn(0, servers[0]!);
    // The holder says what it holds right after the job; every web server lists the workers.
    for (const server of servers) {
      await until(`${server.url} lists ${holder} holding "alpha"`, async () => {
        const { workers: list } = (await api(server, 'GET', '/api/workers')).body as { workers: { name: string; models: string[] }[] };
        return list.length === 2 && list.some((w) => w.name === holder && w.models.includes('alpha'));
      });
    }
    const next = [];
    for (let i = 1; i <= 6; i++) next.push(await ranOn(i, servers[i % 2]!));
    expect(next).toEqual(Array(6).fill(holder));
    const detail = await api(servers[0]!, 'GET', `/api/history?limit=1`);
    expect(detail.body.jobs[0]).toMatchObject({ model: 'alpha', worker: holder });
  });

  it.skipIf(e2eSkipReason() !== null)('shows a job submitted through one web server in the results of a browser on the other', async () => {
    const browser = await launchChromium();
    try {
      const page = await (await browser.newContext()).newPage();
      await page.goto(servers[1]!.url);
      await page.locator('[data-testid="btn-results"]').click();
      await page.locator('[data-testid="gallery"]').waitFor();
      const id = await submit(servers[0]!, slowGraph(900, 10, 10, 'from the other server'));
      // The page hears the job end over its socket to the other server and reads that server's history.
      const run = page.locator(`[data-testid="gallery-run"][data-job-id="${id}"]`);
      await run.waitFor({ timeout: 120_000 });
      expect(await run.textContent()).toContain('from the other server');
      await expect.poll(() => run.locator('img').evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0)).toBe(true);
    } finally {
      await browser.close();
    }
  });

  it('hands the job of a worker killed mid-job to the other worker, and completes it once', async () => {
    const id = await submit(servers[0]!, slowGraph(7, 150, 20, 'survivor'));
    const first = await sockets[0]!.waitFor('job:started', (a) => a.jobId === id, 120_000);
    await sockets[0]!.waitFor('node:progress', (a) => a.jobId === id && a.step >= 20, 120_000);
    const victim = workers.find((w) => w.name === first.args.worker)!;
    expect(victim).toBeDefined();
    await kill9(victim.child);

    for (const log of sockets) expect((await log.waitForEnd(id, 60_000)).name).toBe('job:done');
    for (const log of sockets) {
      const events = log.forJob(id);
      expect(events.filter((e) => e.name === 'job:requeued')).toHaveLength(1);
      const starts = events.filter((e) => e.name === 'job:started');
      expect(starts.map((e) => e.args.worker)).toEqual([victim.name, workers.find((w) => w !== victim)!.name]);
      expect(starts.map((e) => e.args.attempt)).toEqual([1, 2]);
      expect(events.filter((e) => e.name === 'job:done')).toHaveLength(1);
    }
    const detail = await api(servers[1]!, 'GET', `/api/jobs/${id}`);
    expect(detail.body).toMatchObject({ job: { state: 'done', attempts: 2 }, results: { save: { text: 'value 157' } } });
    // Across this whole file, no job finished twice on either socket.
    for (const log of sockets) {
      const ends = log.events.filter((e) => ['job:done', 'job:failed', 'job:cancelled'].includes(e.name)).map((e) => e.args.jobId);
      expect(ends.length).toBe(new Set(ends).size);
    }
  });
});

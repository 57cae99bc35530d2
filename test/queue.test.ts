/**
 * The embedded job service (SQLite + the in-process runner) on the test node catalog: order, positions,
 * moving and putting first, cancel, failures, limits, retention, history, ETA, and what a restart on the
 * same data folder keeps.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createCatalog } from '../server/catalog.ts';
import { EmbeddedJobService, type EmbeddedJobsOptions } from '../server/executor/embedded-jobs.ts';
import { GraphRunner } from '../server/executor/graph-runner.ts';
import { QueueFullError } from '../server/executor/job-service.ts';
import type { OutgoingEvent } from '../server/protocol/events.ts';
import { graphOf, silentLogger, slowGraph, tempDir } from './support/api-harness.ts';
import { testNodes } from './support/test-nodes.ts';

const open: EmbeddedJobService[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const s of open.splice(0)) await s.close(100);
  for (const d of dirs.splice(0)) await fs.rm(d, { recursive: true, force: true });
});

async function service(opts: Partial<EmbeddedJobsOptions> & { dataDir?: string } = {}) {
  const dataDir = opts.dataDir ?? (await tempDir('queue'));
  if (!opts.dataDir) dirs.push(dataDir);
  const runner = new GraphRunner({ catalog: createCatalog(testNodes), dataDir, executionProvider: 'cpu' });
  const jobs = new EmbeddedJobService({ runner, log: silentLogger, previewIntervalMs: 0, ...opts, dataDir });
  open.push(jobs);
  const events: OutgoingEvent[] = [];
  jobs.subscribe((e) => events.push(e));
  const started = () => events.filter((e) => e.name === 'job:started').map((e) => e.args.jobId);
  return { jobs, events, started, dataDir };
}

/** A job that runs until it is cancelled (10 000 steps of 5 ms). */
const endless = (value: number, title?: string) => slowGraph(value, 10_000, 5, title);
const quick = (value: number, title?: string) => slowGraph(value, 2, 0, title);

async function until(what: string, test: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await test())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('embedded job service', () => {
  it('runs one job at a time, first in first out, and keeps every job in the history', async () => {
    const { jobs, events, started } = await service();
    let maxActive = 0;
    jobs.subscribe((e) => {
      if (e.name === 'queue') maxActive = Math.max(maxActive, e.args.active.length);
    });
    const ids = [];
    for (const v of [1, 2, 3, 4]) ids.push((await jobs.submit(quick(v, `Job ${v}`))).id);
    await jobs.idle();
    expect(started()).toEqual(ids);
    expect(events.filter((e) => e.name === 'job:done').map((e) => e.args.jobId)).toEqual(ids);
    expect(maxActive).toBe(1);
    const history = await jobs.history(0, 10);
    expect(history.total).toBe(4);
    // Newest first, each with its outcome.
    expect(history.jobs.map((j) => j.title)).toEqual(['Job 4', 'Job 3', 'Job 2', 'Job 1']);
    expect(history.jobs[0]).toMatchObject({
      state: 'done',
      attempts: 1,
      worker: 'local',
      results: { save: { text: 'value 6' } },
      outputTitles: { save: 'Save' },
    });
    expect(await jobs.queue()).toEqual({ running: null, active: [], pending: [], workers: 1 });
  });

  it('reports positions, puts a job first and moves one, and starts them in that order', async () => {
    const { jobs, started } = await service();
    const a = await jobs.submit(endless(1, 'A'));
    await until('A runs', () => started().includes(a.id));
    expect(await jobs.workers()).toEqual([{ name: 'local', models: [], seen: expect.any(Number), jobId: a.id }]);
    const b = await jobs.submit(quick(2, 'B'));
    const c = await jobs.submit(quick(3, 'C'));
    const d = await jobs.submit(quick(4, 'D'), { front: true });
    expect([b.position, c.position, d.position]).toEqual([1, 2, 1]);
    let q = await jobs.queue();
    expect(q.running).toMatchObject({ id: a.id, state: 'running', position: 0, title: 'A' });
    expect(q.pending.map((j) => [j.title, j.position])).toEqual([
      ['D', 1],
      ['B', 2],
      ['C', 3],
    ]);
    expect(await jobs.move(c.id, 1)).toBe('moved');
    expect(await jobs.move(d.id, 99)).toBe('moved'); // past the end: last
    q = await jobs.queue();
    expect(q.pending.map((j) => j.title)).toEqual(['C', 'B', 'D']);
    expect(await jobs.move(a.id, 1)).toBe('not_queued');
    expect(await jobs.move('no-such-job', 1)).toBe('not_found');
    await jobs.cancel(a.id);
    await jobs.idle();
    expect(started()).toEqual([a.id, c.id, b.id, d.id]);
  });

  it('pauses: the running job goes on, no waiting job starts until resumed, then they start in order', async () => {
    const { jobs, events, started } = await service();
    const a = await jobs.submit(endless(1, 'A'));
    await until('A runs', () => started().includes(a.id));
    await jobs.setPaused(true);
    expect((events.filter((e) => e.name === 'queue').at(-1)?.args as { paused?: boolean }).paused).toBe(true);
    const b = await jobs.submit(quick(2, 'B'));
    const c = await jobs.submit(quick(3, 'C'));
    await jobs.cancel(a.id);
    await until('A ends', () => events.some((e) => e.name === 'job:cancelled' && e.args.jobId === a.id));
    // Give the queue every chance to start one: a pump is a microtask, a job start an event.
    await new Promise((r) => setImmediate(r));
    let q = await jobs.queue();
    expect(q.paused).toBe(true);
    expect(q.active).toEqual([]);
    expect(q.pending.map((j) => j.title)).toEqual(['B', 'C']);
    expect(await jobs.move(c.id, 1)).toBe('moved');
    await jobs.setPaused(false);
    await jobs.idle();
    expect(started()).toEqual([a.id, c.id, b.id]);
    q = await jobs.queue();
    expect(q.paused).toBeUndefined();
  });

  it('cancels a queued job (it never runs) and the running one between steps', async () => {
    const { jobs, events, started } = await service();
    const a = await jobs.submit(endless(1));
    const b = await jobs.submit(quick(2));
    const c = await jobs.submit(quick(3));
    await until('A reports progress', () => events.some((e) => e.name === 'node:progress' && e.args.jobId === a.id));
    expect(await jobs.cancel(b.id)).toBe('cancelled');
    expect((await jobs.describe(b.id))!.job.state).toBe('cancelled');
    expect(await jobs.cancel(a.id)).toBe('cancelled');
    await jobs.idle();
    expect((await jobs.describe(a.id))!.job.state).toBe('cancelled');
    expect((await jobs.describe(c.id))!.job.state).toBe('done');
    expect(started()).toEqual([a.id, c.id]);
    expect(await jobs.cancel(c.id)).toBe('finished');
    expect(await jobs.cancel('no-such-job')).toBe('not_found');
    const steps = events.filter((e) => e.name === 'node:progress' && e.args.jobId === a.id).map((e) => (e.args as { step: number }).step);
    expect(Math.max(...steps)).toBeLessThan(10_000);
  });

  it('a cancel answered "cancelled" holds: the job ends cancelled even when its last node then finishes', async () => {
    const { jobs, events, dataDir } = await service();
    const gate = path.join(dataDir, 'gate-open');
    const graph = graphOf(
      [
        { id: 'n', type: 'Constant', params: { value: 4 } },
        { id: 'gate', type: 'Gate', params: { file: gate } },
        { id: 'save', type: 'Save' },
      ],
      ['n.value -> gate.x', 'gate.y -> save.value'],
    );
    const job = await jobs.submit(graph);
    await until('the gate is reached', () => events.some((e) => e.name === 'node:started' && e.args.jobId === job.id && e.args.nodeId === 'gate'));
    // The node cannot see the cancel (one long call); it finishes after it, and the rest of the graph too.
    expect(await jobs.cancel(job.id)).toBe('cancelled');
    await fs.writeFile(gate, '');
    await jobs.idle();
    const ends = events.filter((e) => ['job:done', 'job:failed', 'job:cancelled'].includes(e.name) && (e.args as { jobId: string }).jobId === job.id);
    expect(ends.map((e) => e.name)).toEqual(['job:cancelled']);
    expect((await jobs.describe(job.id))!.job.state).toBe('cancelled');
  });

  it('marks a failing job failed with its node and message, and runs the next', async () => {
    const { jobs } = await service();
    const boom = graphOf(
      [
        { id: 'n', type: 'Constant' },
        { id: 'boom', type: 'Thrower', params: { message: 'out of paint' } },
        { id: 'save', type: 'Save' },
      ],
      ['n.value -> boom.x', 'boom.y -> save.value'],
    );
    const a = await jobs.submit(boom);
    const b = await jobs.submit(quick(5));
    await jobs.idle();
    expect(await jobs.describe(a.id)).toMatchObject({ job: { state: 'failed' }, error: { nodeId: 'boom', message: expect.stringContaining('out of paint') } });
    expect((await jobs.describe(b.id))!.job.state).toBe('done');
  });

  it('refuses submissions past maxPending', async () => {
    const { jobs, started } = await service({ maxPending: 2 });
    const a = await jobs.submit(endless(1));
    await until('A runs', () => started().includes(a.id));
    await jobs.submit(quick(2));
    await jobs.submit(quick(3));
    await expect(jobs.submit(quick(4))).rejects.toThrow(QueueFullError);
    await expect(jobs.submit(quick(4))).rejects.toThrow('The queue is full (2 jobs waiting)');
  });

  it('pages the history, removes one entry, clears it, and keeps only what retention allows', async () => {
    const { jobs, events } = await service({ retention: { maxJobs: 3, maxAgeMs: 3600_000 } });
    const ids = [];
    for (const v of [1, 2, 3, 4, 5]) ids.push((await jobs.submit(quick(v, `J${v}`))).id);
    await jobs.idle();
    const page = await jobs.history(1, 1);
    expect(page).toMatchObject({ total: 3, offset: 1, jobs: [{ title: 'J4' }] });
    expect(await jobs.describe(ids[0]!)).toBeUndefined(); // dropped by retention
    expect(events.filter((e) => e.name === 'history:removed').flatMap((e) => e.args.jobIds)).toEqual([ids[0], ids[1]]);
    expect(await jobs.remove(ids[4]!)).toBe('removed');
    expect(await jobs.remove(ids[4]!)).toBe('not_found');
    expect((await jobs.history(0, 10)).jobs.map((j) => j.title)).toEqual(['J4', 'J3']);
    expect(await jobs.clearHistory()).toBe(2);
    expect(await jobs.history(0, 10)).toEqual({ jobs: [], total: 0, offset: 0 });
    expect(events.at(-1)).toEqual({ name: 'history:removed', args: { jobIds: [], all: true } });
  });

  it('estimates from step times: the running job by its pace, the queue behind it', async () => {
    const { jobs, events, started } = await service();
    // Teach the service how long the slow counter takes per step (at least 5 ms: each step waits a 5 ms timer).
    const teach = performance.now();
    await jobs.submit(slowGraph(1, 20, 5));
    await jobs.idle();
    const taughtMs = performance.now() - teach;
    const submittedA = performance.now();
    const a = await jobs.submit(slowGraph(2, 200, 5, 'A'));
    const b = await jobs.submit(slowGraph(3, 100, 5, 'B'));
    await until('A is half-way', () => events.some((e) => e.name === 'node:progress' && e.args.jobId === a.id && e.args.step >= 100));
    const q = await jobs.queue();
    expect(started()).toContain(a.id);
    const running = q.running!;
    expect(running.progress).toMatchObject({ nodesDone: 1, nodesTotal: 3, nodeId: 'slow', nodeTitle: 'Slow Counter', steps: 200 });
    expect(running.progress!.step).toBeGreaterThanOrEqual(100);
    // Bounds from what this run itself measured, never from the machine's speed. A is at least half-way,
    // so at its own pace it needs at most the time it has run so far, plus the nodes after it (which the
    // whole teaching job outlasted).
    expect(running.etaMs).toBeGreaterThan(0);
    expect(running.etaMs).toBeLessThanOrEqual(performance.now() - submittedA + taughtMs);
    // B adds its own 100 steps, learned per step (each at least a 5 ms timer) and scaled to B's steps.
    const queuedB = q.pending.find((j) => j.id === b.id)!;
    expect(queuedB.etaMs).toBeGreaterThan(running.etaMs!);
    expect(queuedB.etaMs! - running.etaMs!).toBeGreaterThanOrEqual(100 * 4);
    await jobs.cancel(a.id);
    await jobs.cancel(b.id);
  });
});

describe('embedded job service across a restart', () => {
  it('keeps the queue and history, re-queues the job that ran first in line, and finishes them all', async () => {
    const first = await service();
    const { dataDir } = first;
    const done = (await first.jobs.submit(quick(1, 'finished before'))).id;
    await first.jobs.idle();
    const running = await first.jobs.submit(endless(2, 'running'));
    const queued = [];
    for (const v of [3, 4, 5]) queued.push((await first.jobs.submit(quick(v, `queued ${v}`))).id);
    await until('the job runs', () => first.events.some((e) => e.name === 'node:progress' && e.args.jobId === running.id));
    await first.jobs.close(2000);
    open.splice(open.indexOf(first.jobs), 1);

    const second = await service({ dataDir });
    const q = await second.jobs.queue();
    // The interrupted job starts again first (it may already run), the others keep their order.
    expect([...q.active, ...q.pending].map((j) => j.id)).toEqual([running.id, ...queued]);
    expect((await second.jobs.history(0, 10)).jobs.map((j) => j.id)).toEqual([done]);
    await until('it runs again', () => second.started().includes(running.id));
    const again = (await second.jobs.queue()).running!;
    expect(again).toMatchObject({ id: running.id, attempts: 2 });
    await second.jobs.cancel(running.id);
    await second.jobs.idle();
    expect(second.started()).toEqual([running.id, ...queued]);
    const history = await second.jobs.history(0, 10);
    expect(history.jobs.map((j) => [j.title, j.state])).toEqual([
      ['queued 5', 'done'],
      ['queued 4', 'done'],
      ['queued 3', 'done'],
      ['running', 'cancelled'],
      ['finished before', 'done'],
    ]);
    const detail = await second.jobs.describe(queued[0]!);
    expect(detail!.graph.meta).toMatchObject({ title: 'queued 3' });
  });

  it('marks the job that ran as interrupted when told to', async () => {
    const first = await service();
    const running = await first.jobs.submit(endless(2, 'running'));
    const next = await first.jobs.submit(quick(3));
    await until('the job runs', () => first.started().includes(running.id));
    await first.jobs.close(2000);
    open.splice(open.indexOf(first.jobs), 1);
    const second = await service({ dataDir: first.dataDir, onRestart: 'interrupt' });
    await second.jobs.idle();
    expect(await second.jobs.describe(running.id)).toMatchObject({ job: { state: 'interrupted' }, error: { message: expect.stringMatching(/interrupted/) } });
    expect((await second.jobs.describe(next.id))!.job.state).toBe('done');
    expect(second.started()).toEqual([next.id]);
  });

  it('leaves a job that another open service runs alone', async () => {
    const first = await service();
    const running = await first.jobs.submit(endless(2));
    await until('the job runs', () => first.started().includes(running.id));
    const second = await service({ dataDir: first.dataDir });
    expect((await second.jobs.queue()).active.map((j) => j.id)).toEqual([running.id]);
    expect(second.started()).toEqual([]);
    await first.jobs.cancel(running.id);
    await first.jobs.idle();
    expect((await second.jobs.describe(running.id))!.job.state).toBe('cancelled');
  });
});

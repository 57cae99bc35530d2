import { describe, expect, it } from 'vitest';
import { JobQueue, QueueFullError, type Job } from '../server/executor/queue.ts';
import { CancelledError } from '../nodes/types.ts';
import { NodeFailedError } from '../server/executor/executor.ts';
import type { QueueState } from '../server/protocol/events.ts';

interface Work {
  name: string;
  /** 'ok' finishes after a tick, 'fail' throws, 'fail-node' throws a node failure, 'wait' runs until aborted. */
  kind: 'ok' | 'fail' | 'fail-node' | 'wait';
}

/** A runner that records the order jobs start and finish, with controllable behaviour. */
function makeQueue(opts?: { maxPending?: number; historySize?: number }) {
  const startedOrder: string[] = [];
  const finishedOrder: string[] = [];
  let releaseWaiting: (() => void) | undefined;
  const queue = new JobQueue<Work>(async (job: Job<Work>, signal: AbortSignal) => {
    startedOrder.push(job.payload.name);
    if (job.payload.kind === 'fail') throw new Error(`${job.payload.name} broke`);
    if (job.payload.kind === 'fail-node') throw new NodeFailedError('n7', 'Thrower', 'Sampler', new Error('NaN at step 3'));
    if (job.payload.kind === 'wait') {
      await new Promise<void>((resolve, reject) => {
        releaseWaiting = resolve;
        signal.addEventListener('abort', () => reject(new CancelledError()), { once: true });
      });
    } else {
      await new Promise((r) => setTimeout(r, 2));
    }
    finishedOrder.push(job.payload.name);
  }, opts);
  return { queue, startedOrder, finishedOrder, release: () => releaseWaiting?.() };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe('JobQueue', () => {
  it('runs one job at a time in FIFO order and keeps finished jobs for get()', async () => {
    const { queue, startedOrder, finishedOrder } = makeQueue();
    let concurrent = 0;
    let maxConcurrent = 0;
    queue.on('change', (q) => {
      concurrent = q.running ? 1 : 0;
      maxConcurrent = Math.max(maxConcurrent, concurrent);
    });
    const jobs = ['a', 'b', 'c', 'd'].map((name) => queue.submit({ name, kind: 'ok' }, `Job ${name}`));
    expect(jobs.every((j) => j.state === 'queued')).toBe(true);
    await queue.idle();
    expect(startedOrder).toEqual(['a', 'b', 'c', 'd']);
    expect(finishedOrder).toEqual(['a', 'b', 'c', 'd']);
    expect(maxConcurrent).toBe(1);
    for (const j of jobs) expect(queue.get(j.id)).toMatchObject({ state: 'done', title: `Job ${j.payload.name}` });
    expect(queue.state()).toEqual({ running: null, pending: [] });
  });

  it('a job submitted while another runs waits for it', async () => {
    const { queue, startedOrder, finishedOrder, release } = makeQueue();
    const log: string[] = [];
    queue.on('finished', (j) => log.push(`end ${j.payload.name}`));
    queue.on('change', (q) => {
      if (q.running && log.at(-1) !== `start ${q.running.title}`) log.push(`start ${q.running.title}`);
    });
    queue.submit({ name: 'a', kind: 'wait' }, 'a');
    await tick();
    expect(startedOrder).toEqual(['a']);
    queue.submit({ name: 'b', kind: 'ok' }, 'b');
    await tick();
    expect(startedOrder).toEqual(['a']); // b waits while a still runs
    release();
    await queue.idle();
    expect(finishedOrder).toEqual(['a', 'b']);
    expect(log).toEqual(['start a', 'end a', 'start b', 'end b']);
  });

  it('reports positions: 0 running, then 1, 2, ...', async () => {
    const { queue, release } = makeQueue();
    const states: QueueState[] = [];
    queue.on('change', (q) => states.push(q));
    const a = queue.submit({ name: 'a', kind: 'wait' });
    const b = queue.submit({ name: 'b', kind: 'ok' });
    const c = queue.submit({ name: 'c', kind: 'ok' });
    // Before the microtask that starts it, the first job still waits in line.
    expect(queue.position(a.id)).toBe(1);
    await tick();
    const s = queue.state();
    expect(s.running).toMatchObject({ id: a.id, state: 'running', position: 0 });
    expect(s.pending.map((j) => [j.id, j.position, j.state])).toEqual([
      [b.id, 1, 'queued'],
      [c.id, 2, 'queued'],
    ]);
    expect(queue.position(c.id)).toBe(2);
    expect(states.length).toBeGreaterThanOrEqual(4); // 3 submits + start of a
    release();
    await queue.idle();
    expect(queue.position(a.id)).toBeUndefined();
    expect(states.at(-1)).toEqual({ running: null, pending: [] });
  });

  it('puts a job first in line with front, never before the running one', async () => {
    const { queue, startedOrder, release } = makeQueue();
    const a = queue.submit({ name: 'a', kind: 'wait' });
    await tick();
    const b = queue.submit({ name: 'b', kind: 'ok' });
    const c = queue.submit({ name: 'c', kind: 'ok' });
    const urgent = queue.submit({ name: 'urgent', kind: 'ok' }, undefined, { front: true });
    expect(queue.state().running).toMatchObject({ id: a.id, position: 0, startedAt: expect.any(Number) });
    expect(queue.state().pending.map((j) => [j.id, j.position])).toEqual([
      [urgent.id, 1],
      [b.id, 2],
      [c.id, 3],
    ]);
    release();
    await queue.idle();
    expect(startedOrder).toEqual(['a', 'urgent', 'b', 'c']);
  });

  it('cancels a queued job (it never runs) and the running one (abort signal)', async () => {
    const { queue, startedOrder } = makeQueue();
    const a = queue.submit({ name: 'a', kind: 'wait' });
    const b = queue.submit({ name: 'b', kind: 'ok' });
    const c = queue.submit({ name: 'c', kind: 'ok' });
    await tick();
    expect(queue.cancel(b.id)).toBe(true);
    expect(queue.get(b.id)!.state).toBe('cancelled');
    expect(queue.state().pending.map((j) => j.id)).toEqual([c.id]);
    expect(queue.cancel(a.id)).toBe(true);
    await queue.idle();
    expect(queue.get(a.id)!.state).toBe('cancelled');
    expect(queue.get(c.id)!.state).toBe('done');
    expect(startedOrder).toEqual(['a', 'c']);
    expect(queue.cancel(c.id)).toBe(false); // finished
    expect(queue.cancel('no-such-job')).toBe(false);
  });

  it('a failing job is marked failed with its message and node, and the next job runs', async () => {
    const { queue, finishedOrder } = makeQueue();
    const finished: string[] = [];
    queue.on('finished', (j) => finished.push(`${j.payload.name}:${j.state}`));
    const a = queue.submit({ name: 'a', kind: 'fail' });
    const b = queue.submit({ name: 'b', kind: 'fail-node' });
    const c = queue.submit({ name: 'c', kind: 'ok' });
    await queue.idle();
    expect(queue.get(a.id)).toMatchObject({ state: 'failed', error: 'a broke' });
    expect(queue.get(a.id)!.failedNode).toBeUndefined();
    expect(queue.get(b.id)).toMatchObject({ state: 'failed', error: 'Sampler (n7) failed: NaN at step 3', failedNode: 'n7' });
    expect(queue.get(c.id)!.state).toBe('done');
    expect(finishedOrder).toEqual(['c']);
    expect(finished).toEqual(['a:failed', 'b:failed', 'c:done']);
  });

  it('refuses submissions past maxPending', async () => {
    const { queue, release } = makeQueue({ maxPending: 2 });
    queue.submit({ name: 'a', kind: 'wait' });
    await tick(); // a is running, not pending
    queue.submit({ name: 'b', kind: 'ok' });
    queue.submit({ name: 'c', kind: 'ok' });
    expect(() => queue.submit({ name: 'd', kind: 'ok' })).toThrow(QueueFullError);
    expect(() => queue.submit({ name: 'd', kind: 'ok' })).toThrow('The queue is full (2 jobs waiting)');
    release();
    await queue.idle();
  });

  it('keeps a bounded history of finished jobs', async () => {
    const { queue } = makeQueue({ historySize: 2 });
    const jobs = ['a', 'b', 'c'].map((name) => queue.submit({ name, kind: 'ok' }));
    await queue.idle();
    expect(queue.get(jobs[0].id)).toBeUndefined();
    expect(queue.get(jobs[1].id)!.state).toBe('done');
    expect(queue.get(jobs[2].id)!.state).toBe('done');
  });

  it('a listener that throws does not break the queue; unsubscribe works', async () => {
    const { queue } = makeQueue();
    const errors = console.error;
    console.error = () => {};
    try {
      const off = queue.on('change', () => {
        throw new Error('listener bug');
      });
      let calls = 0;
      const off2 = queue.on('change', () => calls++);
      queue.submit({ name: 'a', kind: 'ok' });
      await queue.idle();
      expect(calls).toBeGreaterThan(0);
      off();
      off2();
      const before = calls;
      queue.submit({ name: 'b', kind: 'ok' });
      await queue.idle();
      expect(calls).toBe(before);
    } finally {
      console.error = errors;
    }
  });

  it('idle() resolves at once when nothing is queued', async () => {
    const { queue } = makeQueue();
    await expect(queue.idle()).resolves.toBeUndefined();
  });
});

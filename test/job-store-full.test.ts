/**
 * A full disk under the embedded job store (issue 25, item 6): submitting a job answers 507 with a
 * message saying so (as saving a graph does), not 500; nothing queued or finished is lost; a job that
 * ends while its end cannot be written is recorded once there is room, and the queue goes on.
 *
 * The disk fills up the way SQLite reports it: its writes fail with SQLITE_FULL ("database or disk is
 * full"), the error better-sqlite3 throws for ENOSPC under the database; the studio's code is unchanged.
 */
import { promises as fs } from 'node:fs';
import Database from 'better-sqlite3';
import { afterEach, expect, it, vi } from 'vitest';
import { api, EventLog, slowGraph, startTestStudio, tempDir } from './support/api-harness.ts';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** From now on, while `disk.full`, statements whose SQL starts with one of `writes` fail as on a full disk. */
function fillTheDisk(writes: string[]): { full: boolean } {
  const disk = { full: true };
  const realPrepare = Database.prototype.prepare;
  const spy = vi.spyOn(Database.prototype, 'prepare').mockImplementation(function (this: Database.Database, sql: string) {
    const statement = realPrepare.call(this, sql);
    if (!writes.some((w) => sql.trimStart().startsWith(w))) return statement;
    const realRun = statement.run.bind(statement);
    statement.run = ((...params: unknown[]) => {
      if (disk.full) throw new Database.SqliteError('database or disk is full', 'SQLITE_FULL');
      return (realRun as (...args: unknown[]) => Database.RunResult)(...params);
    }) as typeof statement.run;
    return statement;
  } as typeof realPrepare);
  cleanup.push(() => spy.mockRestore());
  return disk;
}

async function studio() {
  const dir = await tempDir('job-store-full');
  cleanup.push(() => fs.rm(dir, { recursive: true, force: true }));
  const errors: string[] = [];
  const log = { debug() {}, info() {}, warn: (m: string) => void errors.push(m), error: (m: string) => void errors.push(m) };
  const s = await startTestStudio(dir, { logger: log });
  cleanup.push(() => s.close());
  const events = await EventLog.connect(s);
  cleanup.push(() => events.close());
  return { s, events, errors };
}

it('answers 507 to a job submitted when the disk is full, keeps the queue and history, and queues once there is room', async () => {
  const { s, events } = await studio();
  const done = (await api(s, 'POST', '/api/jobs', { graph: slowGraph(1, 2, 0, 'done before') })).body.job.id;
  await events.waitForEnd(done);
  const running = (await api(s, 'POST', '/api/jobs', { graph: slowGraph(2, 10_000, 20, 'running') })).body.job.id;
  const queued = (await api(s, 'POST', '/api/jobs', { graph: slowGraph(3, 2, 0, 'queued') })).body.job.id;
  await events.waitFor('node:progress', (a) => a.jobId === running);

  const disk = fillTheDisk(['INSERT INTO jobs']);
  const refused = await api(s, 'POST', '/api/jobs', { graph: slowGraph(4, 2, 0, 'refused') });
  expect(refused.status, JSON.stringify(refused.body)).toBe(507);
  expect(refused.body.error).toEqual({
    code: 'no_space',
    message: 'cannot save the job (it was not queued): the disk holding the data folder is full; free some space and try again (nothing was changed)',
  });
  const queue = (await api(s, 'GET', '/api/queue')).body;
  expect(queue.running.id).toBe(running);
  expect(queue.pending.map((j: { id: string }) => j.id)).toEqual([queued]);
  expect((await api(s, 'GET', '/api/history')).body.jobs.map((j: { id: string }) => j.id)).toEqual([done]);

  disk.full = false;
  const accepted = await api(s, 'POST', '/api/jobs', { graph: slowGraph(4, 2, 0, 'accepted') });
  expect(accepted.status).toBe(202);
  expect(accepted.body.job.position).toBe(2);
});

it('records a job that ended while the disk was full once there is room, and then runs the next', async () => {
  const { s, events, errors } = await studio();
  const first = (await api(s, 'POST', '/api/jobs', { graph: slowGraph(1, 10_000, 20, 'first') })).body.job.id;
  const second = (await api(s, 'POST', '/api/jobs', { graph: slowGraph(2, 2, 0, 'second') })).body.job.id;
  await events.waitFor('node:progress', (a) => a.jobId === first);
  const disk = fillTheDisk(['UPDATE jobs SET state = ?, rank = NULL, finished_at']);
  expect((await api(s, 'DELETE', `/api/jobs/${first}`)).status).toBe(200);
  await expect
    .poll(() => errors.join('\n'))
    .toMatch(new RegExp(`cannot record how job ${first} ended \\(cancelled\\); the queue waits and tries again: database or disk is full`));
  // Not recorded yet: no end announced, the next job not started.
  expect(events.forJob(first).map((e) => e.name)).not.toContain('job:cancelled');
  expect(events.forJob(second).map((e) => e.name)).toEqual(['job:queued']);

  disk.full = false;
  expect((await events.waitForEnd(first)).name).toBe('job:cancelled');
  expect((await events.waitForEnd(second)).name).toBe('job:done');
  const history = (await api(s, 'GET', '/api/history')).body.jobs;
  expect(history.map((j: { id: string; state: string }) => [j.id, j.state])).toEqual([
    [second, 'done'],
    [first, 'cancelled'],
  ]);
});

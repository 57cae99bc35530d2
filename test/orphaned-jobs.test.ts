/**
 * Embedded mode after its server stopped mid-job (issue 25, items 1 and 3): a job recorded as running
 * by a process that is gone is run again, even when its PID now belongs to another process (PID reuse)
 * or the dead server is an unreaped zombie; a job whose runner really is alive elsewhere can still be
 * cancelled and removed; and a job that was running each time the server stopped is failed after
 * MAX_ATTEMPTS runs, saying why, with every attempt and its end in the job's detail and the history.
 *
 * A crash is Studio.close() (a shutdown, which marks the running job's run as ended by the shutdown)
 * followed by the job store's row as a killed server leaves it: running, by that server, its last run
 * not ended;
 * test/restart.test.ts and `npm run faults` do the same with a real kill -9.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, expect, it } from 'vitest';
import type { Studio } from '../server/app.ts';
import { MAX_ATTEMPTS } from '../server/executor/embedded-jobs.ts';
import { ownerId } from '../server/executor/job-owner.ts';
import { api, EventLog, slowGraph, startTestStudio, tempDir } from './support/api-harness.ts';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function folder(): Promise<string> {
  const dir = await tempDir('orphans');
  cleanup.push(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

async function studioOn(dir: string): Promise<Studio> {
  const studio = await startTestStudio(dir);
  cleanup.push(() => studio.close());
  return studio;
}

/** Starts a long job (or runs `jobId` again) and shuts the server down while it runs. */
async function stopDuringJob(dir: string, jobId?: string): Promise<string> {
  const studio = await studioOn(dir);
  const log = await EventLog.connect(studio);
  const id = jobId ?? (await api(studio, 'POST', '/api/jobs', { graph: slowGraph(1, 10_000, 50, 'long') })).body.job.id;
  await log.waitFor('node:progress', (a) => a.jobId === id, 30_000);
  log.close();
  await studio.close();
  return id;
}

/** The job as a server killed while it ran leaves it: running, by `owner`, its last run not ended. */
function asIfKilled(dir: string, id: string, owner: string | null): void {
  const db = new Database(path.join(dir, 'studio.db'));
  try {
    const { runs } = db.prepare(`SELECT runs FROM jobs WHERE id = ?`).get(id) as { runs: string };
    const all = JSON.parse(runs) as { attempt: number; startedAt: number }[];
    const unended = [...all.slice(0, -1), { attempt: all.at(-1)!.attempt, startedAt: all.at(-1)!.startedAt }];
    db.prepare(`UPDATE jobs SET state = 'running', rank = NULL, owner = ?, runs = ? WHERE id = ?`).run(owner, JSON.stringify(unended), id);
  } finally {
    db.close();
  }
}

/** The owner a server of this process with `instance` records, its PID replaced by `pid`. */
const withPid = (pid: number, instance: string) => ownerId(process.pid, instance).replace(`:${process.pid}:`, `:${pid}:`);

/** A process that stays alive until the test ends. */
function liveProcess(): ChildProcess {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e6)'], { stdio: 'ignore' });
  cleanup.push(() => void child.kill('SIGKILL'));
  return child;
}

const jobOf = async (studio: Studio, id: string) => (await api(studio, 'GET', `/api/jobs/${id}`)).body;

it('re-runs a job whose recorded PID now belongs to another live process (PID reuse)', async () => {
  const dir = await folder();
  const id = await stopDuringJob(dir);
  // The killed server's PID is now another process's: a live one, started later.
  const other = liveProcess();
  asIfKilled(dir, id, withPid(other.pid!, 'the-killed-server'));

  const studio = await studioOn(dir);
  await expect.poll(async () => (await jobOf(studio, id)).job, { timeout: 30_000 }).toMatchObject({ state: 'running', attempts: 2 });
  const detail = await jobOf(studio, id);
  expect(detail.runs).toMatchObject([{ attempt: 1, ended: 'stopped', reason: 'the server stopped during this run' }, { attempt: 2 }]);
  expect(detail.runs[1].ended).toBeUndefined();
});

it('re-runs a job whose server was killed but not reaped yet (a zombie with the recorded PID)', async () => {
  const dir = await folder();
  const id = await stopDuringJob(dir);
  // A child that exits when its stdin gets a byte, under a parent exec'd into `sleep`, which never
  // waits for it: once it exits, a zombie.
  const parent = spawn('bash', ['-c', 'head -c 1 <&0 >/dev/null & echo $!; exec sleep 600'], { stdio: ['pipe', 'pipe', 'ignore'] });
  cleanup.push(() => void parent.kill('SIGKILL'));
  const zombie = Number((await new Promise<Buffer>((resolve) => parent.stdout!.once('data', resolve))).toString().trim());
  await expect.poll(async () => (await fs.readFile(`/proc/${parent.pid}/comm`, 'utf8')).trim()).toBe('sleep');
  parent.stdin!.end('x');
  await expect.poll(async () => (await fs.readFile(`/proc/${zombie}/stat`, 'utf8')).split(') ')[1]![0]).toBe('Z');
  asIfKilled(dir, id, ownerId(zombie, 'the-killed-server'));

  const studio = await studioOn(dir);
  await expect.poll(async () => (await jobOf(studio, id)).job, { timeout: 30_000 }).toMatchObject({ state: 'running', attempts: 2 });
});

it('cancels, and then removes, a job recorded as running by another live process', async () => {
  const dir = await folder();
  const id = await stopDuringJob(dir);
  const other = liveProcess();
  asIfKilled(dir, id, ownerId(other.pid!, 'another-server'));

  const studio = await studioOn(dir);
  // Another server runs it (as far as this one can tell): not taken over...
  expect((await jobOf(studio, id)).job).toMatchObject({ state: 'running', attempts: 1 });
  // ...but the user can still stop it and clear it away.
  const cancel = await api(studio, 'DELETE', `/api/jobs/${id}`);
  expect(cancel.status, JSON.stringify(cancel.body)).toBe(200);
  expect(cancel.body.job.state).toBe('cancelled');
  expect((await api(studio, 'DELETE', `/api/history/${id}`)).status).toBe(200);
  expect((await api(studio, 'GET', `/api/jobs/${id}`)).status).toBe(404);
});

it(`fails a job the server stopped during ${MAX_ATTEMPTS} times, saying why, with each attempt in the history`, async () => {
  const dir = await folder();
  const id = await stopDuringJob(dir);
  asIfKilled(dir, id, null);
  for (let attempt = 2; attempt <= MAX_ATTEMPTS; attempt++) {
    await stopDuringJob(dir, id);
    asIfKilled(dir, id, null);
  }

  const studio = await studioOn(dir);
  const detail = await jobOf(studio, id);
  expect(detail.job).toMatchObject({ state: 'failed', attempts: MAX_ATTEMPTS });
  expect(detail.error.message).toBe(`the server stopped during this job ${MAX_ATTEMPTS} times; not retried`);
  expect(detail.runs.map((r: { attempt: number; ended: string }) => [r.attempt, r.ended])).toEqual(
    Array.from({ length: MAX_ATTEMPTS }, (_, i) => [i + 1, 'stopped']),
  );
  const history = (await api(studio, 'GET', '/api/history')).body.jobs;
  expect(history).toMatchObject([{ id, state: 'failed', attempts: MAX_ATTEMPTS, error: { message: detail.error.message } }]);
  expect(history[0].runs).toHaveLength(MAX_ATTEMPTS);
  // The queue goes on: the next job runs.
  const log = await EventLog.connect(studio);
  cleanup.push(() => log.close());
  const next = (await api(studio, 'POST', '/api/jobs', { graph: slowGraph(2, 2, 0) })).body.job.id;
  expect((await log.waitForEnd(next)).name).toBe('job:done');
  expect((await jobOf(studio, next)).runs).toMatchObject([{ attempt: 1, ended: 'done' }]);
});

it('does not count a shutdown (Ctrl+C, SIGTERM) against the limit', async () => {
  const dir = await folder();
  const id = await stopDuringJob(dir);
  for (let attempt = 2; attempt <= MAX_ATTEMPTS; attempt++) await stopDuringJob(dir, id);

  const studio = await studioOn(dir);
  await expect.poll(async () => (await jobOf(studio, id)).job, { timeout: 30_000 }).toMatchObject({ state: 'running', attempts: MAX_ATTEMPTS + 1 });
  const { runs } = await jobOf(studio, id);
  expect(runs.map((r: { ended?: string }) => r.ended)).toEqual([...Array.from({ length: MAX_ATTEMPTS }, () => 'shutdown'), undefined]);
});

/**
 * Embedded mode after its server stopped mid-job (issue 25, items 1 and 3): a job recorded as running
 * by a process that is gone is run again, even when its PID now belongs to another process (PID reuse)
 * or the dead server is an unreaped zombie; a job whose runner really is alive elsewhere can still be
 * cancelled and removed; and a job that was running each time the server stopped is failed after
 * MAX_ATTEMPTS runs, saying why, with every attempt and its end in the job's detail and the history.
 *
 * "The server stopped" is Studio.close() here (the job stays recorded as running, as after kill -9);
 * test/restart.test.ts does the same with a real kill -9.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, expect, it } from 'vitest';
import type { Studio } from '../server/app.ts';
import { MAX_ATTEMPTS, ownerId } from '../server/executor/embedded-jobs.ts';
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

/** Starts a long job and stops the server while it runs: the job stays recorded as running. */
async function stopDuringJob(dir: string, jobId?: string): Promise<string> {
  const studio = await studioOn(dir);
  const log = await EventLog.connect(studio);
  const id = jobId ?? (await api(studio, 'POST', '/api/jobs', { graph: slowGraph(1, 10_000, 50, 'long') })).body.job.id;
  await log.waitFor('node:progress', (a) => a.jobId === id, 30_000);
  log.close();
  await studio.close();
  return id;
}

/** A process that stays alive until the test ends. */
function liveProcess(): ChildProcess {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e6)'], { stdio: 'ignore' });
  cleanup.push(() => void child.kill('SIGKILL'));
  return child;
}

function setOwner(dir: string, id: string, owner: (current: string) => string): void {
  const db = new Database(path.join(dir, 'studio.db'));
  try {
    const { owner: current } = db.prepare(`SELECT owner FROM jobs WHERE id = ?`).get(id) as { owner: string };
    db.prepare(`UPDATE jobs SET owner = ? WHERE id = ?`).run(owner(current), id);
  } finally {
    db.close();
  }
}

const jobOf = async (studio: Studio, id: string) => (await api(studio, 'GET', `/api/jobs/${id}`)).body;

it('re-runs a job whose recorded PID now belongs to another live process (PID reuse)', async () => {
  const dir = await folder();
  const id = await stopDuringJob(dir);
  // The dead server's PID is now another process's: a live one, started later.
  const other = liveProcess();
  setOwner(dir, id, (owner) => owner.replace(`:${process.pid}:`, `:${other.pid}:`));

  const studio = await studioOn(dir);
  await expect.poll(async () => (await jobOf(studio, id)).job, { timeout: 30_000 }).toMatchObject({ state: 'running', attempts: 2 });
  const detail = await jobOf(studio, id);
  expect(detail.runs).toMatchObject([{ attempt: 1, ended: 'stopped', reason: 'the server stopped during this run' }, { attempt: 2 }]);
  expect(detail.runs[1].ended).toBeUndefined();
});

it('re-runs a job whose server was killed but not reaped yet (a zombie with the recorded PID)', async () => {
  const dir = await folder();
  const id = await stopDuringJob(dir);
  // `sleep 0` exits at once; its parent (exec'd into `sleep 600`) never waits for it: a zombie.
  const parent = spawn('bash', ['-c', 'sleep 0 & echo $!; exec sleep 600'], { stdio: ['ignore', 'pipe', 'ignore'] });
  cleanup.push(() => void parent.kill('SIGKILL'));
  const zombie = Number((await new Promise<Buffer>((resolve) => parent.stdout!.once('data', resolve))).toString().trim());
  await expect.poll(async () => (await fs.readFile(`/proc/${zombie}/stat`, 'utf8')).split(') ')[1]![0]).toBe('Z');
  setOwner(dir, id, () => ownerId(zombie, 'the-killed-server'));

  const studio = await studioOn(dir);
  await expect.poll(async () => (await jobOf(studio, id)).job, { timeout: 30_000 }).toMatchObject({ state: 'running', attempts: 2 });
});

it('cancels, and then removes, a job recorded as running by another live process', async () => {
  const dir = await folder();
  const id = await stopDuringJob(dir);
  const other = liveProcess();
  setOwner(dir, id, () => ownerId(other.pid!, 'another-server'));

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
  for (let attempt = 2; attempt <= MAX_ATTEMPTS; attempt++) await stopDuringJob(dir, id);

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

/**
 * Embedded mode survives kill -9: the real server (test catalog) as a child process with 3 jobs queued
 * and one running is killed with SIGKILL, started again on the same data folder, and still lists the
 * queue and history; the interrupted job runs again first and every job finishes.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { api, EventLog, slowGraph, tempDir } from './support/api-harness.ts';
import { kill9, startServer, stopAll } from './support/processes.ts';

let dataDir: string | undefined;

afterAll(async () => {
  await stopAll();
  if (dataDir) await fs.rm(dataDir, { recursive: true, force: true });
});

it('keeps the queue and history through kill -9, re-runs the job that ran, and finishes them all', async () => {
  dataDir = await tempDir('restart');
  const first = await startServer(['--data', dataDir]);
  const log = await EventLog.connect(first);
  const post = async (graph: unknown) => (await api(first, 'POST', '/api/jobs', { graph })).body.job.id as string;
  const before = await post(slowGraph(1, 2, 0, 'before'));
  await log.waitForEnd(before);
  const running = await post(slowGraph(2, 400, 20, 'running'));
  const queued = [await post(slowGraph(3, 5, 5, 'q1')), await post(slowGraph(4, 5, 5, 'q2')), await post(slowGraph(5, 5, 5, 'q3'))];
  await log.waitFor('node:progress', (a) => a.jobId === running && a.step >= 5);
  log.close();
  await kill9(first.child);

  const second = await startServer(['--data', dataDir]);
  expect(second.child.output()).toMatch(/1 job that ran when the server stopped was re-queued first in line/);
  const q = (await api(second, 'GET', '/api/queue')).body;
  expect([...q.active, ...q.pending].map((j: { id: string }) => j.id)).toEqual([running, ...queued]);
  const history = (await api(second, 'GET', '/api/history')).body;
  expect(history.jobs.map((j: { id: string; state: string }) => [j.id, j.state])).toEqual([[before, 'done']]);
  expect(history.jobs[0].results.save.text).toBe('value 3');

  const log2 = await EventLog.connect(second);
  for (const id of [running, ...queued]) expect((await log2.waitForEnd(id, 60_000)).name).toBe('job:done');
  log2.close();
  const detail = (await api(second, 'GET', `/api/jobs/${running}`)).body;
  expect(detail).toMatchObject({ job: { state: 'done', attempts: 2 }, results: { save: { text: 'value 402' } }, graph: { meta: { title: 'running' } } });
  const all = (await api(second, 'GET', '/api/history')).body;
  expect(all.jobs.map((j: { title: string }) => j.title)).toEqual(['q3', 'q2', 'q1', 'running', 'before']);
  expect(await fs.stat(path.join(dataDir, 'studio.db'))).toBeTruthy();
});

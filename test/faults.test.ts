/**
 * Faults (issue: hardening): the server killed with SIGKILL in the middle of saves, clients that go
 * away mid-job or mid-upload, storms of cancels, a model whose session cannot load, and a full disk
 * when a result is written. Each must end with intact files, a clear message, and a server that still
 * runs the next job.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { nodeDefinitions } from '../nodes/index.ts';
import type { Studio } from '../server/app.ts';
import { withParams } from '../server/graph/with-params.ts';
import { writeDemoModel } from '../server/models/demo/index.ts';
import type { Graph } from '../server/protocol/graph.ts';
import { PROJECT_ROOT } from '../server/util/project.ts';
import { api, EventLog, graphOf, slowGraph, startTestStudio, tempDir } from './support/api-harness.ts';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function studioOn(dir: string, extra: Parameters<typeof startTestStudio>[1] = {}): Promise<Studio> {
  const studio = await startTestStudio(dir, extra);
  cleanup.push(() => studio.close());
  return studio;
}

async function folder(name: string): Promise<string> {
  const dir = await tempDir(name);
  cleanup.push(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A graph of about `kb` KiB (nodes of a type this studio does not know keep their parameters as they are). */
function bigGraph(version: string, kb: number): Graph {
  const nodes = Array.from({ length: Math.ceil(kb / 60) }, (_, i) => ({
    id: `pad${i}`,
    type: 'FromANewerVersion',
    params: { version, pad: 'x'.repeat(60 * 1024) },
  }));
  return { ...graphOf(nodes), meta: { title: `version ${version}` } };
}

function startCli(dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, 'server/main.ts'), '--port', '0', '--data', dataDir, '--ep', 'cpu'], {
    cwd: PROJECT_ROOT,
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = out.match(/running at (http:\/\/[^\s]+)/);
      if (m) resolve({ child, url: m[1]! });
    });
    child.on('exit', (code) => reject(new Error(`studio exited (${code}) before it listened: ${out}`)));
  });
}

describe('kill -9 during saves', () => {
  it('leaves every saved graph intact, and the next start removes the temporary files', async () => {
    const dataDir = await folder('faults-kill');
    const bodies = ['A', 'B'].map((v) => JSON.stringify({ graph: bigGraph(v, 1500) }));
    const saved = new Set<string>(); // each version's file, as the studio writes it
    let templeft = 0;
    for (let round = 0; round < 3; round++) {
      const { child, url } = await startCli(dataDir);
      const put = (body: string) =>
        fetch(new URL('/api/graphs/victim', url), { method: 'PUT', headers: { 'content-type': 'application/json' }, body }).catch(() => null);
      if (round === 0) {
        for (const body of bodies) {
          expect((await put(body))?.status).toBe(200);
          saved.add(await fs.readFile(path.join(dataDir, 'graphs', 'victim.json'), 'utf8'));
        }
      }
      // Saves back to back; the kill lands while one is being written (1.5 MB, fsync'd) or between two.
      let saving = true;
      const loop = (async () => {
        for (let i = 0; saving; i++) await put(bodies[i % 2]!);
      })();
      await new Promise((r) => setTimeout(r, 150 + 150 * round));
      child.kill('SIGKILL');
      saving = false;
      await new Promise((r) => child.once('exit', r));
      await loop;
      const text = await fs.readFile(path.join(dataDir, 'graphs', 'victim.json'), 'utf8');
      // The file is one whole version, never a mix or a cut.
      expect(saved.has(text), `round ${round}: ${text.length} bytes`).toBe(true);
      templeft += (await fs.readdir(path.join(dataDir, 'graphs'))).filter((f) => f.endsWith('.tmp')).length;
    }
    const studio = await studioOn(dataDir);
    expect((await fs.readdir(path.join(dataDir, 'graphs'))).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    const read = await api(studio, 'GET', '/api/graphs/victim');
    expect(read.status).toBe(200);
    expect(read.body.meta.title).toMatch(/^version [AB]$/);
    const list = await api(studio, 'GET', '/api/graphs');
    expect(list.body.map((g: { name: string }) => g.name)).toContain('victim');
    console.log(`kill -9 during saves: ${templeft} temporary file(s) left by the kills, none after the restart`);
  });
});

describe('clients that go away', () => {
  it('a socket that disconnects mid-job does not stop the job or the others', async () => {
    const studio = await studioOn(await folder('faults-disconnect'));
    const watcher = await EventLog.connect(studio);
    cleanup.push(async () => watcher.close());
    const leaver = await EventLog.connect(studio);
    const res = await api(studio, 'POST', '/api/jobs', { graph: slowGraph(1, 30, 5) });
    await leaver.waitFor('node:progress', (e) => e.jobId === res.body.job.id);
    leaver.socket.disconnect();
    expect((await watcher.waitForEnd(res.body.job.id)).name).toBe('job:done');
  });

  it('an upload cut off mid-body leaves no file, and the server answers', async () => {
    const dataDir = await folder('faults-upload');
    const studio = await studioOn(dataDir);
    await new Promise<void>((resolve) => {
      const req = http.request({
        host: '127.0.0.1',
        port: studio.port,
        method: 'POST',
        path: '/api/uploads',
        headers: { 'content-type': 'image/png', 'content-length': String(4 * 1024 * 1024), 'x-requested-with': 'dualstyle' },
      });
      req.on('error', () => resolve());
      req.write(Buffer.alloc(1024 * 1024));
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 100);
    });
    await new Promise((r) => setTimeout(r, 100));
    expect((await api(studio, 'GET', '/api/health')).status).toBe(200);
    expect(await fs.readdir(path.join(dataDir, 'uploads'))).toEqual([]);
  });
});

describe('cancel storms', () => {
  it('answers hundreds of concurrent cancels with 200, 404 or 409, ends every job, and runs the next', async () => {
    const studio = await studioOn(await folder('faults-storm'));
    const events = await EventLog.connect(studio);
    cleanup.push(async () => events.close());
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) ids.push((await api(studio, 'POST', '/api/jobs', { graph: slowGraph(i, 200, 5) })).body.job.id);
    const targets = [...ids, 'no-such-job', '%2e%2e', 'x'.repeat(200)];
    // 300 cancels, 50 at a time (more at once would meet the server's connection cap, by design).
    const statuses = new Set<number>();
    for (let wave = 0; wave < 6; wave++) {
      const storm = Array.from({ length: 50 }, (_, i) => {
        const id = targets[(wave * 50 + i * 7) % targets.length]!;
        return i % 2 ? api(studio, 'POST', `/api/jobs/${id}/cancel`) : api(studio, 'DELETE', `/api/jobs/${id}`);
      });
      for (const r of await Promise.all(storm)) statuses.add(r.status);
    }
    expect(
      [...statuses].every((s) => [200, 404, 409].includes(s)),
      [...statuses].join(),
    ).toBe(true);
    for (const id of ids) expect((await events.waitForEnd(id)).name).toMatch(/job:(cancelled|done)/);
    expect((await api(studio, 'GET', '/api/queue')).body).toMatchObject({ running: null, pending: [] });
    const next = await api(studio, 'POST', '/api/jobs', { graph: slowGraph(99, 2, 0) });
    expect((await events.waitForEnd(next.body.job.id)).name).toBe('job:done');
  });
});

describe('a session that fails to load', () => {
  it('fails the job at Load Model with the model named as the user did, and the next job runs', async () => {
    const dataDir = await folder('faults-session');
    await writeDemoModel(path.join(dataDir, 'models', 'broken-sd'));
    await fs.writeFile(path.join(dataDir, 'models', 'broken-sd', 'unet', 'model.onnx'), 'this is not an onnx file');
    const studio = await studioOn(dataDir, { catalog: nodeDefinitions, executionProvider: 'cpu' });
    const events = await EventLog.connect(studio);
    cleanup.push(async () => events.close());
    const template = JSON.parse(await fs.readFile(path.join(PROJECT_ROOT, 'graphs', 'epsilon-merge.json'), 'utf8')) as Graph;
    const small = (model: string) => withParams(template, { LoadModel: { model }, LoadImage: { max_side: 64 }, Invert: { steps: 3, skip: 1 } });
    const broken = await api(studio, 'POST', '/api/jobs', { graph: small('broken-sd') });
    const failed = await events.waitForEnd(broken.body.job.id, 60_000);
    expect(failed.name).toBe('job:failed');
    expect(failed.args.nodeId).toBe('model');
    expect(failed.args.message).toMatch(/cannot load unet\/model\.onnx in broken-sd/);
    expect(failed.args.message).not.toContain(dataDir);
    const ok = await api(studio, 'POST', '/api/jobs', { graph: small('demo') });
    expect((await events.waitForEnd(ok.body.job.id, 120_000)).name).toBe('job:done');
  });
});

describe('disk full when a result is written', () => {
  it('fails the job with a clear message, leaves no partial file, loses nothing, and works once there is room', async () => {
    const dataDir = await folder('faults-enospc');
    const studio = await studioOn(dataDir);
    const events = await EventLog.connect(studio);
    cleanup.push(async () => events.close());
    const results = path.join(dataDir, 'results');
    const run = async (value: number) => events.waitForEnd((await api(studio, 'POST', '/api/jobs', { graph: slowGraph(value, 2, 0) })).body.job.id);

    const first = await run(1);
    expect(first.name).toBe('job:done');
    const before = await fs.readdir(results);

    // The disk fills up: writes into results/ fail as the OS would say it (the studio's code is unchanged).
    const realOpen = fs.open.bind(fs);
    let full = true;
    const spy = vi.spyOn(fs, 'open').mockImplementation(async (...args: Parameters<typeof fs.open>) => {
      const handle = await realOpen(...args);
      if (full && String(args[0]).startsWith(results)) {
        handle.writeFile = async () => {
          throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
        };
      }
      return handle;
    });
    cleanup.push(async () => spy.mockRestore());

    const failed = await run(2);
    expect(failed.name).toBe('job:failed');
    expect(failed.args.nodeId).toBe('save');
    expect(failed.args.message).toMatch(/cannot save the result image: the disk holding the data folder is full; free some space and try again/);
    expect(await fs.readdir(results)).toEqual(before); // no partial or temporary file, the old result intact

    full = false;
    const again = await run(2);
    expect(again.name).toBe('job:done');
    // Nothing computed before the failure was lost: only the output node ran again.
    expect(again.args.cached).toEqual(['n', 'slow']);
    expect(again.args.computed).toEqual(['save']);
  });
});

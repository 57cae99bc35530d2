/**
 * Who may reach the studio (loopback without a token, the token on the API and the socket) and its
 * command line as a user runs it (start, URL, SIGTERM, a port in use), against real studios.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStudio, type Studio } from '../server/app.ts';
import { PROJECT_ROOT as projectRoot } from '../server/util/project.ts';
import { api, EventLog, silentLogger, slowGraph, startTestStudio, tempDir } from './support/api-harness.ts';

let dataDir: string;
/** A running studio whose port the tests try to take. */
let studio: Studio;

beforeAll(async () => {
  dataDir = await tempDir('api-access');
  studio = await startTestStudio(dataDir);
});

afterAll(async () => {
  await studio?.close();
  await fs.rm(dataDir, { recursive: true, force: true });
});

describe('access', () => {
  it('refuses to listen beyond loopback without a token', async () => {
    const dir = await tempDir('api-open');
    await expect(createStudio({ dataDir: dir, host: '0.0.0.0', port: 0, logger: silentLogger })).rejects.toThrow(/without an access token/);
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('explains a port that is already in use', async () => {
    await expect(startTestStudio(dataDir, { port: studio.port })).rejects.toThrow(`port ${studio.port} is already in use`);
  });

  it('requires the token on the API and the socket when one is set', async () => {
    const dir = await tempDir('api-token');
    const locked = await startTestStudio(dir, { token: 's3cret-token-0123456789' });
    try {
      const anonymous = await api(locked, 'GET', '/api/health');
      expect(anonymous.status).toBe(401);
      expect(anonymous.body.error.code).toBe('unauthorized');
      expect((await api(locked, 'GET', '/api/health', undefined, { authorization: 'Bearer wrong' })).status).toBe(401);
      expect((await api(locked, 'GET', '/api/health', undefined, { authorization: 'Bearer s3cret-token-0123456789' })).status).toBe(200);
      expect((await api(locked, 'GET', '/api/catalog?token=s3cret-token-0123456789')).status).toBe(200);
      expect((await api(locked, 'POST', '/api/jobs', { graph: slowGraph(1, 1) })).status).toBe(401);

      await expect(EventLog.connect(locked)).rejects.toThrow(/unauthorized/);
      const log = await EventLog.connect(locked, { token: 's3cret-token-0123456789' });
      expect((await log.waitFor('queue')).args).toEqual({ running: null, active: [], pending: [], workers: 1 });
      log.close();
    } finally {
      await locked.close();
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

describe.concurrent('command line (server/main.ts)', () => {
  function runMain(args: string[], onStdout?: (text: string, kill: () => void) => void) {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(projectRoot, 'server/main.ts'), ...args], {
      cwd: projectRoot,
      env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !['PORT', 'HOST', 'DUALSTYLE_TOKEN', 'DUALSTYLE_EP'].includes(k))),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      onStdout?.(stdout, () => child.kill('SIGTERM'));
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
  }

  it('starts, prints its URL and stops cleanly on SIGTERM', async () => {
    const dir = await tempDir('api-cli');
    let url = '';
    let health: unknown;
    const result = await runMain(['--port', '0', '--data', dir, '--ep', 'cpu'], (text, kill) => {
      const m = text.match(/Dual Style Studio running at (http:\/\/127\.0\.0\.1:\d+\/)/);
      if (m && !url && text.includes('execution provider')) {
        url = m[1]!;
        void fetch(new URL('/api/health', url))
          .then((r) => r.json())
          .then((h) => (health = h))
          .finally(kill);
      }
    });
    expect(url).not.toBe('');
    expect(health).toMatchObject({ ok: true, executionProvider: 'cpu' });
    expect(result.stdout).toContain('execution provider: cpu');
    expect(result.code).toBe(0);
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('explains a port in use in one line and exits with code 1', async () => {
    const dir = await tempDir('api-cli-busy');
    const result = await runMain(['--port', String(studio.port), '--data', dir]);
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toEqual([
      `error: port ${studio.port} is already in use on 127.0.0.1: stop the other server or choose another port (--port)`,
    ]);
    await fs.rm(dir, { recursive: true, force: true });
  });
});

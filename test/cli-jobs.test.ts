/** The job flags of the server and worker command lines, and their errors (no Redis needed). */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseWorkerCli } from '../server/cli/worker.ts';
import { parseCli } from '../server/main.ts';
import { redacted } from '../server/util/redact.ts';
import { PROJECT_ROOT } from '../server/util/project.ts';
import { freePort } from './support/processes.ts';

describe('flags of whoever runs jobs', () => {
  it('the server and a worker read them alike, flags over the environment', () => {
    const argv = [
      '--ep',
      'cpu',
      '--gpu',
      '3',
      '--data',
      'd',
      '--models-root',
      'm1',
      '--models-root',
      'm2',
      '--max-job-memory',
      '2G',
      '--preview-decoder',
      'taesd',
      '--keep-jobs',
      '7',
      '--keep-days',
      '1',
    ];
    const env = { DUALSTYLE_EP: 'cuda', DUALSTYLE_GPU: '1', DUALSTYLE_DATA: 'elsewhere' };
    const expected = {
      ep: 'cpu',
      gpu: 3,
      dataDir: path.resolve('d'),
      modelRoots: [path.resolve('m1'), path.resolve('m2')],
      maxJobMemory: 2 * 1024 ** 3,
      previewDecoder: path.resolve('taesd'),
      retention: { maxJobs: 7, maxAgeMs: 24 * 3600 * 1000 },
    };
    expect(parseCli(argv, env)).toMatchObject(expected);
    expect(parseWorkerCli([...argv, '--redis', 'redis://h:1'], env)).toMatchObject(expected);
    // The environment where no flag is given; a worker without either runs on whatever GPU CUDA picks.
    expect(parseWorkerCli(['--redis', 'redis://h:1'], env)).toMatchObject({ ep: 'cuda', gpu: 1, dataDir: path.resolve('elsewhere') });
    expect(parseWorkerCli(['--redis', 'redis://h:1'], {})).not.toHaveProperty('gpu');
    expect(parseCli([], {})).toMatchObject({ gpu: 0 });
    for (const parse of [(a: string[]) => parseCli(a, {}), (a: string[]) => parseWorkerCli([...a, '--redis', 'redis://h:1'], {})]) {
      expect(() => parse(['--gpu', 'x'])).toThrow('--gpu must be a whole number from 0 to 1023, got "x"');
      expect(() => parse(['--ep', 'tpu'])).toThrow(/--ep must be one of auto, cuda/);
      expect(() => parse(['--nope'])).toThrow(/Unknown option '--nope'/);
    }
  });
});

describe('server job flags', () => {
  it('reads --redis, --on-restart and retention, with embedded defaults', () => {
    expect(parseCli([], {})).toMatchObject({ onRestart: 'requeue', retention: { maxJobs: 1000, maxAgeMs: 30 * 24 * 3600 * 1000 } });
    expect(parseCli([], {})).not.toHaveProperty('redis');
    const cli = parseCli(['--redis', 'redis://10.0.0.5:6379', '--on-restart', 'interrupt', '--keep-jobs', '50', '--keep-days', '2'], {});
    expect(cli).toMatchObject({ redis: 'redis://10.0.0.5:6379', onRestart: 'interrupt', retention: { maxJobs: 50, maxAgeMs: 2 * 24 * 3600 * 1000 } });
    expect(parseCli([], { DUALSTYLE_REDIS: 'rediss://cache:6380' })).toMatchObject({ redis: 'rediss://cache:6380' });
  });

  it('refuses bad values with messages that name the flag', () => {
    expect(() => parseCli(['--redis', 'localhost:6379'], {})).toThrow(/--redis must start with redis:\/\/ or rediss:\/\//);
    expect(() => parseCli(['--redis', 'not a url'], {})).toThrow(/--redis must be a URL such as redis:\/\/127\.0\.0\.1:6379/);
    expect(() => parseCli(['--on-restart', 'resume'], {})).toThrow('--on-restart must be requeue or interrupt, got "resume"');
    expect(() => parseCli(['--keep-jobs', '0'], {})).toThrow('--keep-jobs must be a whole number from 1 to 1000000, got "0"');
  });
});

describe('worker command line', () => {
  it('needs --redis, and reads the GPU, the stall timeout and retention', () => {
    expect(() => parseWorkerCli([], {})).toThrow(/--redis is required/);
    const cli = parseWorkerCli(['--redis', 'redis://127.0.0.1:6379', '--gpu', '1', '--stall-timeout', '5', '--data', 'shared'], {});
    expect(cli).toMatchObject({ redis: 'redis://127.0.0.1:6379', gpu: 1, stallTimeoutMs: 5000, dataDir: path.resolve('shared'), ep: 'auto' });
    expect(parseWorkerCli(['--redis', 'redis://h:1'], {})).toMatchObject({ stallTimeoutMs: 30_000 });
    expect(() => parseWorkerCli(['--redis', 'redis://h:1', '--gpu', 'first'], {})).toThrow('--gpu must be a whole number from 0 to 1023, got "first"');
  });

  it('never prints a Redis password', () => {
    expect(redacted('redis://:hunter2@cache:6379/0')).toBe('redis://:***@cache:6379/0');
    expect(redacted('redis://user:hunter2@cache:6379')).toBe('redis://user:***@cache:6379');
    expect(redacted('redis://cache:6379')).toBe('redis://cache:6379');
  });

  it('says in one line that Redis cannot be reached, without the password, and exits with 1', async () => {
    const port = await freePort(); // nothing listens there
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(PROJECT_ROOT, 'server/cli/worker.ts'), '--redis', `redis://:hunter2@127.0.0.1:${port}`, '--ep', 'cpu'],
      { cwd: PROJECT_ROOT },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise((resolve) => child.on('exit', resolve));
    expect(code).toBe(1);
    expect(stderr.trim().split('\n')).toEqual([
      expect.stringMatching(new RegExp(`^error: cannot reach Redis at redis://:\\*\\*\\*@127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`)),
    ]);
  });
});

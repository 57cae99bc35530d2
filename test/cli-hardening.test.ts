/**
 * The hardening flags of the server and worker command lines (--allow-host, --models-root,
 * --max-job-memory), and the bench's command line: usage on --help, a named complaint on a bad flag.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { BENCH_USAGE, parseBenchCli } from '../server/cli/bench.ts';
import { parseWorkerCli } from '../server/cli/worker.ts';
import { parseCli } from '../server/main.ts';
import { formatBytes, parseBytes } from '../server/util/bytes.ts';

const GiB = 1024 ** 3;

describe('hardening flags', () => {
  it('reads repeated --allow-host and --models-root, and --max-job-memory as a size', () => {
    const cli = parseCli(['--allow-host', 'studio.lan', '--allow-host', '10.0.0.7', '--models-root', 'big-disk/models', '--max-job-memory', '12G'], {});
    expect(cli).toMatchObject({ allowHosts: ['studio.lan', '10.0.0.7'], modelRoots: [path.resolve('big-disk/models')], maxJobMemory: 12 * GiB });
    expect(parseCli([], {})).toMatchObject({ allowHosts: [], modelRoots: [] });
    expect(parseCli([], {})).not.toHaveProperty('maxJobMemory');
    expect(parseCli([], { DUALSTYLE_MAX_JOB_MEMORY: '512M' })).toMatchObject({ maxJobMemory: 512 * 1024 ** 2 });
    expect(parseWorkerCli(['--redis', 'redis://h:1', '--models-root', '/srv/models', '--max-job-memory', '20GiB'], {})).toMatchObject({
      modelRoots: ['/srv/models'],
      maxJobMemory: 20 * GiB,
    });
  });

  it('refuses what is not a size or a host name, naming the flag', () => {
    expect(() => parseCli(['--max-job-memory', 'lots'], {})).toThrow('--max-job-memory must be a size such as 8G, 512M or 12GiB, got "lots"');
    expect(() => parseCli(['--max-job-memory', '0'], {})).toThrow(/--max-job-memory must be a size/);
    expect(() => parseCli(['--allow-host', 'evil.example/path'], {})).toThrow('--allow-host takes a host name or address, got "evil.example/path"');
  });

  it('sizes read and print in powers of 1024', () => {
    expect([parseBytes('8G'), parseBytes('1.5 GiB'), parseBytes('512m'), parseBytes('2048'), parseBytes('-1'), parseBytes('G')]).toEqual([
      8 * GiB,
      1.5 * GiB,
      512 * 1024 ** 2,
      2048,
      null,
      null,
    ]);
    expect([formatBytes(2 * 1024 ** 2), formatBytes(1.5 * GiB), formatBytes(3000), formatBytes(12)]).toEqual(['2 MiB', '1.5 GiB', '3 KiB', '12 bytes']);
  });
});

describe('bench command line', () => {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const bench = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(process.execPath, ['--import', 'tsx', 'server/cli/bench.ts', ...args], { cwd: root }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      ),
    );

  it('prints its usage on --help, as every other command does', async () => {
    expect(parseBenchCli(['--help'])).toBe('help');
    const run = await bench(['--help']);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout.trim()).toBe(BENCH_USAGE);
    for (const flag of [
      '--model',
      '--ep',
      '--steps',
      '--skip',
      '--size',
      '--reps',
      '--unet-reps',
      '--no-session-timing',
      '--preview-decoder',
      '--max-job-memory',
      '--batches',
      '--jsonl',
      '--json',
    ]) {
      expect(BENCH_USAGE).toContain(`\n  ${flag} `);
    }
  });

  it('reads the defaults and refuses bad flags by name, with the usage and exit code 2', async () => {
    expect(parseBenchCli([])).toEqual({
      options: {
        model: 'demo',
        executionProvider: 'auto',
        gpu: 0,
        steps: 100,
        skip: 10,
        maxSide: 512,
        previewReps: 3,
        unetReps: 3,
        sessionTiming: true,
        optimizerTiming: true,
        weightSets: true,
      },
      json: false,
    });
    expect(parseBenchCli(['--steps', '20', '--max-job-memory', '2G', '--no-session-timing', '--jsonl', 'out.jsonl'])).toMatchObject({
      options: { steps: 20, skip: 2, maxJobMemory: 2 * GiB, sessionTiming: false },
      jsonl: 'out.jsonl',
    });
    expect(parseBenchCli(['--batches', '1,2,4'])).toMatchObject({ options: { batches: [1, 2, 4] } });
    expect(parseBenchCli(['--batches', 'none'])).toMatchObject({ options: { batches: [] } });
    expect(parseBenchCli(['--no-weight-sets'])).toMatchObject({ options: { weightSets: false } });
    expect(() => parseBenchCli(['--batches', '1,9'])).toThrow('--batches takes sizes from 1 to 8, got 9');
    expect(() => parseBenchCli(['--batches', '1,two'])).toThrow('--batches must be an integer ≥ 1, got "two"');
    expect(() => parseBenchCli(['--steps', '5', '--skip', '5'])).toThrow('--steps (5) must be greater than --skip (5)');
    expect(() => parseBenchCli(['--size', 'big'])).toThrow('--size must be an integer ≥ 64, got "big"');
    expect(() => parseBenchCli(['--ep', 'tpu'])).toThrow(/--ep must be one of .*, got "tpu"/);
    expect(() => parseBenchCli(['--frobnicate'])).toThrow(/--frobnicate/);
    const run = await bench(['--steps', 'many']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('error: --steps must be an integer ≥ 2, got "many"');
    expect(run.stderr).toContain(BENCH_USAGE);
    expect(run.stdout).toBe('');
  });
});

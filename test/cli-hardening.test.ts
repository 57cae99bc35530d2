/** The hardening flags of the server and worker command lines: --allow-host, --models-root, --max-job-memory. */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
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

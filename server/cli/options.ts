/**
 * What the studio's command lines share: the flags of whoever runs jobs (the embedded server and a
 * distributed worker alike: provider, GPU, data and models folders, memory budget, preview decoder,
 * history retention), their checks, and the stop-on-signal loop. Flags win over the environment, and an
 * empty environment variable counts as unset.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { EXECUTION_PROVIDERS, type ExecutionProviderRequest } from '../engine/runtime/runtime.ts';
import { DEFAULT_RELEASE_IDLE_MS } from '../executor/graph-runner.ts';
import { DEFAULT_RETENTION, type Retention } from '../executor/job-service.ts';
import { parseBytes } from '../util/bytes.ts';
import type { CustomNodes } from '../node-packages/load.ts';

/** A command line the user can fix: printed with the usage text, exit code 2. */
export class UsageError extends Error {}

/** The flags of a process that runs jobs. */
export const RUNNER_FLAGS = {
  ep: { type: 'string' },
  gpu: { type: 'string' },
  data: { type: 'string' },
  'models-root': { type: 'string', multiple: true },
  'max-job-memory': { type: 'string' },
  'preview-decoder': { type: 'string' },
  'keep-jobs': { type: 'string' },
  'keep-days': { type: 'string' },
  'release-idle': { type: 'string' },
  nodes: { type: 'string', multiple: true },
  'no-custom-nodes': { type: 'boolean' },
} as const satisfies NonNullable<ParseArgsConfig['options']>;

export interface RunnerSettings {
  ep: ExecutionProviderRequest;
  /** --gpu or DUALSTYLE_GPU; absent when neither is given. */
  gpu?: number;
  dataDir: string;
  modelRoots: string[];
  /** Bytes; absent: the default from the machine. */
  maxJobMemory?: number;
  previewDecoder?: string;
  retention: Retention;
  /** --release-idle: ms without a job before loaded models are released; 0 = never. */
  releaseIdleMs: number;
  /** Node packages: `<data>/custom_nodes/*` and the --nodes folders; false with --no-custom-nodes. */
  customNodes: CustomNodes;
}

/** The help lines of the node-package flags, shared by the studio's and the worker's usage. */
export const CUSTOM_NODES_USAGE = `  --nodes           a node package folder to load besides those in <data>/custom_nodes/ (an npm package folder
                    whose package.json has "dualstyle": { "entry", "api" }); repeat for several. Node packages are
                    trusted code: they run inside the studio with its rights
  --no-custom-nodes load no node packages (neither <data>/custom_nodes/ nor --nodes)`;

/**
 * A command line read the way every command reads it: `--help` prints the usage (exit 0); a complaint
 * prints `error: <what is wrong>` and the usage (exit 2). Otherwise the parsed options.
 */
export function readCommandLine<T>(argv: string[], parse: (argv: string[]) => T | 'help', usage: string): { cli: T } | { exit: number } {
  let cli: T | 'help';
  try {
    cli = parse(argv);
  } catch (err) {
    console.error(`error: ${(err as Error).message}\n\n${usage}`);
    return { exit: 2 };
  }
  if (cli === 'help') {
    console.log(usage);
    return { exit: 0 };
  }
  return { cli };
}

/**
 * Runs `main` with the process's arguments when `moduleUrl` (the caller's import.meta.url) is the entry
 * point, and exits with its code; an error it did not handle prints its message and exits 1.
 * fileURLToPath, not URL.pathname: the latter keeps %20 and friends, so under a folder with a space in
 * its name the command would silently never start.
 */
export function runIfEntry(moduleUrl: string, main: (argv: string[]) => Promise<number>): void {
  const entry = process.argv[1];
  if (entry === undefined || path.resolve(entry) !== fileURLToPath(moduleUrl)) return;
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(`error: ${(err as Error)?.message ?? String(err)}`);
      process.exit(1);
    },
  );
}

/** parseArgs with `options` and --help, its complaints as UsageErrors. */
export function parseFlags<O extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: false, strict: true }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** RUNNER_FLAGS' values, checked. */
export function runnerSettings(
  values: {
    [K in keyof typeof RUNNER_FLAGS]?: (typeof RUNNER_FLAGS)[K] extends { multiple: true }
      ? string[]
      : (typeof RUNNER_FLAGS)[K] extends { type: 'boolean' }
        ? boolean
        : string;
  },
  env: NodeJS.ProcessEnv,
): RunnerSettings {
  const ep = (values.ep ?? (env.DUALSTYLE_EP || 'auto')) as ExecutionProviderRequest;
  if (!EXECUTION_PROVIDERS.includes(ep)) throw new UsageError(`--ep must be one of ${EXECUTION_PROVIDERS.join(', ')}, got ${JSON.stringify(ep)}`);
  const gpuText = values.gpu ?? (env.DUALSTYLE_GPU || undefined);
  const maxJobMemory = jobMemory(values['max-job-memory'] ?? (env.DUALSTYLE_MAX_JOB_MEMORY || undefined));
  const previewDecoder = values['preview-decoder'] || env.DUALSTYLE_PREVIEW_DECODER || undefined;
  const nodePackages = (values.nodes ?? []).map((dir) => path.resolve(dir));
  if (values['no-custom-nodes'] && nodePackages.length > 0) throw new UsageError('--nodes and --no-custom-nodes contradict each other: give one of them');
  return {
    ep,
    ...(gpuText !== undefined ? { gpu: wholeNumber('gpu', gpuText, 0, 1023) } : {}),
    dataDir: path.resolve(values.data || env.DUALSTYLE_DATA || 'data'),
    modelRoots: (values['models-root'] ?? []).map((dir) => path.resolve(dir)),
    ...(maxJobMemory !== undefined ? { maxJobMemory } : {}),
    ...(previewDecoder ? { previewDecoder: path.resolve(previewDecoder) } : {}),
    releaseIdleMs: releaseIdle(values['release-idle'] ?? (env.DUALSTYLE_RELEASE_IDLE || undefined)),
    customNodes: values['no-custom-nodes'] ? false : { extra: nodePackages },
    retention: {
      maxJobs: values['keep-jobs'] !== undefined ? wholeNumber('keep-jobs', values['keep-jobs'], 1, 1_000_000) : DEFAULT_RETENTION.maxJobs,
      maxAgeMs: values['keep-days'] !== undefined ? wholeNumber('keep-days', values['keep-days'], 1, 36_500) * 24 * 3600 * 1000 : DEFAULT_RETENTION.maxAgeMs,
    },
  };
}

/** A whole number flag in [min, max]. */
export function wholeNumber(name: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(text)}`);
  }
  return n;
}

/** --max-job-memory: a size such as 8G, in bytes; undefined when not given. */
export function jobMemory(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const bytes = parseBytes(text);
  if (bytes === null) throw new UsageError(`--max-job-memory must be a size such as 8G, 512M or 12GiB, got ${JSON.stringify(text)}`);
  return bytes;
}

/** --release-idle: a quiet period such as 60s, 5m or 500ms (a bare number is seconds), or 0 / off; default 60 s. */
export function releaseIdle(text: string | undefined): number {
  if (text === undefined) return DEFAULT_RELEASE_IDLE_MS;
  if (text === 'off' || text === 'never') return 0;
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|min|h)?$/.exec(text.trim());
  const unit = { ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000 }[m?.[2] ?? 's'];
  const ms = m && unit ? Math.round(Number(m[1]) * unit) : NaN;
  if (!Number.isFinite(ms) || ms > 7 * 24 * 3_600_000) {
    throw new UsageError(`--release-idle must be a duration such as 60s, 5m or 500ms (0 or off: never), got ${JSON.stringify(text)}`);
  }
  return ms;
}

/** A Redis URL, checked before anything connects. */
export function redisUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--redis must be a URL such as redis://127.0.0.1:6379, got ${JSON.stringify(text)}`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:')
    throw new UsageError(`--redis must start with redis:// or rediss://, got ${JSON.stringify(text)}`);
  return text;
}

/**
 * Waits for SIGINT or SIGTERM, then runs `close`. A second signal while a stuck job is being stopped
 * exits at once (hence `on`, not `once`).
 */
export function untilStopped(close: () => Promise<void>, message: string): Promise<void> {
  return new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        console.error('forced exit');
        process.exit(1);
      }
      stopping = true;
      console.log(`${signal}: ${message}`);
      close().then(resolve, (err: unknown) => {
        console.error(`error while stopping: ${(err as Error).message}`);
        resolve();
      });
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

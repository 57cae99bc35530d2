/**
 * Command line entry: `tsx server/main.ts [--port 8188] [--host 127.0.0.1] [--token T]
 * [--ep auto|cuda|webgpu|cpu] [--gpu N] [--data ./data] [--preview-decoder DIR] [--redis URL] [--on-restart requeue|interrupt]
 * [--keep-jobs 1000] [--keep-days 30] [--allow-host NAME]... [--models-root DIR]... [--max-job-memory 8G]`.
 * Environment: PORT, HOST, DUALSTYLE_TOKEN, DUALSTYLE_EP, DUALSTYLE_GPU, DUALSTYLE_DATA, DUALSTYLE_PREVIEW_DECODER,
 * DUALSTYLE_REDIS, DUALSTYLE_MAX_JOB_MEMORY. Flags win over the environment.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createStudio, type Studio, type StudioOptions } from './app.ts';
import { diagnoseCuda } from './engine/onnx/cuda-doctor.ts';
import { EXECUTION_PROVIDERS, type ExecutionProviderRequest } from './engine/onnx/runtime.ts';
import type { RestartPolicy, Retention } from './executor/job-service.ts';
import { formatBytes, parseBytes } from './util/bytes.ts';
import { defaultMemoryBudget } from './executor/memory-plan.ts';
import { redacted } from './util/redact.ts';
import { DEFAULT_RETENTION } from './executor/job-service.ts';

const USAGE = `usage: npm start -- [--port 8188] [--host 127.0.0.1] [--token T] [--ep auto|cuda|webgpu|cpu] [--gpu N] [--data ./data]
                    [--preview-decoder DIR] [--redis URL] [--on-restart requeue|interrupt] [--keep-jobs 1000] [--keep-days 30]
                    [--allow-host NAME]... [--models-root DIR]... [--max-job-memory SIZE]

  --port            port to listen on (env PORT; default 8188; 0 = any free port)
  --host            address to listen on (env HOST; default 127.0.0.1; anything else needs --token)
  --token           access token required by the API and the socket (env DUALSTYLE_TOKEN)
  --ep              execution provider for inference (env DUALSTYLE_EP; default auto: CUDA if available, else CPU;
                    \`npm run doctor\` says what CUDA needs here)
  --gpu             CUDA device index for the jobs this server runs (env DUALSTYLE_GPU; default 0); with --redis,
                    each worker takes its own --gpu
  --data            data folder for saved graphs, uploads, results and the job store (env DUALSTYLE_DATA; default ./data)
  --preview-decoder a folder with taesd_decoder.onnx (TAESD's decoder: scaled latent [1, 4, h, w] → RGB
                    [1, 3, 8h, 8w] in [0, 1]) that draws the samplers' live previews instead of the latent→RGB
                    projection, within 4% of the run time (env DUALSTYLE_PREVIEW_DECODER); with --redis, give it
                    to the workers
  --redis           distributed mode: queue jobs in Redis for \`npm run worker\` processes (env DUALSTYLE_REDIS),
                    e.g. redis://127.0.0.1:6379; every web server and worker must share the data folder
  --on-restart      what happens to a job that was running when the server stopped: requeue (default) or interrupt
  --keep-jobs       finished jobs the history keeps (default 1000)
  --keep-days       days a finished job stays in the history (default 30)
  --allow-host      another name the studio answers to (requests and pages naming other hosts are refused;
                    loopback names and the --host address always work); repeat for several
  --models-root     another folder Load Model may read models from (besides <data>/models and the studio's
                    models/); repeat for several
  --max-job-memory  refuse jobs estimated to need more memory than this, e.g. 8G or 12000M
                    (env DUALSTYLE_MAX_JOB_MEMORY; default: 3/4 of this machine's memory)`;

export class UsageError extends Error {}

export interface CliOptions {
  port: number;
  host: string;
  token?: string;
  ep: ExecutionProviderRequest;
  gpu: number;
  dataDir: string;
  previewDecoder?: string;
  redis?: string;
  onRestart: RestartPolicy;
  retention: Retention;
  allowHosts: string[];
  modelRoots: string[];
  /** Bytes; absent: the studio's default from the machine. */
  maxJobMemory?: number;
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

/** A Redis URL, checked before anything connects. */
export function redisUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--redis must be a URL such as redis://127.0.0.1:6379, got ${JSON.stringify(text)}`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new UsageError(`--redis must start with redis:// or rediss://, got ${JSON.stringify(text)}`);
  return text;
}

export function parseCli(argv: string[], env: NodeJS.ProcessEnv = process.env): CliOptions | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        port: { type: 'string', short: 'p' },
        host: { type: 'string' },
        token: { type: 'string' },
        ep: { type: 'string' },
        gpu: { type: 'string' },
        data: { type: 'string' },
        'preview-decoder': { type: 'string' },
        redis: { type: 'string' },
        'on-restart': { type: 'string' },
        'keep-jobs': { type: 'string' },
        'keep-days': { type: 'string' },
        'allow-host': { type: 'string', multiple: true },
        'models-root': { type: 'string', multiple: true },
        'max-job-memory': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: false,
      strict: true,
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) return 'help';
  // An empty environment variable counts as unset.
  const portText = values.port ?? (env.PORT || '8188');
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError(`--port must be a whole number from 0 to 65535, got ${JSON.stringify(portText)}`);
  }
  const ep = (values.ep ?? (env.DUALSTYLE_EP || 'auto')) as ExecutionProviderRequest;
  if (!EXECUTION_PROVIDERS.includes(ep)) throw new UsageError(`--ep must be one of ${EXECUTION_PROVIDERS.join(', ')}, got ${JSON.stringify(ep)}`);
  const gpu = wholeNumber('gpu', values.gpu ?? (env.DUALSTYLE_GPU || '0'), 0, 1023);
  const host = values.host || env.HOST || '127.0.0.1';
  const token = values.token || env.DUALSTYLE_TOKEN || undefined;
  const maxJobMemory = jobMemory(values['max-job-memory'] ?? (env.DUALSTYLE_MAX_JOB_MEMORY || undefined));
  const allowHosts = values['allow-host'] ?? [];
  for (const name of allowHosts) {
    if (!/^[A-Za-z0-9.:[\]-]+$/.test(name)) throw new UsageError(`--allow-host takes a host name or address, got ${JSON.stringify(name)}`);
  }
  const redisText = values.redis || env.DUALSTYLE_REDIS || undefined;
  const previewDecoder = values['preview-decoder'] || env.DUALSTYLE_PREVIEW_DECODER || undefined;
  const onRestart = values['on-restart'] ?? 'requeue';
  if (onRestart !== 'requeue' && onRestart !== 'interrupt') throw new UsageError(`--on-restart must be requeue or interrupt, got ${JSON.stringify(onRestart)}`);
  const retention: Retention = {
    maxJobs: values['keep-jobs'] !== undefined ? wholeNumber('keep-jobs', values['keep-jobs'], 1, 1_000_000) : DEFAULT_RETENTION.maxJobs,
    maxAgeMs: values['keep-days'] !== undefined ? wholeNumber('keep-days', values['keep-days'], 1, 36_500) * 24 * 3600 * 1000 : DEFAULT_RETENTION.maxAgeMs,
  };
  return {
    port,
    host,
    ...(token ? { token } : {}),
    ep,
    gpu,
    dataDir: path.resolve(values.data || env.DUALSTYLE_DATA || 'data'),
    ...(previewDecoder ? { previewDecoder: path.resolve(previewDecoder) } : {}),
    ...(redisText ? { redis: redisUrl(redisText) } : {}),
    onRestart,
    retention,
    allowHosts,
    modelRoots: (values['models-root'] ?? []).map((dir) => path.resolve(dir)),
    ...(maxJobMemory !== undefined ? { maxJobMemory } : {}),
  };
}

/** `overrides` (a node catalog, say) are for test entries that start the real server with other parts. */
export async function main(argv: string[], overrides: Partial<StudioOptions> = {}): Promise<number> {
  let cli: CliOptions | 'help';
  try {
    cli = parseCli(argv);
  } catch (err) {
    console.error(`error: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (cli === 'help') {
    console.log(USAGE);
    return 0;
  }
  let studio: Studio;
  try {
    studio = await createStudio({
      dataDir: cli.dataDir,
      host: cli.host,
      port: cli.port,
      token: cli.token,
      executionProvider: cli.ep,
      gpu: cli.gpu,
      ...(cli.previewDecoder ? { previewDecoder: cli.previewDecoder } : {}),
      allowHosts: cli.allowHosts,
      modelRoots: cli.modelRoots,
      ...(cli.maxJobMemory !== undefined ? { maxJobMemory: cli.maxJobMemory } : {}),
      ...(cli.redis ? { redis: cli.redis } : {}),
      onRestart: cli.onRestart,
      retention: cli.retention,
      ...overrides,
    });
  } catch (err) {
    console.error(`error: ${(err as Error).message}`);
    return 1;
  }
  console.log(`Dual Style Studio running at ${studio.url}`);
  console.log(`execution provider: ${cli.ep}${cli.ep === 'auto' ? ' (CUDA when available, else CPU)' : ''}${cli.gpu ? `, GPU ${cli.gpu}` : ''}`);
  if (cli.ep === 'auto' || cli.ep === 'cuda') {
    const d = diagnoseCuda();
    console.log(d.ready ? `CUDA: ${d.summary}` : `CUDA: not available (${d.summary}); \`npm run doctor\` says how to fix it`);
  }
  console.log(`data folder: ${cli.dataDir}`);
  console.log(cli.previewDecoder ? `previews: decoded by ${cli.previewDecoder}/taesd_decoder.onnx` : 'previews: latent→RGB projection (--preview-decoder DIR for a TAESD decoder)');
  console.log(
    cli.redis
      ? `jobs: distributed through Redis at ${redacted(cli.redis)}; start workers with \`npm run worker -- --redis URL --data ${cli.dataDir}\``
      : `jobs: embedded (one at a time in this process, kept in ${path.join(cli.dataDir, 'studio.db')})`,
  );
  if (cli.token) console.log('access token required (Authorization: Bearer <token>, or ?token=<token>)');
  console.log(`memory one job may use: ${formatBytes(cli.maxJobMemory ?? defaultMemoryBudget())} (--max-job-memory)`);
  if (cli.allowHosts.length > 0) console.log(`also answering to: ${cli.allowHosts.join(', ')}`);
  if (cli.modelRoots.length > 0) console.log(`models folders also: ${cli.modelRoots.join(', ')}`);

  await untilStopped(() => studio.close(), 'stopping (running jobs stop and resume on the next start)...');
  return 0;
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

// fileURLToPath, not URL.pathname: the latter keeps %20 and friends, so under a folder with a space in
// its name the server would silently never start.
const isEntry = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isEntry) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(`error: ${(err as Error)?.message ?? String(err)}`);
      process.exit(1);
    },
  );
}

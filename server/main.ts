/**
 * Command line entry: `tsx server/main.ts [--port 8188] [--host 127.0.0.1] [--token T]
 * [--ep auto|cuda|webgpu|cpu] [--gpu N] [--data ./data] [--preview-decoder DIR] [--redis URL] [--on-restart requeue|interrupt]
 * [--keep-jobs 1000] [--keep-days 30] [--allow-host NAME]... [--models-root DIR]... [--max-job-memory 8G]
 * [--nodes DIR]... [--no-custom-nodes]`.
 * Environment: PORT, HOST, DUALSTYLE_TOKEN, DUALSTYLE_EP, DUALSTYLE_GPU, DUALSTYLE_DATA, DUALSTYLE_PREVIEW_DECODER,
 * DUALSTYLE_REDIS, DUALSTYLE_MAX_JOB_MEMORY. Flags win over the environment.
 */
import path from 'node:path';
import { createStudio, type Studio, type StudioOptions } from './app.ts';
import { diagnoseCuda } from './engine/cuda/cuda-doctor.ts';
import { diagnoseTensorrt } from './engine/cuda/tensorrt-doctor.ts';
import { tokenProblem } from './http/auth.ts';
import type { RestartPolicy } from './executor/job-service.ts';
import { formatBytes } from './util/bytes.ts';
import { defaultMemoryBudget } from './executor/memory-plan.ts';
import { redacted } from './util/redact.ts';
import {
  parseFlags,
  readCommandLine,
  redisUrl,
  runIfEntry,
  RUNNER_FLAGS,
  runnerSettings,
  untilStopped,
  UsageError,
  type RunnerSettings,
  CUSTOM_NODES_USAGE,
} from './cli/options.ts';

const USAGE = `usage: npm start -- [--port 8188] [--host 127.0.0.1] [--token T] [--ep auto|cuda|webgpu|cpu] [--gpu N] [--data ./data]
                    [--preview-decoder DIR] [--redis URL] [--on-restart requeue|interrupt] [--keep-jobs 1000] [--keep-days 30]
                    [--allow-host NAME]... [--models-root DIR]... [--max-job-memory SIZE] [--release-idle 60s]
                    [--nodes DIR]... [--no-custom-nodes]

  --port            port to listen on (env PORT; default 8188; 0 = any free port)
  --host            address to listen on (env HOST; default 127.0.0.1; anything else needs --token)
  --token           access token required by the API and the socket (env DUALSTYLE_TOKEN; at least 16 characters)
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
                    (env DUALSTYLE_MAX_JOB_MEMORY; default: 3/4 of this machine's memory)
  --release-idle    give loaded models back to the system after this long without a job, e.g. 60s, 5m or off
                    (env DUALSTYLE_RELEASE_IDLE; default 60s); the next job loads them again
${CUSTOM_NODES_USAGE}`;

export interface CliOptions extends RunnerSettings {
  port: number;
  host: string;
  token?: string;
  gpu: number;
  redis?: string;
  onRestart: RestartPolicy;
  allowHosts: string[];
}

export function parseCli(argv: string[], env: NodeJS.ProcessEnv = process.env): CliOptions | 'help' {
  const values = parseFlags(argv, {
    ...RUNNER_FLAGS,
    port: { type: 'string', short: 'p' },
    host: { type: 'string' },
    token: { type: 'string' },
    redis: { type: 'string' },
    'on-restart': { type: 'string' },
    'allow-host': { type: 'string', multiple: true },
  });
  if (values.help) return 'help';
  const portText = values.port ?? (env.PORT || '8188');
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError(`--port must be a whole number from 0 to 65535, got ${JSON.stringify(portText)}`);
  }
  const runner = runnerSettings(values, env);
  const host = values.host || env.HOST || '127.0.0.1';
  const token = values.token || env.DUALSTYLE_TOKEN || undefined;
  const weak = token === undefined ? null : tokenProblem(token);
  if (weak) throw new UsageError(`--token: ${weak}`);
  const allowHosts = values['allow-host'] ?? [];
  for (const name of allowHosts) {
    if (!/^[A-Za-z0-9.:[\]-]+$/.test(name)) throw new UsageError(`--allow-host takes a host name or address, got ${JSON.stringify(name)}`);
  }
  const redisText = values.redis || env.DUALSTYLE_REDIS || undefined;
  const onRestart = values['on-restart'] ?? 'requeue';
  if (onRestart !== 'requeue' && onRestart !== 'interrupt') throw new UsageError(`--on-restart must be requeue or interrupt, got ${JSON.stringify(onRestart)}`);
  return {
    ...runner,
    gpu: runner.gpu ?? 0,
    port,
    host,
    ...(token ? { token } : {}),
    ...(redisText ? { redis: redisUrl(redisText) } : {}),
    onRestart,
    allowHosts,
  };
}

/** `overrides` (a node catalog, say) are for test entries that start the real server with other parts. */
export async function main(argv: string[], overrides: Partial<StudioOptions> = {}): Promise<number> {
  const read = readCommandLine(argv, parseCli, USAGE);
  if ('exit' in read) return read.exit;
  const { cli } = read;
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
      releaseIdleMs: cli.releaseIdleMs,
      ...(cli.redis ? { redis: cli.redis } : {}),
      onRestart: cli.onRestart,
      retention: cli.retention,
      customNodes: cli.customNodes,
      ...overrides,
    });
  } catch (err) {
    console.error(`error: ${(err as Error).message}`);
    return 1;
  }
  console.log(`Dual Style Studio running at ${studio.url}`);
  console.log(`execution provider: ${cli.ep}${cli.ep === 'auto' ? ' (CUDA when available, else CPU)' : ''}${cli.gpu ? `, GPU ${cli.gpu}` : ''}`);
  if (cli.ep === 'auto' || cli.ep === 'cuda' || cli.ep === 'tensorrt') {
    const d = diagnoseCuda();
    console.log(d.ready ? `CUDA: ${d.summary}` : `CUDA: not available (${d.summary}); \`npm run doctor\` says how to fix it`);
  }
  if (cli.ep === 'tensorrt') {
    const t = diagnoseTensorrt();
    console.log(t.ready ? 'TensorRT: ready' : `TensorRT: not available (${t.summary}); runs on CUDA or CPU instead; \`npm run doctor\` says how to fix it`);
  }
  console.log(`data folder: ${cli.dataDir}`);
  console.log(
    cli.previewDecoder
      ? `previews: decoded by ${cli.previewDecoder}/taesd_decoder.onnx`
      : 'previews: latent→RGB projection (--preview-decoder DIR for a TAESD decoder)',
  );
  console.log(
    cli.redis
      ? `jobs: distributed through Redis at ${redacted(cli.redis)}; start workers with \`npm run worker -- --redis URL --data ${cli.dataDir}\``
      : `jobs: embedded (one at a time in this process, kept in ${path.join(cli.dataDir, 'studio.db')})`,
  );
  if (cli.token) console.log('access token required (Authorization: Bearer <token>, or ?token=<token>)');
  console.log(`memory one job may use: ${formatBytes(cli.maxJobMemory ?? defaultMemoryBudget())} (--max-job-memory)`);
  if (!cli.redis)
    console.log(
      cli.releaseIdleMs > 0
        ? `loaded models are released after ${cli.releaseIdleMs / 1000} s without a job (--release-idle)`
        : 'loaded models are kept while idle (--release-idle off)',
    );
  if (cli.allowHosts.length > 0) console.log(`also answering to: ${cli.allowHosts.join(', ')}`);
  if (cli.modelRoots.length > 0) console.log(`models folders also: ${cli.modelRoots.join(', ')}`);

  await untilStopped(() => studio.close(), 'stopping (running jobs stop and resume on the next start)...');
  return 0;
}

runIfEntry(import.meta.url, main);

/**
 * `npm run worker -- --redis URL [--gpu N] [--data ./data] [--ep auto] [--stall-timeout 30]
 * [--keep-jobs 1000] [--keep-days 30]`: a distributed worker. It takes jobs that web servers
 * (`npm start -- --redis URL`) queued in Redis, one at a time, and runs them on one GPU; start one per
 * GPU. Every web server and worker must share the data folder (the same machine, or a shared mount):
 * workers read uploads from it and write results into <data>/results, which the web servers serve.
 * [--models-root DIR]... [--max-job-memory SIZE] as for the studio.
 * [--preview-decoder DIR] as for the studio.
 * Environment: DUALSTYLE_REDIS, DUALSTYLE_DATA, DUALSTYLE_EP, DUALSTYLE_MAX_JOB_MEMORY, DUALSTYLE_PREVIEW_DECODER.
 */
import path from 'node:path';
import { setTensorrtEngineCache } from '../engine/runtime/sessions.ts';
import { nodeDefinitions } from '../../nodes/index.ts';
import type { AnyNodeDefinition } from '../../nodes/types.ts';
import { consoleLogger } from '../app.ts';
import { catalogWithPackages } from '../node-packages/load.ts';
import { loadPreviewDecoder, type BudgetedPreviewDecoder } from '../engine/sd/preview-decoder.ts';
import { GraphRunner } from '../executor/graph-runner.ts';
import { RedisJobWorker } from '../executor/redis-worker.ts';
import {
  parseFlags,
  readCommandLine,
  redisUrl,
  runIfEntry,
  RUNNER_FLAGS,
  runnerSettings,
  untilStopped,
  UsageError,
  wholeNumber,
  type RunnerSettings,
  CUSTOM_NODES_USAGE,
} from './options.ts';
import { redacted } from '../util/redact.ts';

const USAGE = `usage: npm run worker -- --redis URL [--gpu N] [--data ./data] [--ep auto|cuda|webgpu|cpu] [--stall-timeout 30]
                         [--keep-jobs 1000] [--keep-days 30] [--models-root DIR]... [--max-job-memory SIZE]
                         [--preview-decoder DIR] [--release-idle 60s] [--nodes DIR]... [--no-custom-nodes]

  --redis          the Redis the web servers queue jobs in (env DUALSTYLE_REDIS), e.g. redis://127.0.0.1:6379
  --gpu            the GPU to run on (sets CUDA_VISIBLE_DEVICES; env DUALSTYLE_GPU); start one worker per GPU
  --data           the data folder shared with the web servers (env DUALSTYLE_DATA; default ./data)
  --ep             execution provider (env DUALSTYLE_EP; default auto: CUDA if available, else CPU)
  --stall-timeout  seconds after which the job of a worker that stopped answering goes to another (default 30)
  --keep-jobs      finished jobs the history keeps (default 1000)
  --keep-days      days a finished job stays in the history (default 30)
  --models-root    another folder Load Model may read models from (besides <data>/models and the studio's models/)
  --max-job-memory refuse jobs estimated to need more memory than this, e.g. 8G (env DUALSTYLE_MAX_JOB_MEMORY;
                   default: 3/4 of this machine's memory)
  --preview-decoder a folder with taesd_decoder.onnx that draws the live previews (env DUALSTYLE_PREVIEW_DECODER;
                   see npm start -- --help)
  --release-idle   give loaded models back after this long without a job, e.g. 60s, 5m or off (env
                   DUALSTYLE_RELEASE_IDLE; default 60s)
${CUSTOM_NODES_USAGE}
                   (a worker must load the same node packages as the web servers)`;

export interface WorkerCli extends RunnerSettings {
  redis: string;
  stallTimeoutMs: number;
}

export function parseWorkerCli(argv: string[], env: NodeJS.ProcessEnv = process.env): WorkerCli | 'help' {
  const values = parseFlags(argv, { ...RUNNER_FLAGS, redis: { type: 'string' }, 'stall-timeout': { type: 'string' } });
  if (values.help) return 'help';
  const redisText = values.redis || env.DUALSTYLE_REDIS;
  if (!redisText) throw new UsageError('--redis is required: the URL of the Redis the web servers were started with');
  return {
    ...runnerSettings(values, env),
    redis: redisUrl(redisText),
    stallTimeoutMs: wholeNumber('stall-timeout', values['stall-timeout'] ?? '30', 1, 86_400) * 1000,
  };
}

/** `overrides.catalog`: another node catalog (test entries). */
export async function runWorker(argv: string[], overrides: { catalog?: AnyNodeDefinition[]; previewIntervalMs?: number } = {}): Promise<number> {
  const read = readCommandLine(argv, parseWorkerCli, USAGE);
  if ('exit' in read) return read.exit;
  const { cli } = read;
  // CUDA reads this when the first session starts, which is after this line.
  if (cli.gpu !== undefined) process.env.CUDA_VISIBLE_DEVICES = String(cli.gpu);
  setTensorrtEngineCache(path.join(path.resolve(cli.dataDir), 'tensorrt-engines'));
  let previewDecoder: BudgetedPreviewDecoder | undefined;
  let worker: RedisJobWorker;
  try {
    // CUDA_VISIBLE_DEVICES leaves this worker's GPU as device 0.
    if (cli.previewDecoder)
      previewDecoder = await loadPreviewDecoder(cli.previewDecoder, cli.ep, {}, (err) =>
        consoleLogger.warn(`the preview decoder failed; live previews use the latent projection from now on: ${err.message}`),
      );
    const runner = new GraphRunner({
      catalog: await catalogWithPackages(overrides.catalog ?? nodeDefinitions, cli.dataDir, cli.customNodes, consoleLogger),
      dataDir: cli.dataDir,
      executionProvider: cli.ep,
      previewDecoder,
      logger: consoleLogger,
      modelRoots: cli.modelRoots,
      ...(cli.maxJobMemory !== undefined ? { maxJobMemoryBytes: cli.maxJobMemory } : {}),
      releaseIdleMs: cli.releaseIdleMs,
    });
    worker = await RedisJobWorker.start({
      url: cli.redis,
      runner,
      log: consoleLogger,
      stallTimeoutMs: cli.stallTimeoutMs,
      retention: cli.retention,
      ...(cli.gpu !== undefined ? { gpu: cli.gpu } : {}),
      ...(overrides.previewIntervalMs !== undefined ? { previewIntervalMs: overrides.previewIntervalMs } : {}),
    });
  } catch (err) {
    await previewDecoder?.release();
    console.error(`error: ${(err as Error).message}`);
    return 1;
  }
  console.log(`Dual Style Studio worker "${worker.name}" taking jobs from ${redacted(cli.redis)}`);
  console.log(`execution provider: ${cli.ep}; data folder: ${cli.dataDir}${cli.previewDecoder ? `; previews decoded by ${cli.previewDecoder}` : ''}`);
  await untilStopped(async () => {
    await worker.close();
    await previewDecoder?.release();
  }, 'stopping (the running job goes back in line)...');
  return 0;
}

runIfEntry(import.meta.url, (argv) => runWorker(argv));

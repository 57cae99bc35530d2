/** Opens the job service a server asked for: embedded (SQLite, in process) or distributed (Redis + workers). */
import type { Logger } from '../util/log.ts';
import { EmbeddedJobService } from './embedded-jobs.ts';
import type { GraphRunner } from './graph-runner.ts';
import type { JobService, RestartPolicy, Retention } from './job-service.ts';
import { RedisJobService } from './redis-jobs.ts';

export interface JobServiceOptions {
  dataDir: string;
  runner: GraphRunner;
  log: Logger;
  /** Distributed mode: the Redis URL web servers and workers share. */
  redis?: string;
  /** Namespace of the Redis keys (default "dualstyle"). */
  redisPrefix?: string;
  maxPending?: number;
  onRestart?: RestartPolicy;
  retention?: Retention;
  previewIntervalMs?: number;
}

export async function openJobService(o: JobServiceOptions): Promise<JobService> {
  if (o.redis) {
    return RedisJobService.open({
      url: o.redis,
      runner: o.runner,
      log: o.log,
      ...(o.redisPrefix ? { prefix: o.redisPrefix } : {}),
      ...(o.maxPending !== undefined ? { maxPending: o.maxPending } : {}),
      ...(o.retention ? { retention: o.retention } : {}),
    });
  }
  return new EmbeddedJobService({
    dataDir: o.dataDir,
    runner: o.runner,
    log: o.log,
    ...(o.maxPending !== undefined ? { maxPending: o.maxPending } : {}),
    ...(o.onRestart ? { onRestart: o.onRestart } : {}),
    ...(o.retention ? { retention: o.retention } : {}),
    ...(o.previewIntervalMs !== undefined ? { previewIntervalMs: o.previewIntervalMs } : {}),
  });
}

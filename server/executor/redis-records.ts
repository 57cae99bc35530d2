/**
 * What distributed mode keeps in Redis besides BullMQ's own queue: one hash per job (its summary,
 * graph, run plan, live progress and outcome), the history as a sorted set by finish time with
 * retention, the node times the estimates learn from, the live workers, and the two pub/sub channels
 * (job events for every web server's sockets; control messages such as cancel for the workers).
 *
 * Why Redis for the history: every web server must list the same queue and history, and Redis is the
 * one store every process already shares. A SQLite file per web server would diverge, and one SQLite
 * file on a shared mount is not safe for several writers (WAL needs shared memory on one machine).
 * Preview frames travel only over pub/sub; they are never stored.
 */
import { Redis } from 'ioredis';
import type { Graph } from '../protocol/graph.ts';
import { redacted } from '../util/redact.ts';
import type { HistoryEntry, JobOutcome, JobState, JobSummary, OutgoingEvent, WorkerStatus } from '../protocol/events.ts';
import type { Logger } from '../../nodes/types.ts';
import type { LiveState, NodeTime, PlannedNode } from './eta.ts';
import { learnNodeTime } from './eta.ts';
import type { Retention } from './job-service.ts';

export const QUEUE_NAME = 'jobs';
/** A worker that has not said it is alive for this long counts as gone. */
export const WORKER_TIMEOUT_MS = 10_000;
export const HEARTBEAT_MS = 2_000;

export type WorkerInfo = WorkerStatus;

/** A message on the events channel: a socket event, or "the queue changed, look again". */
export type EventMessage = { event: OutgoingEvent } | { queueChanged: true };
export type ControlMessage = { cancel: string };

export interface StoredRecord {
  summary: JobSummary;
  graph?: Graph;
  outputs?: string[];
  plan: PlannedNode[];
  live?: LiveState;
  outcome?: JobOutcome;
  cancelRequested: boolean;
}

/**
 * Two connections to Redis (commands, and a subscriber), or an error that names the URL. Later
 * connection errors (Redis restarting) are logged; ioredis reconnects by itself.
 */
export async function connectRedis(url: string, log: Logger): Promise<{ redis: Redis; sub: Redis }> {
  const redis = new Redis(url, { lazyConnect: true });
  const sub = new Redis(url, { lazyConnect: true });
  let connected = false;
  let firstError: Error | undefined;
  let lastLogged = 0;
  const onError = (err: Error) => {
    // Until connected, the first error is the reason connect() fails (it says only "Connection is closed").
    if (!connected) firstError ??= err;
    // Then at most once every 10 s while Redis is away.
    if (!connected || Date.now() - lastLogged < 10_000) return;
    lastLogged = Date.now();
    log.warn(`Redis at ${redacted(url)}: ${err.message}`);
  };
  redis.on('error', onError);
  sub.on('error', onError);
  try {
    await Promise.all([redis.connect(), sub.connect()]);
  } catch (err) {
    redis.disconnect();
    sub.disconnect();
    throw new Error(`cannot reach Redis at ${redacted(url)}: ${(firstError ?? (err as Error)).message}`, { cause: err });
  }
  connected = true;
  return { redis, sub };
}

export class RedisRecords {
  readonly eventsChannel: string;
  readonly controlChannel: string;

  constructor(
    readonly redis: Redis,
    readonly prefix: string,
  ) {
    this.eventsChannel = `${prefix}:events`;
    this.controlChannel = `${prefix}:control`;
  }

  private key(id: string): string {
    return `${this.prefix}:job:${id}`;
  }

  private get historyKey(): string {
    return `${this.prefix}:history`;
  }

  async create(summary: JobSummary, graph: Graph, plan: PlannedNode[], outputs?: string[]): Promise<void> {
    await this.redis.hset(this.key(summary.id), {
      summary: JSON.stringify(summary),
      graph: JSON.stringify(graph),
      plan: JSON.stringify(plan),
      ...(outputs ? { outputs: JSON.stringify(outputs) } : {}),
    });
  }

  /** The record without its graph (pass withGraph for the editor's re-open). */
  async get(id: string, withGraph = false): Promise<StoredRecord | undefined> {
    const fields = ['summary', 'plan', 'live', 'outcome', 'cancel', 'outputs', ...(withGraph ? ['graph'] : [])];
    const values = await this.redis.hmget(this.key(id), ...fields);
    return parseRecord(values);
  }

  /** Several records (no graphs), in order; missing ones are undefined. */
  async getMany(ids: string[]): Promise<(StoredRecord | undefined)[]> {
    if (ids.length === 0) return [];
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.hmget(this.key(id), 'summary', 'plan', 'live', 'outcome', 'cancel', 'outputs');
    const replies = (await pipe.exec()) ?? [];
    return replies.map(([err, values]) => (err ? undefined : parseRecord(values as (string | null)[])));
  }

  async graphOf(id: string): Promise<Graph | undefined> {
    const text = await this.redis.hget(this.key(id), 'graph');
    return text ? (JSON.parse(text) as Graph) : undefined;
  }

  async updateSummary(id: string, patch: Partial<JobSummary>, clear: (keyof JobSummary)[] = []): Promise<JobSummary | undefined> {
    const text = await this.redis.hget(this.key(id), 'summary');
    if (!text) return undefined;
    const summary = { ...(JSON.parse(text) as JobSummary), ...patch };
    for (const k of clear) delete summary[k];
    await this.redis.hset(this.key(id), 'summary', JSON.stringify(summary));
    return summary;
  }

  async setLive(id: string, live: LiveState | null): Promise<void> {
    if (live) await this.redis.hset(this.key(id), 'live', JSON.stringify(live));
    else await this.redis.hdel(this.key(id), 'live');
  }

  /**
   * Asks the worker running the job to stop. The request claims the job's ending (see claimEnd): once
   * it is answered true, the job ends cancelled whatever its run gets to. False: its worker claimed the
   * ending first (the job is finishing or finished).
   */
  async requestCancel(id: string): Promise<boolean> {
    if (!(await this.claimEnd(id, 'cancel'))) return false;
    await this.redis.hset(this.key(id), 'cancel', '1');
    await this.publishControl({ cancel: id });
    return true;
  }

  /**
   * Who decides how a job ends, atomically: a user's cancel or the worker that finished it. The first to
   * claim wins (HSETNX); a later claim by the same party succeeds again. A worker that loses records the
   * job cancelled; a cancel that loses is told the job already finished.
   */
  async claimEnd(id: string, by: 'cancel' | 'worker'): Promise<boolean> {
    const key = this.key(id);
    if ((await this.redis.hsetnx(key, 'ended', by)) === 1) return true;
    return (await this.redis.hget(key, 'ended')) === by;
  }

  /** Records how a job ended and enters it in the history; returns the ids retention dropped. */
  async finish(id: string, state: JobState, outcome: JobOutcome, retention: Retention): Promise<string[]> {
    const now = Date.now();
    const summary = await this.updateSummary(id, { state, finishedAt: now }, ['position', 'progress', 'etaMs', 'elapsedMs']);
    if (!summary) return [];
    await this.redis.multi().hset(this.key(id), 'outcome', JSON.stringify(outcome)).hdel(this.key(id), 'live', 'cancel').zadd(this.historyKey, String(now), id).exec();
    return this.applyRetention(retention, now);
  }

  private async applyRetention(retention: Retention, now: number): Promise<string[]> {
    const tooOld = await this.redis.zrangebyscore(this.historyKey, '-inf', `(${now - retention.maxAgeMs}`);
    const tooMany = await this.redis.zrange(this.historyKey, '0', String(-(retention.maxJobs + 1)));
    const drop = [...new Set([...tooOld, ...tooMany])];
    await this.drop(drop);
    return drop;
  }

  private async drop(ids: string[]): Promise<void> {
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      await this.redis.multi().zrem(this.historyKey, ...chunk).del(...chunk.map((id) => this.key(id))).exec();
    }
  }

  async history(offset: number, limit: number): Promise<{ jobs: HistoryEntry[]; total: number }> {
    const [ids, total] = await Promise.all([this.redis.zrevrange(this.historyKey, String(offset), String(offset + limit - 1)), this.redis.zcard(this.historyKey)]);
    const records = await this.getMany(ids);
    const jobs = records.filter((r): r is StoredRecord => r !== undefined).map((r) => ({ ...r.summary, ...r.outcome }));
    return { jobs, total };
  }

  async clearHistory(): Promise<number> {
    const ids = await this.redis.zrange(this.historyKey, '0', '-1');
    await this.drop(ids);
    return ids.length;
  }

  async removeFinished(id: string): Promise<'removed' | 'not_finished' | 'not_found'> {
    const record = await this.get(id);
    if (!record) return 'not_found';
    if ((await this.redis.zscore(this.historyKey, id)) === null) return 'not_finished';
    await this.drop([id]);
    return 'removed';
  }

  async nodeTimes(): Promise<Map<string, NodeTime>> {
    const all = await this.redis.hgetall(`${this.prefix}:times`);
    return new Map(Object.entries(all).map(([type, json]) => [type, JSON.parse(json) as NodeTime]));
  }

  async learnNodeTime(type: string, ms: number, steps?: number): Promise<void> {
    const key = `${this.prefix}:times`;
    const before = await this.redis.hget(key, type);
    const next = learnNodeTime(before ? (JSON.parse(before) as NodeTime) : undefined, ms, steps);
    await this.redis.hset(key, type, JSON.stringify(next));
  }

  async heartbeat(info: WorkerInfo): Promise<void> {
    await this.redis.hset(`${this.prefix}:workers`, info.name, JSON.stringify(info));
  }

  async leave(name: string): Promise<void> {
    await this.redis.hdel(`${this.prefix}:workers`, name);
  }

  /** Workers heard from lately; the long-gone are forgotten. */
  async workers(now = Date.now()): Promise<WorkerInfo[]> {
    const key = `${this.prefix}:workers`;
    const all = Object.values(await this.redis.hgetall(key)).map((json) => JSON.parse(json) as WorkerInfo);
    const gone = all.filter((w) => now - w.seen > 6 * WORKER_TIMEOUT_MS).map((w) => w.name);
    if (gone.length > 0) await this.redis.hdel(key, ...gone);
    return all.filter((w) => now - w.seen <= WORKER_TIMEOUT_MS);
  }

  async publish(message: EventMessage): Promise<void> {
    await this.redis.publish(this.eventsChannel, encodeMessage(message));
  }

  async publishControl(message: ControlMessage): Promise<void> {
    await this.redis.publish(this.controlChannel, JSON.stringify(message));
  }
}

function parseRecord(values: (string | null)[]): StoredRecord | undefined {
  const [summary, plan, live, outcome, cancel, outputs, graph] = values;
  if (!summary) return undefined;
  return {
    summary: JSON.parse(summary) as JobSummary,
    plan: plan ? (JSON.parse(plan) as PlannedNode[]) : [],
    ...(live ? { live: JSON.parse(live) as LiveState } : {}),
    ...(outcome ? { outcome: JSON.parse(outcome) as JobOutcome } : {}),
    ...(outputs ? { outputs: JSON.parse(outputs) as string[] } : {}),
    ...(graph ? { graph: JSON.parse(graph) as Graph } : {}),
    cancelRequested: cancel === '1',
  };
}

/** JSON, with a preview frame's bytes as base64 (pub/sub carries text; JSON would spell every byte). */
export function encodeMessage(message: EventMessage): string {
  if ('event' in message && message.event.name === 'node:preview') {
    const args = message.event.args;
    return JSON.stringify({ event: { name: 'node:preview', args: { ...args, data: Buffer.from(args.data).toString('base64') } } });
  }
  return JSON.stringify(message);
}

export function decodeMessage(text: string): EventMessage {
  const message = JSON.parse(text) as EventMessage;
  if ('event' in message && message.event.name === 'node:preview') {
    const args = message.event.args as unknown as { data: string };
    (message.event.args as { data: Uint8Array }).data = Buffer.from(args.data, 'base64');
  }
  return message;
}

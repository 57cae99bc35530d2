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
import type { HistoryEntry, JobOutcome, JobState, JobSummary, OutgoingEvent, JobRun, WorkerStatus } from '../protocol/events.ts';
import type { Logger } from '../util/log.ts';
import type { LiveState, NodeTime, PlannedNode } from './eta.ts';
import { learnNodeTime } from './eta.ts';
import type { Retention } from './job-service.ts';

export const QUEUE_NAME = 'jobs';
/** A worker that has not said it is alive for this long counts as gone. */
export const WORKER_TIMEOUT_MS = 10_000;
export const HEARTBEAT_MS = 2_000;

export type WorkerInfo = WorkerStatus;

/**
 * Who claimed a job's ending (the `ended` field): a user's cancel, or one run of the job, named by its
 * worker and attempt ("host:1234 gpu 0 attempt 2"). A job can run twice at once: its lock lapsed (its
 * worker stopped answering, or Redis was away longer than the stall timeout) and BullMQ handed it out
 * again while the first run went on. Only the run that claimed the ending records and announces it.
 */
export type EndClaimant = 'cancel' | { run: string };

/** What claimEnd answers a run: it records the ending ('won'), records the user's cancel ('cancelled'), or records nothing ('lost'). */
export type EndClaim = 'won' | 'cancelled' | 'lost';

/** The command connection of a web server fails fast while Redis is away (a request must not hang 40-56 s). */
export const FAIL_FAST_MS = 3000;

/** Errors ioredis gives when Redis cannot be reached (refused, gone, not answering). */
export function isRedisUnreachable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return (
    err.name === 'MaxRetriesPerRequestError' ||
    /Stream isn't writeable|Connection is closed|Command timed out|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH/.test(err.message)
  );
}

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
  /** Every run that ended so far, and how (logRun). */
  runs: JobRun[];
}

/**
 * Two connections to Redis (commands, and a subscriber), or an error that names the URL. Later
 * connection errors (Redis restarting) are logged; ioredis reconnects by itself. `failFast` (web
 * servers): while Redis is away a command fails at once (no offline queue, one retry, at most
 * FAIL_FAST_MS for an answer) instead of waiting through ioredis's 20 retries. Workers keep the queue:
 * what they publish during an outage is sent when Redis is back.
 */
export async function connectRedis(url: string, log: Logger, opts: { failFast?: boolean } = {}): Promise<{ redis: Redis; sub: Redis }> {
  const redis = new Redis(url, {
    lazyConnect: true,
    ...(opts.failFast ? { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: FAIL_FAST_MS } : {}),
  });
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
  await warnUnlessNoEviction(redis, url, log);
  return { redis, sub };
}

/**
 * BullMQ needs `maxmemory-policy noeviction`: under memory pressure any other policy may delete queue
 * keys and job locks, and jobs vanish or run twice. Said once at start, plainly (managed Redis may
 * refuse CONFIG GET: then nothing can be checked, and that is said too).
 */
async function warnUnlessNoEviction(redis: Redis, url: string, log: Logger): Promise<void> {
  try {
    const reply = (await redis.config('GET', 'maxmemory-policy')) as string[];
    const policy = reply[1];
    if (policy && policy !== 'noeviction') {
      log.warn(
        `Redis at ${redacted(url)} has maxmemory-policy ${policy}: the job queue needs noeviction, or Redis may delete queued jobs and their locks ` +
          'under memory pressure (jobs lost or run twice). Set it with `redis-cli CONFIG SET maxmemory-policy noeviction` and in redis.conf.',
      );
    }
  } catch (err) {
    log.warn(`could not read maxmemory-policy of Redis at ${redacted(url)} (${(err as Error).message}); the job queue needs noeviction`);
  }
}

/**
 * Sets the summary to ARGV[2] if it is still ARGV[1] (1), or answers -1 (changed meanwhile: read again);
 * with ARGV[3] = '1', answers 0 and changes nothing once a run claimed the ending.
 */
const SET_SUMMARY = `
local ended = redis.call('HGET', KEYS[1], 'ended')
if ARGV[3] == '1' and ended and string.sub(ended, 1, 4) == 'run ' then return 0 end
if redis.call('HGET', KEYS[1], 'summary') ~= ARGV[1] then return -1 end
redis.call('HSET', KEYS[1], 'summary', ARGV[2])
return 1
`;

/**
 * A job's ending, written at once: the summary (compare-and-set against the one read), the outcome, and
 * its place in the history. A reader never sees "done" without its results, and a Redis that goes away
 * midway leaves the record as it was.
 */
const FINISH = `
if redis.call('HGET', KEYS[1], 'summary') ~= ARGV[1] then return -1 end
redis.call('HSET', KEYS[1], 'summary', ARGV[2], 'outcome', ARGV[3])
redis.call('HDEL', KEYS[1], 'live', 'cancel')
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
return 1
`;

/** Gives a claimed ending back (HDEL `ended`) only if `claimant` still holds it. */
const RELEASE_END = `
if redis.call('HGET', KEYS[1], 'ended') == ARGV[1] then redis.call('HDEL', KEYS[1], 'ended') return 1 end
return 0
`;

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
    const [values, runs] = await Promise.all([this.redis.hmget(this.key(id), ...fields), this.redis.lrange(this.runsKey(id), 0, -1)]);
    return parseRecord(values, runs);
  }

  /** Several records (no graphs), in order; missing ones are undefined. */
  async getMany(ids: string[]): Promise<(StoredRecord | undefined)[]> {
    if (ids.length === 0) return [];
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.hmget(this.key(id), 'summary', 'plan', 'live', 'outcome', 'cancel', 'outputs').lrange(this.runsKey(id), 0, -1);
    const replies = (await pipe.exec()) ?? [];
    return ids.map((_, i) => {
      const [err, values] = replies[2 * i]!;
      const [, runs] = replies[2 * i + 1]!;
      return err ? undefined : parseRecord(values as (string | null)[], (runs as string[] | null) ?? []);
    });
  }

  async graphOf(id: string): Promise<Graph | undefined> {
    const text = await this.redis.hget(this.key(id), 'graph');
    return text ? (JSON.parse(text) as Graph) : undefined;
  }

  /**
   * Changes the summary (compare-and-set, so concurrent writers do not undo each other). `unlessEnded`:
   * not once a run claimed the job's ending; a run that starts or is re-queued late must not turn a
   * finished job back into a running or queued one. Undefined when the record is gone or was not changed.
   */
  async updateSummary(
    id: string,
    patch: Partial<JobSummary>,
    clear: (keyof JobSummary)[] = [],
    opts: { unlessEnded?: boolean } = {},
  ): Promise<JobSummary | undefined> {
    for (;;) {
      const text = await this.redis.hget(this.key(id), 'summary');
      if (!text) return undefined;
      const summary = { ...(JSON.parse(text) as JobSummary), ...patch };
      for (const k of clear) delete summary[k];
      const set = (await this.redis.eval(SET_SUMMARY, 1, this.key(id), text, JSON.stringify(summary), opts.unlessEnded ? '1' : '0')) as number;
      if (set === 1) return summary;
      if (set === 0) return undefined;
    }
  }

  async setLive(id: string, live: LiveState | null): Promise<void> {
    if (live) await this.redis.hset(this.key(id), 'live', JSON.stringify(live));
    else await this.redis.hdel(this.key(id), 'live');
  }

  /**
   * Asks the worker running the job to stop. The request claims the job's ending (see claimEnd): once
   * it is answered true, the job ends cancelled whatever its run gets to. False: a run claimed the
   * ending first (the job is finishing or finished).
   */
  async requestCancel(id: string): Promise<boolean> {
    if ((await this.claimEnd(id, 'cancel')) === 'lost') return false;
    await this.redis.hset(this.key(id), 'cancel', '1');
    await this.publishControl({ cancel: id });
    return true;
  }

  /**
   * Who decides how a job ends, atomically: a user's cancel or one run of the job. The first to claim
   * wins (HSETNX on `ended`); the same claimant claiming again wins again. A run that finds the cancel
   * there records the cancellation, if no other run recorded it first (HSETNX on `endedBy`); a run that
   * finds another run there records nothing. A cancel that finds a run there is told the job finished.
   */
  async claimEnd(id: string, by: EndClaimant): Promise<EndClaim> {
    const key = this.key(id);
    const claimant = by === 'cancel' ? 'cancel' : `run ${by.run}`;
    const holder = (await this.redis.hsetnx(key, 'ended', claimant)) === 1 ? claimant : await this.redis.hget(key, 'ended');
    if (holder === claimant) return 'won';
    if (by === 'cancel' || holder !== 'cancel') return 'lost';
    if ((await this.redis.hsetnx(key, 'endedBy', by.run)) === 1) return 'cancelled';
    return (await this.redis.hget(key, 'endedBy')) === by.run ? 'cancelled' : 'lost';
  }

  /** The run that claimed the job's ending, when one did (not a cancel). */
  async endedByRun(id: string): Promise<string | undefined> {
    const holder = await this.redis.hget(this.key(id), 'ended');
    return holder?.startsWith('run ') ? holder.slice(4) : undefined;
  }

  /** Notes how one run of a job ended (the history shows every attempt). */
  async logRun(id: string, entry: JobRun): Promise<void> {
    await this.redis.rpush(this.runsKey(id), JSON.stringify(entry));
  }

  private runsKey(id: string): string {
    return `${this.key(id)}:runs`;
  }

  /** Records how a job ended and enters it in the history; returns the ids retention dropped. */
  async finish(id: string, state: JobState, outcome: JobOutcome, retention: Retention): Promise<string[]> {
    const now = Date.now();
    for (;;) {
      const text = await this.redis.hget(this.key(id), 'summary');
      if (!text) return [];
      const summary: JobSummary = { ...(JSON.parse(text) as JobSummary), state, finishedAt: now };
      for (const k of ['position', 'progress', 'etaMs', 'elapsedMs'] as const) delete summary[k];
      const set = (await this.redis.eval(
        FINISH,
        2,
        this.key(id),
        this.historyKey,
        text,
        JSON.stringify(summary),
        JSON.stringify(outcome),
        String(now),
        id,
      )) as number;
      if (set === 1) break;
    }
    return this.applyRetention(retention, now);
  }

  /**
   * Gives back the ending a run claimed but could not record (Redis went away while it wrote), so a later
   * run of the job can end it. Only while that run still holds it.
   */
  async releaseEnd(id: string, run: string): Promise<boolean> {
    return ((await this.redis.eval(RELEASE_END, 1, this.key(id), `run ${run}`)) as number) === 1;
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
      await this.redis
        .multi()
        .zrem(this.historyKey, ...chunk)
        .del(...chunk.flatMap((id) => [this.key(id), this.runsKey(id)]))
        .exec();
    }
  }

  async history(offset: number, limit: number): Promise<{ jobs: HistoryEntry[]; total: number }> {
    const [ids, total] = await Promise.all([
      this.redis.zrevrange(this.historyKey, String(offset), String(offset + limit - 1)),
      this.redis.zcard(this.historyKey),
    ]);
    const records = await this.getMany(ids);
    const jobs = records.filter((r): r is StoredRecord => r !== undefined).map((r) => ({ ...r.summary, ...r.outcome, ...runsOf(r) }));
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

/** The runs of a record for the history, when it ran more than once or a run was cut short. */
export function runsOf(r: StoredRecord): { runs?: JobRun[] } {
  return r.runs.length > 1 || (r.runs.length === 1 && r.runs[0]!.ended !== r.summary.state) ? { runs: r.runs } : {};
}

function parseRecord(values: (string | null)[], runs: string[]): StoredRecord | undefined {
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
    runs: runs.map((r) => JSON.parse(r) as JobRun),
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

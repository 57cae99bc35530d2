/**
 * The embedded job store: every job (queued, running, finished) with its graph and outcome, in SQLite
 * at <data>/studio.db through better-sqlite3, in WAL mode. A job is one row; the queue is the queued
 * rows by `rank`, the history the finished rows by finish time; `runs` keeps each attempt's start and
 * end (JSON, oldest first). Writes are single statements or transactions, so a process killed at any
 * point leaves either the old row or the new one.
 *
 * synchronous=NORMAL with WAL: a committed write survives the process dying (kill -9); only a power
 * cut can lose the last transactions, never corrupt the file.
 */
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Graph } from '../protocol/graph.ts';
import type { HistoryEntry, JobOutcome, JobRun, JobState, JobSummary } from '../protocol/events.ts';
import { noSpaceError } from './errors.ts';

export interface StoredJob {
  summary: JobSummary;
  graph: Graph;
  outputs?: string[];
  /** The run plan (JSON the executor made), kept opaque here. */
  plan: unknown;
  outcome?: JobOutcome;
}

export interface NewJob {
  id: string;
  createdAt: number;
  title?: string;
  model?: string;
  graph: Graph;
  outputs?: string[];
  plan: unknown;
}

interface Row {
  id: string;
  state: JobState;
  title: string | null;
  model: string | null;
  worker: string | null;
  attempts: number;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  graph?: string;
  outputs?: string | null;
  plan: string;
  outcome: string | null;
  runs?: string | null;
}

const SUMMARY_COLUMNS = 'id, state, title, model, worker, attempts, created_at, started_at, finished_at, plan, outcome';
/** 2: `runs`, each attempt's start and end. */
const SCHEMA_VERSION = 2;

/** What a job that was running when its server stopped gets as the end of that attempt. */
export const STOPPED_RUN = 'the server stopped during this run';
/** ... and when the server was shut down (it does not count against the attempt limit). */
export const SHUTDOWN_RUN = 'the server was shut down during this run (not counted against the attempt limit)';

export function studioDbPath(dataDir: string): string {
  return path.join(dataDir, 'studio.db');
}

export class JobDb {
  private readonly db: Database.Database;

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new Error(
        `${file} was written by a newer Dual Style Studio (schema ${version}, this one knows ${SCHEMA_VERSION}); upgrade, or use another data folder`,
      );
    }
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS jobs (
        id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        rank REAL,
        title TEXT,
        model TEXT,
        worker TEXT,
        owner TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        started_at INTEGER,
        finished_at INTEGER,
        graph TEXT NOT NULL,
        outputs TEXT,
        plan TEXT NOT NULL,
        outcome TEXT
      );
      CREATE INDEX IF NOT EXISTS jobs_by_rank ON jobs (state, rank);
      CREATE INDEX IF NOT EXISTS jobs_by_finish ON jobs (finished_at) WHERE finished_at IS NOT NULL;
      CREATE TABLE IF NOT EXISTS node_times (type TEXT PRIMARY KEY, ms REAL NOT NULL, steps REAL);
    `);
    const columns = this.db.prepare(`SELECT name FROM pragma_table_info('jobs')`).all() as { name: string }[];
    if (!columns.some((c) => c.name === 'runs')) this.db.exec(`ALTER TABLE jobs ADD COLUMN runs TEXT`);
    this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /**
   * Appends a job to the queue, or puts it first. A full disk throws StoreError 'no_space' (the job is
   * not queued; nothing else changed).
   */
  insert(job: NewJob, front: boolean): void {
    try {
      this.insertJob(job, front);
    } catch (err) {
      throw noSpaceError(err, 'the job (it was not queued)');
    }
  }

  private insertJob(job: NewJob, front: boolean): void {
    this.db.transaction(() => {
      const { lo, hi } = this.db.prepare(`SELECT MIN(rank) AS lo, MAX(rank) AS hi FROM jobs WHERE state = 'queued'`).get() as {
        lo: number | null;
        hi: number | null;
      };
      const rank = front ? (lo ?? 0) - 1 : (hi ?? 0) + 1;
      this.db
        .prepare(`INSERT INTO jobs (id, state, rank, title, model, created_at, graph, outputs, plan) VALUES (?, 'queued', ?, ?, ?, ?, ?, ?, ?)`)
        .run(
          job.id,
          rank,
          job.title ?? null,
          job.model ?? null,
          job.createdAt,
          JSON.stringify(job.graph),
          job.outputs ? JSON.stringify(job.outputs) : null,
          JSON.stringify(job.plan),
        );
    })();
  }

  countQueued(): number {
    return (this.db.prepare(`SELECT COUNT(*) AS n FROM jobs WHERE state = 'queued'`).get() as { n: number }).n;
  }

  /** Queued jobs in the order they will start, without their graphs. */
  queued(): (JobSummary & { plan: unknown })[] {
    const rows = this.db.prepare(`SELECT ${SUMMARY_COLUMNS} FROM jobs WHERE state = 'queued' ORDER BY rank, created_at`).all() as Row[];
    return rows.map((r, i) => ({ ...toSummary(r), position: i + 1, plan: JSON.parse(r.plan) as unknown }));
  }

  running(): (JobSummary & { plan: unknown })[] {
    const rows = this.db.prepare(`SELECT ${SUMMARY_COLUMNS} FROM jobs WHERE state = 'running' ORDER BY started_at`).all() as Row[];
    return rows.map((r) => ({ ...toSummary(r), position: 0, plan: JSON.parse(r.plan) as unknown }));
  }

  /**
   * Takes the first queued job: it is running from now on (attempts + 1), by `owner` (the process and
   * service instance, so a later start can tell a job whose runner died from one that still runs).
   */
  claimNext(startedAt: number, worker: string, owner: string): StoredJob | undefined {
    return this.db.transaction(() => {
      const row = this.db.prepare(`SELECT id FROM jobs WHERE state = 'queued' ORDER BY rank, created_at LIMIT 1`).get() as { id: string } | undefined;
      if (!row) return undefined;
      this.db
        .prepare(`UPDATE jobs SET state = 'running', rank = NULL, started_at = ?, worker = ?, owner = ?, attempts = attempts + 1 WHERE id = ?`)
        .run(startedAt, worker, owner, row.id);
      const { attempts } = this.db.prepare(`SELECT attempts FROM jobs WHERE id = ?`).get(row.id) as { attempts: number };
      this.updateRuns(row.id, (runs) => [...runs, { attempt: attempts, startedAt }]);
      return this.get(row.id);
    })();
  }

  /**
   * Records how a job ended (from queued or running), and so how its last attempt ended; false when it
   * had already ended.
   */
  finish(id: string, state: JobState, finishedAt: number, outcome: JobOutcome): boolean {
    return this.db.transaction(() => {
      const info = this.db
        .prepare(`UPDATE jobs SET state = ?, rank = NULL, finished_at = ?, outcome = ? WHERE id = ? AND state IN ('queued', 'running')`)
        .run(state, finishedAt, JSON.stringify(outcome), id);
      if (info.changes !== 1) return false;
      const reason = state === 'failed' || state === 'interrupted' ? outcome.error?.message : undefined;
      this.endLastRun(id, finishedAt, state, reason);
      return true;
    })();
  }

  /**
   * Running jobs whose runner is gone (`orphaned(owner)`): back to the front of the queue, in their
   * order, or failed when the server stopped during `maxAttempts` of their runs, this one included (a
   * job that brings the server down would otherwise bring it down on every start). Runs the server was
   * shut down during (`markShutdown`) do not count. Returns the ids of each.
   */
  requeueRunning(orphaned: (owner: string | null) => boolean, maxAttempts: number, now: number): { requeued: string[]; failed: string[] } {
    return this.db.transaction(() => {
      const orphans = this.orphans(orphaned);
      const stops = (o: { id: string; attempts: number }) => {
        const runs = this.runsOf(o.id);
        // Rows written before runs were recorded: every attempt counts.
        if (runs.length === 0) return o.attempts;
        return runs.filter((r) => r.ended === 'stopped').length + (runs.at(-1)!.ended === undefined ? 1 : 0);
      };
      const failed = orphans.filter((o) => stops(o) >= maxAttempts).map((o) => o.id);
      const requeued = orphans.filter((o) => stops(o) < maxAttempts).map((o) => o.id);
      const { lo } = this.db.prepare(`SELECT MIN(rank) AS lo FROM jobs WHERE state = 'queued'`).get() as { lo: number | null };
      const base = (lo ?? 0) - requeued.length - 1;
      const update = this.db.prepare(`UPDATE jobs SET state = 'queued', rank = ?, started_at = NULL, worker = NULL, owner = NULL WHERE id = ?`);
      requeued.forEach((id, i) => {
        update.run(base + i, id);
        this.endLastRun(id, now, 'stopped', STOPPED_RUN);
      });
      const times = maxAttempts === 1 ? 'once' : `${maxAttempts} times`;
      const outcome = JSON.stringify({ error: { message: `the server stopped during this job ${times}; not retried` } } satisfies JobOutcome);
      const fail = this.db.prepare(`UPDATE jobs SET state = 'failed', rank = NULL, finished_at = ?, outcome = ? WHERE id = ?`);
      for (const id of failed) {
        fail.run(now, outcome, id);
        this.endLastRun(id, now, 'stopped', STOPPED_RUN);
      }
      return { requeued, failed };
    })();
  }

  /**
   * A running job whose server is shutting down: its run ends as `shutdown`, which the attempt limit
   * does not count. It stays running on record: the next start re-queues it (or interrupts it).
   */
  markShutdown(id: string, now: number): void {
    this.db.transaction(() => {
      const row = this.db.prepare(`SELECT 1 FROM jobs WHERE id = ? AND state = 'running'`).get(id);
      if (row) this.endLastRun(id, now, 'shutdown', SHUTDOWN_RUN);
    })();
  }

  /** Running jobs whose runner is gone: finished as interrupted. */
  interruptRunning(orphaned: (owner: string | null) => boolean, finishedAt: number): string[] {
    return this.db.transaction(() => {
      const ids = this.orphans(orphaned).map((o) => o.id);
      const outcome = JSON.stringify({ error: { message: 'interrupted: the server stopped while this job ran' } } satisfies JobOutcome);
      const update = this.db.prepare(`UPDATE jobs SET state = 'interrupted', rank = NULL, finished_at = ?, outcome = ? WHERE id = ?`);
      for (const id of ids) {
        update.run(finishedAt, outcome, id);
        this.endLastRun(id, finishedAt, 'stopped', STOPPED_RUN);
      }
      return ids;
    })();
  }

  /** Whether a running job is owned by someone else than `owner` (another process or an earlier service). */
  hasRunningNotOwnedBy(owner: string): boolean {
    return this.db.prepare(`SELECT 1 FROM jobs WHERE state = 'running' AND (owner IS NULL OR owner != ?) LIMIT 1`).get(owner) !== undefined;
  }

  /** Who runs a running job (see claimNext); undefined when it is not running. */
  ownerOf(id: string): string | null | undefined {
    const row = this.db.prepare(`SELECT owner FROM jobs WHERE id = ? AND state = 'running'`).get(id) as { owner: string | null } | undefined;
    return row ? row.owner : undefined;
  }

  private orphans(orphaned: (owner: string | null) => boolean): { id: string; attempts: number }[] {
    const rows = this.db.prepare(`SELECT id, owner, attempts FROM jobs WHERE state = 'running' ORDER BY started_at`).all() as {
      id: string;
      owner: string | null;
      attempts: number;
    }[];
    return rows.filter((r) => orphaned(r.owner));
  }

  private runsOf(id: string): JobRun[] {
    const row = this.db.prepare(`SELECT runs FROM jobs WHERE id = ?`).get(id) as { runs: string | null } | undefined;
    return row?.runs ? (JSON.parse(row.runs) as JobRun[]) : [];
  }

  private updateRuns(id: string, change: (runs: JobRun[]) => JobRun[]): void {
    this.db.prepare(`UPDATE jobs SET runs = ? WHERE id = ?`).run(JSON.stringify(change(this.runsOf(id))), id);
  }

  /** The last attempt, if it has not ended yet, ended at `at` this way. */
  private endLastRun(id: string, at: number, ended: JobRun['ended'], reason: string | undefined): void {
    this.updateRuns(id, (runs) => {
      const last = runs.at(-1);
      if (!last || last.ended !== undefined) return runs;
      return [...runs.slice(0, -1), { ...last, endedAt: at, ended, ...(reason !== undefined ? { reason } : {}) }];
    });
  }

  /** Moves a queued job to `position` (1 = first); false when it is not queued. */
  move(id: string, position: number): boolean {
    return this.db.transaction(() => {
      const ids = (this.db.prepare(`SELECT id FROM jobs WHERE state = 'queued' ORDER BY rank, created_at`).all() as { id: string }[]).map((r) => r.id);
      const from = ids.indexOf(id);
      if (from < 0) return false;
      ids.splice(from, 1);
      ids.splice(Math.min(Math.max(position, 1), ids.length + 1) - 1, 0, id);
      const update = this.db.prepare(`UPDATE jobs SET rank = ? WHERE id = ?`);
      ids.forEach((jobId, i) => update.run(i, jobId));
      return true;
    })();
  }

  get(id: string): StoredJob | undefined {
    const row = this.db.prepare(`SELECT * FROM jobs WHERE id = ?`).get(id) as Row | undefined;
    if (!row) return undefined;
    return {
      summary: toSummary(row),
      graph: JSON.parse(row.graph!) as Graph,
      ...(row.outputs ? { outputs: JSON.parse(row.outputs) as string[] } : {}),
      plan: JSON.parse(row.plan) as unknown,
      ...(row.outcome || row.runs ? { outcome: { ...(row.outcome ? (JSON.parse(row.outcome) as JobOutcome) : {}), ...runsField(row) } } : {}),
    };
  }

  /** Finished jobs, newest first, with their outcomes but not their graphs. */
  history(offset: number, limit: number): { jobs: HistoryEntry[]; total: number } {
    const rows = this.db
      .prepare(`SELECT ${SUMMARY_COLUMNS}, runs FROM jobs WHERE finished_at IS NOT NULL ORDER BY finished_at DESC, id LIMIT ? OFFSET ?`)
      .all(limit, offset) as Row[];
    const { n } = this.db.prepare(`SELECT COUNT(*) AS n FROM jobs WHERE finished_at IS NOT NULL`).get() as { n: number };
    return { jobs: rows.map((r) => ({ ...toSummary(r), ...(r.outcome ? (JSON.parse(r.outcome) as JobOutcome) : {}), ...runsField(r) })), total: n };
  }

  clearHistory(): number {
    return this.db.prepare(`DELETE FROM jobs WHERE finished_at IS NOT NULL`).run().changes;
  }

  /** Removes one finished job; 'not_finished' for a queued or running one. */
  remove(id: string): 'removed' | 'not_finished' | 'not_found' {
    const row = this.db.prepare(`SELECT finished_at FROM jobs WHERE id = ?`).get(id) as { finished_at: number | null } | undefined;
    if (!row) return 'not_found';
    if (row.finished_at === null) return 'not_finished';
    this.db.prepare(`DELETE FROM jobs WHERE id = ?`).run(id);
    return 'removed';
  }

  /** Drops the oldest finished jobs beyond `maxJobs` or older than `maxAgeMs`; returns their ids. */
  applyRetention(maxJobs: number, maxAgeMs: number, now: number): string[] {
    return this.db.transaction(() => {
      const old = this.db
        .prepare(
          `SELECT id FROM jobs WHERE finished_at IS NOT NULL AND (finished_at < ? OR id IN
             (SELECT id FROM jobs WHERE finished_at IS NOT NULL ORDER BY finished_at DESC, id LIMIT -1 OFFSET ?))`,
        )
        .all(now - maxAgeMs, maxJobs) as { id: string }[];
      const del = this.db.prepare(`DELETE FROM jobs WHERE id = ?`);
      for (const { id } of old) del.run(id);
      return old.map((r) => r.id);
    })();
  }

  nodeTimes(): Map<string, { ms: number; steps?: number }> {
    const rows = this.db.prepare(`SELECT type, ms, steps FROM node_times`).all() as { type: string; ms: number; steps: number | null }[];
    return new Map(rows.map((r) => [r.type, { ms: r.ms, ...(r.steps !== null ? { steps: r.steps } : {}) }]));
  }

  saveNodeTime(type: string, time: { ms: number; steps?: number }): void {
    this.db
      .prepare(`INSERT INTO node_times (type, ms, steps) VALUES (?, ?, ?) ON CONFLICT(type) DO UPDATE SET ms = excluded.ms, steps = excluded.steps`)
      .run(type, time.ms, time.steps ?? null);
  }
}

function runsField(r: Row): { runs?: JobRun[] } {
  return r.runs ? { runs: JSON.parse(r.runs) as JobRun[] } : {};
}

function toSummary(r: Row): JobSummary {
  return {
    id: r.id,
    state: r.state,
    createdAt: r.created_at,
    ...(r.title !== null ? { title: r.title } : {}),
    ...(r.model !== null ? { model: r.model } : {}),
    ...(r.worker !== null ? { worker: r.worker } : {}),
    ...(r.attempts > 0 ? { attempts: r.attempts } : {}),
    ...(r.started_at !== null ? { startedAt: r.started_at } : {}),
    ...(r.finished_at !== null ? { finishedAt: r.finished_at } : {}),
  };
}

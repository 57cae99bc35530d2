/** socket.io events of the job lifecycle, and the job API's payloads, shared by server and client. */
import type { Graph } from './graph.ts';

/**
 * queued → running → done | failed | cancelled; `interrupted`: it was running when the server stopped
 * and the server was told not to re-queue it (`--on-restart interrupt`).
 */
export type JobState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled' | 'interrupted';

export const FINISHED_STATES: readonly JobState[] = ['done', 'failed', 'cancelled', 'interrupted'];

export interface JobSummary {
  id: string;
  state: JobState;
  /** 0 = running now, 1 = next, ... ; absent once finished. */
  position?: number;
  createdAt: number;
  title?: string;
  /** When it started running, and when it finished (server clock, ms since epoch). */
  startedAt?: number;
  finishedAt?: number;
  /** Running job: ms since it started when this summary was made (clock-independent for clients). */
  elapsedMs?: number;
  /** Running job: how far it is. */
  progress?: JobProgress;
  /**
   * Estimated ms from now until the job is finished (a queued job: its wait plus its own run), from the
   * step and node times measured before; absent while the server has nothing to go on.
   */
  etaMs?: number;
  /** The model the job loads (its Load Model node's `model`), when it names one. */
  model?: string;
  /** Runs started, counting re-runs after a restart or a worker that died. */
  attempts?: number;
  /** Who runs or ran it: the worker's name in distributed mode ("host:pid gpu 0"), "local" embedded. */
  worker?: string;
}

export interface JobProgress {
  /** Nodes finished (computed or from the cache), of the nodes the job runs. */
  nodesDone: number;
  nodesTotal: number;
  /** The node computing now, with its title as the graph shows it, and its step when it reports steps. */
  nodeId?: string;
  nodeTitle?: string;
  step?: number;
  steps?: number;
  /** What the steps count when they are not the node's own work (e.g. 'converting': a model converted on first use). */
  stepLabel?: string;
}

/** A small table a node shows (e.g. metrics): a header row, then one labelled row per entry. */
export interface ResultTable {
  columns: string[];
  rows: { label: string; cells: string[] }[];
}

/** What an output node produced, for the UI. */
export interface NodeResult {
  images?: { url: string; width: number; height: number; name: string }[];
  text?: string;
  table?: ResultTable;
  warnings?: string[];
}

/** How a finished job ended, beyond its state. */
export interface JobOutcome {
  error?: { nodeId?: string; message: string };
  results?: Record<string, NodeResult>;
  /** Title of each output node that has a result, as the graph showed it (what a gallery lists). */
  outputTitles?: Record<string, string>;
  computed?: string[];
  cached?: string[];
  /** Run time of the last attempt. */
  ms?: number;
  /**
   * Every run (attempt) of the job, oldest first, and how each ended: embedded mode records each attempt
   * (a server that stopped during one); distributed mode the runs when there was more than one (a worker
   * that stopped answering, Redis away longer than the stall timeout).
   */
  runs?: JobRun[];
}

/** One run of a job. */
export interface JobRun {
  attempt: number;
  /** Distributed mode: the worker that ran it. */
  worker?: string;
  startedAt?: number;
  endedAt?: number;
  /**
   * How it ended. Embedded: as the job did; `stopped`: the server stopped during it (killed, crashed) and
   * it was found running at the next start; `shutdown`: the server was shut down (Ctrl+C, SIGTERM) and
   * put it back in line. Distributed: the ending in words ('done', 're-queued: …', 'not recorded: …').
   * Absent while it runs.
   */
  ended?: JobState | 'stopped' | 'shutdown' | (string & {});
  /** Why, in words, where there is more to say than the state ("the server stopped during this run"). */
  reason?: string;
}

/** One entry of GET /api/history: the job and its outcome, without the graph. */
export type HistoryEntry = JobSummary & JobOutcome;

/** GET /api/history?offset=0&limit=50: finished jobs, newest first. */
export interface HistoryPage {
  jobs: HistoryEntry[];
  /** Finished jobs in the history altogether. */
  total: number;
  offset: number;
}

/** GET /api/jobs/:id: everything about a job, its graph included (to re-open it in the editor). */
export interface JobDetail extends JobOutcome {
  job: JobSummary;
  graph: Graph;
  /** The output nodes it was asked to run (absent: all of them). */
  outputs?: string[];
}

/** GET /api/workers: who runs jobs (distributed: each live worker; embedded: this server). */
export interface WorkerStatus {
  name: string;
  gpu?: number;
  /** Models whose sessions it holds (jobs of these models go to it first). */
  models: string[];
  /** The job it runs now. */
  jobId?: string;
  /** When it last said it is alive (ms since epoch). */
  seen: number;
}

export interface QueueState {
  /** The first running job (kept for single-GPU clients); `active` lists all of them. */
  running: JobSummary | null;
  /** Every running job: one per worker in distributed mode, at most one embedded. */
  active: JobSummary[];
  /** Waiting jobs in the order they will start (position 1, 2, ...). */
  pending: JobSummary[];
  /** How many jobs can run at once (live workers; 1 embedded). */
  workers: number;
  /** Paused: no waiting job starts (the running one goes on) until the queue is resumed. Absent: not paused. */
  paused?: true;
}

export interface ServerToClientEvents {
  /** The whole queue, re-sent on every change and, while jobs run, at most every ~0.5 s with progress. */
  queue: (q: QueueState) => void;
  'job:queued': (e: { jobId: string; position: number }) => void;
  'job:started': (e: { jobId: string; nodes: string[]; worker?: string; attempt?: number }) => void;
  'node:started': (e: { jobId: string; nodeId: string; type: string }) => void;
  'node:progress': (e: { jobId: string; nodeId: string; step: number; total: number; label?: string }) => void;
  /** A small encoded frame of the current x̂0 (or an image); `data` is the encoded bytes. */
  'node:preview': (e: { jobId: string; nodeId: string; step: number; total: number; mime: string; width: number; height: number; data: Uint8Array }) => void;
  'node:warning': (e: { jobId: string; nodeId: string; message: string }) => void;
  'node:done': (e: { jobId: string; nodeId: string; cached: boolean; ms: number; result?: NodeResult }) => void;
  'job:done': (e: { jobId: string; ms: number; computed: string[]; cached: string[]; results: Record<string, NodeResult> }) => void;
  'job:failed': (e: { jobId: string; nodeId?: string; message: string }) => void;
  'job:cancelled': (e: { jobId: string; nodeId?: string }) => void;
  /** A job that was running stopped without finishing (a worker died, the server restarted) and waits again. */
  'job:requeued': (e: { jobId: string; reason: string }) => void;
  /** Finished jobs left the history: `jobIds`, or all of them when `all`. */
  'history:removed': (e: { jobIds: string[]; all: boolean }) => void;
}

export interface ClientToServerEvents {
  /** Follow a job's events (all jobs are broadcast anyway; kept for clients that filter). */
  'job:subscribe': (jobId: string) => void;
}

export interface SubmitJobRequest {
  graph: Graph;
  /** Optional: restrict execution to these output nodes and their ancestors. */
  outputs?: string[];
  /** Put the job first in line (after the running ones) instead of last. */
  front?: boolean;
}

/** A socket event ready to send: its name and its one argument. */
export type OutgoingEvent = {
  [K in keyof ServerToClientEvents]: { name: K; args: Parameters<ServerToClientEvents[K]>[0] };
}[keyof ServerToClientEvents];

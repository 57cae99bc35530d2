/** socket.io events of the job lifecycle, shared by server and client. */
import type { Graph } from './graph.ts';

export type JobState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

export interface JobSummary {
  id: string;
  state: JobState;
  /** 0 = running now, 1 = next, ... ; absent once finished. */
  position?: number;
  createdAt: number;
  title?: string;
  /** When it started running (server clock, ms since epoch). */
  startedAt?: number;
  /** Running job: ms since it started when this summary was made (clock-independent for clients). */
  elapsedMs?: number;
  /** Running job: how far it is. */
  progress?: JobProgress;
  /**
   * Estimated ms until the job is finished (a queued job: its wait plus its own run), from how long
   * the same node types took before; absent while the server has nothing to go on.
   */
  etaMs?: number;
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

export interface QueueState {
  running: JobSummary | null;
  pending: JobSummary[];
}

export interface ServerToClientEvents {
  'queue': (q: QueueState) => void;
  'job:queued': (e: { jobId: string; position: number }) => void;
  'job:started': (e: { jobId: string; nodes: string[] }) => void;
  'node:started': (e: { jobId: string; nodeId: string; type: string }) => void;
  'node:progress': (e: { jobId: string; nodeId: string; step: number; total: number }) => void;
  /** A small encoded frame of the current x̂0 (or an image); `data` is the encoded bytes. */
  'node:preview': (e: { jobId: string; nodeId: string; step: number; total: number; mime: string; width: number; height: number; data: Uint8Array }) => void;
  'node:warning': (e: { jobId: string; nodeId: string; message: string }) => void;
  'node:done': (e: { jobId: string; nodeId: string; cached: boolean; ms: number; result?: NodeResult }) => void;
  'job:done': (e: { jobId: string; ms: number; computed: string[]; cached: string[]; results: Record<string, NodeResult> }) => void;
  'job:failed': (e: { jobId: string; nodeId?: string; message: string }) => void;
  'job:cancelled': (e: { jobId: string; nodeId?: string }) => void;
}

export interface ClientToServerEvents {
  /** Follow a job's events (all jobs are broadcast anyway; kept for clients that filter). */
  'job:subscribe': (jobId: string) => void;
}

export interface SubmitJobRequest {
  graph: Graph;
  /** Optional: restrict execution to these output nodes and their ancestors. */
  outputs?: string[];
  /** Put the job first in line (after the running one) instead of last. */
  front?: boolean;
}

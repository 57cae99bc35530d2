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
}

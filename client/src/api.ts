/** HTTP client of the studio API (same origin; the Vite dev server proxies /api). */
import type { Graph, ValidationIssue } from '../../server/protocol/graph.ts';
import type { Catalog } from '../../server/protocol/catalog.ts';
import type { HistoryPage, JobDetail, JobSummary, QueueState } from '../../server/protocol/events.ts';
import type { TokenCount } from '../../server/protocol/prompt-tokens.ts';
import { authHeaders } from './access-token.ts';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly issues: ValidationIssue[] = [],
  ) {
    super(message);
  }
}

/**
 * Sent with every request: the server refuses state-changing requests that a page on another site could
 * send without a preflight (no JSON or image body, no custom header), such as a body-less DELETE.
 */
const REQUESTED_WITH = { 'X-Requested-With': 'dualstyle' };

/** fetch with the access token; a network failure becomes an ApiError that says the server is unreachable. */
async function send(url: string, init: RequestInit = {}): Promise<Response> {
  try {
    const headers = { ...REQUESTED_WITH, ...authHeaders(), ...(init.headers as Record<string, string> | undefined) };
    return await fetch(url, { ...init, headers });
  } catch (err) {
    throw new ApiError(0, 'network', `The studio server cannot be reached (${(err as Error).message}).`);
  }
}

async function request<T>(method: string, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    if (body instanceof Blob || body instanceof ArrayBuffer) {
      init.body = body;
    } else {
      init.body = JSON.stringify(body);
      (init.headers as Record<string, string>)['Content-Type'] = 'application/json';
    }
  }
  const res = await send(url, init);
  const text = await res.text();
  let data: unknown = undefined;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      if (!res.ok) throw new ApiError(res.status, 'http', `${method} ${url} failed: HTTP ${res.status} ${text.slice(0, 200)}`);
      throw new ApiError(res.status, 'bad_response', `${method} ${url} returned something that is not JSON.`);
    }
  }
  if (!res.ok) {
    const e = (data as { error?: { code?: string; message?: string; issues?: ValidationIssue[] } } | undefined)?.error;
    throw new ApiError(res.status, e?.code ?? 'http', e?.message ?? `${method} ${url} failed: HTTP ${res.status}`, e?.issues ?? []);
  }
  return data as T;
}

export interface Health {
  ok: boolean;
  version?: string;
  /** What the server was started with (auto, cuda, webgpu, cpu). */
  executionProvider?: string;
  /** What that means here (cpu, cuda, ...), and why. */
  executionProviderUsed?: string;
  executionProviderNote?: string;
  /** Set by servers that run the built-in demo model (random weights). */
  demo?: boolean;
  [k: string]: unknown;
}

export interface GraphListEntry {
  name: string;
  source: 'template' | 'user';
  title?: string;
  updatedAt?: string | number;
}

/** A model the server can load (GET /api/models), for the Load Model suggestions. */
export interface ModelEntry {
  model: string;
  label: string;
  demo: boolean;
  /** What it is (absent from an older server: a model). */
  kind?: 'demo' | 'onnx' | 'diffusers' | 'checkpoint' | 'lora' | 'vae';
  note?: string;
}

export interface UploadResult {
  name: string;
  width: number;
  height: number;
  url: string;
  /** The name of the user's file, when the server kept it. */
  fileName?: string;
}

/** A saved mask preset as listed (GET /api/mask-presets). */
export interface MaskPresetEntry {
  name: string;
  shape: string;
  styles: number;
  savedAt: number;
}

export const api = {
  health: () => request<Health>('GET', '/api/health'),
  catalog: () => request<Catalog>('GET', '/api/catalog'),
  validate: (graph: Graph) => request<{ ok: boolean; issues: ValidationIssue[]; warnings?: ValidationIssue[] }>('POST', '/api/validate', { graph }),
  /** Token counts of prompts, with the tokenizer of `model` (a Load Model value). */
  tokens: (texts: string[], model: string) => request<{ counts: TokenCount[] }>('POST', '/api/tokens', { texts, model }),
  /** `front`: first in line (after the running jobs). */
  submitJob: (graph: Graph, opts: { front?: boolean } = {}) =>
    request<{ job: JobSummary }>('POST', '/api/jobs', { graph, ...(opts.front ? { front: true } : {}) }),
  cancelJob: (id: string) => request<unknown>('DELETE', `/api/jobs/${encodeURIComponent(id)}`),
  /** Everything about a job, its graph included (to re-open it). */
  job: (id: string) => request<JobDetail>('GET', `/api/jobs/${encodeURIComponent(id)}`),
  /** Moves a queued job to `position` (1 = next to start). */
  moveJob: (id: string, position: number) => request<{ queue: QueueState }>('POST', `/api/jobs/${encodeURIComponent(id)}/move`, { position }),
  queue: () => request<QueueState>('GET', '/api/queue'),
  /** Pauses the queue (no waiting job starts; the running one goes on), or resumes it. */
  pauseQueue: (paused: boolean) => request<{ queue: QueueState }>('POST', `/api/queue/${paused ? 'pause' : 'resume'}`),
  /** Finished jobs, newest first. */
  history: (offset = 0, limit = 50) => request<HistoryPage>('GET', `/api/history?offset=${offset}&limit=${limit}`),
  clearHistory: () => request<{ removed: number }>('DELETE', '/api/history'),
  removeFromHistory: (id: string) => request<{ removed: number }>('DELETE', `/api/history/${encodeURIComponent(id)}`),
  models: async (): Promise<ModelEntry[]> => {
    const data = await request<{ models: ModelEntry[] } | ModelEntry[]>('GET', '/api/models');
    return Array.isArray(data) ? data : data.models;
  },
  listGraphs: async (): Promise<GraphListEntry[]> => {
    const data = await request<GraphListEntry[] | { graphs: GraphListEntry[] }>('GET', '/api/graphs');
    return Array.isArray(data) ? data : data.graphs;
  },
  /** The server may answer the graph itself or `{ name, source, graph }`; both are accepted. */
  getGraph: async (name: string): Promise<{ graph: unknown; source?: 'template' | 'user' }> => {
    const data = await request<Record<string, unknown>>('GET', `/api/graphs/${encodeURIComponent(name)}`);
    if (data && data.format !== undefined) return { graph: data };
    return { graph: data.graph, source: data.source as 'template' | 'user' | undefined };
  },
  saveGraph: (name: string, graph: Graph) => request<unknown>('PUT', `/api/graphs/${encodeURIComponent(name)}`, { graph }),
  deleteGraph: (name: string) => request<unknown>('DELETE', `/api/graphs/${encodeURIComponent(name)}`),
  /** The file's own name goes along (X-File-Name), so it is shown instead of the content hash later. */
  upload: (file: Blob & { name?: string }) =>
    request<UploadResult>('POST', '/api/uploads', file, {
      'Content-Type': file.type || 'application/octet-stream',
      ...(file.name ? { 'X-File-Name': encodeURIComponent(file.name) } : {}),
    }),
  uploadInfo: (name: string) => request<UploadResult>('GET', `/api/uploads/${encodeURIComponent(name)}/info`),
  maskPresets: () => request<MaskPresetEntry[]>('GET', '/api/mask-presets'),
  maskPreset: (name: string) => request<{ name: string; params: Record<string, unknown> }>('GET', `/api/mask-presets/${encodeURIComponent(name)}`),
  saveMaskPreset: (name: string, params: Record<string, unknown>) => request<unknown>('PUT', `/api/mask-presets/${encodeURIComponent(name)}`, { params }),
  validateForRun: (graph: Graph) =>
    request<{ ok: boolean; issues: ValidationIssue[]; warnings?: ValidationIssue[] }>('POST', '/api/validate?requireOutput=1', { graph }),
};

/** Where an image named in a parameter can be seen: an upload, or a built-in picture ("builtin:sample"). */
export function uploadUrl(name: string): string | null {
  const builtin = /^builtin:([a-z0-9-]+)$/.exec(name);
  if (builtin) return `/api/builtin/${builtin[1]}.png`;
  return /^[A-Za-z0-9 _.-]+$/.test(name) ? `/api/uploads/${encodeURIComponent(name)}` : null;
}

/** The bytes of a file the server serves (a result image), with the access token. */
export async function fetchBytes(url: string): Promise<Uint8Array> {
  const res = await send(url);
  if (!res.ok) throw new ApiError(res.status, 'http', `GET ${url} failed: HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

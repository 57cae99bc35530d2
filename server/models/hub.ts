/**
 * Download a Stable Diffusion 1.x ONNX export (diffusers ONNX layout), a repository in the diffusers
 * PyTorch layout (safetensors, converted by Load Model), or one file of a repository from the Hugging Face Hub.
 *
 *   list   GET {endpoint}/api/models/{repo}/revision/{revision}?blobs=true → siblings with sizes/sha256
 *   pick   model_index.json + scheduler, tokenizer, text_encoder, unet, vae_encoder, vae_decoder
 *   fetch  GET {endpoint}/{repo}/resolve/{revision}/{path} into <file>.part, resuming with Range,
 *          renamed into place when complete; complete files are skipped on a re-run
 *   check  every file present, sizes as listed, LFS sha256 / git blob sha1 as listed, model_index.json parses
 *
 * Nothing here prints: progress goes to an `onEvent` callback (the CLI renders it on stderr).
 * This module is the Hub's API (listing, URLs, errors); hub-download.ts does the transfers and checks.
 */
import path from 'node:path';
import { REQUIRED_FILES } from '../engine/sd/layout.ts';

export const DEFAULT_REPO = 'CompVis/stable-diffusion-v1-4';
export const DEFAULT_REVISION = 'onnx';
export const DEFAULT_ENDPOINT = 'https://huggingface.co';

/** One file of the repository as the Hub lists it. */
export interface HubFile {
  /** Path inside the repository, '/'-separated. */
  path: string;
  size?: number;
  /** sha256 of the content, for files stored with Git LFS. */
  sha256?: string;
  /** Git blob id (sha1 of "blob <size>\0" + content), checkable for files not in LFS. */
  blobId?: string;
}

export type FetchEvent =
  | { kind: 'listed'; repo: string; revision: string; files: HubFile[]; totalBytes: number }
  | { kind: 'file-start'; file: HubFile; index: number; count: number; resumeFrom: number }
  | { kind: 'file-progress'; file: HubFile; received: number; total?: number }
  | { kind: 'file-done'; file: HubFile; skipped: boolean; bytes: number }
  | { kind: 'retry'; file: HubFile; attempt: number; reason: string }
  | { kind: 'verifying'; file: HubFile };

export interface FetchModelOptions {
  /** What to fetch (default: a Stable Diffusion export); sets the default repository and the file selection. */
  kind?: ExportKind;
  repo?: string;
  revision?: string;
  /** Destination folder; defaults to ./models/<repo name>. */
  outDir?: string;
  endpoint?: string;
  /** Hugging Face access token, sent as `Authorization: Bearer`. */
  token?: string;
  onEvent?: (e: FetchEvent) => void;
  /** Attempts after a dropped connection or 5xx, each resuming where the last stopped. */
  retries?: number;
  retryDelayMs?: number;
  signal?: AbortSignal;
}

export interface FetchModelResult {
  outDir: string;
  files: HubFile[];
  /** Bytes transferred in this run. */
  downloadedBytes: number;
  /** Files that were already complete. */
  skipped: number;
  totalBytes: number;
  /** Problems found by the final check; empty when the folder is ready to use. */
  problems: string[];
}

export class FetchModelError extends Error {
  override name = 'FetchModelError';
}

/** Folders of the diffusers ONNX layout that the studio loads. */
const COMPONENT_DIRS = ['scheduler', 'tokenizer', 'text_encoder', 'unet', 'vae_encoder', 'vae_decoder'];
/** Weights of other frameworks, docs and pictures that some repos keep next to the ONNX files. */
const SKIPPED_EXTENSIONS = /\.(bin|safetensors|ckpt|pt|pth|msgpack|h5|md|png|jpe?g|gif|webp)$/i;

/** Keep what the diffusers ONNX layout needs; drop safety_checker, feature_extractor, README, images. */
export function selectOnnxFiles(files: HubFile[]): HubFile[] {
  return files.filter((f) => {
    if (f.path === 'model_index.json') return true;
    const slash = f.path.indexOf('/');
    if (slash < 0) return false;
    return COMPONENT_DIRS.includes(f.path.slice(0, slash)) && !SKIPPED_EXTENSIONS.test(f.path);
  });
}

/** Files a split CLIP export carries at its root, in onnx/ (models) or tokenizer/ (tokenizer files). */
const CLIP_MODELS = ['text_model.onnx', 'vision_model.onnx'];
const CLIP_CONFIGS = ['vocab.json', 'merges.txt', 'tokenizer_config.json', 'special_tokens_map.json', 'preprocessor_config.json', 'config.json'];

/**
 * Keep the fp32 text and vision models (and their external data, if any) of a split CLIP export, its
 * tokenizer and preprocessor configs; drop quantized and fp16 variants, other frameworks' weights, docs.
 */
export function selectClipFiles(files: HubFile[]): HubFile[] {
  return files.filter((f) => {
    const slash = f.path.lastIndexOf('/');
    const dir = slash < 0 ? '' : f.path.slice(0, slash);
    const base = f.path.slice(slash + 1);
    if (dir === '' || dir === 'onnx') {
      if (CLIP_MODELS.some((m) => base === m || base === `${m}_data` || base === `${m}.data`)) return true;
    }
    return (dir === '' || dir === 'tokenizer') && CLIP_CONFIGS.includes(base);
  });
}

/** What one kind of export needs from a repository: which files to take and which must be there. */
export interface ExportKind {
  name: 'sd' | 'clip' | 'pytorch' | 'file';
  /** For messages: what the repository must be. */
  what: string;
  defaultRepo: string;
  defaultRevision: string;
  select(files: HubFile[]): HubFile[];
  /** Required files (each possibly at one of several places) absent from a selection. */
  missing(files: HubFile[]): string[];
}

export const SD_EXPORT: ExportKind = {
  name: 'sd',
  what: 'a Stable Diffusion ONNX export in the diffusers layout',
  defaultRepo: DEFAULT_REPO,
  defaultRevision: DEFAULT_REVISION,
  select: selectOnnxFiles,
  missing: (files) => REQUIRED_FILES.filter((r) => !files.some((f) => f.path === r)),
};

/** CLIP ViT-B/32 as a split ONNX export (text_model.onnx, vision_model.onnx), the metrics' CLIP. */
export const CLIP_EXPORT: ExportKind = {
  name: 'clip',
  what: 'a split CLIP ONNX export (text_model.onnx, vision_model.onnx, tokenizer)',
  defaultRepo: 'Xenova/clip-vit-base-patch32',
  defaultRevision: 'main',
  select: selectClipFiles,
  missing: (files) =>
    ['text_model.onnx', 'vision_model.onnx', 'vocab.json', 'merges.txt'].filter((name) => !files.some((f) => f.path.split('/').pop() === name)),
};

/** The weights file of each diffusers PyTorch component, in safetensors (a .bin is never downloaded: take the safetensors). */
const PYTORCH_WEIGHTS: Record<string, string> = {
  unet: 'diffusion_pytorch_model',
  vae: 'diffusion_pytorch_model',
  text_encoder: 'model',
};

/**
 * Keep what Load Model converts from a diffusers PyTorch repository (the main branch of SD 1.x repos):
 * model_index.json, the scheduler and tokenizer configs, and for unet/, vae/, text_encoder/ their
 * config.json and one safetensors file: the fp16 variant (`*.fp16.safetensors`) when `fp16` asks for it
 * and the repository has it, else the full one. Pickles, other frameworks, the safety checker, docs: dropped.
 */
export function selectPytorchFiles(files: HubFile[], fp16 = false): HubFile[] {
  const has = new Set(files.map((f) => f.path));
  const weights = (dir: string): string | undefined => {
    const stem = `${dir}/${PYTORCH_WEIGHTS[dir]}`;
    const order = fp16 ? [`${stem}.fp16.safetensors`, `${stem}.safetensors`] : [`${stem}.safetensors`, `${stem}.fp16.safetensors`];
    return order.find((p) => has.has(p));
  };
  const chosen = new Set(Object.keys(PYTORCH_WEIGHTS).map(weights));
  return files.filter((f) => {
    if (f.path === 'model_index.json' || chosen.has(f.path)) return true;
    const [dir, name, ...deeper] = f.path.split('/');
    if (!name || deeper.length > 0) return false;
    if (dir === 'scheduler' || dir === 'tokenizer') return !SKIPPED_EXTENSIONS.test(name);
    return dir! in PYTORCH_WEIGHTS && name === 'config.json';
  });
}

/** A Stable Diffusion 1.x repository in the diffusers PyTorch layout, converted by Load Model on first use. */
export function pytorchExport(fp16 = false): ExportKind {
  return {
    name: 'pytorch',
    what: 'a Stable Diffusion 1.x repository in the diffusers PyTorch layout with safetensors weights',
    defaultRepo: 'stable-diffusion-v1-5/stable-diffusion-v1-5',
    defaultRevision: 'main',
    select: (files) => selectPytorchFiles(files, fp16),
    missing: (files) => {
      const has = (p: string) => files.some((f) => f.path === p);
      const required = ['model_index.json', 'scheduler/scheduler_config.json', 'tokenizer/vocab.json', 'tokenizer/merges.txt'];
      for (const [dir, stem] of Object.entries(PYTORCH_WEIGHTS)) required.push(`${dir}/config.json`, `${dir}/${stem}.safetensors`);
      // Either weights variant will do.
      return required.filter((r) => !has(r) && !(r.endsWith('.safetensors') && has(r.replace(/\.safetensors$/, '.fp16.safetensors'))));
    },
  };
}

/** One file of a repository (`--file NAME`: a single-file checkpoint, a VAE, a LoRA), with the same resume and checks. */
export function singleFileExport(name: string): ExportKind {
  return {
    name: 'file',
    what: `a repository with the file ${name}`,
    defaultRepo: DEFAULT_REPO,
    defaultRevision: 'main',
    select: (files) => files.filter((f) => f.path === name),
    missing: (files) => (files.some((f) => f.path === name) ? [] : [name]),
  };
}

export const EXPORT_KINDS = { sd: SD_EXPORT, clip: CLIP_EXPORT, pytorch: pytorchExport() } as const;

export function defaultOutDir(repo: string): string {
  return path.join('models', repo.split('/').pop() ?? repo);
}

export const REPO_RE = /^[A-Za-z0-9][\w.-]*(\/[A-Za-z0-9][\w.-]*)?$/;

export function trimEndpoint(endpoint: string): string {
  return endpoint.replace(/\/+$/, '');
}

function encodePath(p: string): string {
  return p.split('/').map(encodeURIComponent).join('/');
}

export function listingUrl(endpoint: string, repo: string, revision: string): string {
  return `${trimEndpoint(endpoint)}/api/models/${repo}/revision/${encodeURIComponent(revision)}?blobs=true`;
}

export function resolveUrl(endpoint: string, repo: string, revision: string, file: string): string {
  return `${trimEndpoint(endpoint)}/${repo}/resolve/${encodeURIComponent(revision)}/${encodePath(file)}`;
}

export interface Ctx {
  repo: string;
  revision: string;
  endpoint: string;
  token?: string;
  signal?: AbortSignal;
}

export function authHeaders(ctx: Ctx): Record<string, string> {
  return ctx.token ? { authorization: `Bearer ${ctx.token}` } : {};
}

/** fetch() that turns "the network is not there" into a sentence that says so. */
export async function hubFetch(ctx: Ctx, url: string, headers: Record<string, string>): Promise<Response> {
  try {
    return await fetch(url, { headers, redirect: 'follow', signal: ctx.signal });
  } catch (e) {
    if (ctx.signal?.aborted) throw e;
    throw new FetchModelError(`cannot reach ${ctx.endpoint}: ${networkReason(e)} (this machine may be offline)`, {
      cause: e,
    });
  }
}

export function networkReason(e: unknown): string {
  // undici wraps the socket error: TypeError('fetch failed', { cause: { code, message } }).
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  const code = cause?.code;
  const message = cause?.message || (e as Error).message || String(e);
  if (code && !message.includes(code)) return `${code}: ${message}`;
  return message;
}

const TOKEN_HINT =
  'pass a Hugging Face access token with --token hf_... or the HF_TOKEN environment variable ' +
  '(create one at https://huggingface.co/settings/tokens; for a gated model, accept its licence on the model page first)';

/** An HTTP failure from the Hub, worded for the person running the command. */
export async function hubHttpError(ctx: Ctx, res: Response, what: string): Promise<FetchModelError> {
  const code = res.headers.get('x-error-code') ?? '';
  let detail = res.headers.get('x-error-message') ?? '';
  if (!detail) {
    const body = await res.text().catch(() => '');
    try {
      const parsed = JSON.parse(body) as { error?: unknown };
      if (typeof parsed.error === 'string') detail = parsed.error;
    } catch {
      detail = body.slice(0, 200).trim();
    }
  }
  const where = `${ctx.repo} (revision "${ctx.revision}") on ${ctx.endpoint}`;
  const suffix = detail ? ` — the Hub says: ${detail}` : '';
  switch (res.status) {
    case 401:
      return new FetchModelError(
        ctx.token
          ? `${what}: 401 Unauthorized for ${where}: the token was rejected or has no access to this repository${suffix}`
          : `${what}: 401 Unauthorized for ${where}: the repository is private or gated (or does not exist); ${TOKEN_HINT}${suffix}`,
      );
    case 403:
      return new FetchModelError(
        `${what}: 403 Forbidden for ${where}: access is restricted; accept the model's licence on its Hub page and ${TOKEN_HINT}${suffix}`,
      );
    case 404:
      if (code === 'RevisionNotFound' || /revision/i.test(detail)) {
        return new FetchModelError(
          `${what}: revision "${ctx.revision}" not found in ${ctx.repo} on ${ctx.endpoint}; choose another with --revision (SD 1.x ONNX exports usually live on "onnx" or "main")${suffix}`,
        );
      }
      if (code === 'EntryNotFound') return new FetchModelError(`${what}: not found in ${where}${suffix}`);
      return new FetchModelError(
        `${what}: repository ${ctx.repo} not found on ${ctx.endpoint} (or revision "${ctx.revision}" does not exist); check --repo and --revision${suffix}`,
      );
    default:
      return new FetchModelError(`${what}: HTTP ${res.status} ${res.statusText} from ${where}${suffix}`);
  }
}

interface Sibling {
  rfilename?: unknown;
  size?: unknown;
  blobId?: unknown;
  lfs?: { sha256?: unknown; size?: unknown } | null;
}

/** All files of the repository at that revision, with sizes and checksums where the Hub gives them. */
export async function listRepoFiles(ctx: Ctx): Promise<HubFile[]> {
  const res = await hubFetch(ctx, listingUrl(ctx.endpoint, ctx.repo, ctx.revision), {
    accept: 'application/json',
    ...authHeaders(ctx),
  });
  if (!res.ok) throw await hubHttpError(ctx, res, 'listing the model files');
  let body: { siblings?: Sibling[] };
  try {
    body = (await res.json()) as { siblings?: Sibling[] };
  } catch {
    throw new FetchModelError(`listing the model files: ${ctx.endpoint} did not answer with JSON; is --endpoint a Hugging Face Hub?`);
  }
  if (!Array.isArray(body.siblings)) {
    throw new FetchModelError(`listing the model files: the answer from ${ctx.endpoint} has no "siblings" list`);
  }
  const files: HubFile[] = [];
  for (const s of body.siblings) {
    if (typeof s.rfilename !== 'string' || !isSafeRelativePath(s.rfilename)) continue;
    const f: HubFile = { path: s.rfilename };
    const size = typeof s.size === 'number' ? s.size : typeof s.lfs?.size === 'number' ? s.lfs.size : undefined;
    if (size !== undefined && Number.isSafeInteger(size) && size >= 0) f.size = size;
    if (typeof s.lfs?.sha256 === 'string' && /^[0-9a-f]{64}$/i.test(s.lfs.sha256)) f.sha256 = s.lfs.sha256.toLowerCase();
    else if (typeof s.blobId === 'string' && /^[0-9a-f]{40}$/i.test(s.blobId)) f.blobId = s.blobId.toLowerCase();
    files.push(f);
  }
  return files;
}

/** A listed name must stay inside the output folder. */
function isSafeRelativePath(p: string): boolean {
  if (p.length === 0 || p.startsWith('/') || p.includes('\\') || p.includes('\0')) return false;
  return p.split('/').every((seg) => seg !== '' && seg !== '.' && seg !== '..');
}

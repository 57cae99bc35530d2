/**
 * Download a Stable Diffusion 1.x ONNX export (diffusers ONNX layout) from the Hugging Face Hub.
 *
 *   list   GET {endpoint}/api/models/{repo}/revision/{revision}?blobs=true → siblings with sizes/sha256
 *   pick   model_index.json + scheduler, tokenizer, text_encoder, unet, vae_encoder, vae_decoder
 *   fetch  GET {endpoint}/{repo}/resolve/{revision}/{path} into <file>.part, resuming with Range,
 *          renamed into place when complete; complete files are skipped on a re-run
 *   check  every file present, sizes as listed, LFS sha256 / git blob sha1 as listed, model_index.json parses
 *
 * Nothing here prints: progress goes to an `onEvent` callback (the CLI renders it on stderr).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { REQUIRED_FILES } from '../engine/onnx/layout.ts';

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

export function defaultOutDir(repo: string): string {
  return path.join('models', repo.split('/').pop() ?? repo);
}

const REPO_RE = /^[A-Za-z0-9][\w.-]*(\/[A-Za-z0-9][\w.-]*)?$/;

function trimEndpoint(endpoint: string): string {
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

interface Ctx {
  repo: string;
  revision: string;
  endpoint: string;
  token?: string;
  signal?: AbortSignal;
}

function authHeaders(ctx: Ctx): Record<string, string> {
  return ctx.token ? { authorization: `Bearer ${ctx.token}` } : {};
}

/** fetch() that turns "the network is not there" into a sentence that says so. */
async function hubFetch(ctx: Ctx, url: string, headers: Record<string, string>): Promise<Response> {
  try {
    return await fetch(url, { headers, redirect: 'follow', signal: ctx.signal });
  } catch (e) {
    if (ctx.signal?.aborted) throw e;
    throw new FetchModelError(`cannot reach ${ctx.endpoint}: ${networkReason(e)} (this machine may be offline)`, {
      cause: e,
    });
  }
}

function networkReason(e: unknown): string {
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
async function hubHttpError(ctx: Ctx, res: Response, what: string): Promise<FetchModelError> {
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

async function sizeOf(file: string): Promise<number | null> {
  try {
    return (await stat(file)).size;
  } catch {
    return null;
  }
}

class RetryableError extends Error {}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * One transfer into `part`, appending from `have` bytes when the server honours the Range request.
 * Returns the bytes received.
 */
async function transfer(ctx: Ctx, file: HubFile, part: string, have: number, onEvent: (e: FetchEvent) => void): Promise<number> {
  // identity: byte offsets for Range must refer to the file itself, not to a compressed stream.
  const headers: Record<string, string> = { 'accept-encoding': 'identity', ...authHeaders(ctx) };
  if (have > 0) headers['range'] = `bytes=${have}-`;
  const res = await hubFetch(ctx, resolveUrl(ctx.endpoint, ctx.repo, ctx.revision, file.path), headers);
  let offset: number;
  if (res.status === 206 && have > 0) {
    const m = /^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '');
    if (!m || Number(m[1]) !== have) {
      await res.body?.cancel();
      await rm(part, { force: true });
      throw new RetryableError(`server resumed ${file.path} at the wrong offset; starting it over`);
    }
    offset = have;
  } else if (res.status === 200) {
    offset = 0; // no (or ignored) Range: the whole file comes again
  } else if (res.status === 416) {
    await res.body?.cancel();
    await rm(part, { force: true });
    throw new RetryableError(`partial file of ${file.path} does not match the server's; starting it over`);
  } else if (res.status >= 500 || res.status === 429) {
    await res.body?.cancel();
    throw new RetryableError(`HTTP ${res.status} while downloading ${file.path}`);
  } else {
    throw await hubHttpError(ctx, res, `downloading ${file.path}`);
  }
  if (!res.body) throw new RetryableError(`empty response for ${file.path}`);

  const fh = await open(part, offset > 0 ? 'a' : 'w');
  let received = offset;
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      await fh.write(chunk);
      received += chunk.byteLength;
      onEvent({ kind: 'file-progress', file, received, total: file.size });
    }
  } catch (e) {
    if (ctx.signal?.aborted) throw e;
    throw new RetryableError(`connection lost while downloading ${file.path}: ${networkReason(e)}`);
  } finally {
    await fh.close();
  }
  return received - offset;
}

/** Download one file unless it is already complete; returns bytes transferred (0 when skipped). */
async function downloadFile(
  ctx: Ctx,
  outDir: string,
  file: HubFile,
  index: number,
  count: number,
  opts: { retries: number; retryDelayMs: number; onEvent: (e: FetchEvent) => void },
): Promise<{ bytes: number; skipped: boolean }> {
  const final = path.join(outDir, ...file.path.split('/'));
  const part = `${final}.part`;
  await mkdir(path.dirname(final), { recursive: true });

  const existing = await sizeOf(final);
  if (existing !== null) {
    const complete = file.size === undefined ? existing > 0 : existing === file.size;
    if (complete) {
      opts.onEvent({ kind: 'file-done', file, skipped: true, bytes: existing });
      return { bytes: 0, skipped: true };
    }
    await rm(final, { force: true }); // a stale or foreign copy; fetch it again
  }

  let transferred = 0;
  for (let attempt = 0; ; attempt++) {
    let have = (await sizeOf(part)) ?? 0;
    if (file.size !== undefined && have > file.size) {
      await rm(part, { force: true });
      have = 0;
    }
    if (attempt === 0) opts.onEvent({ kind: 'file-start', file, index, count, resumeFrom: have });
    if (file.size !== undefined && have === file.size && have > 0) break; // finished earlier, not yet renamed
    try {
      transferred += await transfer(ctx, file, part, have, opts.onEvent);
      break;
    } catch (e) {
      if (!(e instanceof RetryableError) || attempt >= opts.retries) {
        if (e instanceof RetryableError) {
          throw new FetchModelError(`${e.message} (gave up after ${attempt + 1} attempts; run the command again to resume)`);
        }
        throw e;
      }
      opts.onEvent({ kind: 'retry', file, attempt: attempt + 1, reason: e.message });
      await sleep(opts.retryDelayMs * 2 ** attempt);
    }
  }

  const got = (await sizeOf(part)) ?? 0;
  if (file.size !== undefined && got !== file.size) {
    throw new FetchModelError(
      `incomplete download of ${file.path}: got ${got} of ${file.size} bytes (run the command again to resume)`,
    );
  }
  await rename(part, final);
  opts.onEvent({ kind: 'file-done', file, skipped: false, bytes: got });
  return { bytes: transferred, skipped: false };
}

async function hashFile(file: string, algorithm: 'sha256' | 'sha1', prefix?: string): Promise<string> {
  const h = createHash(algorithm);
  if (prefix) h.update(prefix);
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * Final check of a model folder against the listing: presence, non-empty, size, checksum, and a
 * parseable model_index.json. A file with a wrong checksum is deleted so that a re-run fetches it again.
 */
export async function verifyModelFolder(
  outDir: string,
  files: HubFile[],
  onEvent: (e: FetchEvent) => void = () => {},
): Promise<string[]> {
  const problems: string[] = [];
  for (const f of files) {
    const p = path.join(outDir, ...f.path.split('/'));
    const size = await sizeOf(p);
    if (size === null) {
      problems.push(`${f.path} is missing`);
      continue;
    }
    if (size === 0 && f.size !== 0) {
      problems.push(`${f.path} is empty`);
      continue;
    }
    if (f.size !== undefined && size !== f.size) {
      problems.push(`${f.path} has ${size} bytes, the Hub lists ${f.size}`);
      continue;
    }
    let actual: string | undefined;
    let expected: string | undefined;
    if (f.sha256) {
      onEvent({ kind: 'verifying', file: f });
      actual = await hashFile(p, 'sha256');
      expected = f.sha256;
    } else if (f.blobId) {
      actual = await hashFile(p, 'sha1', `blob ${size}\0`);
      expected = f.blobId;
    }
    if (expected && actual !== expected) {
      await rm(p, { force: true });
      problems.push(
        `${f.path} is corrupted: ${f.sha256 ? 'sha256' : 'git blob sha1'} ${actual} does not match the listed ${expected} (deleted; run the command again to download it afresh)`,
      );
    }
  }
  for (const req of REQUIRED_FILES) {
    if (!files.some((f) => f.path === req)) problems.push(`${req} is not part of this model`);
  }
  const index = path.join(outDir, 'model_index.json');
  if ((await sizeOf(index)) !== null) {
    try {
      const parsed: unknown = JSON.parse(await readFile(index, 'utf8'));
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object');
    } catch (e) {
      problems.push(`model_index.json does not parse: ${(e as Error).message}`);
    }
  }
  return problems;
}

/** List, select, download (resuming) and check an SD 1.x ONNX export. */
export async function fetchModel(options: FetchModelOptions = {}): Promise<FetchModelResult> {
  const repo = options.repo ?? DEFAULT_REPO;
  const revision = options.revision ?? DEFAULT_REVISION;
  const endpoint = trimEndpoint(options.endpoint ?? DEFAULT_ENDPOINT);
  if (!REPO_RE.test(repo)) {
    throw new FetchModelError(`--repo must look like "owner/name" (e.g. ${DEFAULT_REPO}), got "${repo}"`);
  }
  if (!revision || /[\s]/.test(revision)) throw new FetchModelError(`--revision must be a branch, tag or commit, got "${revision}"`);
  if (!/^https?:\/\/[^/]+/.test(endpoint)) {
    throw new FetchModelError(`--endpoint must be an http(s) URL such as ${DEFAULT_ENDPOINT}, got "${endpoint}"`);
  }
  const outDir = path.resolve(options.outDir ?? defaultOutDir(repo));
  const onEvent = options.onEvent ?? (() => {});
  const ctx: Ctx = { repo, revision, endpoint, token: options.token || undefined, signal: options.signal };

  const listed = await listRepoFiles(ctx);
  const files = selectOnnxFiles(listed);
  const missing = REQUIRED_FILES.filter((r) => !files.some((f) => f.path === r));
  if (missing.length > 0) {
    throw new FetchModelError(
      `${repo} (revision "${revision}") is not a Stable Diffusion ONNX export in the diffusers layout: it lacks ${missing.join(', ')}` +
        (revision === 'main' ? '; ONNX exports often live on the "onnx" branch (--revision onnx)' : ''),
    );
  }
  const totalBytes = files.reduce((s, f) => s + (f.size ?? 0), 0);
  onEvent({ kind: 'listed', repo, revision, files, totalBytes });

  await mkdir(outDir, { recursive: true });
  let downloadedBytes = 0;
  let skipped = 0;
  const dl = { retries: options.retries ?? 3, retryDelayMs: options.retryDelayMs ?? 1000, onEvent };
  for (let i = 0; i < files.length; i++) {
    const r = await downloadFile(ctx, outDir, files[i]!, i, files.length, dl);
    downloadedBytes += r.bytes;
    if (r.skipped) skipped++;
  }
  const problems = await verifyModelFolder(outDir, files, onEvent);
  return { outDir, files, downloadedBytes, skipped, totalBytes, problems };
}

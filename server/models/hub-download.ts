/**
 * Downloading an export from the Hub (see hub.ts for the API): resumable transfers into `.part` files,
 * retried with backoff, renamed into place when complete, then a check of the whole folder (sizes,
 * LFS sha256 / git blob sha1, model_index.json).
 */
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import {
  authHeaders,
  DEFAULT_ENDPOINT,
  defaultOutDir,
  FetchModelError,
  hubFetch,
  hubHttpError,
  networkReason,
  REPO_RE,
  trimEndpoint,
  listRepoFiles,
  resolveUrl,
  SD_EXPORT,
  type Ctx,
  type ExportKind,
  type FetchEvent,
  type FetchModelOptions,
  type FetchModelResult,
  type HubFile,
} from './hub.ts';
import { hashFile } from '../util/file-hash.mjs';

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
    throw new FetchModelError(`incomplete download of ${file.path}: got ${got} of ${file.size} bytes (run the command again to resume)`);
  }
  await rename(part, final);
  opts.onEvent({ kind: 'file-done', file, skipped: false, bytes: got });
  return { bytes: transferred, skipped: false };
}

/**
 * Final check of a model folder against the listing: presence, non-empty, size, checksum, and a
 * parseable model_index.json. A file with a wrong checksum is deleted so that a re-run fetches it again.
 */
export async function verifyModelFolder(
  outDir: string,
  files: HubFile[],
  onEvent: (e: FetchEvent) => void = () => {},
  kind: ExportKind = SD_EXPORT,
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
      actual = await hashFile(p);
      expected = f.sha256;
    } else if (f.blobId) {
      actual = await hashFile(p, { algorithm: 'sha1', prefix: `blob ${size}\0` });
      expected = f.blobId;
    }
    if (expected && actual !== expected) {
      await rm(p, { force: true });
      problems.push(
        `${f.path} is corrupted: ${f.sha256 ? 'sha256' : 'git blob sha1'} ${actual} does not match the listed ${expected} (deleted; run the command again to download it afresh)`,
      );
    }
  }
  for (const req of kind.missing(files)) problems.push(`${req} is not part of this model`);
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

/** List, select, download (resuming) and check an export (an SD 1.x ONNX export unless `kind` says otherwise). */
export async function fetchModel(options: FetchModelOptions = {}): Promise<FetchModelResult> {
  const kind = options.kind ?? SD_EXPORT;
  const repo = options.repo ?? kind.defaultRepo;
  const revision = options.revision ?? kind.defaultRevision;
  const endpoint = trimEndpoint(options.endpoint ?? DEFAULT_ENDPOINT);
  if (!REPO_RE.test(repo)) {
    throw new FetchModelError(`--repo must look like "owner/name" (e.g. ${kind.defaultRepo}), got "${repo}"`);
  }
  if (!revision || /[\s]/.test(revision)) throw new FetchModelError(`--revision must be a branch, tag or commit, got "${revision}"`);
  if (!/^https?:\/\/[^/]+/.test(endpoint)) {
    throw new FetchModelError(`--endpoint must be an http(s) URL such as ${DEFAULT_ENDPOINT}, got "${endpoint}"`);
  }
  const outDir = path.resolve(options.outDir ?? defaultOutDir(repo));
  const onEvent = options.onEvent ?? (() => {});
  const ctx: Ctx = { repo, revision, endpoint, token: options.token || undefined, signal: options.signal };

  const listed = await listRepoFiles(ctx);
  const files = kind.select(listed);
  const missing = kind.missing(files);
  if (missing.length > 0) {
    throw new FetchModelError(
      `${repo} (revision "${revision}") is not ${kind.what}: it lacks ${missing.join(', ')}` +
        (kind === SD_EXPORT && revision === 'main'
          ? '; ONNX exports often live on the "onnx" branch (--revision onnx), and a repository in the PyTorch layout is fetched with --kind pytorch'
          : ''),
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
  const problems = await verifyModelFolder(outDir, files, onEvent, kind);
  return { outDir, files, downloadedBytes, skipped, totalBytes, problems };
}

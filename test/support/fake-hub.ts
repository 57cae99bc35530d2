/**
 * An imitation of the Hugging Face Hub for fetch-model's tests: the model-info API with blob ids and LFS
 * checksums, resolve URLs with a CDN redirect, Range requests, a private repository behind a token, and
 * injected faults (a corrupted file, a connection dropped once).
 */
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export const REPO = 'acme/tiny-sd-onnx';
export const REVISION = 'onnx';
export const TOKEN = 'hf_test_token_123';
export const PRIVATE_REPO = 'acme/private-sd';
export const REDIRECTED = 'unet/weights.pb';

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
export const gitBlobId = (b: Buffer): string => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');

/** The fake repository: path → content, and whether the Hub would store it in LFS. */
export function makeRepo(): Map<string, { data: Buffer; lfs: boolean }> {
  const files = new Map<string, { data: Buffer; lfs: boolean }>();
  const text = (p: string, s: string): void => void files.set(p, { data: Buffer.from(s), lfs: false });
  const blob = (p: string, n: number): void => void files.set(p, { data: randomBytes(n), lfs: true });
  text('model_index.json', JSON.stringify({ _class_name: 'OnnxStableDiffusionPipeline', unet: ['diffusers', 'OnnxRuntimeModel'] }));
  text('scheduler/scheduler_config.json', JSON.stringify({ _class_name: 'PNDMScheduler', num_train_timesteps: 1000 }));
  text('tokenizer/vocab.json', JSON.stringify({ '<|startoftext|>': 0, '<|endoftext|>': 1 }));
  text('tokenizer/merges.txt', '#version: 0.2\n');
  text('tokenizer/tokenizer_config.json', '{}');
  blob('text_encoder/model.onnx', 4096);
  blob('unet/model.onnx', 3000);
  blob(REDIRECTED, 9001);
  blob('vae_encoder/model.onnx', 2048);
  blob('vae_decoder/model.onnx', 2500);
  // Present in real exports, not needed by the studio: must not be downloaded.
  blob('safety_checker/model.onnx', 5000);
  text('feature_extractor/preprocessor_config.json', '{}');
  text('README.md', '# model card');
  blob('v1-variants-scores.jpg', 1000);
  blob('unet/diffusion_pytorch_model.bin', 1000);
  return files;
}

export interface Seen {
  method: string;
  url: string;
  range?: string;
  auth?: string;
}

export interface HubOptions {
  /** Serve this file with one byte flipped (the listing keeps the true checksum). */
  corrupt?: string;
  /** Cut the connection halfway through this file, once. */
  dropOnce?: string;
}

export class FakeHub {
  readonly files = makeRepo();
  readonly seen: Seen[] = [];
  opts: HubOptions = {};
  private dropped = new Set<string>();
  private server = http.createServer((req, res) => this.handle(req, res));
  endpoint = '';

  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.endpoint = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
  reset(opts: HubOptions = {}): void {
    this.seen.length = 0;
    this.opts = opts;
    this.dropped.clear();
  }
  downloadsOf(file: string): Seen[] {
    return this.seen.filter((s) => s.url.endsWith(`/resolve/${REVISION}/${file}`) || s.url === `/cdn/${sha256(this.files.get(file)!.data)}`);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    this.seen.push({ method: req.method ?? '', url: url.pathname, range: req.headers.range, auth: req.headers.authorization });
    const fail = (status: number, code: string, error: string): void => {
      res.writeHead(status, { 'content-type': 'application/json', 'x-error-code': code });
      res.end(JSON.stringify({ error }));
    };
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(url.pathname);
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const cdn = /^\/cdn\/([0-9a-f]{64})$/.exec(url.pathname);
    const checkRepo = (repo: string, rev: string): boolean => {
      if (repo === PRIVATE_REPO && req.headers.authorization !== `Bearer ${TOKEN}`) {
        fail(401, 'RepoNotFound', 'Invalid username or password.');
        return false;
      }
      if (repo !== REPO && repo !== PRIVATE_REPO) {
        fail(404, 'RepoNotFound', 'Repository not found');
        return false;
      }
      if (decodeURIComponent(rev) !== REVISION) {
        fail(404, 'RevisionNotFound', `Invalid rev id: ${decodeURIComponent(rev)}`);
        return false;
      }
      return true;
    };
    if (api) {
      if (!checkRepo(api[1]!, api[2]!)) return;
      const blobs = url.searchParams.get('blobs') === 'true';
      const siblings = [...this.files].map(([p, f]) => ({
        rfilename: p,
        ...(blobs ? { size: f.data.length, blobId: gitBlobId(f.lfs ? Buffer.from(`lfs pointer ${p}`) : f.data) } : {}),
        ...(blobs && f.lfs ? { lfs: { sha256: sha256(f.data), size: f.data.length, pointerSize: 134 } } : {}),
      }));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: api[1], sha: 'abc123', siblings }));
      return;
    }
    if (resolve) {
      if (!checkRepo(resolve[1]!, resolve[2]!)) return;
      const file = decodeURIComponent(resolve[3]!);
      const f = this.files.get(file);
      if (!f) return fail(404, 'EntryNotFound', `${file} does not exist on "${REVISION}"`);
      if (file === REDIRECTED) {
        res.writeHead(302, { location: `/cdn/${sha256(f.data)}` });
        res.end();
        return;
      }
      return this.serve(file, f.data, req, res);
    }
    if (cdn) {
      const entry = [...this.files].find(([, f]) => sha256(f.data) === cdn[1]);
      if (!entry) return fail(404, 'EntryNotFound', 'no such blob');
      return this.serve(entry[0], entry[1].data, req, res);
    }
    fail(404, 'NotFound', 'not found');
  }

  private serve(file: string, original: Buffer, req: http.IncomingMessage, res: http.ServerResponse): void {
    let data = original;
    if (this.opts.corrupt === file) {
      data = Buffer.from(original);
      data[data.length >> 1] ^= 0xff;
    }
    let start = 0;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (m) {
      start = Number(m[1]);
      if (start >= data.length) {
        res.writeHead(416, { 'content-range': `bytes */${data.length}` });
        res.end();
        return;
      }
      res.writeHead(206, {
        'content-length': data.length - start,
        'content-range': `bytes ${start}-${data.length - 1}/${data.length}`,
        'accept-ranges': 'bytes',
      });
    } else {
      res.writeHead(200, { 'content-length': data.length, 'accept-ranges': 'bytes' });
    }
    const body = data.subarray(start);
    if (this.opts.dropOnce === file && !this.dropped.has(file)) {
      this.dropped.add(file);
      res.write(body.subarray(0, body.length >> 1), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    res.end(body);
  }
}

/**
 * fetch-model against a local server that imitates the Hugging Face Hub: the model API listing (with
 * sizes, LFS sha256 and git blob ids), `resolve` downloads with Range support, and one file behind a
 * 302 redirect like the Hub's CDN.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createFetchProgress } from '../server/cli/fetch-progress.ts';
import { type FetchEvent, selectOnnxFiles } from '../server/models/hub.ts';
import { fetchModel } from '../server/models/hub-download.ts';
import { REPO, REVISION, TOKEN, PRIVATE_REPO, REDIRECTED, sha256, FakeHub } from './support/fake-hub.ts';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const hub = new FakeHub();
let tmp: string;
const NEEDED = [
  'model_index.json',
  'scheduler/scheduler_config.json',
  'text_encoder/model.onnx',
  'tokenizer/merges.txt',
  'tokenizer/tokenizer_config.json',
  'tokenizer/vocab.json',
  'unet/model.onnx',
  'unet/weights.pb',
  'vae_decoder/model.onnx',
  'vae_encoder/model.onnx',
];

async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(path.relative(dir, path.join(e.parentPath, e.name)).split(path.sep).join('/'));
  }
  return out.sort();
}

beforeAll(async () => {
  await hub.start();
  tmp = await mkdtemp(path.join(os.tmpdir(), 'fetch-model-'));
});
afterAll(async () => {
  await hub.stop();
  await rm(tmp, { recursive: true, force: true });
});
beforeEach(() => hub.reset());

const outDir = (name: string): string => path.join(tmp, name);
const base = (name: string) => ({ repo: REPO, revision: REVISION, endpoint: hub.endpoint, outDir: outDir(name), retryDelayMs: 5 });

describe('fetch-model against an imitation of the Hub', () => {
  it('selects only the diffusers ONNX layout', () => {
    const picked = selectOnnxFiles([...hub.files.keys()].map((p) => ({ path: p }))).map((f) => f.path);
    expect(picked.sort()).toEqual(NEEDED);
  });

  it('downloads, follows the CDN redirect, verifies, and skips complete files on a re-run', async () => {
    const events: FetchEvent[] = [];
    const r = await fetchModel({ ...base('full'), onEvent: (e) => events.push(e) });
    expect(r.problems).toEqual([]);
    expect(await listTree(r.outDir)).toEqual(NEEDED);
    for (const f of NEEDED) expect(sha256(await readFile(path.join(r.outDir, f)))).toBe(sha256(hub.files.get(f)!.data));
    const expectedBytes = NEEDED.reduce((s, f) => s + hub.files.get(f)!.data.length, 0);
    expect(r.totalBytes).toBe(expectedBytes);
    expect(r.downloadedBytes).toBe(expectedBytes);
    // Nothing outside the layout was requested; the redirected file went through the CDN path.
    const requested = hub.seen.filter((s) => s.url.includes('/resolve/')).map((s) => s.url);
    expect(requested.some((u) => /safety_checker|feature_extractor|README|\.jpg|\.bin/.test(u))).toBe(false);
    expect(hub.seen.some((s) => s.url.startsWith('/cdn/'))).toBe(true);
    expect(hub.seen.every((s) => s.auth === undefined)).toBe(true);
    expect(events.filter((e) => e.kind === 'file-done')).toHaveLength(NEEDED.length);
    expect(events.some((e) => e.kind === 'verifying' && e.file.path === REDIRECTED)).toBe(true);

    hub.reset();
    const again = await fetchModel(base('full'));
    expect(again.problems).toEqual([]);
    expect(again.skipped).toBe(NEEDED.length);
    expect(again.downloadedBytes).toBe(0);
    expect(hub.seen.filter((s) => !s.url.startsWith('/api/'))).toEqual([]);
  });

  it('resumes an interrupted download with a Range request (through the redirect)', async () => {
    const dir = outDir('resume');
    const data = hub.files.get(REDIRECTED)!.data;
    const half = data.length >> 1;
    await mkdir(path.join(dir, 'unet'), { recursive: true });
    await writeFile(path.join(dir, `${REDIRECTED}.part`), data.subarray(0, half));
    const small = hub.files.get('vae_encoder/model.onnx')!.data;
    await mkdir(path.join(dir, 'vae_encoder'), { recursive: true });
    await writeFile(path.join(dir, 'vae_encoder/model.onnx.part'), small.subarray(0, 100));

    const starts: Array<{ path: string; from: number }> = [];
    const r = await fetchModel({
      ...base('resume'),
      onEvent: (e) => e.kind === 'file-start' && starts.push({ path: e.file.path, from: e.resumeFrom }),
    });
    expect(r.problems).toEqual([]);
    const seen = hub.downloadsOf(REDIRECTED);
    expect(seen.map((s) => s.range)).toEqual([`bytes=${half}-`, `bytes=${half}-`]); // resolve, then CDN
    expect(hub.downloadsOf('vae_encoder/model.onnx').map((s) => s.range)).toEqual(['bytes=100-']);
    expect(starts).toContainEqual({ path: REDIRECTED, from: half });
    expect(sha256(await readFile(path.join(dir, REDIRECTED)))).toBe(sha256(data));
    expect(r.downloadedBytes).toBe(r.totalBytes - half - 100);
    expect((await listTree(dir)).some((f) => f.endsWith('.part'))).toBe(false);
  });

  it('retries a dropped connection and resumes where it stopped', async () => {
    hub.reset({ dropOnce: 'text_encoder/model.onnx' });
    const retries: string[] = [];
    const r = await fetchModel({ ...base('drop'), onEvent: (e) => e.kind === 'retry' && retries.push(e.reason) });
    expect(r.problems).toEqual([]);
    expect(retries).toHaveLength(1);
    const ranges = hub.downloadsOf('text_encoder/model.onnx').map((s) => s.range);
    expect(ranges[0]).toBeUndefined();
    expect(ranges[1]).toMatch(/^bytes=\d+-$/);
    expect(Number(/\d+/.exec(ranges[1]!)![0])).toBeGreaterThan(0);
    expect(sha256(await readFile(path.join(r.outDir, 'text_encoder/model.onnx')))).toBe(sha256(hub.files.get('text_encoder/model.onnx')!.data));
  });

  it('reports a corrupted file (sha256 mismatch) and removes it so a re-run fetches it again', async () => {
    hub.reset({ corrupt: 'vae_decoder/model.onnx' });
    const r = await fetchModel(base('corrupt'));
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatch(/vae_decoder\/model\.onnx is corrupted: sha256 [0-9a-f]{64} does not match/);
    expect(existsSync(path.join(r.outDir, 'vae_decoder/model.onnx'))).toBe(false);

    hub.reset();
    const fixed = await fetchModel(base('corrupt'));
    expect(fixed.problems).toEqual([]);
    expect(fixed.skipped).toBe(NEEDED.length - 1);
  });

  it('checks small non-LFS files by their git blob id', async () => {
    hub.reset({ corrupt: 'tokenizer/vocab.json' });
    const r = await fetchModel(base('blob'));
    expect(r.problems.join('\n')).toMatch(/tokenizer\/vocab\.json is corrupted: git blob sha1/);
  });

  it('names a missing repository and a missing revision', async () => {
    await expect(fetchModel({ ...base('x'), repo: 'acme/nope' })).rejects.toThrow(/repository acme\/nope not found on http:\/\/127\.0\.0\.1:\d+/);
    await expect(fetchModel({ ...base('x'), revision: 'main' })).rejects.toThrow(/revision "main" not found in acme\/tiny-sd-onnx/);
    expect(existsSync(outDir('x'))).toBe(false);
  });

  it('asks for a token on 401 and sends it as a Bearer header', async () => {
    const err = await fetchModel({ ...base('private'), repo: PRIVATE_REPO }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/401/);
    expect((err as Error).message).toMatch(/--token/);
    expect((err as Error).message).toMatch(/HF_TOKEN/);
    await expect(fetchModel({ ...base('private'), repo: PRIVATE_REPO, token: 'hf_wrong' })).rejects.toThrow(/token was rejected/);
    hub.reset();
    const r = await fetchModel({ ...base('private'), repo: PRIVATE_REPO, token: TOKEN });
    expect(r.problems).toEqual([]);
    // The token goes to the Hub; the CDN redirect target is followed too (same origin here).
    expect(hub.seen.filter((s) => !s.url.startsWith('/cdn/')).every((s) => s.auth === `Bearer ${TOKEN}`)).toBe(true);
  });

  it('says when the Hub cannot be reached', async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    await expect(fetchModel({ ...base('offline'), endpoint: `http://127.0.0.1:${port}` })).rejects.toThrow(
      new RegExp(`cannot reach http://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED.*\\(this machine may be offline\\)`),
    );
  });

  it('refuses a repository that is not an SD ONNX export', async () => {
    const onnx = hub.files.get('unet/model.onnx')!;
    hub.files.delete('unet/model.onnx');
    try {
      await expect(fetchModel(base('not-onnx'))).rejects.toThrow(/not a Stable Diffusion ONNX export .*lacks unet\/model\.onnx/);
    } finally {
      hub.files.set('unet/model.onnx', onnx);
    }
  });

  it('renders progress as plain lines off a terminal and as a redrawn bar on one', async () => {
    const plain: string[] = [];
    const p1 = createFetchProgress({ write: (s: string) => plain.push(s) });
    await fetchModel({ ...base('progress'), onEvent: (e) => p1.onEvent(e) });
    p1.finish();
    const text = plain.join('');
    expect(text).toMatch(/fetch-model: acme\/tiny-sd-onnx@onnx: 10 files, \d+\.\d KB/);
    expect(text).toMatch(/\[\d+\/10\] unet\/weights\.pb \(8\.8 KB\)/);
    expect(text).not.toContain('\r');

    const tty: string[] = [];
    const p2 = createFetchProgress({ write: (s: string) => tty.push(s), isTTY: true, columns: 120 });
    await fetchModel({ ...base('progress-tty'), onEvent: (e) => p2.onEvent(e) });
    p2.finish();
    const drawn = tty.join('');
    expect(drawn).toContain('\r\x1b[2K');
    expect(drawn).toMatch(/\[\d+\/10\] \S+ .*\| total .*\/s \| ETA/);
  });

  it('runs as a command and prints how to start the studio', async () => {
    const out = outDir('cli');
    const tsx = path.join(projectRoot, 'node_modules/.bin/tsx');
    const run = (args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(tsx, ['server/cli/fetch-model.ts', ...args], { cwd: projectRoot, env: { ...process.env, HF_TOKEN: '' } }, (err, stdout, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      });
    const ok = await run(['--repo', REPO, '--revision', REVISION, '--endpoint', hub.endpoint, '--out', out]);
    expect(ok.stderr).toMatch(/unet\/weights\.pb: done/);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(`Model ready: ${out}`);
    expect(ok.stdout).toMatch(/set Load Model → model to "\S+"/);
    const bad = await run(['--repo', PRIVATE_REPO, '--revision', REVISION, '--endpoint', hub.endpoint, '--out', out]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/fetch-model: .*401 .*--token/);
    const usage = await run(['--bogus']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/Usage: npm run fetch-model/);
  });
});

describe('fetch-model --kind clip', () => {
  const clipFixture = path.resolve(projectRoot, '../shared/fixtures/metrics/clip');
  const tokenizer = path.resolve(projectRoot, '../shared/fixtures/tiny-sd/tokenizer');
  let sdFiles: Map<string, { data: Buffer; lfs: boolean }>;

  /** The fake repository becomes a split CLIP export like the Hub's (models in onnx/, variants, configs at the root). */
  async function serveClipRepo(real: boolean): Promise<void> {
    sdFiles = new Map(hub.files);
    hub.files.clear();
    const put = (p: string, data: Buffer, lfs = true) => void hub.files.set(p, { data, lfs });
    put('onnx/text_model.onnx', real ? await readFile(path.join(clipFixture, 'text_model.onnx')) : randomBytes(3000));
    put('onnx/vision_model.onnx', real ? await readFile(path.join(clipFixture, 'vision_model.onnx')) : randomBytes(2000));
    put('onnx/text_model_quantized.onnx', randomBytes(500));
    put('onnx/vision_model_fp16.onnx', randomBytes(500));
    put('onnx/model.onnx', randomBytes(500));
    put('vocab.json', real ? await readFile(path.join(tokenizer, 'vocab.json')) : Buffer.from('{}'), false);
    put('merges.txt', real ? await readFile(path.join(tokenizer, 'merges.txt')) : Buffer.from('#version: 0.2\n'), false);
    put('tokenizer_config.json', Buffer.from('{}'), false);
    put(
      'preprocessor_config.json',
      Buffer.from(
        JSON.stringify({
          crop_size: { height: 224, width: 224 },
          size: { shortest_edge: 224 },
          resample: 3,
          do_resize: true,
          do_center_crop: true,
          do_normalize: true,
        }),
      ),
      false,
    );
    put('config.json', Buffer.from('{}'), false);
    put('pytorch_model.bin', randomBytes(800));
    put('README.md', Buffer.from('# clip'), false);
  }
  afterAll(() => {
    hub.files.clear();
    for (const [k, v] of sdFiles) hub.files.set(k, v);
  });

  it('selects the fp32 text and vision models, the tokenizer and the preprocessor config', async () => {
    await serveClipRepo(false);
    const { CLIP_EXPORT, selectClipFiles } = await import('../server/models/hub.ts');
    expect(
      selectClipFiles([...hub.files.keys()].map((p) => ({ path: p })))
        .map((f) => f.path)
        .sort(),
    ).toEqual([
      'config.json',
      'merges.txt',
      'onnx/text_model.onnx',
      'onnx/vision_model.onnx',
      'preprocessor_config.json',
      'tokenizer_config.json',
      'vocab.json',
    ]);
    expect(CLIP_EXPORT.defaultRepo).toBe('Xenova/clip-vit-base-patch32');
    // An SD fetch of the same repository is refused: it is not a diffusers export.
    await expect(fetchModel(base('clip-as-sd'))).rejects.toThrow(/not a Stable Diffusion ONNX export/);
    const vision = hub.files.get('onnx/vision_model.onnx')!;
    hub.files.delete('onnx/vision_model.onnx');
    await expect(fetchModel({ ...base('clip-missing'), kind: CLIP_EXPORT })).rejects.toThrow(/not a split CLIP ONNX export .*lacks vision_model\.onnx/);
    hub.files.set('onnx/vision_model.onnx', vision);
  });

  it.skipIf(!existsSync(clipFixture) || !existsSync(tokenizer))('downloads a split export that the CLIP loader opens, as a command', async () => {
    await serveClipRepo(true);
    const out = outDir('clip-cli');
    const tsx = path.join(projectRoot, 'node_modules/.bin/tsx');
    const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        tsx,
        ['server/cli/fetch-model.ts', '--kind', 'clip', '--repo', REPO, '--revision', REVISION, '--endpoint', hub.endpoint, '--out', out],
        { cwd: projectRoot, env: { ...process.env, HF_TOKEN: '' } },
        (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`CLIP ready: ${out}`);
    expect(r.stdout).toMatch(/npm run eval -- --clip/);
    expect(await listTree(out)).toEqual([
      'config.json',
      'merges.txt',
      'onnx/text_model.onnx',
      'onnx/vision_model.onnx',
      'preprocessor_config.json',
      'tokenizer_config.json',
      'vocab.json',
    ]);
    const requested = hub.seen.filter((s) => s.url.includes('/resolve/')).map((s) => s.url);
    expect(requested.some((u) => /quantized|fp16|pytorch_model|README|onnx\/model\.onnx/.test(u))).toBe(false);
    // The fetched folder is what the metrics load: the same embeddings as the fixture's folder.
    const { ClipModel } = await import('../server/engine/evaluation-models/clip-model.ts');
    const [fetched, original] = await Promise.all([ClipModel.load(out, 'cpu'), ClipModel.load(clipFixture, 'cpu')]);
    try {
      expect(Array.from(await fetched.textEmbedding('a photo of a cat'))).toEqual(Array.from(await original.textEmbedding('a photo of a cat')));
    } finally {
      await Promise.all([fetched.release(), original.release()]);
    }
    const bad = await new Promise<number>((resolve) =>
      execFile(tsx, ['server/cli/fetch-model.ts', '--kind', 'vae'], { cwd: projectRoot }, (err) => resolve(err ? ((err as { code?: number }).code ?? 1) : 0)),
    );
    expect(bad).toBe(2);
  });
});

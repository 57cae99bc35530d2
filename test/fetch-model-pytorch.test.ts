/**
 * fetch-model for repositories in the diffusers PyTorch layout (--kind pytorch, --fp16) and single files
 * (--file NAME), against the imitation of the Hub (support/fake-hub.ts) serving a repository laid out like
 * the main branch of an SD 1.x repository: only model_index.json, the scheduler and tokenizer configs and,
 * per component, config.json plus one safetensors file (the fp16 variant on request) are fetched, with the
 * same resume and checksums as ONNX exports; the folder fetched from the tiny-sd-diffusers fixture converts.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ensureConverted } from '../server/models/convert/index.ts';
import { pytorchExport, selectPytorchFiles, singleFileExport } from '../server/models/hub.ts';
import { fetchModel } from '../server/models/hub-download.ts';
import { FakeHub, REPO, REVISION, sha256 } from './support/fake-hub.ts';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fixture = path.resolve(projectRoot, '../shared/fixtures/tiny-sd-diffusers');
const hasFixture = existsSync(path.join(fixture, 'model_index.json'));
if (!hasFixture) console.warn(`fetch-model-pytorch: fixture ${fixture} not found; the conversion of a fetched folder is skipped`);

const hub = new FakeHub();
let tmp: string;

/** The fixture's files (or random stand-ins), plus what real repositories also hold and must not be fetched. */
async function servePytorchRepo(): Promise<void> {
  hub.files.clear();
  const put = (p: string, data: Buffer, lfs = true) => void hub.files.set(p, { data, lfs });
  const real = async (rel: string, size: number) => (hasFixture ? await readFile(path.join(fixture, rel)) : randomBytes(size));
  put('model_index.json', await real('model_index.json', 200), false);
  put('scheduler/scheduler_config.json', await real('scheduler/scheduler_config.json', 100), false);
  for (const f of ['vocab.json', 'merges.txt', 'special_tokens_map.json', 'tokenizer_config.json'])
    if (!hasFixture || existsSync(path.join(fixture, 'tokenizer', f))) put(`tokenizer/${f}`, await real(`tokenizer/${f}`, 300), false);
  for (const [dir, stem] of [
    ['unet', 'diffusion_pytorch_model'],
    ['vae', 'diffusion_pytorch_model'],
    ['text_encoder', 'model'],
  ] as const) {
    put(`${dir}/config.json`, await real(`${dir}/config.json`, 150), false);
    put(`${dir}/${stem}.safetensors`, await real(`${dir}/${stem}.safetensors`, 3000));
    put(`${dir}/${stem}.fp16.safetensors`, randomBytes(1500));
    put(`${dir}/${stem === 'model' ? 'pytorch_model' : stem}.bin`, randomBytes(3000));
  }
  put('safety_checker/model.safetensors', randomBytes(2000));
  put('safety_checker/config.json', Buffer.from('{}'), false);
  put('feature_extractor/preprocessor_config.json', Buffer.from('{}'), false);
  put('v1-5-pruned-emaonly.safetensors', randomBytes(5000));
  put('v1-5-pruned.ckpt', randomBytes(5000));
  put('README.md', Buffer.from('# model card'), false);
}

const WEIGHTS = (variant: string) => [
  `text_encoder/model${variant}.safetensors`,
  `unet/diffusion_pytorch_model${variant}.safetensors`,
  `vae/diffusion_pytorch_model${variant}.safetensors`,
];

async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true }))
    if (e.isFile()) out.push(path.relative(dir, path.join(e.parentPath, e.name)).split(path.sep).join('/'));
  return out.sort();
}

beforeAll(async () => {
  await hub.start();
  await servePytorchRepo();
  tmp = await mkdtemp(path.join(os.tmpdir(), 'fetch-pytorch-'));
});
afterAll(async () => {
  await hub.stop();
  await rm(tmp, { recursive: true, force: true });
});
beforeEach(() => hub.reset());

const base = (name: string) => ({ repo: REPO, revision: REVISION, endpoint: hub.endpoint, outDir: path.join(tmp, name), retryDelayMs: 5 });

describe('fetch-model --kind pytorch', () => {
  it('selects model_index, configs, tokenizer and one safetensors per component: full by default, fp16 on request', () => {
    const listed = [...hub.files.keys()].map((p) => ({ path: p }));
    const configs = ['model_index.json', 'scheduler/scheduler_config.json', 'text_encoder/config.json', 'unet/config.json', 'vae/config.json'];
    const tokenizer = [...hub.files.keys()].filter((p) => p.startsWith('tokenizer/'));
    const picked = (fp16: boolean) =>
      selectPytorchFiles(listed, fp16)
        .map((f) => f.path)
        .sort();
    expect(picked(false)).toEqual([...configs, ...tokenizer, ...WEIGHTS('')].sort());
    expect(picked(true)).toEqual([...configs, ...tokenizer, ...WEIGHTS('.fp16')].sort());
    // fp16 asked for where a component has only the full file: the full one.
    const noHalfUnet = listed.filter((f) => f.path !== 'unet/diffusion_pytorch_model.fp16.safetensors');
    expect(selectPytorchFiles(noHalfUnet, true).map((f) => f.path)).toContain('unet/diffusion_pytorch_model.safetensors');
    // A repository without safetensors weights (pickles only) is named as not fitting.
    const picklesOnly = listed.filter((f) => !f.path.endsWith('.safetensors'));
    expect(pytorchExport().missing(pytorchExport().select(picklesOnly)).sort()).toEqual(WEIGHTS('').sort());
  });

  it('downloads with checksums, resumes a dropped transfer, skips complete files on a re-run; the folder converts', async () => {
    hub.reset({ dropOnce: 'unet/diffusion_pytorch_model.safetensors' });
    const r = await fetchModel({ ...base('sd'), kind: pytorchExport() });
    expect(r.problems).toEqual([]);
    const fetched = await listTree(r.outDir);
    expect(fetched).toEqual(
      selectPytorchFiles([...hub.files.keys()].map((p) => ({ path: p })))
        .map((f) => f.path)
        .sort(),
    );
    for (const f of fetched) expect(sha256(await readFile(path.join(r.outDir, f))), f).toBe(sha256(hub.files.get(f)!.data));
    // The dropped transfer went on from where it stopped.
    expect(hub.downloadsOf('unet/diffusion_pytorch_model.safetensors').some((s) => s.range?.startsWith('bytes='))).toBe(true);
    const requested = hub.seen.filter((s) => s.url.includes('/resolve/')).map((s) => s.url);
    expect(requested.some((u) => /\.bin$|\.ckpt$|fp16|safety_checker|feature_extractor|README|emaonly/.test(u))).toBe(false);
    hub.reset();
    const again = await fetchModel({ ...base('sd'), kind: pytorchExport() });
    expect([again.problems, again.skipped, again.downloadedBytes]).toEqual([[], fetched.length, 0]);
    if (hasFixture) {
      const dir = await ensureConverted(r.outDir, { cacheRoot: path.join(tmp, 'cache') });
      expect(existsSync(path.join(dir, 'unet/model.onnx'))).toBe(true);
    }
  });

  it('fp16 variants on request; a corrupted one is found by its checksum and removed', async () => {
    hub.reset({ corrupt: 'vae/diffusion_pytorch_model.fp16.safetensors' });
    const r = await fetchModel({ ...base('sd-fp16'), kind: pytorchExport(true) });
    expect(r.problems).toEqual([expect.stringMatching(/^vae\/diffusion_pytorch_model\.fp16\.safetensors is corrupted: sha256/)]);
    expect(existsSync(path.join(r.outDir, 'vae/diffusion_pytorch_model.fp16.safetensors'))).toBe(false);
    expect(await listTree(r.outDir)).toEqual(expect.arrayContaining(WEIGHTS('.fp16').filter((w) => !w.startsWith('vae/'))));
  });
});

describe('fetch-model --file', () => {
  it('fetches one file of a repository, resumable and checked; a file the repository lacks is named', async () => {
    const name = 'v1-5-pruned-emaonly.safetensors';
    const out = path.join(tmp, 'files');
    // Half of it already there, as an interrupted run leaves it.
    const data = hub.files.get(name)!.data;
    await rm(out, { recursive: true, force: true });
    await mkdir(out, { recursive: true });
    await writeFile(path.join(out, `${name}.part`), data.subarray(0, 2000));
    const r = await fetchModel({ ...base('files'), outDir: out, kind: singleFileExport(name) });
    expect(r.problems).toEqual([]);
    expect(await listTree(out)).toEqual([name]);
    expect(sha256(await readFile(path.join(out, name)))).toBe(sha256(data));
    expect(hub.downloadsOf(name).map((s) => s.range)).toEqual(['bytes=2000-']);
    await expect(fetchModel({ ...base('files'), outDir: out, kind: singleFileExport('nope.safetensors') })).rejects.toThrow(
      /is not a repository with the file nope\.safetensors: it lacks nope\.safetensors/,
    );
  });

  it('as a command: --file lands in --out and prints how to use it; options that do not fit exit 2', async () => {
    const tsx = path.join(projectRoot, 'node_modules/.bin/tsx');
    const run = (args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
        execFile(tsx, ['server/cli/fetch-model.ts', ...args], { cwd: projectRoot, env: { ...process.env, HF_TOKEN: '' } }, (err, stdout, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        ),
      );
    const out = path.join(tmp, 'cli');
    const r = await run(['--file', 'v1-5-pruned.ckpt', '--repo', REPO, '--revision', REVISION, '--endpoint', hub.endpoint, '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Model ready: .*\n(.*\n)*.*set Load Model → model to ".*v1-5-pruned\.ckpt"/);
    expect(await listTree(out)).toEqual(['v1-5-pruned.ckpt']);
    expect((await run(['--file', 'x.safetensors', '--kind', 'pytorch'])).code).toBe(2);
    expect((await run(['--fp16'])).code).toBe(2);
    expect((await run(['--file', '../escape'])).code).toBe(2);
  });
});

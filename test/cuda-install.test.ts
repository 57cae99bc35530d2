/**
 * npm run install:cuda (scripts/ort-cuda.mjs): the pin of onnxruntime-node and the provider table stay in
 * step, and the install path checks what it installs. The real 179 MB download is run by hand (README);
 * here a provider-shaped tarball is built locally and handed to the same code through its `pack` seam.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  MANIFEST_NAME,
  PROVIDER_TABLE,
  bindingDir,
  checkInstalled,
  installCudaProvider,
  installFromTarball,
  sha512Integrity,
  type ProviderTable,
} from '../scripts/ort-cuda.mjs';

const repo = path.resolve(import.meta.dirname, '..');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'dualstyle-cuda-install-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('pin and provider in step', () => {
  it('package.json pins onnxruntime-node exactly to the ONNX Runtime version the registry provider is built for', () => {
    const pkg = JSON.parse(readFileSync(path.join(repo, 'package.json'), 'utf8'));
    expect(pkg.dependencies['onnxruntime-node']).toBe(PROVIDER_TABLE.onnxruntime); // exact: no ^ or ~
    const lock = JSON.parse(readFileSync(path.join(repo, 'package-lock.json'), 'utf8'));
    expect(lock.packages['node_modules/onnxruntime-node'].version).toBe(PROVIDER_TABLE.onnxruntime);
    expect(lock.packages['node_modules/onnxruntime-common'].version).toBe(PROVIDER_TABLE.onnxruntime);
  });

  it('the installed onnxruntime-node is that version', () => {
    const installed = JSON.parse(readFileSync(path.join(repo, 'node_modules/onnxruntime-node/package.json'), 'utf8'));
    expect(installed.version).toBe(PROVIDER_TABLE.onnxruntime);
  });

  it("the table names the three files onnxruntime-node's own installer would put beside its binding", () => {
    const script = "console.log(JSON.stringify(require('./node_modules/onnxruntime-node/script/install-metadata.js')))";
    const meta = spawnSync(process.execPath, ['-e', script], { cwd: repo, encoding: 'utf8' }).stdout;
    const manifest = JSON.parse(meta).manifests['linux/x64:cuda12'];
    expect(
      Object.keys(manifest)
        .map((f) => path.basename(f))
        .sort(),
    ).toEqual(Object.keys(PROVIDER_TABLE.files).sort());
    for (const sha of Object.values(PROVIDER_TABLE.files)) expect(sha).toMatch(/^[0-9a-f]{64}$/);
    expect(PROVIDER_TABLE.integrity).toMatch(/^sha512-[A-Za-z0-9+/]{86}==$/);
  });
});

/** A tarball in the provider package's layout, and a table describing it. */
function fakeProvider(name: string, contents: Record<string, string>): { tarball: string; table: ProviderTable } {
  const dir = path.join(tmp, name);
  const inner = path.join(dir, 'package', 'Plugins', 'Linux', 'x64');
  mkdirSync(inner, { recursive: true });
  const files: Record<string, string> = {};
  for (const [f, text] of Object.entries(contents)) {
    writeFileSync(path.join(inner, f), text);
    files[f] = createHash('sha256').update(text).digest('hex');
  }
  const tarball = path.join(tmp, `${name}.tgz`);
  const r = spawnSync('tar', ['-czf', tarball, '-C', dir, 'package'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return { tarball, table: { ...PROVIDER_TABLE, files, integrity: '' } };
}

async function withIntegrity(f: { tarball: string; table: ProviderTable }) {
  return { ...f, table: { ...f.table, integrity: await sha512Integrity(f.tarball) } };
}

function fakeOrt(name: string, version: string): string {
  const dir = path.join(tmp, name, 'onnxruntime-node');
  mkdirSync(bindingDir(dir), { recursive: true });
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'onnxruntime-node', version }));
  return dir;
}

const three = { 'libonnxruntime_providers_cuda.so': 'cuda', 'libonnxruntime_providers_shared.so': 'shared', 'libonnxruntime_providers_tensorrt.so': 'trt' };

describe.skipIf(process.platform !== 'linux' || process.arch !== 'x64')('install path', () => {
  it('installs the three files and a manifest after checking integrity and sha256; a second run finds them and downloads nothing', async () => {
    const { tarball, table } = await withIntegrity(fakeProvider('good', three));
    const ortDir = fakeOrt('ort-good', table.onnxruntime);
    let packs = 0;
    const pack = () => {
      packs++;
      return { file: tarball, integrity: table.integrity };
    };
    const lines: string[] = [];
    expect(await installCudaProvider({ ortDir, table, pack, log: (l) => lines.push(l) })).toBe('installed');
    const bin = bindingDir(ortDir);
    for (const [f, text] of Object.entries(three)) expect(readFileSync(path.join(bin, f), 'utf8')).toBe(text);
    const manifest = JSON.parse(readFileSync(path.join(bin, MANIFEST_NAME), 'utf8'));
    expect(manifest).toMatchObject({ package: table.package, version: table.version, onnxruntime: table.onnxruntime, files: table.files });
    expect(lines.join('\n')).toMatch(/integrity .* matches the table/);
    expect(lines.join('\n')).toMatch(/npm run doctor/);
    expect(await installCudaProvider({ ortDir, table, pack, log: () => {} })).toBe('already-installed');
    expect(packs).toBe(1);
    // A file changed in place is noticed, and the next install replaces it.
    writeFileSync(path.join(bin, 'libonnxruntime_providers_cuda.so'), 'other build');
    expect((await checkInstalled(bin, table)).files['libonnxruntime_providers_cuda.so']).toBe('mismatch');
    expect(await installCudaProvider({ ortDir, table, pack, log: () => {} })).toBe('installed');
    expect((await checkInstalled(bin, table)).complete).toBe(true);
  });

  it('refuses a tarball whose integrity or whose files differ from the table, installing nothing', async () => {
    const good = await withIntegrity(fakeProvider('tamper', three));
    const bin = bindingDir(fakeOrt('ort-tamper', good.table.onnxruntime));
    await expect(installFromTarball(good.tarball, bin, { table: { ...good.table, integrity: PROVIDER_TABLE.integrity } })).rejects.toThrow(
      /has integrity sha512-.* the table expects sha512-FopIhNE/,
    );
    const wrongFile = { ...good.table, files: { ...good.table.files, 'libonnxruntime_providers_shared.so': '0'.repeat(64) } };
    await expect(installFromTarball(good.tarball, bin, { table: wrongFile })).rejects.toThrow(
      /libonnxruntime_providers_shared\.so in the tarball has sha256 [0-9a-f]{64}, the table expects 0{64}/,
    );
    expect(readdirSync(bin)).toEqual([]);
    // A tarball without the files (another package) is named as such.
    const other = await withIntegrity(fakeProvider('other', { 'README.md': 'x' }));
    await expect(installFromTarball(other.tarball, bin, { table: { ...other.table, files: good.table.files } })).rejects.toThrow(
      /does not hold the expected files/,
    );
  });

  it('installs from a local tarball (--tarball: machines without registry access) with the same checks, without npm', async () => {
    const { tarball, table } = await withIntegrity(fakeProvider('local', three));
    const ortDir = fakeOrt('ort-local', table.onnxruntime);
    const pack = () => {
      throw new Error('npm must not be called');
    };
    expect(await installCudaProvider({ ortDir, table, pack, tarball, log: () => {} })).toBe('installed');
    expect((await checkInstalled(bindingDir(ortDir), table)).complete).toBe(true);
    const bad = await withIntegrity(fakeProvider('local-bad', { ...three, 'libonnxruntime_providers_cuda.so': 'tampered' }));
    await expect(installCudaProvider({ ortDir, table, pack, tarball: bad.tarball, log: () => {}, force: true })).rejects.toThrow(
      /integrity .* the table expects/,
    );
  });

  it('refuses an onnxruntime-node of another version: a provider only works with its own core', async () => {
    const ortDir = fakeOrt('ort-old', '1.30.0');
    let packed = false;
    const err = await installCudaProvider({ ortDir, pack: () => ((packed = true), { file: '', integrity: '' }), log: () => {} }).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/onnxruntime-node 1\.30\.0 is installed, but the CUDA provider on the registry is built for 1\.29\.0/);
    expect(packed).toBe(false);
    expect(existsSync(path.join(bindingDir(ortDir), MANIFEST_NAME))).toBe(false);
  });
});

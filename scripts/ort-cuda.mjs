#!/usr/bin/env node
/**
 * The CUDA execution provider for onnxruntime-node, from the npm registry.
 *
 * onnxruntime-node ships its CPU (and WebGPU) binaries in the npm package; its own installer fetches the
 * CUDA provider from NuGet, a host that offline mirrors, corporate npm proxies and CI often cannot reach
 * (package.json's allowScripts denies that installer). The same three files of Microsoft's official build are on the
 * npm registry in a repackaged tarball (server/engine/cuda/cuda-provider.json names it, with npm's sha512 integrity
 * of the tarball and the sha256 of each file). This script gets it with npm itself (`npm pack`, so the
 * user's registry, proxy and auth settings apply; no other host), checks both hashes, and copies the three
 * files beside onnxruntime-node's binding, where its core looks for providers.
 *
 *   npm run install:cuda            install (or confirm) the provider; exit 1 with the reason on failure
 *   npm run install:cuda -- --tarball FILE
 *                                   install from a tarball fetched elsewhere with `npm pack <package>@<version>`
 *                                   (machines without registry access); the same integrity and sha256 checks
 *   npm run install:cuda -- --force reinstall even when the installed files match
 *   node scripts/ort-cuda.mjs       postinstall: never downloads unless opted in (DUALSTYLE_CUDA=install)
 *                                   and an NVIDIA driver is present; otherwise at most a one-line hint.
 *                                   Never fails the install. DUALSTYLE_CUDA=skip silences it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { hashFile } from '../server/util/file-hash.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

/** The committed table: package, version, integrity, per-file sha256 (the engine's diagnosis reads it too). */
export const PROVIDER_TABLE = JSON.parse(readFileSync(path.join(here, '../server/engine/cuda/cuda-provider.json'), 'utf8'));

/** Written beside the installed files: what was installed, from where, with which hashes. */
export const MANIFEST_NAME = PROVIDER_TABLE.manifest;

/** onnxruntime-node's folder and version, or null when it is not installed. */
export function findOnnxruntimeNode(from = here) {
  try {
    const pkgJson = createRequire(path.join(from, 'x.js')).resolve('onnxruntime-node/package.json');
    const dir = path.dirname(pkgJson);
    return { dir, version: JSON.parse(readFileSync(pkgJson, 'utf8')).version };
  } catch {
    return null;
  }
}

/** Where onnxruntime-node's core (libonnxruntime.so.1) and binding live; providers go beside them. */
export function bindingDir(ortDir, platform = process.platform, arch = process.arch) {
  return path.join(ortDir, 'bin', 'napi-v6', platform, arch);
}

/** npm's integrity string of a tarball. */
export async function sha512Integrity(file) {
  return `sha512-${await hashFile(file, { algorithm: 'sha512', encoding: 'base64' })}`;
}

/** Which of the table's files are in `dir` with the expected sha256 ('ok'), another one ('mismatch') or absent. */
export async function checkInstalled(dir, table = PROVIDER_TABLE) {
  const files = {};
  for (const [name, expected] of Object.entries(table.files)) {
    const file = path.join(dir, name);
    if (!existsSync(file)) files[name] = 'missing';
    else files[name] = (await hashFile(file)) === expected ? 'ok' : 'mismatch';
  }
  const all = Object.values(files);
  return { files, complete: all.every((s) => s === 'ok') };
}

/** The npm command line: the npm running this script when there is one (npm run), else `npm` on the PATH. */
function npmCommand() {
  const execPath = process.env.npm_execpath;
  if (execPath && /npm-cli\.js$/.test(execPath)) return { cmd: process.execPath, args: [execPath] };
  return { cmd: process.platform === 'win32' ? 'npm.cmd' : 'npm', args: [] };
}

/** `npm pack <spec>` into `dest`: npm downloads through the configured registry and checks the packument's integrity. */
export function npmPack(spec, dest) {
  const { cmd, args } = npmCommand();
  const run = spawnSync(cmd, [...args, 'pack', spec, '--pack-destination', dest, '--json', '--loglevel=error'], {
    encoding: 'utf8',
    maxBuffer: 16 * 1024 * 1024,
    timeout: 30 * 60 * 1000,
  });
  if (run.error) throw new Error(`could not run npm: ${run.error.message}`);
  if (run.status !== 0) {
    const why = `${run.stderr}\n${run.stdout}`
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => /err|E[A-Z]{3,}/i.test(l))
      .slice(0, 3)
      .join(' ');
    throw new Error(`npm pack ${spec} failed (exit ${run.status}): ${why || 'no message'}`);
  }
  const info = JSON.parse(run.stdout)[0];
  return { file: path.join(dest, info.filename), integrity: info.integrity };
}

/** Extracts the table's files from a provider tarball into `dest` (system tar: this is Linux-only anyway). */
export function extractFiles(tarball, dest, table = PROVIDER_TABLE) {
  const members = Object.keys(table.files).map((f) => `${table.pathInPackage}/${f}`);
  const run = spawnSync('tar', ['-xzf', tarball, '-C', dest, ...members], { encoding: 'utf8' });
  if (run.error) throw new Error(`could not run tar: ${run.error.message}`);
  if (run.status !== 0) throw new Error(`the tarball does not hold the expected files (${members.join(', ')}): ${run.stderr.trim()}`);
  return Object.fromEntries(Object.keys(table.files).map((f) => [f, path.join(dest, table.pathInPackage, f)]));
}

/**
 * Installs the provider into onnxruntime-node's binding folder `binDir` from `tarball` (already fetched):
 * checks npm's integrity, extracts, checks every sha256, then copies each file in beside its final name
 * and renames it over (a reader never sees half a library), and writes the manifest.
 */
export async function installFromTarball(tarball, binDir, { table = PROVIDER_TABLE, packIntegrity, log = () => {} } = {}) {
  const integrity = await sha512Integrity(tarball);
  if (integrity !== table.integrity || (packIntegrity && packIntegrity !== table.integrity)) {
    throw new Error(`${path.basename(tarball)} has integrity ${integrity}, the table expects ${table.integrity}: not installing it`);
  }
  log(`  integrity ${integrity.slice(0, 24)}… matches the table`);
  const work = await mkdtemp(path.join(os.tmpdir(), 'dualstyle-cuda-x-'));
  try {
    const extracted = extractFiles(tarball, work, table);
    for (const [name, file] of Object.entries(extracted)) {
      const got = await hashFile(file);
      if (got !== table.files[name]) throw new Error(`${name} in the tarball has sha256 ${got}, the table expects ${table.files[name]}: not installing it`);
    }
    log(`  sha256 of ${Object.keys(extracted).length} files match the table`);
    if (!existsSync(binDir)) throw new Error(`onnxruntime-node's binding folder ${binDir} does not exist`);
    for (const [name, file] of Object.entries(extracted)) {
      // Copied beside the binding, then renamed over it: a failed copy (a full disk) leaves no 230 MB temp.
      const temp = path.join(binDir, `.${name}.${process.pid}.tmp`);
      try {
        await copyFile(file, temp);
        await rename(temp, path.join(binDir, name));
      } finally {
        await rm(temp, { force: true });
      }
      log(`  installed ${name} (${((await stat(path.join(binDir, name))).size / 1e6).toFixed(1)} MB)`);
    }
    const manifest = {
      package: table.package,
      version: table.version,
      onnxruntime: table.onnxruntime,
      cudaMajor: table.cudaMajor,
      integrity: table.integrity,
      files: table.files,
      installedAt: new Date().toISOString(),
    };
    await writeFile(path.join(binDir, MANIFEST_NAME), `${JSON.stringify(manifest, null, 1)}\n`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * npm run install:cuda: the whole path, saying what it did. `pack` is injectable for tests.
 * Returns 'installed' or 'already-installed'; throws with the reason otherwise.
 */
export async function installCudaProvider({ ortDir, table = PROVIDER_TABLE, pack = npmPack, log = console.log, force = false, tarball } = {}) {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`the CUDA provider on the npm registry is for Linux x64; this is ${process.platform}/${process.arch}`);
  }
  const ort = ortDir ? { dir: ortDir, version: JSON.parse(await readFile(path.join(ortDir, 'package.json'), 'utf8')).version } : findOnnxruntimeNode();
  if (!ort) throw new Error('onnxruntime-node is not installed: run `npm ci` first');
  if (ort.version !== table.onnxruntime) {
    throw new Error(
      `onnxruntime-node ${ort.version} is installed, but the CUDA provider on the registry is built for ${table.onnxruntime}; ` +
        `a provider only works with the core of its own version: run \`npm ci\` (package.json pins onnxruntime-node ${table.onnxruntime})`,
    );
  }
  const binDir = bindingDir(ort.dir);
  const before = await checkInstalled(binDir, table);
  if (before.complete && !force) {
    log(
      `dualstyle: CUDA provider ${table.package}@${table.version} (ONNX Runtime ${table.onnxruntime}, CUDA ${table.cudaMajor}) already installed in ${binDir}; sha256 checked`,
    );
    return 'already-installed';
  }
  if (tarball) {
    log(`dualstyle: installing ${table.package}@${table.version} from ${tarball}`);
    await installFromTarball(tarball, binDir, { table, log });
  } else {
    log(`dualstyle: fetching ${table.package}@${table.version} (${(table.tarballBytes / 1e6).toFixed(0)} MB) with npm from your configured registry`);
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'dualstyle-cuda-'));
    try {
      const packed = pack(`${table.package}@${table.version}`, tmp);
      await installFromTarball(packed.file, binDir, { table, packIntegrity: packed.integrity, log });
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
  log(`dualstyle: CUDA provider for onnxruntime-node ${table.onnxruntime} installed in ${binDir}`);
  log(
    'dualstyle: it needs CUDA 13 (cudart, cuBLAS, cuRAND, cuFFT), cuDNN 9 and an NVIDIA driver: `npm run doctor` checks each one and says how to get what is missing',
  );
  return 'installed';
}

/** An NVIDIA kernel driver is loaded, or its user-space library is known to the loader. */
export function nvidiaDriverPresent() {
  if (existsSync('/proc/driver/nvidia/version')) return true;
  const run = spawnSync('ldconfig', ['-p'], { encoding: 'utf8' });
  return run.status === 0 && /\blibcuda\.so\.1\b/.test(run.stdout);
}

async function postinstall() {
  const mode = process.env.DUALSTYLE_CUDA;
  if (mode === 'skip' || process.platform !== 'linux' || process.arch !== 'x64') return;
  const ort = findOnnxruntimeNode();
  if (!ort || !nvidiaDriverPresent()) return;
  if ((await checkInstalled(bindingDir(ort.dir))).complete) return;
  if (mode !== 'install') {
    const mb = (PROVIDER_TABLE.tarballBytes / 1e6).toFixed(0);
    console.log(
      `dualstyle: NVIDIA driver found. For CUDA, run \`npm run install:cuda\` (downloads ${mb} MB from the npm registry), or install with DUALSTYLE_CUDA=install.`,
    );
    return;
  }
  try {
    await installCudaProvider({ ortDir: ort.dir });
  } catch (e) {
    console.log(`dualstyle: CUDA provider not installed (${e.message}); the studio runs on CPU. Retry with \`npm run install:cuda\`.`);
  }
}

const isMain = process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  if (process.argv.includes('--install')) {
    const at = process.argv.indexOf('--tarball');
    const tarball = at > 0 ? process.argv[at + 1] : undefined;
    if (at > 0 && !tarball) {
      console.error('install:cuda: --tarball needs a file (made with `npm pack ' + `${PROVIDER_TABLE.package}@${PROVIDER_TABLE.version}\`)`);
      process.exit(2);
    }
    installCudaProvider({ force: process.argv.includes('--force'), tarball: tarball && path.resolve(tarball) }).catch((e) => {
      console.error(`install:cuda: ${e.message}`);
      process.exitCode = 1;
    });
  } else {
    postinstall().catch((e) => console.log(`dualstyle: CUDA check skipped (${e.message})`));
  }
}

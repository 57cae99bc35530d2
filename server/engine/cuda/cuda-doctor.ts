/**
 * Why CUDA works or does not, in terms a user can act on: the provider library beside onnxruntime-node's
 * binding (present, and the build for this core), every shared library it needs resolved as the loader
 * would resolve it (its ELF DT_NEEDED tree, plus cuDNN and cuFFT, which it opens itself at run time),
 * the NVIDIA driver and GPUs (nvidia-smi), the CUDA libraries of Python environments (pip's nvidia-*
 * wheels put them in site-packages/nvidia/<name>/lib, where the loader does not look), and for each
 * missing piece the one command that fixes it.
 *
 * Used by `--ep cuda|auto` before a CUDA session is attempted, by /api/health, and by `npm run doctor`.
 * The answer is computed once per process (ldconfig, nvidia-smi and python are run once); `fresh` re-runs.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { sha256FileSync } from '../../util/file-hash.mjs';
import { loaderEnvironment, resolveDependencyTree, type LoaderEnvironment, type Resolution } from './ld-resolve.ts';
import table from './cuda-provider.json' with { type: 'json' };

export const PROVIDER_TABLE = table;
const CUDA_PROVIDER_LIBRARY = 'libonnxruntime_providers_cuda.so';
const INSTALL_CUDA = 'npm run install:cuda';
/** Libraries of the system itself (glibc, the C++ runtime): reported only when missing. */
const SYSTEM_LIBRARY = /^(ld-linux|libc\.|libm\.|libdl\.|librt\.|libpthread\.|libstdc\+\+|libgcc_s)/;
const DRIVER_LIBRARY = 'libcuda.so.1';

export interface LibraryCheck {
  name: string;
  path: string | null;
  /** How the loader finds it ('ld.so.cache', 'LD_LIBRARY_PATH', ...), null when missing. */
  via: string | null;
  /** 'needed': in the provider's ELF dependency tree; 'runtime': opened by the provider with dlopen. */
  kind: 'needed' | 'runtime';
  /** What it is, for the user ("NVIDIA driver", "cuDNN 9", ...). */
  what: string;
  /** A folder of a Python environment that has it (pip nvidia-* wheel), when the loader does not find it. */
  inPythonEnv?: string;
  /** The command that fixes it when missing. */
  fix?: string;
}

export interface GpuInfo {
  index: number;
  name: string;
  memoryMiB: number;
}

export interface CudaDiagnosis {
  /** Everything found: the provider, every library, a driver and a GPU. `auto` uses CUDA only then. */
  ready: boolean;
  /** One line: what is wrong (or "ready"). */
  summary: string;
  platform: string;
  onnxruntime: { version: string | null; bindingDir: string | null };
  provider: {
    package: string;
    version: string;
    /** The ONNX Runtime version the registry provider is built for, and the CUDA major version it needs. */
    builtFor: string;
    cudaMajor: number;
    installed: boolean;
    /** Installed by install:cuda for this onnxruntime-node (from its manifest), or checked by sha256 (`verify`). */
    matchesCore: boolean | null;
    files: Record<string, 'ok' | 'present' | 'mismatch' | 'missing'>;
  };
  libraries: LibraryCheck[];
  missing: string[];
  driver: { present: boolean; version: string | null; cudaVersion: string | null; gpus: GpuInfo[]; note: string };
  /** lib/ folders of pip nvidia-* packages found in Python environments on this machine. */
  pythonCudaDirs: string[];
  /** One command per missing piece, in the order to run them. */
  fixes: string[];
  loaderNotes: string[];
}

export interface DiagnoseOptions {
  fresh?: boolean;
  /**
   * The doctor's thorough mode: compare each provider file's sha256 with the table (reads 230 MB) and
   * ask Python on the PATH for its site-packages. Sessions and /api/health use the quick checks.
   */
  verify?: boolean;
  env?: NodeJS.ProcessEnv;
  /** Overrides for tests: onnxruntime-node's binding folder, site-packages folders, nvidia-smi output. */
  bindingDir?: string | null;
  sitePackages?: string[];
  nvidiaSmi?: (args: string[]) => string | null;
  loader?: LoaderEnvironment;
}

/** onnxruntime-node's version and native binding folder (where its core loads providers from). */
export function onnxruntimeNodeInfo(): { version: string | null; bindingDir: string | null } {
  try {
    const pkg = path.resolve(import.meta.dirname, '../../../node_modules/onnxruntime-node/package.json');
    const version = (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version;
    const dir = path.join(path.dirname(pkg), 'bin', 'napi-v6', process.platform, process.arch);
    return { version, bindingDir: existsSync(dir) ? dir : null };
  } catch {
    return { version: null, bindingDir: null };
  }
}

function runNvidiaSmi(args: string[]): string | null {
  const r = spawnSync('nvidia-smi', args, { encoding: 'utf8', timeout: 15_000 });
  return r.status === 0 ? r.stdout : null;
}

/** The driver and GPUs as nvidia-smi reports them; without nvidia-smi, the kernel driver's version file. */
export function probeDriver(smi: (args: string[]) => string | null = runNvidiaSmi): CudaDiagnosis['driver'] {
  const list = smi(['--query-gpu=index,name,memory.total,driver_version', '--format=csv,noheader,nounits']);
  if (list !== null) {
    const rows = list
      .split('\n')
      .map((l) => l.split(',').map((s) => s.trim()))
      .filter((r) => r.length >= 4 && r[0] !== '');
    const gpus = rows.map((r) => ({ index: Number(r[0]), name: r[1]!, memoryMiB: Number(r[2]) }));
    const cudaVersion = /CUDA Version:\s*([\d.]+)/.exec(smi([]) ?? '')?.[1] ?? null;
    const version = rows[0]?.[3] ?? null;
    const note = gpus.length
      ? `NVIDIA driver ${version}${cudaVersion ? ` (CUDA ${cudaVersion})` : ''}; ${gpus.map((g) => `GPU ${g.index}: ${g.name}, ${Math.round(g.memoryMiB / 1024)} GiB`).join('; ')}`
      : 'nvidia-smi runs but lists no GPU';
    return { present: true, version, cudaVersion, gpus, note };
  }
  const proc = '/proc/driver/nvidia/version';
  if (existsSync(proc)) {
    const version = /Kernel Module\s+([\d.]+)/.exec(readFileSync(proc, 'utf8'))?.[1] ?? null;
    return {
      present: true,
      version,
      cudaVersion: null,
      gpus: [],
      note: `NVIDIA kernel driver ${version ?? '(unknown version)'} loaded, but nvidia-smi is not available to list the GPUs`,
    };
  }
  return { present: false, version: null, cudaVersion: null, gpus: [], note: 'no NVIDIA driver found (no nvidia-smi, no /proc/driver/nvidia)' };
}

/**
 * site-packages folders of the Python environments in reach, found without running Python: the active
 * venv or conda env, the user site, pyenv versions, /usr/local and Debian's dist-packages. With `ask`,
 * python3 (else python) on the PATH is asked too (slow where pyenv shims wrap it: the doctor does this).
 */
export function pythonSitePackages(env: NodeJS.ProcessEnv = process.env, ask = false): string[] {
  const dirs = new Set<string>();
  if (ask) {
    const script = 'import site;print("\\n".join(site.getsitepackages()+[site.getusersitepackages()]))';
    for (const py of ['python3', 'python']) {
      const r = spawnSync(py, ['-c', script], { encoding: 'utf8', timeout: 15_000, env });
      if (r.status !== 0) continue;
      for (const l of r.stdout.split('\n')) if (l.trim()) dirs.add(l.trim());
      break;
    }
  }
  const home = env.HOME ?? '';
  const prefixes = [env.VIRTUAL_ENV, env.CONDA_PREFIX, home && path.join(home, '.local'), '/usr/local', '/usr'];
  for (const v of safeReaddir(path.join(env.PYENV_ROOT ?? path.join(home, '.pyenv'), 'versions')))
    prefixes.push(path.join(env.PYENV_ROOT ?? path.join(home, '.pyenv'), 'versions', v));
  for (const prefix of prefixes) {
    if (!prefix) continue;
    const lib = path.join(prefix, 'lib');
    for (const d of safeReaddir(lib)) {
      if (!/^python3/.test(d)) continue;
      dirs.add(path.join(lib, d, 'site-packages'));
      dirs.add(path.join(lib, d, 'dist-packages'));
    }
  }
  dirs.add('/usr/lib/python3/dist-packages');
  return [...dirs].filter((d) => existsSync(d));
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** The lib/ folders of pip's NVIDIA wheels: site-packages/nvidia/<name>/lib (cu13 wheels: nvidia/cu13/lib). */
export function pythonCudaLibDirs(sitePackages: string[]): string[] {
  const out: string[] = [];
  for (const sp of sitePackages) {
    const nv = path.join(sp, 'nvidia');
    for (const name of safeReaddir(nv).sort()) {
      const lib = path.join(nv, name, 'lib');
      if (safeReaddir(lib).some((f) => f.includes('.so'))) out.push(lib);
    }
  }
  return out;
}

function describe(name: string): string {
  if (name === DRIVER_LIBRARY) return 'NVIDIA driver';
  if (name in table.runtimeLoaded) return (table.runtimeLoaded as Record<string, string>)[name]!;
  if (/^libcudart/.test(name)) return `CUDA ${table.cudaMajor} runtime`;
  if (/^libcublas/.test(name)) return `cuBLAS (CUDA ${table.cudaMajor})`;
  if (/^libcurand/.test(name)) return `cuRAND (CUDA ${table.cudaMajor})`;
  return SYSTEM_LIBRARY.test(name) ? 'system library' : 'library';
}

function summarize(d: Omit<CudaDiagnosis, 'summary' | 'ready' | 'fixes'>): string {
  if (d.platform !== 'linux/x64') return `the CUDA provider for onnxruntime-node is installed here for Linux x64 only (this is ${d.platform})`;
  if (!d.onnxruntime.bindingDir) return 'onnxruntime-node native binaries were not found';
  const problems: string[] = [];
  if (!d.provider.installed) problems.push(`${CUDA_PROVIDER_LIBRARY} is not installed beside onnxruntime-node`);
  else if (d.provider.matchesCore === false) problems.push(`the installed CUDA provider is not the build for onnxruntime-node ${d.onnxruntime.version}`);
  if (d.missing.length) {
    const named = d.libraries.filter((l) => !l.path).map((l) => `${l.name} (${l.what}${l.inPythonEnv ? ', in a Python environment' : ''})`);
    problems.push(`missing ${named.join(', ')}`);
  }
  if (!d.driver.present) problems.push('no NVIDIA driver');
  else if (d.driver.gpus.length === 0 && d.driver.note.startsWith('nvidia-smi')) problems.push('no GPU listed by nvidia-smi');
  return problems.length ? problems.join('; ') : `ready: ${d.driver.note}`;
}

function fixesFor(d: Omit<CudaDiagnosis, 'summary' | 'ready' | 'fixes'>): string[] {
  const fixes: string[] = [];
  if (!d.provider.installed) fixes.push(INSTALL_CUDA);
  else if (d.provider.matchesCore === false) fixes.push(`${INSTALL_CUDA} -- --force`);
  const inEnv = [...new Set(d.libraries.filter((l) => !l.path && l.inPythonEnv).map((l) => l.inPythonEnv!))];
  if (inEnv.length) fixes.push(`export LD_LIBRARY_PATH=${inEnv.join(':')}\${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}  (then start the studio from this shell)`);
  const pip = [
    ...new Set(d.libraries.filter((l) => !l.path && !l.inPythonEnv && l.name in table.pip).map((l) => (table.pip as Record<string, string>)[l.name]!)),
  ];
  if (pip.length)
    fixes.push(`pip install ${pip.join(' ')}  (then run \`npm run doctor\` again: it finds their lib/ folders and prints the LD_LIBRARY_PATH to use)`);
  if (!d.driver.present || d.missing.includes(DRIVER_LIBRARY)) {
    fixes.push('install the NVIDIA driver for your GPU (it provides libcuda.so.1 and nvidia-smi), or run with --ep cpu');
  }
  return fixes;
}

let cached: CudaDiagnosis | null = null;

export function diagnoseCuda(opts: DiagnoseOptions = {}): CudaDiagnosis {
  const custom = opts.bindingDir !== undefined || opts.sitePackages !== undefined || opts.nvidiaSmi !== undefined || opts.loader !== undefined;
  if (cached && !opts.fresh && !opts.verify && !custom) return cached;
  const platform = `${process.platform}/${process.arch}`;
  const ortInfo = onnxruntimeNodeInfo();
  const bindingDir = opts.bindingDir === undefined ? ortInfo.bindingDir : opts.bindingDir;
  const onnxruntime = { version: ortInfo.version, bindingDir };
  const files: CudaDiagnosis['provider']['files'] = {};
  for (const f of Object.keys(table.files)) files[f] = bindingDir && existsSync(path.join(bindingDir, f)) ? 'present' : 'missing';
  const installed = Object.values(files).every((s) => s !== 'missing');
  let matchesCore: boolean | null = null;
  if (installed && bindingDir) {
    if (opts.verify) {
      matchesCore = true;
      for (const [f, sha] of Object.entries(table.files)) {
        const ok = sha256FileSync(path.join(bindingDir, f)) === sha;
        files[f] = ok ? 'ok' : 'mismatch';
        if (!ok) matchesCore = false;
      }
    } else {
      const manifest = readManifest(bindingDir);
      if (manifest) matchesCore = manifest.onnxruntime === ortInfo.version && manifest.version === table.version;
    }
    if (ortInfo.version !== table.onnxruntime) matchesCore = false;
  }

  const loader = opts.loader ?? loaderEnvironment({ env: opts.env, fresh: opts.fresh });
  const pythonCudaDirs = pythonCudaLibDirs(opts.sitePackages ?? pythonSitePackages(opts.env, opts.verify));
  const libraries: LibraryCheck[] = [];
  const loaderNotes = loader.cacheNote ? [loader.cacheNote] : [];
  if (installed && bindingDir) {
    try {
      const tree = resolveDependencyTree(path.join(bindingDir, CUDA_PROVIDER_LIBRARY), loader, Object.keys(table.runtimeLoaded));
      const runtime = new Set(Object.keys(table.runtimeLoaded));
      for (const r of tree.libraries) {
        if (r.path && SYSTEM_LIBRARY.test(r.name)) continue;
        libraries.push(check(r, runtime.has(r.name) && r.neededBy === tree.root.path ? 'runtime' : 'needed', pythonCudaDirs));
      }
      for (const u of tree.unreadable) loaderNotes.push(`could not read ${u.reason}`);
    } catch (e) {
      loaderNotes.push(`could not read ${CUDA_PROVIDER_LIBRARY}: ${(e as Error).message}`);
    }
  }
  const driver = probeDriver(opts.nvidiaSmi);
  const base = {
    platform,
    onnxruntime,
    provider: { package: table.package, version: table.version, builtFor: table.onnxruntime, cudaMajor: table.cudaMajor, installed, matchesCore, files },
    libraries,
    missing: libraries.filter((l) => !l.path).map((l) => l.name),
    driver,
    pythonCudaDirs,
    loaderNotes,
  };
  const ready =
    platform === 'linux/x64' &&
    installed &&
    matchesCore !== false &&
    base.missing.length === 0 &&
    driver.present &&
    (driver.gpus.length > 0 || !driver.note.startsWith('nvidia-smi'));
  const d: CudaDiagnosis = { ready, summary: summarize(base), fixes: ready ? [] : fixesFor(base), ...base };
  if (!custom) cached = d;
  return d;
}

function check(r: Resolution, kind: LibraryCheck['kind'], pythonDirs: string[]): LibraryCheck {
  const out: LibraryCheck = { name: r.name, path: r.path, via: r.via, kind, what: describe(r.name) };
  if (r.path) return out;
  const inPythonEnv = pythonDirs.find((d) => existsSync(path.join(d, r.name)));
  if (inPythonEnv) out.inPythonEnv = inPythonEnv;
  if (r.name === DRIVER_LIBRARY) out.fix = 'install the NVIDIA driver (libcuda.so.1 comes with it, not with the CUDA toolkit or pip)';
  else if (inPythonEnv) out.fix = `export LD_LIBRARY_PATH=${inPythonEnv}\${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}`;
  else if (r.name in table.pip) out.fix = `pip install ${(table.pip as Record<string, string>)[r.name]}`;
  return out;
}

function readManifest(dir: string): { onnxruntime: string; version: string } | null {
  try {
    return JSON.parse(readFileSync(path.join(dir, table.manifest), 'utf8')) as { onnxruntime: string; version: string };
  } catch {
    return null;
  }
}

/** The diagnosis as lines of text (doctor's output; the first lines also go into error messages). */
export function formatDiagnosis(d: CudaDiagnosis): string[] {
  const lines = [`CUDA: ${d.ready ? 'ready' : 'not available'} — ${d.summary}`];
  const p = d.provider;
  const state = !p.installed
    ? 'not installed'
    : p.matchesCore === false
      ? 'installed, but not the build for this onnxruntime-node'
      : p.matchesCore
        ? 'installed (the build for this onnxruntime-node)'
        : 'installed (origin unknown: no install:cuda manifest)';
  lines.push(
    `provider: ${p.package}@${p.version} (ONNX Runtime ${p.builtFor}, CUDA ${p.cudaMajor}) — ${state}; onnxruntime-node ${d.onnxruntime.version ?? '?'} in ${d.onnxruntime.bindingDir ?? '?'}`,
  );
  for (const [f, s] of Object.entries(p.files)) if (s !== 'present' && s !== 'ok') lines.push(`  ${f}: ${s}`);
  if (d.libraries.length) lines.push('libraries the provider needs (as the loader resolves them):');
  for (const l of d.libraries) {
    const where = l.path ? `${l.path}  [${l.via}]` : `MISSING${l.inPythonEnv ? ` (found in ${l.inPythonEnv}, which the loader does not search)` : ''}`;
    lines.push(`  ${l.name.padEnd(22)} ${l.what.padEnd(32)} ${where}${l.kind === 'runtime' ? '  (opened at run time)' : ''}`);
  }
  lines.push(`driver: ${d.driver.note}`);
  if (d.pythonCudaDirs.length) lines.push(`CUDA libraries of Python environments: ${d.pythonCudaDirs.join(', ')}`);
  for (const n of d.loaderNotes) lines.push(`note: ${n}`);
  if (d.fixes.length) {
    lines.push('to fix, in order:');
    d.fixes.forEach((f, i) => lines.push(`  ${i + 1}. ${f}`));
  }
  return lines;
}

/** A one-paragraph reason for errors and notes: the summary and the fixes. */
/**
 * Why CUDA device `deviceId` (--gpu) cannot exist on this machine, or null. nvidia-smi lists every GPU
 * whatever CUDA_VISIBLE_DEVICES says, so this refuses only an index past the last GPU it lists.
 */
export function missingDevice(d: CudaDiagnosis, deviceId: number): string | null {
  const gpus = d.driver.gpus.length;
  if (gpus === 0 || deviceId < gpus) return null;
  return `GPU ${deviceId} was asked for (--gpu), but nvidia-smi lists ${gpus === 1 ? 'only GPU 0' : `GPUs 0 to ${gpus - 1}`}`;
}

export function cudaUnavailableReason(d: CudaDiagnosis): string {
  return `${d.summary}${d.fixes.length ? `. To fix: ${d.fixes.map((f, i) => `(${i + 1}) ${f.replace(/\s+\(.*\)$/, '')}`).join('; ')}` : ''}; \`npm run doctor\` shows the details`;
}

/**
 * Whether onnxruntime's TensorRT provider can work here, in the terms of the CUDA diagnosis
 * (cuda-doctor.ts): TensorRT runs on top of CUDA (everything CUDA needs), plus its own provider library
 * (installed by install:cuda beside the CUDA one) and TensorRT 10's libraries, as the loader resolves them
 * (libnvinfer and libnvonnxparser from its ELF, libnvinfer_plugin opened at run time). pip's TensorRT wheel
 * puts them in site-packages/tensorrt_libs, where the loader does not look. TensorRT is optional: `--ep
 * tensorrt` without it runs on CUDA (or CPU) and says why.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { diagnoseCuda, onnxruntimeNodeInfo, PROVIDER_TABLE, pythonSitePackages, type CudaDiagnosis, type DiagnoseOptions } from './cuda-doctor.ts';
import { loaderEnvironment, resolveDependencyTree, resolveLibrary, type Resolution } from './ld-resolve.ts';

const TRT = PROVIDER_TABLE.tensorrt;

export interface TensorrtLibrary {
  name: string;
  what: string;
  path: string | null;
  /** A Python environment's tensorrt_libs folder that has it, when the loader does not find it. */
  inPythonEnv?: string;
}

export interface TensorrtDiagnosis {
  /** CUDA ready, the TensorRT provider installed, every TensorRT library found. */
  ready: boolean;
  /** One line: what is missing (or "ready"). */
  summary: string;
  providerInstalled: boolean;
  cudaReady: boolean;
  libraries: TensorrtLibrary[];
  missing: string[];
  /** One command per missing piece, in order (CUDA's own fixes first). */
  fixes: string[];
}

/** site-packages/tensorrt_libs folders that hold TensorRT libraries. */
export function pythonTensorrtDirs(sitePackages: string[]): string[] {
  return sitePackages.map((sp) => path.join(sp, TRT.pythonFolder)).filter((d) => existsSync(d) && readdirSync(d).some((f) => f.startsWith('libnvinfer')));
}

/** The TensorRT libraries the installed provider needs (its ELF, plus the plugins it opens), or the table's list when it is not installed. */
function resolveTensorrtLibraries(provider: string | null, opts: DiagnoseOptions): Resolution[] {
  const loader = opts.loader ?? loaderEnvironment({ env: opts.env, fresh: opts.fresh });
  const isTensorrt = (name: string) => name in TRT.libraries;
  if (provider) return resolveDependencyTree(provider, loader, TRT.runtimeLoaded).libraries.filter((r) => isTensorrt(r.name));
  // Not installed: where the loader would find each library for a provider without RPATH/RUNPATH (as shipped).
  const { bits, machine } = loader.target;
  const dyn = { bits, machine, littleEndian: true, needed: [], soname: TRT.provider, rpath: null, runpath: null, noDefaultLib: false };
  const requester = { path: TRT.provider, dyn };
  return Object.keys(TRT.libraries).map((name) => resolveLibrary(name, requester, loader));
}

export function diagnoseTensorrt(opts: DiagnoseOptions & { cuda?: CudaDiagnosis } = {}): TensorrtDiagnosis {
  const cuda = opts.cuda ?? diagnoseCuda(opts);
  const bindingDir = opts.bindingDir === undefined ? onnxruntimeNodeInfo().bindingDir : opts.bindingDir;
  const file = bindingDir ? path.join(bindingDir, TRT.provider) : null;
  const providerInstalled = file !== null && existsSync(file);
  const pythonDirs = pythonTensorrtDirs(opts.sitePackages ?? pythonSitePackages(opts.env, opts.verify));
  const libraries = resolveTensorrtLibraries(providerInstalled ? file : null, opts).map((r): TensorrtLibrary => {
    const lib: TensorrtLibrary = { name: r.name, what: (TRT.libraries as Record<string, string>)[r.name] ?? 'library', path: r.path };
    const inPythonEnv = r.path ? undefined : pythonDirs.find((d) => existsSync(path.join(d, r.name)));
    return inPythonEnv ? { ...lib, inPythonEnv } : lib;
  });
  const missing = libraries.filter((l) => !l.path).map((l) => l.name);
  const problems: string[] = [];
  if (!cuda.ready) problems.push(`CUDA is not ready (${cuda.summary})`);
  if (!providerInstalled) problems.push(`${TRT.provider} is not installed beside onnxruntime-node`);
  if (missing.length)
    problems.push(
      `missing ${libraries
        .filter((l) => !l.path)
        .map((l) => `${l.name} (${l.what}${l.inPythonEnv ? ', in a Python environment' : ''})`)
        .join(', ')}`,
    );
  const fixes = [...cuda.fixes];
  if (!providerInstalled && !fixes.some((f) => f.startsWith('npm run install:cuda'))) fixes.push('npm run install:cuda');
  const inEnv = [...new Set(libraries.filter((l) => l.inPythonEnv).map((l) => l.inPythonEnv!))];
  if (inEnv.length) fixes.push(`export LD_LIBRARY_PATH=${inEnv.join(':')}\${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}`);
  if (libraries.some((l) => !l.path && !l.inPythonEnv))
    fixes.push(`pip install ${TRT.pip}  (TensorRT 10 for CUDA ${PROVIDER_TABLE.cudaMajor}; then run \`npm run doctor\` again for the LD_LIBRARY_PATH line)`);
  const ready = problems.length === 0;
  return { ready, summary: ready ? 'ready' : problems.join('; '), providerInstalled, cudaReady: cuda.ready, libraries, missing, fixes };
}

/** The TensorRT part of `npm run doctor`. */
export function formatTensorrtDiagnosis(d: TensorrtDiagnosis): string[] {
  const lines = [`TensorRT (optional, --ep tensorrt): ${d.ready ? 'ready' : 'not available'} — ${d.summary}`];
  for (const l of d.libraries) {
    const where = l.path ?? `MISSING${l.inPythonEnv ? ` (found in ${l.inPythonEnv}, which the loader does not search)` : ''}`;
    lines.push(`  ${l.name.padEnd(24)} ${l.what.padEnd(26)} ${where}`);
  }
  if (!d.ready && d.fixes.length) lines.push(`  to fix: ${d.fixes.map((f, i) => `(${i + 1}) ${f.replace(/\s+\(.*\)$/, '')}`).join('; ')}`);
  return lines;
}

/** A reason for the note of a `--ep tensorrt` run that falls back. */
export function tensorrtUnavailableReason(d: TensorrtDiagnosis): string {
  return `${d.summary}${d.fixes.length ? `. To fix: ${d.fixes.map((f, i) => `(${i + 1}) ${f.replace(/\s+\(.*\)$/, '')}`).join('; ')}` : ''}; \`npm run doctor\` shows the details`;
}

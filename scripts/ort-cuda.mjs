#!/usr/bin/env node
/**
 * postinstall: fetch onnxruntime-node's CUDA execution provider where it can be had, never fail the install.
 *
 * onnxruntime-node ships CPU (and WebGPU) binaries in the npm package; the CUDA provider libraries are
 * downloaded by its own install script from NuGet. Offline that script fails and would break `npm install`,
 * so the project's .npmrc skips it (npm 11 also holds back dependency scripts until approved). Here we run
 * that same script ourselves with the cuda12 flag, on Linux x64 only, and tolerate failure: a machine with
 * network gets CUDA, an offline one keeps the CPU provider and a one-line note.
 *
 * Opt out with DUALSTYLE_CUDA=skip; force a retry later with `npm run install:cuda`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const force = process.argv.includes('--force');
if (process.env.DUALSTYLE_CUDA === 'skip' && !force) process.exit(0);
if (process.platform !== 'linux' || process.arch !== 'x64') process.exit(0);

let ortDir;
try {
  ortDir = path.dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json'));
} catch {
  process.exit(0); // not installed (e.g. --omit); nothing to do
}
const binDir = path.join(ortDir, 'bin', 'napi-v6', 'linux', 'x64');
if (existsSync(path.join(binDir, 'libonnxruntime_providers_cuda.so'))) process.exit(0);

const env = { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'cuda12' };
delete env.npm_config_onnxruntime_node_install; // set to "skip" by our .npmrc
const run = spawnSync(process.execPath, [path.join(ortDir, 'script', 'install.js')], {
  cwd: ortDir,
  env,
  encoding: 'utf8',
  timeout: 15 * 60 * 1000,
});
if (run.status === 0 && existsSync(path.join(binDir, 'libonnxruntime_providers_cuda.so'))) {
  console.log('dualstyle: onnxruntime-node CUDA provider installed (use --ep cuda or auto).');
} else {
  const lines = `${run.stderr ?? ''}\n${run.stdout ?? ''}\n${run.error ?? ''}`.split('\n').map((l) => l.trim());
  const why = lines.find((l) => /error|ENOTFOUND|ECONN|EAI_AGAIN/i.test(l)) ?? `exit code ${run.status}`;
  console.log(`dualstyle: CUDA provider for onnxruntime-node not installed (${why.slice(0, 160)}).`);
  console.log('dualstyle: the studio runs on CPU; with network access, run `npm run install:cuda` to get CUDA.');
}
process.exit(0);

/**
 * The CUDA diagnosis on a built machine layout: a provider folder of synthetic ELF objects with the real
 * provider's dependencies, pip-style nvidia/<name>/lib folders, a loader environment and nvidia-smi
 * output given to it. What it must say: which library is missing and where one is to be had, the driver
 * and GPUs, and the commands that fix each piece, in order; ready only when everything is there.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  PROVIDER_TABLE,
  diagnoseCuda,
  formatDiagnosis,
  missingDevice,
  onnxruntimeNodeInfo,
  probeDriver,
  pythonCudaLibDirs,
} from '../server/engine/cuda/cuda-doctor.ts';
import type { LoaderEnvironment } from '../server/engine/cuda/ld-resolve.ts';
import { makeElf } from './support/elf-fixture.ts';

const root = mkdtempSync(path.join(os.tmpdir(), 'dualstyle-doctor-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function put(rel: string, content: Buffer | string): string {
  const f = path.join(root, rel);
  mkdirSync(path.dirname(f), { recursive: true });
  writeFileSync(f, content);
  return path.dirname(f);
}

// The provider as the registry package ships it: the CUDA library needs cuBLAS(Lt), cudart, the driver and libc.
function providerDir(name: string, manifestFor: string | null = onnxruntimeNodeInfo().version): string {
  const dir = put(
    `${name}/libonnxruntime_providers_cuda.so`,
    makeElf({ needed: ['libcublasLt.so.13', 'libcublas.so.13', 'libcudart.so.13', 'libcuda.so.1', 'libc.so.6'] }),
  );
  put(`${name}/libonnxruntime_providers_shared.so`, makeElf({ soname: 'libonnxruntime_providers_shared.so' }));
  put(`${name}/libonnxruntime_providers_tensorrt.so`, makeElf({}));
  if (manifestFor) put(`${name}/${PROVIDER_TABLE.manifest}`, JSON.stringify({ onnxruntime: manifestFor, version: PROVIDER_TABLE.version }));
  return dir;
}

const libc = put('system/libc.so.6', makeElf({ soname: 'libc.so.6' }));
const sitePackages = path.join(root, 'venv/lib/python3.12/site-packages');
const cublasDir = put(
  'venv/lib/python3.12/site-packages/nvidia/cublas/lib/libcublas.so.13',
  makeElf({ soname: 'libcublas.so.13', needed: ['libcublasLt.so.13'], runpath: '$ORIGIN' }),
);
put('venv/lib/python3.12/site-packages/nvidia/cublas/lib/libcublasLt.so.13', makeElf({ soname: 'libcublasLt.so.13' }));
const cu13Dir = put('venv/lib/python3.12/site-packages/nvidia/cu13/lib/libcudart.so.13', makeElf({ soname: 'libcudart.so.13' }));
put('venv/lib/python3.12/site-packages/nvidia/cuda_nvcc/bin/ptxas', 'not a lib folder');
const driverDir = put('driver/libcuda.so.1', makeElf({ soname: 'libcuda.so.1' }));
put('driver/libcudnn.so.9', makeElf({ soname: 'libcudnn.so.9' }));
put('driver/libcufft.so.12', makeElf({ soname: 'libcufft.so.12' }));

const loader = (ldLibraryPath: string[] = []): LoaderEnvironment => ({
  ldLibraryPath,
  cache: new Map([['libc.so.6', [path.join(libc, 'libc.so.6')]]]),
  systemDirs: [],
  target: { bits: 64, machine: 62 },
});
const h100 = (args: string[]) =>
  args.length ? '0, NVIDIA H100 80GB HBM3, 81559, 580.65.06\n' : '| NVIDIA-SMI 580.65.06   Driver Version: 580.65.06   CUDA Version: 13.0 |\n';
const noSmi = () => null;

describe('diagnoseCuda', () => {
  it('finds pip nvidia-*/lib folders (cu12 and cu13 layouts) and skips folders without libraries', () => {
    expect(pythonCudaLibDirs([sitePackages])).toEqual([cu13Dir, cublasDir]);
  });

  it('names each missing library, where a Python environment has it, and the commands that fix each piece', () => {
    const d = diagnoseCuda({ bindingDir: providerDir('p1'), sitePackages: [sitePackages], nvidiaSmi: noSmi, loader: loader() });
    expect(d.ready).toBe(false);
    expect(d.provider).toMatchObject({ installed: true, matchesCore: true });
    expect(d.missing).toEqual(['libcublasLt.so.13', 'libcublas.so.13', 'libcudart.so.13', 'libcuda.so.1', 'libcudnn.so.9', 'libcufft.so.12']);
    const lib = (n: string) => d.libraries.find((l) => l.name === n)!;
    expect(lib('libcublas.so.13')).toMatchObject({ path: null, kind: 'needed', inPythonEnv: cublasDir });
    expect(lib('libcudart.so.13')).toMatchObject({ inPythonEnv: cu13Dir, what: 'CUDA 13 runtime' });
    expect(lib('libcudnn.so.9')).toMatchObject({ kind: 'runtime', fix: 'pip install nvidia-cudnn-cu13' });
    expect(lib('libcuda.so.1').what).toBe('NVIDIA driver');
    expect(d.summary).toMatch(/missing libcublasLt\.so\.13 \(cuBLAS \(CUDA 13\), in a Python environment\)/);
    expect(d.fixes[0]).toBe(`export LD_LIBRARY_PATH=${cublasDir}:${cu13Dir}\${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}  (then start the studio from this shell)`);
    expect(d.fixes[1]).toMatch(/^pip install nvidia-cudnn-cu13 nvidia-cufft /);
    expect(d.fixes.at(-1)).toMatch(/install the NVIDIA driver/);
    const text = formatDiagnosis(d).join('\n');
    expect(text).toContain(`libcublas.so.13        cuBLAS (CUDA 13)                 MISSING (found in ${cublasDir}, which the loader does not search)`);
    expect(text).not.toContain('libc.so.6'); // system libraries are listed only when missing
    expect(text).toMatch(/to fix, in order:\n {2}1\. export LD_LIBRARY_PATH=/);
  });

  it('with the folders on LD_LIBRARY_PATH, a driver and a GPU: ready, and says which GPU', () => {
    const d = diagnoseCuda({ bindingDir: providerDir('p2'), sitePackages: [sitePackages], nvidiaSmi: h100, loader: loader([cublasDir, cu13Dir, driverDir]) });
    expect(d.missing).toEqual([]);
    expect(d.libraries.find((l) => l.name === 'libcublasLt.so.13')).toMatchObject({ via: 'LD_LIBRARY_PATH', path: path.join(cublasDir, 'libcublasLt.so.13') });
    expect(d.driver).toMatchObject({
      present: true,
      version: '580.65.06',
      cudaVersion: '13.0',
      gpus: [{ index: 0, name: 'NVIDIA H100 80GB HBM3', memoryMiB: 81559 }],
    });
    expect(d.ready).toBe(true);
    expect(d.summary).toBe('ready: NVIDIA driver 580.65.06 (CUDA 13.0); GPU 0: NVIDIA H100 80GB HBM3, 80 GiB');
    expect(d.fixes).toEqual([]);
    // --gpu past the GPUs nvidia-smi lists cannot work; without nvidia-smi's list nothing is refused.
    expect(missingDevice(d, 0)).toBeNull();
    expect(missingDevice(d, 1)).toBe('GPU 1 was asked for (--gpu), but nvidia-smi lists only GPU 0');
    expect(missingDevice({ ...d, driver: { ...d.driver, gpus: [] } }, 5)).toBeNull();
  });

  it('a provider that is not installed, or not the build for this core, gets install:cuda first', () => {
    const empty = path.join(root, 'empty');
    mkdirSync(empty, { recursive: true });
    const none = diagnoseCuda({ bindingDir: empty, sitePackages: [], nvidiaSmi: h100, loader: loader() });
    expect(none.provider.installed).toBe(false);
    expect(none.summary).toMatch(/libonnxruntime_providers_cuda\.so is not installed beside onnxruntime-node/);
    expect(none.fixes).toEqual(['npm run install:cuda']);
    const other = diagnoseCuda({ bindingDir: providerDir('p3', '1.30.0'), sitePackages: [], nvidiaSmi: h100, loader: loader([cublasDir, cu13Dir, driverDir]) });
    expect(other.provider.matchesCore).toBe(false);
    expect(other.ready).toBe(false);
    expect(other.fixes[0]).toBe('npm run install:cuda -- --force');
  });

  it('reads the driver from nvidia-smi; nvidia-smi that lists no GPU is not ready', () => {
    expect(probeDriver(() => '').note).toBe('nvidia-smi runs but lists no GPU');
    const d = diagnoseCuda({ bindingDir: providerDir('p4'), sitePackages: [], nvidiaSmi: () => '', loader: loader([cublasDir, cu13Dir, driverDir]) });
    expect(d.ready).toBe(false);
    expect(d.summary).toBe('no GPU listed by nvidia-smi');
  });
});

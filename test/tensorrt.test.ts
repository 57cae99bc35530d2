/**
 * `--ep tensorrt`: the TensorRT diagnosis (tensorrt-doctor.ts) names what is missing and what fixes it, on a
 * built layout (a provider of synthetic ELF objects with the real provider's TensorRT dependencies, pip's
 * tensorrt_libs folder) and on this machine; a session asked for TensorRT where it cannot run falls back
 * with the reason in its note; TensorRT's engine cache and fp16 are set through the ORT_TENSORRT_*
 * variables onnxruntime reads (onnxruntime-node passes only the device id).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { afterAll, describe, expect, it } from 'vitest';
import { diagnoseCuda, PROVIDER_TABLE, type CudaDiagnosis } from '../server/engine/cuda/cuda-doctor.ts';
import { diagnoseTensorrt, formatTensorrtDiagnosis } from '../server/engine/cuda/tensorrt-doctor.ts';
import type { LoaderEnvironment } from '../server/engine/cuda/ld-resolve.ts';
import { createSession, sessionOptions, setTensorrtEngineCache, tensorrtEnvironment } from '../server/engine/runtime/sessions.ts';
import { makeElf } from './support/elf-fixture.ts';

const root = mkdtempSync(path.join(os.tmpdir(), 'dualstyle-trt-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function put(rel: string, content: Buffer | string): string {
  const f = path.join(root, rel);
  mkdirSync(path.dirname(f), { recursive: true });
  writeFileSync(f, content);
  return path.dirname(f);
}

const loader = (ldLibraryPath: string[] = []): LoaderEnvironment => ({ ldLibraryPath, cache: new Map(), systemDirs: [], target: { bits: 64, machine: 62 } });
const cudaReady = { ready: true, summary: 'ready', fixes: [] } as unknown as CudaDiagnosis;

describe('TensorRT diagnosis', () => {
  // As the registry build ships it: DT_NEEDED libnvinfer.so.10 and libnvonnxparser.so.10 (and CUDA's libraries).
  const bindingDir = put(
    'binding/libonnxruntime_providers_tensorrt.so',
    makeElf({ needed: ['libnvinfer.so.10', 'libnvonnxparser.so.10', 'libcudart.so.13', 'libc.so.6'] }),
  );
  const sitePackages = path.join(root, 'venv/lib/python3.12/site-packages');
  const trtLibs = put('venv/lib/python3.12/site-packages/tensorrt_libs/libnvinfer.so.10', makeElf({ soname: 'libnvinfer.so.10' }));
  put('venv/lib/python3.12/site-packages/tensorrt_libs/libnvinfer_plugin.so.10', makeElf({ soname: 'libnvinfer_plugin.so.10' }));

  it('names each missing TensorRT library, where pip put one, and the commands that fix each', () => {
    const d = diagnoseTensorrt({ cuda: cudaReady, bindingDir, sitePackages: [sitePackages], loader: loader() });
    expect(d.ready).toBe(false);
    expect(d.providerInstalled).toBe(true);
    expect(d.missing).toEqual(['libnvinfer.so.10', 'libnvonnxparser.so.10', 'libnvinfer_plugin.so.10']); // CUDA's libraries are CUDA's check
    expect(d.libraries.find((l) => l.name === 'libnvinfer.so.10')).toMatchObject({ path: null, inPythonEnv: trtLibs });
    expect(d.summary).toBe(
      'missing libnvinfer.so.10 (TensorRT 10 runtime, in a Python environment), libnvonnxparser.so.10 (TensorRT 10 ONNX parser), ' +
        'libnvinfer_plugin.so.10 (TensorRT 10 plugins, in a Python environment)',
    );
    expect(d.fixes).toEqual([
      `export LD_LIBRARY_PATH=${trtLibs}\${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}`,
      expect.stringMatching(/^pip install tensorrt-cu13-libs /),
    ]);
    expect(formatTensorrtDiagnosis(d).join('\n')).toContain(
      `libnvinfer.so.10         TensorRT 10 runtime        MISSING (found in ${trtLibs}, which the loader does not search)`,
    );
  });

  it('with tensorrt_libs on LD_LIBRARY_PATH and the parser there too: ready', () => {
    put('venv/lib/python3.12/site-packages/tensorrt_libs/libnvonnxparser.so.10', makeElf({ soname: 'libnvonnxparser.so.10' }));
    const d = diagnoseTensorrt({ cuda: cudaReady, bindingDir, sitePackages: [sitePackages], loader: loader([trtLibs]) });
    expect(d).toMatchObject({ ready: true, missing: [], fixes: [] });
    expect(d.libraries.map((l) => l.path)).toEqual(['libnvinfer.so.10', 'libnvonnxparser.so.10', 'libnvinfer_plugin.so.10'].map((n) => path.join(trtLibs, n)));
  });

  it('on this machine: every TensorRT library is found or named as missing, with install:cuda first when the provider is not installed', () => {
    const d = diagnoseTensorrt();
    const text = formatTensorrtDiagnosis(d).join('\n');
    expect(text).toMatch(/^TensorRT \(optional, --ep tensorrt\): (ready|not available)/);
    for (const name of Object.keys(PROVIDER_TABLE.tensorrt.libraries)) {
      const lib = d.libraries.find((l) => l.name === name)!;
      if (!lib.path) expect(d.summary).toContain(name);
    }
    if (!d.providerInstalled) {
      expect(d.summary).toContain('libonnxruntime_providers_tensorrt.so is not installed beside onnxruntime-node');
      expect(d.fixes).toContain('npm run install:cuda');
    }
    if (!diagnoseCuda().ready) expect(d.summary).toMatch(/^CUDA is not ready/);
  });
});

describe('TensorRT sessions', () => {
  it('engine cache and fp16 through the ORT_TENSORRT_* variables; the user’s own win', () => {
    setTensorrtEngineCache(path.join(root, 'data/tensorrt-engines'));
    expect(tensorrtEnvironment({})).toEqual({
      ORT_TENSORRT_ENGINE_CACHE_ENABLE: '1',
      ORT_TENSORRT_CACHE_PATH: path.join(root, 'data/tensorrt-engines'),
      ORT_TENSORRT_FP16_ENABLE: '1',
    });
    expect(tensorrtEnvironment({ DUALSTYLE_FP16: 'off', ORT_TENSORRT_CACHE_PATH: '/elsewhere' })).toMatchObject({
      ORT_TENSORRT_CACHE_PATH: '/elsewhere',
      ORT_TENSORRT_FP16_ENABLE: '0',
    });
    expect(sessionOptions('tensorrt', { deviceId: 1 }).executionProviders).toEqual([
      { name: 'tensorrt', deviceId: 1 },
      { name: 'cuda', deviceId: 1 },
    ]);
  });

  it.skipIf(diagnoseTensorrt().ready)('where TensorRT cannot run, --ep tensorrt falls back (CUDA, else CPU) and says why', async () => {
    const { onnx } = onnxProto;
    const FLOAT = onnx.TensorProto.DataType.FLOAT;
    const file = path.join(root, 'add.onnx');
    const io = (name: string) => ({ name, type: { tensorType: { elemType: FLOAT, shape: { dim: [{ dimValue: 2 }] } } } });
    const model = {
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }],
      graph: { name: 'g', input: [io('x')], output: [io('y')], node: [{ opType: 'Add', input: ['x', 'x'], output: ['y'] }] },
    };
    writeFileSync(file, onnx.ModelProto.encode(model).finish());
    const r = await createSession(file, 'tensorrt');
    try {
      expect(r.provider).not.toBe('tensorrt');
      expect(r.note).toMatch(/^tensorrt: TensorRT unavailable \(.*libnvinfer\.so\.10|^tensorrt: TensorRT unavailable \(.*not installed/);
      expect(r.note).toMatch(/; using (CUDA|CPU)$/);
    } finally {
      await r.session.release();
    }
  });
});

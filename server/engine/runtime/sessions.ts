/**
 * Session creation: which execution provider a request gets (and why), the session options chosen for
 * it, and a cache of optimized graphs so the second start of a model skips graph optimization.
 *
 * Provider choice. `cuda` and `auto` first ask cuda-doctor.ts whether CUDA can work here (provider
 * installed for this core, every library it needs resolvable, a driver and a GPU). `cuda` fails with
 * that diagnosis and its fixes, before onnxruntime tries to dlopen anything; `auto` falls back to CPU
 * with the same reason in its note. A CUDA session that still fails to start is reported the same way.
 *
 * CUDA options. onnxruntime-node 1.29's binding passes exactly one CUDA option through, `deviceId`
 * (js/node/src/session_options_helper.cc: it creates OrtCUDAProviderOptionsV2 with the defaults and sets
 * device_id). Those defaults are the ones this workload wants: cudnn_conv_algo_search EXHAUSTIVE (fixed
 * shapes for a whole run, so the one-time search pays off), cudnn_conv_use_max_workspace 1, TF32 on,
 * arena_extend_strategy kNextPowerOfTwo. What the binding does pass is session config (`extra`): weights
 * are allocated outside the BFC arena (session.use_device_allocator_for_initializers), so a 1.7–3.4 GB
 * UNet does not round the arena up to the next power of two.
 * Device-resident tensors between runs: the binding's IO binding and 'gpu-buffer' outputs exist for
 * WebGPU only, so with CUDA every run's outputs come back to host memory.
 *
 * Sessions live on the inference thread (inference-thread.ts), so every option here is plain data (it is
 * copied to that thread); CPU sessions run without the memory pattern (memory.ts).
 *
 * Optimized graphs. With `optimizedModelFilePath` onnxruntime writes the graph after its optimizations;
 * a later start loads that file with optimizations off. The file is keyed by the model's files (path,
 * size, mtime of the model and of every file beside it, e.g. weights.pb), the onnxruntime version, the
 * provider and device, and the CPU model (level-'all' CPU graphs carry NCHWc layouts tied to the vector
 * width). Weights go to an external file beside it (a UNet is over protobuf's 2 GB). Written to a
 * temporary folder and renamed, so a reader never sees half an entry; an older entry for the same model
 * file and provider is removed when a new one is written.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CACHE_ROOT } from '../../util/project.ts';
import { UserError } from '../errors.ts';
import { cudaUnavailableReason, diagnoseCuda, missingDevice, onnxruntimeNodeInfo } from '../cuda/cuda-doctor.ts';
import { diagnoseTensorrt, tensorrtUnavailableReason } from '../cuda/tensorrt-doctor.ts';
import { openSession } from './inference-thread.ts';
import { DERIVED_UNET_PATTERN } from '../attention/unet-cache.ts';
import type { ExecutionProvider, ExecutionProviderRequest, InferenceSession, ort } from './runtime.ts';

/**
 * CPU session options chosen for memory.
 * Measured on the demo UNet, latent 128×128 (a 1024 px image), 3 rows, RSS after each
 * of 3–4 calls (tmp probe, onnxruntime-node 1.29, CPU):
 *   arena on,  memory pattern on (onnxruntime's default): 534 → 944 MiB after the 2nd call, peak 950 MiB
 *   arena on,  memory pattern off:                         541–546 MiB, peak 546 MiB
 *   arena off, memory pattern off:                         147–189 MiB between calls, peak ~670 MiB, but
 *     each call costs 2–6× the CPU time (latent 64: 40–280 ms user+sys against 42 ms with the arena:
 *     every intermediate is a fresh mmap, zeroed and unmapped again)
 *   session.release(): RSS back to the level after loading (116–123 MiB)
 * So: the arena stays (speed), the memory pattern goes (half the memory, no growth between calls), and
 * memory is given back by releasing the sessions after a job that grew the process beyond a limit
 * (GraphRunner; the next job loads the model again).
 *
 */
export const CPU_MEMORY_OPTIONS = { enableCpuMemArena: true, enableMemPattern: false } as const;

export interface SessionSettings {
  /** CUDA device index (`--gpu N`); 0 by default. */
  deviceId?: number;
  /**
   * Where optimized graphs are cached; null turns the cache off. Default: .cache/ort-optimized for models
   * of at least `minBytes` (their files together), where optimization takes long enough to matter;
   * off with DUALSTYLE_ORT_CACHE=off.
   */
  optimizedCache?: { dir: string; minBytes: number } | null;
}

const DEFAULT_OPTIMIZED_CACHE = { dir: path.join(CACHE_ROOT, 'ort-optimized'), minBytes: 32 << 20 };

export interface ProviderChoice {
  provider: ExecutionProvider;
  /** One line for logs and the UI: what was asked, what was used, and why. */
  note: string;
}

export interface CreatedSession extends ProviderChoice {
  session: InferenceSession;
  /** 'hit': loaded a cached optimized graph; 'written': optimized and cached; 'off': not cached. */
  cache: 'hit' | 'written' | 'off';
  createMs: number;
}

/** The user-facing error of a CUDA request that cannot be met. */
class CudaUnavailableError extends UserError {
  constructor(message: string) {
    super(message, 'model');
    this.name = 'CudaUnavailableError';
  }
}

export function sessionOptions(provider: ExecutionProvider, settings: SessionSettings = {}): ort.InferenceSession.SessionOptions {
  const deviceId = settings.deviceId ?? 0;
  const gpu = provider === 'cuda' || provider === 'tensorrt';
  return {
    // TensorRT takes the subgraphs it can build engines for; CUDA runs the rest.
    executionProviders:
      provider === 'tensorrt'
        ? [
            { name: 'tensorrt', deviceId },
            { name: 'cuda', deviceId },
          ]
        : [provider === 'cuda' ? { name: 'cuda', deviceId } : provider],
    graphOptimizationLevel: 'all',
    // 3 = errors only: onnxruntime's warnings about unused initializers etc. are noise for users.
    logSeverityLevel: 3,
    logVerbosityLevel: 0,
    ...(gpu ? { extra: { session: { use_device_allocator_for_initializers: '1' } } } : {}),
    ...(provider === 'cpu' ? CPU_MEMORY_OPTIONS : {}),
  };
}

/**
 * Whether CUDA can be tried, with the reason when not (see cuda-doctor.ts). DUALSTYLE_CUDA_CHECK=off skips
 * the check and lets onnxruntime try (for a setup the resolver misjudges, e.g. libraries preloaded).
 */
export function cudaProviderStatus(deviceId = 0): { available: boolean; reason: string } {
  if (process.env.DUALSTYLE_CUDA_CHECK === 'off') return { available: true, reason: 'check skipped (DUALSTYLE_CUDA_CHECK=off)' };
  const d = diagnoseCuda();
  if (!d.ready) return { available: false, reason: cudaUnavailableReason(d) };
  const device = missingDevice(d, deviceId);
  if (device) return { available: false, reason: device };
  return { available: true, reason: d.summary };
}

let engineCacheDir = path.join(CACHE_ROOT, 'tensorrt-engines');

/** Where TensorRT keeps the engines it builds (the studio sets <data folder>/tensorrt-engines). */
export function setTensorrtEngineCache(dir: string): void {
  engineCacheDir = dir;
}

/**
 * TensorRT's settings. onnxruntime-node 1.29 passes only the device id to the TensorRT provider, which then
 * reads its ORT_TENSORRT_* environment variables (tensorrt_execution_provider.cc, when no provider options
 * are given): the engine cache on, in engineCacheDir (an SD UNet's engine takes minutes to build), and fp16
 * unless DUALSTYLE_FP16=off. Variables the user set win.
 */
export function tensorrtEnvironment(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return {
    ORT_TENSORRT_ENGINE_CACHE_ENABLE: env.ORT_TENSORRT_ENGINE_CACHE_ENABLE ?? '1',
    ORT_TENSORRT_CACHE_PATH: env.ORT_TENSORRT_CACHE_PATH ?? engineCacheDir,
    ORT_TENSORRT_FP16_ENABLE: env.ORT_TENSORRT_FP16_ENABLE ?? (env.DUALSTYLE_FP16 === 'off' ? '0' : '1'),
  };
}

/**
 * `--ep tensorrt`: TensorRT when it can work here (tensorrt-doctor.ts), else CUDA, else CPU, the note saying why.
 * The engine cache replaces the optimized-graph cache (a graph with TensorRT engines cannot be saved).
 */
async function createTensorrtSession(modelPath: string, settings: SessionSettings): Promise<CreatedSession> {
  const trt = process.env.DUALSTYLE_CUDA_CHECK === 'off' ? null : diagnoseTensorrt();
  if (trt && !trt.ready) {
    const why = `TensorRT unavailable (${tensorrtUnavailableReason(trt)})`;
    const r = await createSession(modelPath, 'auto', settings);
    return { ...r, note: `tensorrt: ${why}; using ${r.provider === 'cuda' ? 'CUDA' : 'CPU'}` };
  }
  const env = tensorrtEnvironment();
  Object.assign(process.env, env);
  await mkdir(env.ORT_TENSORRT_CACHE_PATH!, { recursive: true }).catch(() => undefined);
  try {
    const r = await openCached(modelPath, 'tensorrt', { ...settings, optimizedCache: null });
    return { ...r, provider: 'tensorrt', note: `tensorrt: using TensorRT (engines cached in ${env.ORT_TENSORRT_CACHE_PATH})` };
  } catch (e) {
    const r = await createSession(modelPath, 'auto', settings);
    return { ...r, note: `tensorrt: TensorRT failed to start (${firstLine(e)}); using ${r.provider === 'cuda' ? 'CUDA' : 'CPU'}` };
  }
}

/**
 * Creates a session on a concrete provider, or resolves a request (`auto` tries CUDA, falls back to
 * CPU). Created from the file path so onnxruntime resolves external weights (weights.pb) beside it.
 */
export async function createSession(
  modelPath: string,
  request: ExecutionProviderRequest | ExecutionProvider,
  settings: SessionSettings = {},
): Promise<CreatedSession> {
  const gpu = settings.deviceId ? ` (GPU ${settings.deviceId})` : '';
  if (request === 'tensorrt') return createTensorrtSession(modelPath, settings);
  if (request === 'auto' || request === 'cuda') {
    const cuda = cudaProviderStatus(settings.deviceId);
    if (!cuda.available) {
      if (request === 'cuda') throw new CudaUnavailableError(`CUDA execution provider requested, but ${cuda.reason}`);
      return { ...(await openCached(modelPath, 'cpu', settings)), provider: 'cpu', note: `auto: CUDA unavailable (${cuda.reason}); using CPU` };
    }
    try {
      return { ...(await openCached(modelPath, 'cuda', settings)), provider: 'cuda', note: `${request}: using CUDA${gpu}` };
    } catch (e) {
      const why = `CUDA failed to start (${firstLine(e)}); \`npm run doctor\` checks the driver, the GPU and every library`;
      if (request === 'cuda') throw new CudaUnavailableError(`CUDA execution provider requested, but ${why}, or run with --ep cpu`);
      return { ...(await openCached(modelPath, 'cpu', settings)), provider: 'cpu', note: `auto: ${why}; using CPU` };
    }
  }
  if (request === 'webgpu') {
    try {
      return { ...(await openCached(modelPath, 'webgpu', settings)), provider: 'webgpu', note: 'webgpu: using WebGPU (Dawn)' };
    } catch (e) {
      throw new Error(`WebGPU execution provider requested, but it failed to start: ${firstLine(e)}. Run with --ep cpu or --ep cuda`, { cause: e });
    }
  }
  if (request !== 'cpu') throw new Error(`unknown execution provider "${String(request)}" (auto, cuda, tensorrt, webgpu or cpu)`);
  return { ...(await openCached(modelPath, 'cpu', settings)), provider: 'cpu', note: 'cpu: using CPU' };
}

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n')[0]!.trim();
}

/** Identity of a model file and the files beside it (external weights): path, size, mtime. */
function modelFilesIdentity(modelPath: string): { files: string; bytes: number } {
  const dir = path.dirname(modelPath);
  let bytes = 0;
  const parts: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const s = statSync(path.join(dir, name));
    if (!s.isFile()) continue;
    // Graphs derived later beside the model (attention-merge rewrites) do not change this model.
    if (name !== path.basename(modelPath) && (name.endsWith('.onnx') || DERIVED_UNET_PATTERN.test(name))) continue;
    bytes += s.size;
    parts.push(`${name}\0${s.size}\0${s.mtimeMs}`);
  }
  return { files: parts.join('\n'), bytes };
}

/**
 * The session options an optimized graph depends on: all but the CPU memory arena and memory pattern, which
 * plan allocations when a session runs and are not part of the graph onnxruntime writes (so entries written
 * before CPU sessions dropped the memory pattern still apply).
 */
export function graphShapingOptions(options: ort.InferenceSession.SessionOptions): ort.InferenceSession.SessionOptions {
  const { enableCpuMemArena: _arena, enableMemPattern: _pattern, ...rest } = options;
  return rest;
}

/** The cache folder for this model and provider: `<model file hash>-<provider>-<state hash>`. */
function optimizedCacheEntry(
  modelPath: string,
  provider: ExecutionProvider,
  settings: SessionSettings,
  root: string,
): { dir: string; prefix: string; bytes: number } {
  const real = realpathSync(modelPath);
  const id = modelFilesIdentity(real);
  const hash = (x: string) => createHash('sha256').update(x).digest('hex').slice(0, 16);
  const device = provider === 'cuda' || provider === 'tensorrt' ? `gpu${settings.deviceId ?? 0}` : provider === 'cpu' ? (os.cpus()[0]?.model ?? os.arch()) : '';
  const prefix = `${hash(real)}-${provider}`;
  const state = hash(JSON.stringify([onnxruntimeNodeInfo().version, device, graphShapingOptions(sessionOptions(provider, settings)), id.files]));
  return { dir: path.join(root, `${prefix}-${state}`), prefix, bytes: id.bytes };
}

const OPTIMIZED_MODEL = 'model.onnx';
const OPTIMIZED_WEIGHTS = 'model.onnx.data';

/** Opens `modelPath` on `provider`, through the optimized-graph cache when it applies. */
async function openCached(modelPath: string, provider: ExecutionProvider, settings: SessionSettings): Promise<Omit<CreatedSession, keyof ProviderChoice>> {
  const t0 = performance.now();
  const options = sessionOptions(provider, settings);
  const cache = settings.optimizedCache !== undefined ? settings.optimizedCache : process.env.DUALSTYLE_ORT_CACHE === 'off' ? null : DEFAULT_OPTIMIZED_CACHE;
  let entry: ReturnType<typeof optimizedCacheEntry> | null;
  try {
    entry = cache ? optimizedCacheEntry(modelPath, provider, settings, cache.dir) : null;
  } catch {
    entry = null; // unreadable folder: open without the cache, the session reports real problems
  }
  if (!cache || !entry || entry.bytes < cache.minBytes) {
    return { session: await openSession(modelPath, options), cache: 'off', createMs: performance.now() - t0 };
  }
  const cached = path.join(entry.dir, OPTIMIZED_MODEL);
  if (existsSync(cached)) {
    try {
      const session = await openSession(cached, { ...options, graphOptimizationLevel: 'disabled' });
      return { session, cache: 'hit', createMs: performance.now() - t0 };
    } catch {
      await rm(entry.dir, { recursive: true, force: true }); // damaged entry: optimize again below
    }
  }
  // The cache only saves time: a folder that cannot be written (read-only install, full disk, another
  // user's .cache) opens the model as if there were no cache, and a model that fails to open that way
  // reports its own error.
  const temp = `${entry.dir}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  try {
    await mkdir(temp, { recursive: true });
    const session = await openSession(modelPath, {
      ...options,
      optimizedModelFilePath: path.join(temp, OPTIMIZED_MODEL),
      extra: {
        ...(options.extra as Record<string, Record<string, string>> | undefined),
        session: {
          ...((options.extra as Record<string, Record<string, string>> | undefined)?.session ?? {}),
          optimized_model_external_initializers_file_name: OPTIMIZED_WEIGHTS,
          optimized_model_external_initializers_min_size_in_bytes: '1024',
        },
      },
    });
    const written = await publish(temp, entry, cache.dir).catch(() => false);
    return { session, cache: written ? 'written' : 'off', createMs: performance.now() - t0 };
  } catch {
    return { session: await openSession(modelPath, options), cache: 'off', createMs: performance.now() - t0 };
  } finally {
    await rm(temp, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Renames a complete temporary entry into place and removes older entries of the same model and provider. */
async function publish(temp: string, entry: { dir: string; prefix: string }, root: string): Promise<boolean> {
  if (!existsSync(path.join(temp, OPTIMIZED_MODEL))) return false;
  try {
    await rename(temp, entry.dir);
  } catch {
    return existsSync(path.join(entry.dir, OPTIMIZED_MODEL)); // another process published it first
  }
  for (const name of readdirSync(root)) {
    const old = path.join(root, name);
    if (name.startsWith(`${entry.prefix}-`) && old !== entry.dir && !name.includes('.tmp-')) await rm(old, { recursive: true, force: true });
  }
  return true;
}

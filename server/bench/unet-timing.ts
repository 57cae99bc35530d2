/**
 * Figures measured on the pipeline directly, beside the graph runs: the time of one UNet call at each
 * batch the samplers use (1: inversion at guidance 1; 2: single prompt or attention merge; 3: epsilon
 * merge), and the time to create a pipeline's sessions with an empty and with a filled optimized-graph
 * cache. Buffers are allocated once per batch, outside the timed calls, as the samplers do.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SdPipeline } from '../engine/sd/pipeline.ts';
import type { ExecutionProviderRequest } from '../engine/runtime/runtime.ts';

export interface UnetCallTiming {
  batch: number;
  /** Median of `reps` calls after one warm-up call at this shape. */
  ms: number;
  reps: number;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export async function timeUnetCalls(
  pipe: SdPipeline,
  latentW: number,
  latentH: number,
  batches: number[],
  reps: number,
  log: (line: string) => void = () => {},
): Promise<UnetCallTiming[]> {
  const row = pipe.info.latentChannels * latentW * latentH;
  const { embedding } = await pipe.encodeText('');
  const out: UnetCallTiming[] = [];
  for (const batch of batches) {
    const sample = Float32Array.from({ length: batch * row }, (_, i) => Math.sin(i * 0.37));
    const ehs = new Float32Array(batch * embedding.length);
    for (let r = 0; r < batch; r++) ehs.set(embedding, r * embedding.length);
    await pipe.unet(sample, batch, latentH, latentW, 500, ehs); // first call at a shape: allocation, algorithm search
    const times: number[] = [];
    for (let i = 0; i < reps; i++) {
      const t = performance.now();
      await pipe.unet(sample, batch, latentH, latentW, 500 - i, ehs);
      times.push(performance.now() - t);
    }
    out.push({ batch, ms: median(times), reps });
    log(`  UNet call, batch ${batch}: ${median(times).toFixed(1)} ms`);
  }
  return out;
}

export interface SessionCreation {
  /** Load with an empty cache: graph optimization, and the optimized graphs written. */
  coldMs: number;
  /** Load again: the optimized graphs read back, optimization off. */
  cachedMs: number;
  /** Every session of the second load came from the cache. */
  allCached: boolean;
  perSession: Record<string, { coldMs: number; cachedMs: number }>;
}

/** Loads the model twice into a throwaway optimized-graph cache (every model cached, whatever its size). */
export async function timeSessionCreation(dir: string, executionProvider: ExecutionProviderRequest, gpu: number): Promise<SessionCreation> {
  const cacheDir = await mkdtemp(path.join(os.tmpdir(), 'dualstyle-ort-cache-'));
  try {
    const load = async () => {
      const t = performance.now();
      const pipe = await SdPipeline.load(dir, { executionProvider, session: { deviceId: gpu, optimizedCache: { dir: cacheDir, minBytes: 0 } } });
      const ms = performance.now() - t;
      const sessions = { ...pipe.info.sessions };
      await pipe.release();
      return { ms, sessions };
    };
    const cold = await load();
    const cached = await load();
    const perSession: SessionCreation['perSession'] = {};
    for (const [rel, s] of Object.entries(cold.sessions)) perSession[rel] = { coldMs: s.ms, cachedMs: cached.sessions[rel]?.ms ?? NaN };
    return { coldMs: cold.ms, cachedMs: cached.ms, allCached: Object.values(cached.sessions).every((s) => s.cache === 'hit'), perSession };
  } finally {
    await rm(cacheDir, { recursive: true, force: true });
  }
}

export interface OptimizerTiming {
  /** What the optimizer fused (Load Model's line). */
  fusions: string;
  batch: number;
  /** Median UNet call of the optimized and of the exported graph, each loaded fresh (the stock UNet). */
  optimizedMs: number;
  plainMs: number;
  /** optimized ÷ plain. */
  ratio: number;
}

/**
 * The optimizer's speed-up: the model loaded with the optimizer, its UNet timed at `batch` rows, released,
 * then loaded as exported and timed the same way (one model in memory at a time).
 */
export async function timeOptimizer(
  dir: string,
  executionProvider: ExecutionProviderRequest,
  gpu: number,
  latentW: number,
  latentH: number,
  reps: number,
  batch = 2,
): Promise<OptimizerTiming> {
  const timed = async (optimize: boolean) => {
    const pipe = await SdPipeline.load(dir, { executionProvider, optimize, session: { deviceId: gpu } });
    try {
      const [t] = await timeUnetCalls(pipe, latentW, latentH, [batch], reps);
      return { ms: t!.ms, fusions: pipe.info.graphOptimizer };
    } finally {
      await pipe.release();
    }
  };
  const optimized = await timed(true);
  const plain = await timed(false);
  return { fusions: optimized.fusions, batch, optimizedMs: optimized.ms, plainMs: plain.ms, ratio: optimized.ms / plain.ms };
}

/**
 * Pictures per second at batch B (issue 23): B seeds of one picture inverted and decoded by an epsilon
 * merge of two styles, the batch's rows in one UNet call per step (engine/diffusion/batch.ts), timed on the
 * loaded pipeline at the run's latent size, steps and skip. Each B first runs one refinement step untimed
 * (onnxruntime's first call at a new batch shape allocates). What a batch buys is the UNet's better use of
 * the device at rows × B; on a CPU already busy at B = 1 it is little.
 */
import { decodeBatch, invertBatch } from '../engine/diffusion/batch.ts';
import { epsilonMerge } from '../engine/diffusion/guidance.ts';
import { makeMask } from '../engine/diffusion/mask.ts';
import { seededNoise } from '../engine/diffusion/noise.ts';
import type { SdPipeline } from '../engine/sd/pipeline.ts';

export interface BatchThroughput {
  batch: number;
  /** Wall time of the batch's inversion and decode (ms). */
  ms: number;
  picturesPerSecond: number;
  unetCallsPerStep: number;
  rowsPerCall: number;
}

/** The batch sizes the bench times unless told otherwise. */
export const BENCH_BATCHES = [1, 2, 4];

export async function benchBatches(
  pipe: SdPipeline,
  w: number,
  h: number,
  steps: number,
  skip: number,
  batches: readonly number[] = BENCH_BATCHES,
): Promise<BatchThroughput[]> {
  const text = async (prompt: string) => (await pipe.encodeText(prompt)).embedding;
  const [source, c1, c2] = await Promise.all(['a photo of a house', 'a painting in the style of Van Gogh', 'a house made of Minecraft blocks'].map(text));
  const rule = epsilonMerge([c1!, c2!], 7.5, makeMask({ shape: 'logistic', direction: 'left-right', sharpness: 20 }));
  const x0 = Float32Array.from({ length: pipe.info.latentChannels * w * h }, (_, i) => Math.sin(i * 0.37));
  const picture = async (B: number, stepsOf: number) => {
    const noises = Array.from({ length: B }, (_, k) => seededNoise(k));
    const codes = await invertBatch(pipe, x0, w, h, { source: source!, guidance: 1, steps: stepsOf, skip, eta: 0.1 }, noises);
    return decodeBatch(pipe, codes, rule);
  };
  const out: BatchThroughput[] = [];
  for (const B of batches) {
    await picture(B, skip + 2); // warm-up: this batch shape's first calls
    const before = { ...pipe.stats };
    const t = performance.now();
    await picture(B, steps);
    const ms = performance.now() - t;
    const calls = pipe.stats.unetCalls - before.unetCalls;
    out.push({
      batch: B,
      ms,
      picturesPerSecond: (B * 1000) / ms,
      unetCallsPerStep: calls / (2 * (steps - skip)),
      rowsPerCall: (pipe.stats.unetRows - before.unetRows) / calls,
    });
  }
  return out;
}

export function printBatches(rows: readonly BatchThroughput[], log: (line: string) => void): void {
  if (!rows.length) return;
  const one = rows.find((r) => r.batch === 1);
  log('');
  log('batches (inversion + epsilon merge of B seeds, one UNet call per step):');
  for (const r of rows) {
    const gain = one ? ` (${(r.picturesPerSecond / one.picturesPerSecond).toFixed(2)}× B = 1)` : '';
    log(
      `  B = ${r.batch}: ${r.picturesPerSecond.toFixed(3)} pictures/s${gain}, ${(r.ms / 1000).toFixed(2)} s, ${r.unetCallsPerStep} UNet calls/step, ${r.rowsPerCall} rows/call`,
    );
  }
}

/**
 * npm run bench -- [--model DIR|demo] [--ep auto|cuda|webgpu|cpu] [--gpu N] [--steps N] [--skip N] [--size PX]
 *                  [--reps N] [--unet-reps N] [--no-session-timing] [--no-optimizer-timing] [--no-weight-sets] [--preview-decoder DIR] [--max-job-memory SIZE] [--batches LIST] [--jsonl FILE] [--json]
 * Defaults: the built-in demo model, provider `auto`, the paper's 100 steps, skip a tenth of the steps
 * (10 for 100), a 512-pixel image. Prints the table and the targets, then one JSON line per figure
 * (also appended to --jsonl FILE); --json prints the whole report as one JSON document instead.
 */
import { appendFileSync } from 'node:fs';
import { runBench, type BenchOptions } from '../bench/bench.ts';
import { MAX_BATCH } from '../engine/diffusion/batch.ts';
import { figureLines } from '../bench/report.ts';
import { EXECUTION_PROVIDERS, type ExecutionProviderRequest } from '../engine/runtime/runtime.ts';
import { jobMemory, parseFlags, readCommandLine, runIfEntry, UsageError } from './options.ts';

export const BENCH_USAGE = `usage: npm run bench -- [--model DIR|demo] [--ep auto|cuda|webgpu|cpu] [--gpu N] [--steps N] [--skip N] [--size PX]
                        [--reps N] [--unet-reps N] [--no-session-timing] [--no-optimizer-timing] [--no-weight-sets] [--preview-decoder DIR] [--max-job-memory SIZE]
                        [--batches LIST] [--jsonl FILE] [--json]

  --model              a Stable Diffusion 1.x ONNX folder, or demo (default) for the built-in demo model
  --ep                 execution provider (default auto: CUDA if available, else CPU)
  --gpu                CUDA device index (default 0)
  --steps              sampler steps (default 100, the paper's)
  --skip               steps skipped at the start of the decode (default a tenth of --steps)
  --size               longest image side in pixels (default 512)
  --reps               repetitions of the preview runs: off, on, every step (default 3)
  --unet-reps          timed UNet calls per batch size, after one warm-up call (default 3)
  --no-session-timing  do not time session creation with an empty and a filled optimized-graph cache
  --no-optimizer-timing  do not time the UNet loaded with the graph optimizer against the graph as exported
  --no-weight-sets     do not time a LoRA per region (the merge on a second weight set: loads the UNet once more)
  --preview-decoder    a folder with taesd_decoder.onnx: previews are decoded by it and a frame's cost is compared
  --max-job-memory     refuse a run estimated above this, e.g. 8G (default: 3/4 of this machine's memory)
  --batches            batch sizes whose pictures per second are timed, e.g. 1,2,4 (the default), or none
  --jsonl              also append the JSON lines (one per figure) to this file
  --json               print the whole report as one JSON document instead of the table and the lines`;

export interface BenchCli {
  options: Omit<BenchOptions, 'log'>;
  jsonl?: string;
  json: boolean;
}

/** The bench's command line, checked; 'help' for --help. Bad flags throw UsageErrors naming them. */
export function parseBenchCli(argv: string[]): BenchCli | 'help' {
  const values = parseFlags(argv, {
    model: { type: 'string' },
    ep: { type: 'string' },
    gpu: { type: 'string' },
    steps: { type: 'string' },
    skip: { type: 'string' },
    size: { type: 'string' },
    reps: { type: 'string' },
    'unet-reps': { type: 'string' },
    'no-session-timing': { type: 'boolean' },
    'no-optimizer-timing': { type: 'boolean' },
    'no-weight-sets': { type: 'boolean' },
    'max-job-memory': { type: 'string' },
    'preview-decoder': { type: 'string' },
    batches: { type: 'string' },
    jsonl: { type: 'string' },
    json: { type: 'boolean' },
  });
  if (values.help) return 'help';
  const ep = (values.ep ?? 'auto') as ExecutionProviderRequest;
  if (!EXECUTION_PROVIDERS.includes(ep)) throw new UsageError(`--ep must be one of ${EXECUTION_PROVIDERS.join(', ')}, got ${JSON.stringify(ep)}`);
  const steps = int('steps', values.steps ?? '100', 2);
  const skip = values.skip === undefined ? Math.floor(steps / 10) : int('skip', values.skip, 0);
  if (steps <= skip) throw new UsageError(`--steps (${steps}) must be greater than --skip (${skip})`);
  const maxJobMemory = jobMemory(values['max-job-memory']);
  return {
    options: {
      model: values.model ?? 'demo',
      executionProvider: ep,
      gpu: int('gpu', values.gpu ?? '0', 0),
      steps,
      skip,
      maxSide: int('size', values.size ?? '512', 64),
      previewReps: int('reps', values.reps ?? '3', 1),
      unetReps: int('unet-reps', values['unet-reps'] ?? '3', 1),
      sessionTiming: !values['no-session-timing'],
      optimizerTiming: !values['no-optimizer-timing'],
      weightSets: !values['no-weight-sets'],
      ...(maxJobMemory !== undefined ? { maxJobMemory } : {}),
      ...(values['preview-decoder'] ? { previewDecoder: values['preview-decoder'] } : {}),
      ...(values.batches !== undefined ? { batches: batchSizes(values.batches) } : {}),
    },
    ...(values.jsonl ? { jsonl: values.jsonl } : {}),
    json: values.json === true,
  };
}

/** `--batches 1,2,4`: the batch sizes to time (1 to MAX_BATCH each); `--batches none` times none. */
function batchSizes(text: string): number[] {
  if (text === 'none') return [];
  return text.split(',').map((part) => {
    const b = int('batches', part.trim(), 1);
    if (b > MAX_BATCH) throw new UsageError(`--batches takes sizes from 1 to ${MAX_BATCH}, got ${b}`);
    return b;
  });
}

function int(name: string, text: string, min: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < min) throw new UsageError(`--${name} must be an integer ≥ ${min}, got ${JSON.stringify(text)}`);
  return n;
}

export async function main(argv: string[]): Promise<number> {
  const read = readCommandLine(argv, parseBenchCli, BENCH_USAGE);
  if ('exit' in read) return read.exit;
  const { cli } = read;
  try {
    const report = await runBench({ ...cli.options, log: cli.json ? undefined : (line) => console.log(line) });
    if (cli.json) {
      console.log(JSON.stringify(report, null, 2));
    } else {
      const lines = figureLines(report).map((l) => JSON.stringify(l));
      console.log('');
      console.log(`one JSON line per figure${cli.jsonl ? ` (also appended to ${cli.jsonl})` : ''}:`);
      for (const l of lines) console.log(l);
      if (cli.jsonl) appendFileSync(cli.jsonl, `${lines.join('\n')}\n`);
    }
    return 0;
  } catch (err) {
    console.error(`bench failed: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}

runIfEntry(import.meta.url, main);

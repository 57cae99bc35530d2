/**
 * npm run bench -- [--model DIR|demo] [--ep auto|cuda|webgpu|cpu] [--gpu N] [--steps N] [--skip N] [--size PX]
 *                  [--reps N] [--unet-reps N] [--no-session-timing] [--preview-decoder DIR] [--max-job-memory SIZE] [--jsonl FILE] [--json]
 * Defaults: the built-in demo model, provider `auto`, the paper's 100 steps, skip a tenth of the steps
 * (10 for 100), a 512-pixel image. Prints the table and the targets, then one JSON line per figure
 * (also appended to --jsonl FILE); --json prints the whole report as one JSON document instead.
 */
import { appendFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { runBench } from '../bench/bench.ts';
import { figureLines } from '../bench/report.ts';
import { EXECUTION_PROVIDERS, type ExecutionProviderRequest } from '../engine/onnx/runtime.ts';
import { jobMemory } from './options.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'demo' },
    ep: { type: 'string', default: 'auto' },
    gpu: { type: 'string', default: '0' },
    steps: { type: 'string', default: '100' },
    skip: { type: 'string' },
    size: { type: 'string', default: '512' },
    reps: { type: 'string', default: '3' },
    'unet-reps': { type: 'string', default: '3' },
    'no-session-timing': { type: 'boolean', default: false },
    'max-job-memory': { type: 'string' },
    'preview-decoder': { type: 'string' },
    jsonl: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});

function int(name: string, v: string | undefined, min: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    console.error(`bench: --${name} must be an integer ≥ ${min}, got ${v}`);
    process.exit(2);
  }
  return n;
}

const ep = values.ep as ExecutionProviderRequest;
if (!EXECUTION_PROVIDERS.includes(ep)) {
  console.error(`bench: --ep must be one of ${EXECUTION_PROVIDERS.join(', ')}, got ${values.ep}`);
  process.exit(2);
}
const steps = int('steps', values.steps, 2);
const skip = values.skip === undefined ? Math.floor(steps / 10) : int('skip', values.skip, 0);
if (steps <= skip) {
  console.error(`bench: --steps (${steps}) must be greater than --skip (${skip})`);
  process.exit(2);
}
try {
  const report = await runBench({
    model: values.model!,
    executionProvider: ep,
    gpu: int('gpu', values.gpu, 0),
    steps,
    skip,
    maxSide: int('size', values.size, 64),
    previewReps: int('reps', values.reps, 1),
    unetReps: int('unet-reps', values['unet-reps'], 1),
    sessionTiming: !values['no-session-timing'],
    ...(values['max-job-memory'] !== undefined ? { maxJobMemory: jobMemory(values['max-job-memory']) } : {}),
    ...(values['preview-decoder'] ? { previewDecoder: values['preview-decoder'] } : {}),
    log: values.json ? undefined : (line) => console.log(line),
  });
  if (values.json) {
    console.log(JSON.stringify(report, null, 2));
  } else {
    const lines = figureLines(report).map((l) => JSON.stringify(l));
    console.log('');
    console.log(`one JSON line per figure${values.jsonl ? ` (also appended to ${values.jsonl})` : ''}:`);
    for (const l of lines) console.log(l);
    if (values.jsonl) appendFileSync(values.jsonl, `${lines.join('\n')}\n`);
  }
} catch (err) {
  console.error(`bench failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}

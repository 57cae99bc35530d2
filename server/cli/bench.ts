/**
 * npm run bench -- [--model DIR|demo] [--ep auto|cuda|webgpu|cpu] [--steps N] [--skip N] [--size PX] [--reps N] [--json]
 * Defaults: the built-in demo model, provider `auto`, the paper's 100 steps / skip 10, a 512-pixel image.
 */
import { parseArgs } from 'node:util';
import { runBench } from '../bench/bench.ts';
import { EXECUTION_PROVIDERS, type ExecutionProviderRequest } from '../engine/onnx/runtime.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'demo' },
    ep: { type: 'string', default: 'auto' },
    steps: { type: 'string', default: '100' },
    skip: { type: 'string', default: '10' },
    size: { type: 'string', default: '512' },
    reps: { type: 'string', default: '3' },
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
const skip = int('skip', values.skip, 0);
if (steps <= skip) {
  console.error(`bench: --steps (${steps}) must be greater than --skip (${skip})`);
  process.exit(2);
}
try {
  const report = await runBench({
    model: values.model!,
    executionProvider: ep,
    steps,
    skip,
    maxSide: int('size', values.size, 64),
    previewReps: int('reps', values.reps, 1),
    log: values.json ? undefined : (line) => console.log(line),
  });
  if (values.json) console.log(JSON.stringify(report, null, 2));
} catch (err) {
  console.error(`bench failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}

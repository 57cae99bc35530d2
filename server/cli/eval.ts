/**
 * npm run eval -- --images DIR [--styles van-gogh/minecraft,mosaic/warhol] [--methods epsilon,attention,pixel,single]
 *   [--masks linear,logistic] [--graph comparison|FILE] [--model DIR|demo] [--clip DIR] [--lpips DIR] [--out DIR]
 *   [--size 512] [--steps 100] [--skip 10] [--guidance S] [--sharpness 20] [--seed 0] [--ep auto]
 * Reproduces the seed's tables over a folder of images (see server/eval/). Exit codes: 0 done, 1 failed, 2 bad usage.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { DEFAULT_CLIP_FOLDER } from '../../nodes/load-clip.ts';
import { EXECUTION_PROVIDERS, type ExecutionProviderRequest } from '../engine/runtime/runtime.ts';
import { readDataset, readStylePairs, DatasetError } from '../eval/dataset.ts';
import { writeReports, textTables } from '../eval/report.ts';
import { EvalError, MASKS, METHODS, runEval, type EvalConfig, type EvalEvent } from '../eval/run.ts';
import type { Graph } from '../protocol/graph.ts';
import { PROJECT_ROOT } from '../util/project.ts';
import { bar, formatDuration, type ProgressStream } from './fetch-progress.ts';

const USAGE = `Usage: npm run eval -- --images DIR [options]

Runs every image × style pair × mask × method through the comparison graph (one inversion per image,
shared by every method), scores each picture with the seed's metrics, and writes results.csv,
results.json and report.html to --out. Run it again with the same options to resume.

Options:
  --images DIR       images and a JSON of their source prompts (translate_text.json:
                     [{ "img_path": "cat.png", "encode_text": "a photo of a cat" }])
  --styles PAIRS     LEFT/RIGHT style presets, comma-separated, or a JSON file of pairs
                     (default van-gogh/minecraft,mosaic/andy-warhol-pop)
  --methods LIST     ${METHODS.join(',')} (default all; labels of the graph's Metrics nodes)
  --masks LIST       ${MASKS.join(',')} (default both)
  --graph TEMPLATE   a template name in graphs/ or a graph file (default comparison)
  --model DIR        Stable Diffusion ONNX folder, or demo (default demo)
  --clip DIR         CLIP split ONNX export (default ${DEFAULT_CLIP_FOLDER} when present; none: CLIP scores left out)
  --lpips DIR        LPIPS ONNX folder (docs/lpips-onnx.md; default none)
  --out DIR          output folder (default eval-results)
  --size PX          longest image side (default 512)   --steps N (default 100)   --skip N (default 10)
  --guidance S       decoder guidance of every method (default: the graph's, 20)
  --sharpness K      logistic mask sharpness (default 20)   --seed N (default 0)   --ep auto|cuda|webgpu|cpu
`;

const OPTIONS = {
  images: { type: 'string' },
  styles: { type: 'string', default: 'van-gogh/minecraft,mosaic/andy-warhol-pop' },
  methods: { type: 'string', default: METHODS.join(',') },
  masks: { type: 'string', default: MASKS.join(',') },
  graph: { type: 'string', default: 'comparison' },
  model: { type: 'string', default: 'demo' },
  clip: { type: 'string' },
  lpips: { type: 'string' },
  out: { type: 'string', default: 'eval-results' },
  size: { type: 'string', default: '512' },
  steps: { type: 'string', default: '100' },
  skip: { type: 'string', default: '10' },
  guidance: { type: 'string' },
  sharpness: { type: 'string', default: '20' },
  seed: { type: 'string', default: '0' },
  ep: { type: 'string', default: 'auto' },
  help: { type: 'boolean', short: 'h' },
} as const;

class UsageError extends Error {}

function num(name: string, v: string, opts: { min: number; integer?: boolean }): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < opts.min || (opts.integer && !Number.isInteger(n)))
    throw new UsageError(`--${name} must be ${opts.integer ? 'a whole number' : 'a number'} ≥ ${opts.min}, got ${v}`);
  return n;
}

function list(name: string, v: string, allowed?: readonly string[]): string[] {
  const items = v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = allowed ? items.filter((i) => !allowed.includes(i)) : [];
  if (items.length === 0 || bad.length > 0)
    throw new UsageError(`--${name}: ${bad.length ? `unknown ${bad.join(', ')}; ` : ''}choose from ${allowed?.join(', ')}`);
  return [...new Set(items)];
}

/** Progress on stderr: a redrawn bar on a terminal, one line per item elsewhere; ETA from this run's items. */
function progress(out: ProgressStream): (e: EvalEvent) => void {
  const t0 = performance.now();
  let computed = 0;
  let remaining = 0;
  return (e) => {
    if (e.kind === 'plan') {
      remaining = e.total - e.done;
      out.write(`eval: ${e.total} items, ${e.done} already done\n`);
      return;
    }
    const { item, index, total } = e;
    if (e.computed) {
      computed++;
      remaining--;
    }
    const elapsed = (performance.now() - t0) / 1000;
    const eta = computed > 0 ? formatDuration((elapsed / computed) * remaining) : '--';
    const what = `${item.image} ${item.pair} ${item.mask} ${item.method}${e.computed ? '' : ' (done before)'}`;
    if (out.isTTY)
      out.write(`\r\x1b[2K[${bar(index / total, 24)}] ${index}/${total} ${what} | ${formatDuration(elapsed)} | ETA ${eta}${index === total ? '\n' : ''}`);
    else out.write(`[${index}/${total}] ${what}${e.computed ? `: ${(item.ms / 1000).toFixed(1)} s` : ''} | elapsed ${formatDuration(elapsed)} | ETA ${eta}\n`);
  };
}

export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: false }));
  } catch (e) {
    process.stderr.write(`eval: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  let config: EvalConfig;
  let template: Graph;
  const ep = values.ep as ExecutionProviderRequest;
  try {
    if (!values.images) throw new UsageError('--images DIR is required');
    if (!EXECUTION_PROVIDERS.includes(ep)) throw new UsageError(`--ep must be one of ${EXECUTION_PROVIDERS.join(', ')}`);
    const steps = num('steps', values.steps, { min: 2, integer: true });
    const skip = num('skip', values.skip, { min: 0, integer: true });
    if (skip >= steps) throw new UsageError(`--skip (${skip}) must be below --steps (${steps})`);
    const graphFile = existsSync(values.graph) ? values.graph : path.join(PROJECT_ROOT, 'graphs', `${values.graph}.json`);
    if (!existsSync(graphFile)) throw new UsageError(`--graph: no template "${values.graph}" in graphs/ and no such file`);
    template = JSON.parse(await readFile(graphFile, 'utf8')) as Graph;
    const clip = values.clip ?? (existsSync(DEFAULT_CLIP_FOLDER) ? DEFAULT_CLIP_FOLDER : undefined);
    if (!values.clip && !clip)
      process.stderr.write(`eval: no --clip and no ${DEFAULT_CLIP_FOLDER}: CLIP scores are left out (npm run fetch-model -- --kind clip)\n`);
    config = {
      template: path.relative(PROJECT_ROOT, graphFile) || graphFile,
      model: values.model === 'demo' ? 'demo' : path.resolve(values.model),
      clip: clip && clip !== 'none' ? path.resolve(clip) : null,
      lpips: values.lpips ? path.resolve(values.lpips) : null,
      size: num('size', values.size, { min: 64, integer: true }),
      steps,
      skip,
      guidance: values.guidance !== undefined ? num('guidance', values.guidance, { min: 1 }) : null,
      sharpness: num('sharpness', values.sharpness, { min: 0.1 }),
      seed: num('seed', values.seed, { min: 0, integer: true }),
      methods: list('methods', values.methods, METHODS),
      masks: list('masks', values.masks, MASKS),
    };
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`eval: ${e.message}\n\n${USAGE}`);
    return 2;
  }
  const outDir = path.resolve(values.out);
  try {
    const { images, notes } = await readDataset(path.resolve(values.images));
    for (const n of notes) process.stderr.write(`eval: ${n}\n`);
    const pairs = await readStylePairs(values.styles);
    const results = await runEval({ images, pairs, config, template, outDir, executionProvider: ep, onEvent: progress(process.stderr) });
    await writeReports(outDir, results);
    process.stdout.write(`\n${textTables(results)}\nresults: ${path.join(outDir, 'results.csv')}, results.json, report.html\n`);
    return 0;
  } catch (e) {
    const known =
      e instanceof EvalError ||
      e instanceof DatasetError ||
      typeof (e as NodeJS.ErrnoException).code === 'string' ||
      (e as Error).name === 'NodeFailedError' ||
      (e as Error).name === 'InvalidGraphError';
    process.stderr.write(`eval: ${known ? (e as Error).message : (e as Error).stack}\n`);
    return 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  process.exitCode = await main(process.argv.slice(2));
}

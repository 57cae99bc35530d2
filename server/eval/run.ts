/**
 * `npm run eval`: every image × style pair × mask × method through one graph (the comparison
 * template by default) on one GraphRunner, so its cache shares one inversion per image across every
 * method, pair and mask, and mask-independent work (the single-prompt baseline) across masks.
 * Each finished item is written to results.json at once (atomically), with its picture; a run that
 * finds results.json of the same settings skips what it holds, so a killed run resumes where it died.
 */
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { createCatalog } from '../catalog.ts';
import { GraphRunner } from '../executor/graph-runner.ts';
import { withParams } from '../graph/with-params.ts';
import { nodeDefinitions } from '../../nodes/index.ts';
import { encodePng } from '../engine/images/pixels.ts';
import type { ImageValue, MetricsValue } from '../../nodes/values.ts';
import { makeMask } from '../engine/diffusion/mask.ts';
import type { MetricValues } from '../engine/metrics/names.ts';
import type { ExecutionProviderRequest } from '../engine/runtime/runtime.ts';
import type { Graph } from '../protocol/graph.ts';
import { storeUpload } from '../store/uploads.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import type { EvalImage, StylePair } from './dataset.ts';

export const METHODS = ['epsilon', 'attention', 'pixel', 'single'] as const;
export const MASKS = ['linear', 'logistic'] as const;

export interface EvalConfig {
  template: string;
  model: string;
  clip: string | null;
  lpips: string | null;
  size: number;
  steps: number;
  skip: number;
  /** Decoder guidance of every sampler; null keeps the template's. */
  guidance: number | null;
  sharpness: number;
  seed: number;
  methods: string[];
  masks: string[];
}

export interface ItemResult {
  key: string;
  image: string;
  pair: string;
  method: string;
  mask: string;
  source: string;
  width: number;
  height: number;
  metrics: MetricValues;
  /** The generated picture, relative to the out folder. */
  file: string;
  ms: number;
}

export interface EvalResults {
  format: 'dualstyle-eval';
  version: 1;
  config: EvalConfig;
  /** Hash of the template graph and the settings: results of other settings are never mixed in. */
  fingerprint: string;
  images: Record<string, { source: string; subject: string; file: string; original: string }>;
  masks: Record<string, string>;
  items: Record<string, ItemResult>;
}

export type EvalEvent = { kind: 'plan'; total: number; done: number } | { kind: 'item'; item: ItemResult; index: number; total: number; computed: boolean };

export class EvalError extends Error {
  override name = 'EvalError';
}

const itemKey = (image: string, pair: string, mask: string, method: string) => `${image}|${pair}|${mask}|${method}`;
const fileSafe = (s: string) => s.replace(/[^A-Za-z0-9_-]+/g, '-');

async function readPrevious(file: string): Promise<EvalResults | null> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as EvalResults;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new EvalError(`${file} exists but cannot be read (${(e as Error).message}); move it away or choose another --out`);
  }
}

/** The Metrics node of each method (by its label) and the node:output of the image it scores. */
function methodNodes(graph: Graph, methods: string[]): Map<string, { metrics: string; image: { node: string; output: string } }> {
  const out = new Map<string, { metrics: string; image: { node: string; output: string } }>();
  const labels: string[] = [];
  for (const n of graph.nodes.filter((n) => n.type === 'Metrics')) {
    const label = String(n.params.label ?? '') || n.id;
    labels.push(label);
    const edge = graph.edges.find((e) => e.to.node === n.id && e.to.input === 'image');
    if (edge && methods.includes(label)) out.set(label, { metrics: n.id, image: edge.from });
  }
  const missing = methods.filter((m) => !out.has(m));
  if (missing.length > 0) {
    throw new EvalError(
      `the graph has no Metrics node labelled ${missing.join(', ')} (its Metrics labels: ${labels.join(', ') || 'none'}); --methods picks Metrics nodes by label`,
    );
  }
  return out;
}

export interface RunEvalOptions {
  images: EvalImage[];
  pairs: StylePair[];
  config: EvalConfig;
  template: Graph;
  outDir: string;
  executionProvider: ExecutionProviderRequest;
  onEvent?: (e: EvalEvent) => void;
}

/** The folders named in the configuration are the operator's choice: allowed as models folders of their own. */
const modelFolder = (p: string | null | undefined) => (p && p !== 'demo' ? path.resolve(p) : (p ?? ''));

/** results.json of an earlier run of the same settings (to resume), else fresh results; results of other settings are refused. */
async function openResults(opts: RunEvalOptions, resultsFile: string): Promise<EvalResults> {
  const { images, pairs, config } = opts;
  const fingerprint = createHash('sha256')
    .update(JSON.stringify([opts.template, config, images, pairs]))
    .digest('hex')
    .slice(0, 16);
  const previous = await readPrevious(resultsFile);
  if (previous && previous.fingerprint !== fingerprint) {
    throw new EvalError(
      `${resultsFile} holds results of other settings (images, styles, graph or options differ); choose another --out, or delete it to start over`,
    );
  }
  return previous ?? { format: 'dualstyle-eval', version: 1, config, fingerprint, images: {}, masks: {}, items: {} };
}

/** What every item of a run shares. */
interface EvalRun {
  opts: RunEvalOptions;
  nodes: ReturnType<typeof methodNodes>;
  runner: GraphRunner;
  results: EvalResults;
  resultsFile: string;
  log: (line: string) => Promise<void>;
}

/** One item: which picture, style pair, mask and method. */
interface EvalItem {
  image: EvalImage;
  /** The picture as stored for the graph's Load Image. */
  upload: string;
  pair: StylePair;
  mask: string;
  method: string;
}

/** The template with the item's picture, prompts and mask and the configuration's model and sampler settings. */
function itemGraph(template: Graph, config: EvalConfig, { image, upload, pair, mask }: EvalItem): Graph {
  return withParams(template, {
    LoadModel: { model: modelFolder(config.model) },
    LoadImage: { image: upload, fit: 'crop', max_side: config.size },
    Invert: { steps: config.steps, skip: config.skip, seed: config.seed },
    Mask: { shape: mask, sharpness: config.sharpness },
    LoadClip: { clip: modelFolder(config.clip) },
    Metrics: { lpips: modelFolder(config.lpips) },
    ...(config.guidance !== null
      ? Object.fromEntries(['EpsilonMergeSampler', 'AttentionMergeSampler', 'SinglePromptSampler'].map((t) => [t, { guidance: config.guidance }]))
      : {}),
    source: { text: image.source },
    style1: { text: pair.style1, subject: image.subject },
    style2: { text: pair.style2, subject: image.subject },
    style_both: { text: pair.single, subject: image.subject },
  });
}

/** The original as the graph saw it (Load Image fits it to the sizes the model takes) and the mask pictures at its size, for the report. */
async function rememberOriginal(run: EvalRun, image: EvalImage, fitted: ImageValue): Promise<void> {
  const { outDir, config } = run.opts;
  const original = `images/${fileSafe(image.name)}-original.png`;
  await writeFile(path.join(outDir, original), await encodePng(fitted));
  run.results.images[image.name] = { source: image.source, subject: image.subject, file: image.file, original };
  for (const mask of config.masks) run.results.masks[`${mask}-${fitted.width}x${fitted.height}`] = await maskPicture(outDir, mask, config.sharpness, fitted);
}

/** Runs one item's graph up to its method's Metrics node, writes its picture and records it in results.json. */
async function runItem(run: EvalRun, item: EvalItem, key: string): Promise<ItemResult> {
  const { opts, runner, results } = run;
  const { image, pair, mask, method } = item;
  const t0 = performance.now();
  const { metrics: metricsId, image: from } = run.nodes.get(method)!;
  const summary = await runner.run(itemGraph(opts.template, opts.config, item), { outputs: [metricsId] });
  const value = (id: string, output: string) => runner.cache.get(summary.keys[id]!)?.outputs[output];
  const metrics = value(metricsId, 'metrics') as MetricsValue;
  const generated = value(from.node, from.output) as ImageValue;
  const loadImageId = opts.template.nodes.find((n) => n.type === 'LoadImage')?.id;
  if (!results.images[image.name] && loadImageId) await rememberOriginal(run, image, value(loadImageId, 'image') as ImageValue);
  const file = `images/${fileSafe(`${image.name}-${pair.name}-${mask}-${method}`)}.png`;
  await writeFile(path.join(opts.outDir, file), await encodePng(generated));
  const result: ItemResult = {
    key,
    image: image.name,
    pair: pair.name,
    method,
    mask,
    source: image.source,
    width: generated.width,
    height: generated.height,
    metrics: metrics.samples[0]!.values,
    file,
    ms: Math.round(performance.now() - t0),
  };
  results.items[key] = result;
  await writeFileAtomic(run.resultsFile, JSON.stringify(results, null, 1));
  await run.log(
    `computed ${key} in ${result.ms} ms (${summary.computed.length} nodes run, ${summary.cached.length} from cache${summary.cached.includes('invert') ? ', inversion from cache' : ''})`,
  );
  return result;
}

/** Every image × style pair × mask × method, in that order (one inversion per image), skipping what results.json holds. */
export async function runEval(opts: RunEvalOptions): Promise<EvalResults> {
  const { images, pairs, config, outDir } = opts;
  const nodes = methodNodes(opts.template, config.methods);
  await mkdir(path.join(outDir, 'images'), { recursive: true });
  const resultsFile = path.join(outDir, 'results.json');
  const results = await openResults(opts, resultsFile);
  const log = (line: string) => appendFile(path.join(outDir, 'eval.log'), `${new Date().toISOString()} ${line}\n`);
  const modelRoots = [config.model, config.clip, config.lpips].map(modelFolder).filter((p) => p !== '' && p !== 'demo');
  const runner = new GraphRunner({
    catalog: createCatalog(nodeDefinitions),
    dataDir: path.join(outDir, '.data'),
    executionProvider: opts.executionProvider,
    modelRoots,
  });
  const run: EvalRun = { opts, nodes, runner, results, resultsFile, log };
  const total = images.length * pairs.length * config.masks.length * config.methods.length;
  const done = Object.keys(results.items).length;
  opts.onEvent?.({ kind: 'plan', total, done });
  await log(`start: ${total} items, ${done} already done`);
  let index = 0;
  for (const image of images) {
    const upload = await storeUpload(path.join(outDir, '.data'), await readFile(image.file), 8192 * 8192);
    for (const pair of pairs) {
      for (const mask of config.masks) {
        for (const method of config.methods) {
          index++;
          const key = itemKey(image.name, pair.name, mask, method);
          const finished = results.items[key];
          if (finished) await log(`skip ${key} (done)`);
          const item = finished ?? (await runItem(run, { image, upload: upload.name, pair, mask, method }, key));
          opts.onEvent?.({ kind: 'item', item, index, total, computed: !finished });
        }
      }
    }
  }
  await writeFileAtomic(resultsFile, JSON.stringify(results, null, 1));
  return results;
}

/** The mask as the report draws it: M in gray (white = style 1) at the image's size. */
async function maskPicture(outDir: string, shape: string, sharpness: number, like: ImageValue): Promise<string> {
  const { width, height } = like;
  const m = makeMask({ shape: shape as 'linear' | 'logistic', direction: 'left-right', sharpness }).weights(width, height)[0]!;
  const data = new Float32Array(3 * m.length);
  for (let c = 0; c < 3; c++) data.set(m, c * m.length);
  const file = `images/mask-${shape}-${width}x${height}.png`;
  await writeFile(path.join(outDir, file), await encodePng({ width, height, data }));
  return file;
}

/**
 * Writes a Checkpoint as a diffusers ONNX folder the engine loads like any export: the project's own SD
 * 1.x graphs (unet.ts, text-encoder.ts, vae.ts) built with the checkpoint's weights, each streamed into
 * its weights.pb as the builder reaches it. Everything that can be wrong with the checkpoint (missing,
 * misshapen or extra tensors, a LoRA that does not fit) is found by a first pass that builds the graphs
 * from shapes alone, before a byte is written.
 */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { schedulerConfig } from '../demo/index.ts';
import { WeightRandom, type FloatType, type WeightSource } from '../demo/onnx-builder.ts';
import { textEncoderModel } from '../demo/text-encoder.ts';
import { buildUnet, unetConfig } from '../demo/unet.ts';
import { fullVaeDecoder, fullVaeEncoder } from '../demo/vae.ts';
import type { Checkpoint, Component } from './checkpoint.ts';
import { loraDeltas, type LoraRequest } from './lora.ts';
import { CheckpointWeights, refuseExtraKeys } from './weights.ts';
import { reusingBase } from './base-weights.ts';

/** Bump when the written graphs or weights change, so old cache folders are not reused. */
export const CONVERTER_VERSION = 1;

/** The marker in a converted folder's model_index.json. */
export const CONVERTED_MARKER_KEY = 'dualstyle_converted';

export interface WriteOptions {
  dtype?: FloatType;
  /** LoRAs to merge into the weights (see lora.ts). */
  loras?: LoraRequest[];
  /** Progress lines. */
  log?: (line: string) => void;
  /** Fraction of the weights read so far, 0..1. */
  progress?: (fraction: number) => void;
  /** Written into model_index.json's marker. */
  describe?: Record<string, unknown>;
  /**
   * The plain conversion of the same checkpoint (same dtype, no LoRAs), made on demand once the LoRAs are
   * known to fit: the weights they leave untouched are referenced there instead of written again
   * (base-weights.ts), so only the touched ones are new bytes.
   */
  base?: () => Promise<string>;
}

const json = (value: unknown): string => `${JSON.stringify(value, null, 1)}\n`;

type Build = (source: WeightSource, weightsFile: string | null) => { model: Uint8Array };

/** One graph of the folder: where it goes, which part of the checkpoint it reads, and its builder. */
interface ComponentGraph {
  dir: string;
  component: Component;
  build: Build;
}

/** The folder's four graphs, each built with the checkpoint's weights (to `weightsFile`) or, without one, from their shapes alone. */
function componentGraphs(ckpt: Checkpoint, dtype: FloatType): ComponentGraph[] {
  const { arch } = ckpt;
  const random = new WeightRandom(0); // unused: every weight comes from the source
  return [
    {
      dir: 'text_encoder',
      component: 'text',
      build: (source, weightsFile) =>
        textEncoderModel(random, arch.text, { dtype, inputIds: 'int32', source, ...(weightsFile ? { weightsFile } : { shapesOnly: true }) }),
    },
    {
      dir: 'unet',
      component: 'unet',
      build: (source, weightsFile) =>
        buildUnet(random, arch.contextDim, {
          arch: arch.unet,
          dtype,
          attention: 'bmm',
          upsample: 'skip',
          timestep: 'float32',
          source,
          ...(weightsFile ? { weightsFile } : { shapesOnly: true }),
        }),
    },
    {
      dir: 'vae_encoder',
      component: 'vae',
      build: (source, weightsFile) =>
        fullVaeEncoder(random, arch.vae, { dtype, channels: 4, source, ...(weightsFile ? { weightsFile } : { shapesOnly: true }) }),
    },
    {
      dir: 'vae_decoder',
      component: 'vae',
      build: (source, weightsFile) => fullVaeDecoder(random, arch.vae, { dtype, source, ...(weightsFile ? { weightsFile } : { shapesOnly: true }) }),
    },
  ];
}

/** Pass 1: shapes only. Missing or misshapen tensors throw from check(); unused ones are refused after. */
function checkAgainstGraphs(ckpt: Checkpoint, graphs: ComponentGraph[]): Map<Component, CheckpointWeights> {
  const checks = new Map<Component, CheckpointWeights>();
  for (const g of graphs) {
    const source = checks.get(g.component) ?? new CheckpointWeights(ckpt.parts[g.component]);
    checks.set(g.component, source);
    g.build(source, null);
  }
  for (const [component, source] of checks)
    refuseExtraKeys(
      ckpt.parts[component].label,
      source.unused((k) => ckpt.ignore(component, k)),
    );
  return checks;
}

/** Lets the event loop run (progress events, HTTP) between two graphs: each graph is built synchronously. */
const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Pass 2: write each graph and its weights (LoRAs merged). Progress counts the bytes of the tensors the graphs use (each is read once). */
async function writeGraphs(
  ckpt: Checkpoint,
  out: string,
  graphs: ComponentGraph[],
  checks: Map<Component, CheckpointWeights>,
  options: WriteOptions,
): Promise<void> {
  const log = options.log ?? (() => {});
  const deltas = options.loras?.length ? loraDeltas(options.loras, new Map([...checks].map(([c, s]) => [c, s.requested]))) : {};
  const base = await options.base?.();
  let total = 0;
  for (const [component, source] of checks) for (const k of source.used) total += ckpt.parts[component].file.info(k).byteLength;
  let done = 0;
  const sources = new Map<Component, CheckpointWeights>();
  for (const g of graphs) {
    const t0 = performance.now();
    const source =
      sources.get(g.component) ??
      new CheckpointWeights(ckpt.parts[g.component], deltas[g.component] ?? null, (bytes) => {
        done += bytes;
        options.progress?.(Math.min(1, done / Math.max(1, total)));
      });
    sources.set(g.component, source);
    mkdirSync(path.join(out, g.dir), { recursive: true });
    await yieldToLoop();
    const built = g.build(base ? reusingBase(source, base, out, g.dir) : source, path.join(out, g.dir, 'weights.pb'));
    writeFileSync(path.join(out, g.dir, 'model.onnx'), built.model);
    log(`  ${g.dir}: written (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  }
}

/** The diffusers configuration files: model_index.json (with the converter's marker), the scheduler's, the UNet's and the VAE's. */
function writeConfigs(ckpt: Checkpoint, out: string, dtype: FloatType, options: WriteOptions): void {
  const { arch } = ckpt;
  const vaeConfig = {
    _class_name: 'AutoencoderKL',
    block_out_channels: arch.vae.channels,
    latent_channels: 4,
    layers_per_block: arch.vae.layersPerBlock,
    norm_num_groups: arch.vae.groups,
    scaling_factor: arch.vaeScalingFactor,
  };
  const files: Record<string, string> = {
    'model_index.json': json({
      _class_name: 'OnnxStableDiffusionPipeline',
      _diffusers_version: '0.x',
      [CONVERTED_MARKER_KEY]: { version: CONVERTER_VERSION, from: path.basename(ckpt.label), dtype, ...options.describe },
      text_encoder: ['diffusers', 'OnnxRuntimeModel'],
      tokenizer: ['transformers', 'CLIPTokenizer'],
      unet: ['diffusers', 'OnnxRuntimeModel'],
      vae_encoder: ['diffusers', 'OnnxRuntimeModel'],
      vae_decoder: ['diffusers', 'OnnxRuntimeModel'],
      scheduler: ['diffusers', 'PNDMScheduler'],
    }),
    'scheduler/scheduler_config.json': ckpt.schedulerConfig ?? json(schedulerConfig()),
    'unet/config.json': json({ ...unetConfig(arch.contextDim, arch.unet), attention_head_dim: 'fixed' in arch.unet.heads ? arch.unet.heads.fixed : 8 }),
    'vae_encoder/config.json': json(vaeConfig),
    'vae_decoder/config.json': json(vaeConfig),
  };
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(out, rel)), { recursive: true });
    writeFileSync(path.join(out, rel), text);
  }
}

/** The tokenizer's files; vocab.json and merges.txt must be there, the others are copied where they are. */
function copyTokenizer(ckpt: Checkpoint, out: string): void {
  mkdirSync(path.join(out, 'tokenizer'), { recursive: true });
  for (const f of ['vocab.json', 'merges.txt', 'tokenizer_config.json', 'special_tokens_map.json']) {
    try {
      copyFileSync(path.join(ckpt.tokenizerDir, f), path.join(out, 'tokenizer', f));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || f === 'vocab.json' || f === 'merges.txt') throw e;
    }
  }
}

/**
 * Checks the whole checkpoint against the graphs (pass 1), then writes the folder into `out` (pass 2).
 * Each graph is built synchronously (an SD 1.5 UNet holds the thread for most of the conversion);
 * the event loop runs between graphs.
 */
export async function writeOnnxFolder(ckpt: Checkpoint, out: string, options: WriteOptions = {}): Promise<void> {
  const dtype = options.dtype ?? 'float32';
  const graphs = componentGraphs(ckpt, dtype);
  const checks = checkAgainstGraphs(ckpt, graphs);
  await writeGraphs(ckpt, out, graphs, checks, options);
  writeConfigs(ckpt, out, dtype, options);
  copyTokenizer(ckpt, out);
}

/**
 * The load-time graph optimizer: the fusions onnxruntime's transformer optimizer applies to SD UNets
 * (onnxruntime/python/tools/transformers, models/stable_diffusion), written here so users need no Python
 * tool. Applied to unet/model.onnx when a model loads, for the provider it runs on, and cached like the
 * attention-merge rewrite (attention/unet-cache.ts: beside the original, or in the studio's cache for a
 * read-only folder; weights stay references to the user's files). The attention-merge rewrite then works
 * on the optimized graph (it recognises fused MultiHeadAttention).
 *
 * Only fusions whose kernels exist for the provider are applied:
 * - attention → com.microsoft MultiHeadAttention (attention-fusion.ts): CPU and CUDA;
 * - GroupNorm (+SiLU) → com.microsoft GroupNorm, NHWC (group-norm-fusion.ts): CUDA only (no CPU kernel);
 * - GEGLU → BiasSplitGelu and the feed-forward's last Linear + residual → BiasAdd (bias-fusions.ts): CUDA
 *   only, at SD's widths (the kernels' limits).
 * Not done (yet): SkipLayerNorm and the NHWC convolutions of the Python tool.
 * DUALSTYLE_OPTIMIZE=off (or LoadOptions.optimize false) loads the graph as exported.
 */
import onnxProto from 'onnx-proto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { readdir, stat } from 'node:fs/promises';
import { DERIVED_UNET_PATTERN, prepareDerivedUnet, type PreparedUnet } from '../attention/unet-cache.ts';
import { convertToFloat16, isFloat16Graph } from './float16.ts';
import { fuseAttention } from './attention-fusion.ts';
import { fuseGroupNorm } from './group-norm-fusion.ts';
import { fuseBiasAdd, fuseBiasSplitGelu } from './bias-fusions.ts';

const { onnx } = onnxProto;

/** Bump when a fusion changes: optimized graphs of another version are derived again. */
export const OPTIMIZER_VERSION = 2;
/** metadata_props key of an optimized graph: the fusions applied, as JSON. */
export const OPTIMIZER_METADATA_KEY = 'dualstyle.optimizer';

export type Fusion = 'attention' | 'group-norm' | 'bias-split-gelu' | 'bias-add';
/** tensorrt: none of ours (TensorRT builds its own fused kernels from the plain graph, in fp16 when asked). */
export type OptimizerProvider = 'cpu' | 'cuda' | 'tensorrt' | 'webgpu';

/** What each fusion makes, for Load Model's note. */
const FUSED_OP: Record<Fusion, string> = {
  attention: 'MultiHeadAttention',
  'group-norm': 'GroupNorm (NHWC, SiLU)',
  'bias-split-gelu': 'BiasSplitGelu',
  'bias-add': 'BiasAdd',
};
/** The fusions whose kernels only onnxruntime's CUDA provider has. */
const CUDA_ONLY: readonly Fusion[] = ['group-norm', 'bias-split-gelu', 'bias-add'];
const NO_FUSIONS: Record<Fusion, number> = { attention: 0, 'group-norm': 0, 'bias-split-gelu': 0, 'bias-add': 0 };

/** The fusions whose kernels the provider has. */
export function fusionsFor(provider: OptimizerProvider): Fusion[] {
  return provider === 'cuda' ? ['attention', ...CUDA_ONLY] : provider === 'cpu' ? ['attention'] : [];
}

/** Whether the optimizer runs: LoadOptions.optimize when given, else unless DUALSTYLE_OPTIMIZE=off. */
export function optimizerEnabled(option?: boolean): boolean {
  return option ?? process.env.DUALSTYLE_OPTIMIZE !== 'off';
}

/** Applies `fusions` to a decoded model in place; returns how many of each were made. */
export function optimizeModel(model: onnxProto.onnx.IModelProto, fusions: readonly Fusion[]): Record<Fusion, number> {
  const counts: Record<Fusion, number> = { ...NO_FUSIONS };
  if (fusions.includes('attention')) counts.attention = fuseAttention(model).fused.length;
  if (fusions.includes('group-norm')) counts['group-norm'] = fuseGroupNorm(model).fused.length;
  // BiasAdd follows a BiasSplitGelu (as in onnxruntime's fusion_bias_add.py): GEGLUs first.
  if (fusions.includes('bias-split-gelu')) counts['bias-split-gelu'] = fuseBiasSplitGelu(model).fused.length;
  if (fusions.includes('bias-add')) counts['bias-add'] = fuseBiasAdd(model).fused.length;
  model.metadataProps = [
    ...(model.metadataProps ?? []).filter((p) => p.key !== OPTIMIZER_METADATA_KEY),
    { key: OPTIMIZER_METADATA_KEY, value: JSON.stringify({ version: OPTIMIZER_VERSION, fusions: counts }) },
  ];
  return counts;
}

export interface OptimizedUnet extends PreparedUnet {
  /** The variant name of derived files (attention-merge rewrites of this graph carry it). */
  variant: string;
  fusions: Record<Fusion, number>;
}

/** One line for Load Model: which fusions were applied, and which the provider lacks. */
export function describeFusions(provider: OptimizerProvider, fusions: Record<Fusion, number> | null): string {
  if (!fusions) return 'graph optimizer off';
  const made = (Object.entries(fusions) as [Fusion, number][]).filter(([, n]) => n > 0).map(([f, n]) => `${n} ${FUSED_OP[f]}`);
  const lacking = provider === 'cuda' ? '' : ` (${CUDA_ONLY.map((f) => FUSED_OP[f].replace(/ \(.*/, '')).join(', ')} fusions are CUDA only)`;
  return made.length ? `graph optimizer: ${made.join(', ')} fused${lacking}` : `graph optimizer: nothing to fuse${lacking}`;
}

/** The optimized UNet graph of a model folder for `provider`, derived on first use and cached. */
export async function prepareOptimizedUnet(modelDir: string, provider: OptimizerProvider, cacheDir?: string): Promise<OptimizedUnet> {
  const source = path.join(path.resolve(modelDir), 'unet', 'model.onnx');
  const fusions = fusionsFor(provider);
  const variant = `optimized-${provider}`;
  let counts: Record<Fusion, number> | null = null;
  const prepared = await prepareDerivedUnet(source, cacheDir, {
    stem: `model.${variant}`,
    tag: `optimizer v${OPTIMIZER_VERSION} ${fusions.join(',')}\0`,
    transform: (model) => {
      counts = optimizeModel(model, fusions);
      return Object.values(counts).reduce((a, b) => a + b, 0);
    },
  });
  return { ...prepared, variant, fusions: counts ?? (await readFusions(prepared.path)) };
}

/** The fusions recorded in an optimized graph (its weights are external: the file is small). */
async function readFusions(file: string): Promise<Record<Fusion, number>> {
  const model = onnx.ModelProto.decode(await readFile(file));
  const value = model.metadataProps?.find((p) => p.key === OPTIMIZER_METADATA_KEY)?.value;
  const parsed = value ? (JSON.parse(value) as { fusions?: Record<Fusion, number> }) : {};
  return { ...NO_FUSIONS, ...parsed.fusions };
}

/** Whether to convert the UNet to fp16 at load: LoadOptions.fp16 when given, else DUALSTYLE_FP16=on|off, else on CUDA only. */
export function float16Wanted(provider: OptimizerProvider, option?: boolean): boolean {
  if (option !== undefined) return option;
  const env = process.env.DUALSTYLE_FP16;
  if (provider === 'tensorrt') return false; // TensorRT's own fp16 (sessions.ts: ORT_TENSORRT_FP16_ENABLE)
  return env === 'on' ? true : env === 'off' ? false : provider === 'cuda';
}

/** Sizes and times of the weight files beside a graph: the fp16 weights are derived from them, not only from the graph. */
async function weightFilesIdentity(dir: string): Promise<string> {
  const parts: string[] = [];
  for (const name of (await readdir(dir)).sort()) {
    if (name.endsWith('.onnx') || DERIVED_UNET_PATTERN.test(name)) continue;
    const s = await stat(path.join(dir, name));
    if (s.isFile()) parts.push(`${name}:${s.size}:${s.mtimeMs}`);
  }
  return parts.join(',');
}

export const FLOAT16_VERSION = 2;

/**
 * The fp16 conversion (float16.ts) of the UNet graph `source` (unet/model.onnx or the optimizer's), derived on
 * first use and cached beside it with its fp16 weights file (or in the cache); null when it is fp16 already.
 */
export async function prepareFloat16Unet(source: string, variant: string, cacheDir?: string): Promise<(PreparedUnet & { variant: string }) | null> {
  if (isFloat16Graph(onnx.ModelProto.decode(await readFile(source)))) return null;
  const fp16Variant = `fp16${variant ? `-${variant}` : ''}`;
  const prepared = await prepareDerivedUnet(source, cacheDir, {
    stem: `model.${fp16Variant}`,
    tag: `float16 v${FLOAT16_VERSION} ${await weightFilesIdentity(path.dirname(source))}\0`,
    transform: async (model, _hash, weights) => (await convertToFloat16(model, path.dirname(source), (_name, bytes) => weights(bytes))).converted,
  });
  return { ...prepared, variant: fp16Variant };
}

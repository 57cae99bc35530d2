/**
 * fp32 → fp16 conversion of a UNet graph at load, as onnxruntime's float16 converter does it
 * (onnxruntime/python/tools/transformers/float16.py, used by its SD pipeline optimizer with keep_io_types
 * off): every float tensor becomes float16 (initializers clamped to fp16's range: |x| ≤ 65504, non-zero
 * |x| ≥ 5.96e-8), Constant / ConstantOfShape / Cast-to-float follow, and the graph's float inputs and
 * outputs become float16 (the pipeline reads dtypes from the session and converts its feeds). Kept in fp32,
 * with Casts around them, as the converter keeps them:
 * - the operators of its DEFAULT_OP_BLOCK_LIST (those onnxruntime has no fp16 kernel or precision for:
 *   Range, CumSum, Min, Max, TopK, Upsample, RoiAlign, NonMaxSuppression, the ML ops, …);
 * - the inputs it always keeps float (ALWAYS_FLOAT_INPUTS): Resize's scales, GroupNorm's γ and β;
 *   a constant used only there stays an fp32 initializer (no rounding of γ, β);
 * - and, beyond what float16.py does, the sinusoidal timestep embedding (timeEmbeddingRegion), which
 *   diffusers computes in fp32 in its own fp16 pipelines: with it in fp16 one tiny-sd UNet call is off by
 *   2.5× more (3.0e-3 against 1.2e-3) and the timestep input stays fp32.
 * Weights are read from the source's external data and written as fp16 into one weights file beside the
 * converted graph (half the bytes; the fp32 file is never loaded by the fp16 session).
 */
import { open as openFile } from 'node:fs/promises';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { float32ToFloat16Bits } from '../runtime/runtime.ts';
import { GraphIndex, type IModelProto, type INodeProto, type ITensorProto } from './graph.ts';

const { onnx } = onnxProto;
const DT = onnx.TensorProto.DataType;
const FLOAT: number = DT.FLOAT;
const FLOAT16: number = DT.FLOAT16;
const INT64: number = DT.INT64;
const BOOL: number = DT.BOOL;

/** onnxruntime float16.py's DEFAULT_OP_BLOCK_LIST. */
export const FP16_OP_BLOCK_LIST: readonly string[] = [
  'ArrayFeatureExtractor',
  'Binarizer',
  'CastMap',
  'CategoryMapper',
  'DictVectorizer',
  'FeatureVectorizer',
  'Imputer',
  'LabelEncoder',
  'LinearClassifier',
  'LinearRegressor',
  'Normalizer',
  'OneHotEncoder',
  'RandomUniformLike',
  'SVMClassifier',
  'SVMRegressor',
  'Scaler',
  'TreeEnsembleClassifier',
  'TreeEnsembleRegressor',
  'ZipMap',
  'NonMaxSuppression',
  'TopK',
  'RoiAlign',
  'Range',
  'CumSum',
  'Min',
  'Max',
  'Upsample',
];

/** onnxruntime float16.py's ALWAYS_FLOAT_INPUTS: input positions that stay float32. */
const ALWAYS_FLOAT_INPUTS: Record<string, number[]> = { Resize: [2], GroupNorm: [1, 2], SkipGroupNorm: [1, 2] };

const MAX_FINITE = 65504;
const MIN_POSITIVE = 5.96e-8;

/** Element types the operators produce where it is not their first input's (enough for SD UNets). */
function outputType(n: INodeProto, types: Map<string, number>): number | undefined {
  const first = (n.input ?? []).find((x) => x);
  switch (n.opType) {
    case 'Shape':
    case 'Size':
    case 'ArgMax':
    case 'ArgMin':
    case 'NonZero':
      return INT64;
    case 'Equal':
    case 'Less':
    case 'Greater':
    case 'LessOrEqual':
    case 'GreaterOrEqual':
    case 'And':
    case 'Or':
    case 'Not':
    case 'IsNaN':
    case 'IsInf':
      return BOOL;
    case 'Cast':
      return Number(n.attribute?.find((a) => a.name === 'to')?.i ?? 0);
    case 'Constant':
      return n.attribute?.find((a) => a.name === 'value')?.t?.dataType ?? undefined;
    case 'ConstantOfShape':
      return n.attribute?.find((a) => a.name === 'value')?.t?.dataType ?? FLOAT;
    case 'Where':
      return types.get(n.input?.[1] ?? '');
    default:
      return first ? types.get(first) : undefined;
  }
}

/** The element type of every tensor, propagated from the inputs, initializers and the rules above. */
function elementTypes(model: IModelProto): Map<string, number> {
  const g = model.graph!;
  const types = new Map<string, number>();
  for (const v of [...(g.input ?? []), ...(g.valueInfo ?? [])]) {
    const t = v.type?.tensorType?.elemType;
    if (v.name && t) types.set(v.name, t);
  }
  for (const t of g.initializer ?? []) types.set(t.name ?? '', t.dataType ?? 0);
  for (const n of g.node ?? []) {
    const t = outputType(n, types);
    if (t !== undefined) for (const o of n.output ?? []) if (o && !types.has(o)) types.set(o, t);
  }
  return types;
}

/** A float tensor's values: its float_data or raw data, or its external data read from `dir`. */
async function floatValues(t: ITensorProto, dir: string): Promise<Float32Array> {
  if (t.floatData?.length) return Float32Array.from(t.floatData);
  if (t.rawData && t.rawData.byteLength > 0) {
    const copy = new Uint8Array(t.rawData); // aligned
    return new Float32Array(copy.buffer, 0, copy.byteLength / 4);
  }
  const ext = new Map((t.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
  const location = ext.get('location');
  if (!location) return new Float32Array(0);
  const offset = Number(ext.get('offset') ?? 0);
  const count = (t.dims ?? []).reduce<number>((a, d) => a * Number(d), 1);
  const length = Number(ext.get('length') ?? count * 4);
  const file = await openFile(path.join(dir, location), 'r');
  try {
    const buf = new Uint8Array(length);
    await file.read(buf, 0, length, offset);
    return new Float32Array(buf.buffer, 0, length / 4);
  } finally {
    await file.close();
  }
}

function toHalf(values: Float32Array): Uint8Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    let v = values[i]!;
    if (Number.isFinite(v)) {
      const a = Math.abs(v);
      if (a > MAX_FINITE) v = Math.sign(v) * MAX_FINITE;
      else if (a > 0 && a < MIN_POSITIVE) v = Math.sign(v) * MIN_POSITIVE;
    }
    out[i] = float32ToFloat16Bits(v);
  }
  return new Uint8Array(out.buffer);
}

export interface Float16Conversion {
  /** Initializers converted, and those kept fp32 (always-float inputs). */
  converted: number;
  keptFloat: number;
  /** Nodes kept in fp32: block list, the timestep embedding (timeEmbeddingRegion); Casts inserted. */
  blocked: number;
  timeEmbedding: number;
  casts: number;
}

/** The nodes with fp32 Casts around the fp32 regions and before always-float inputs, and what those Casts are. */
interface CastPlan {
  nodes: INodeProto[];
  /** Tensors that stay float32: the fp32 sides of the inserted Casts. */
  fp32: Set<string>;
  inserted: Set<INodeProto>;
  /** Nodes that compute in fp32 (block list, time embedding): their Constants and Casts keep float32. */
  region: Set<INodeProto>;
}

/** Operators that only move data: the time embedding's fp32 region extends through them after Sin/Cos. */
const DATA_MOVEMENT = new Set(['Concat', 'Slice', 'Reshape', 'Unsqueeze', 'Squeeze', 'Transpose', 'Flatten', 'Identity', 'Split']);

/**
 * The sinusoidal timestep embedding, kept in fp32 as diffusers computes it in fp16 pipelines
 * (`get_timestep_embedding` in float32, then `.to(sample.dtype)` before the first Linear): Sin and Cos,
 * every float node they are computed from (the timestep's Expand/Unsqueeze/Cast, t·frequency, the
 * frequency constants) and the data movement after them (Concat, Slice) up to the first node that
 * computes with weights. In fp16 the product t·f (up to 1000) is rounded to 0.5 and each frequency to
 * 4.9e-4 relative (0.5 at t = 1000): the high-frequency components' phases would be off by up to ~0.7 rad.
 * Nodes producing a graph output are never taken in (the outputs are fp16).
 */
export function timeEmbeddingRegion(model: IModelProto, types: Map<string, number>): Set<INodeProto> {
  const g = new GraphIndex(model);
  const region = new Set<INodeProto>();
  const take = (n: INodeProto) => (n.output ?? []).every((o) => !g.outputs.has(o)) && region.add(n);
  const back = (tensor: string): void => {
    const p = g.producer.get(tensor);
    if (!p || region.has(p) || types.get(tensor) !== FLOAT || !take(p)) return;
    for (const x of p.input ?? []) if (x) back(x);
  };
  for (const n of model.graph?.node ?? []) {
    if ((n.opType !== 'Sin' && n.opType !== 'Cos') || !take(n)) continue;
    for (const x of n.input ?? []) if (x) back(x);
  }
  for (let grew = region.size > 0; grew;) {
    grew = false;
    for (const n of model.graph?.node ?? []) {
      if (region.has(n) || !DATA_MOVEMENT.has(n.opType ?? '')) continue;
      const floats = (n.input ?? []).filter((x) => x && types.get(x) === FLOAT);
      const fromRegion = (x: string) => region.has(g.producer.get(x)!) || g.isConstant(x);
      if (floats.some((x) => g.producer.has(x) && region.has(g.producer.get(x)!)) && floats.every(fromRegion) && take(n)) grew = true;
    }
  }
  return region;
}

/**
 * Step 1: the fp32 regions (block-listed operators, one node each, and the time embedding) read their fp16
 * inputs through Casts to fp32 and are read from outside through Casts back to fp16; always-float inputs are
 * cast to fp32 likewise.
 */
function insertCasts(
  g: onnxProto.onnx.IGraphProto,
  types: Map<string, number>,
  timeRegion: Set<INodeProto>,
  fp32Inputs: Set<string>,
  stats: Float16Conversion,
): CastPlan {
  const blockList = new Set(FP16_OP_BLOCK_LIST);
  const region = new Set([...timeRegion, ...(g.node ?? []).filter((n) => blockList.has(n.opType ?? ''))]);
  const plan: CastPlan = { nodes: [], fp32: new Set(), inserted: new Set(), region: new Set() };
  const { nodes, fp32 } = plan;
  const regionOutputs = new Set([...region].flatMap((n) => (n.output ?? []).filter((o) => o && types.get(o) === FLOAT)));
  const readOutside = new Set((g.node ?? []).filter((n) => !region.has(n)).flatMap((n) => n.input ?? []));
  let serial = 0;
  const cast = (input: string, output: string, to: number): INodeProto => {
    const n: INodeProto = { name: `fp16/Cast_${serial++}`, opType: 'Cast', input: [input], output: [output], attribute: [{ name: 'to', type: 2, i: to }] };
    plan.inserted.add(n);
    stats.casts++;
    return n;
  };
  for (const n of g.node ?? []) {
    const inRegion = region.has(n);
    const keep = ALWAYS_FLOAT_INPUTS[n.opType ?? ''] ?? [];
    const input = (n.input ?? []).map((x, i) => {
      if (!x || types.get(x) !== FLOAT) return x;
      if (regionOutputs.has(x) || fp32Inputs.has(x)) return inRegion || keep.includes(i) ? x : `${x}__fp16`;
      if (!(inRegion || keep.includes(i))) return x;
      const name = `${x}__fp32_${serial}`;
      nodes.push(cast(x, name, FLOAT));
      fp32.add(name);
      return name;
    });
    const copy = { ...n, input };
    nodes.push(copy);
    if (!inRegion) continue;
    plan.region.add(copy);
    if (blockList.has(n.opType ?? '')) stats.blocked++;
    else stats.timeEmbedding++;
    for (const o of n.output ?? []) if (regionOutputs.has(o) && readOutside.has(o)) nodes.push(cast(o, `${o}__fp16`, FLOAT16));
  }
  return plan;
}

/** Step 2: constants used only through the inserted fp32 Casts stay fp32 initializers, the Casts go; sets the graph's nodes and returns those constants. */
function keepFloatConstants(g: onnxProto.onnx.IGraphProto, { nodes, fp32, inserted }: CastPlan): Set<string> {
  const users = new Map<string, INodeProto[]>();
  for (const n of nodes) for (const x of n.input ?? []) if (x) users.set(x, [...(users.get(x) ?? []), n]);
  const initializers = new Map((g.initializer ?? []).map((t) => [t.name ?? '', t]));
  const keptFloat = new Set<string>();
  const rename = new Map<string, string>();
  for (const [name, list] of users) {
    const t = initializers.get(name);
    if (!t || t.dataType !== FLOAT || !list.every((n) => inserted.has(n) && fp32.has(n.output![0]!))) continue;
    keptFloat.add(name);
    for (const n of list) rename.set(n.output![0]!, name);
  }
  g.node = nodes
    .filter((n) => !(inserted.has(n) && rename.has(n.output![0]!)))
    .map((n) => (n.input?.some((x) => rename.has(x)) ? { ...n, input: n.input.map((x) => rename.get(x) ?? x) } : n));
  return keptFloat;
}

/** Step 3: Constant values and the targets of the graph's own Casts become float16 (the inserted Casts and the fp32 regions stay as they are). */
function halfConstantNodes(g: onnxProto.onnx.IGraphProto, { inserted, region }: CastPlan): void {
  const half = (t: ITensorProto | null | undefined) => {
    if (t?.dataType !== FLOAT) return;
    const values = t.floatData?.length ? Float32Array.from(t.floatData) : new Float32Array(new Uint8Array(t.rawData ?? []).buffer);
    t.dataType = FLOAT16;
    t.floatData = [];
    t.rawData = toHalf(values);
  };
  for (const n of g.node ?? []) {
    if (inserted.has(n) || region.has(n)) continue;
    if (n.opType === 'Constant' || n.opType === 'ConstantOfShape') half(n.attribute?.find((a) => a.name === 'value')?.t);
    if (n.opType === 'Cast') for (const a of n.attribute ?? []) if (a.name === 'to' && Number(a.i) === FLOAT) a.i = FLOAT16;
  }
}

/** Step 4: every other float initializer becomes float16, stored externally from `externalMin` bytes, embedded below. */
async function halfInitializers(
  g: onnxProto.onnx.IGraphProto,
  keptFloat: Set<string>,
  dir: string,
  external: (name: string, bytes: Uint8Array) => Promise<{ key: string; value: string }[]>,
  externalMin: number,
  stats: Float16Conversion,
): Promise<void> {
  for (const t of g.initializer ?? []) {
    if (t.dataType !== FLOAT) continue;
    if (keptFloat.has(t.name ?? '')) {
      stats.keptFloat++;
      continue;
    }
    const bytes = toHalf(await floatValues(t, dir));
    t.dataType = FLOAT16;
    t.floatData = [];
    if (bytes.byteLength >= externalMin) {
      t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
      t.externalData = await external(t.name ?? '', bytes);
      delete t.rawData;
    } else {
      t.dataLocation = onnx.TensorProto.DataLocation.DEFAULT;
      t.externalData = [];
      t.rawData = bytes;
    }
    stats.converted++;
  }
}

/**
 * Converts a decoded model in place. `dir` is where its external data lies; converted weights of at least
 * `externalMin` bytes are handed to `external` (which returns where it stored them, as external data
 * entries), smaller ones are embedded.
 */
export async function convertToFloat16(
  model: IModelProto,
  dir: string,
  external: (name: string, bytes: Uint8Array) => Promise<{ key: string; value: string }[]>,
  externalMin = 1024,
): Promise<Float16Conversion> {
  const g = model.graph!;
  const stats: Float16Conversion = { converted: 0, keptFloat: 0, blocked: 0, timeEmbedding: 0, casts: 0 };
  const types = elementTypes(model);
  const timeRegion = timeEmbeddingRegion(model, types);
  const index = new GraphIndex(model);
  // A float input read only by the time embedding (the timestep) stays float32: no rounding of t.
  const fp32Inputs = new Set(
    (g.input ?? [])
      .map((i) => i.name ?? '')
      .filter((x) => types.get(x) === FLOAT && !index.initializers.has(x) && (index.consumers.get(x) ?? []).every((n) => timeRegion.has(n))),
  );
  const plan = insertCasts(g, types, timeRegion, fp32Inputs, stats);
  const keptFloat = keepFloatConstants(g, plan);
  halfConstantNodes(g, plan);
  await halfInitializers(g, keptFloat, dir, external, externalMin, stats);
  // Step 5: the graph's float inputs and outputs become float16.
  for (const v of [...(g.input ?? []), ...(g.output ?? [])]) {
    if (v.type?.tensorType?.elemType === FLOAT && !fp32Inputs.has(v.name ?? '')) v.type.tensorType.elemType = FLOAT16;
  }
  g.valueInfo = []; // onnxruntime infers the types again
  return stats;
}

/** Whether a graph already computes in float16 (its first float input is fp16): nothing to convert. */
export function isFloat16Graph(model: IModelProto): boolean {
  const g = new GraphIndex(model);
  const inputs = (model.graph?.input ?? []).filter((i) => !g.initializers.has(i.name ?? ''));
  return inputs.some((i) => i.type?.tensorType?.elemType === FLOAT16);
}

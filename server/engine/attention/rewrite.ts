/**
 * Attention merge as an ONNX graph rewrite: any SD1.x UNet export becomes a UNet of N ≥ 2
 * conditionings with N more inputs, `encoder_hidden_states_2` … `encoder_hidden_states_N` and `mask`
 * [B|1, N − 1, h, w] (float32, latent size: the weights M_1..M_{N−1} of styles 1..N−1), in which every
 * cross-attention layer is computed once per conditioning and blended per token:
 * Σ_{k<N} M_k·A_k + (1 − Σ_{k<N} M_k)·A_N, each M_k resized to the layer's token grid (bilinear,
 * half-pixel, no antialias). Two styles are the paper's M·A1 + (1 − M)·A2, and that graph is the same,
 * byte for byte, as before N was general.
 *
 * Cross-attention is found by structure, not by names, so that TorchScript exports (MatMul with heads
 * in the batch), older Einsum exports, PyTorch 2 SDPA exports (Q and Kᵀ scaled separately) and exports
 * fused by onnxruntime's transformer optimizer (`com.microsoft` MultiHeadAttention) all work:
 *
 * - a value "comes from the text" when `encoder_hidden_states` reaches it (to_k / to_v, their reshapes,
 *   the scores QKᵀ, the Softmax, the probabilities times V, the heads merged back);
 * - a Softmax of such a value gives the attention probabilities; a fused MultiHeadAttention whose key or
 *   value comes from the text (separate K and V, or K/V packed into one [B, L, N, 2, H] input) gives the
 *   attention output itself;
 * - the first MatMul with a constant weight applied to a value derived from those is the output
 *   projection `to_out.0`. Its activation input A (shape [B, S, C]) is where the blend goes: to_out is
 *   affine and the weights sum to 1, so blending before it equals blending the attention outputs.
 *
 * Every node between `encoder_hidden_states` and A is duplicated once per other conditioning k, fed
 * `encoder_hidden_states_k` (the shadow graphs: K/V projections, and the fused node itself fed the same
 * query); the query path,
 * self-attention (attn1, also a fused `Attention`) and everything else are left untouched.
 * Initializers are kept as they are: weights stored in external files stay references to those files.
 *
 * The mask of a layer with S tokens is resized to that layer's own token grid: f = sqrt(h·w/S) as a real
 * number, grid (round(h/f), round(w/f)), as ../shared/fixtures/README.md states. That is also the grid
 * where stride-2 convolutions round odd sides up (a 12-wide latent goes 12 → 6 → 3 → 2), but not always:
 * a 5×8 latent has a 2×2 grid after two halvings, where rounding gives 2×3 (6 cells for 4 tokens). So the
 * rounded grid is used where it has S cells (then it is the halved grid: checked for every latent up to
 * 256×256 and 4 halvings), else the first grid of k = 0..7 halvings, rounding up then down, that has S cells.
 */
import onnxProto from 'onnx-proto';
import { constantTensors, walkFromText } from './text-walk.ts';
import { MAX_STYLES } from '../../protocol/painting.ts';

const { onnx } = onnxProto;
type IModelProto = onnxProto.onnx.IModelProto;
type INodeProto = onnxProto.onnx.INodeProto;
type ITensorProto = onnxProto.onnx.ITensorProto;
type IValueInfoProto = onnxProto.onnx.IValueInfoProto;
type IAttributeProto = onnxProto.onnx.IAttributeProto;

export const EHS2_INPUT = 'encoder_hidden_states_2';
export const MASK_INPUT = 'mask';

/** The input of conditioning k (1-based): encoder_hidden_states for k = 1 (the UNet's own), else encoder_hidden_states_k. */
export function conditioningInput(k: number): string {
  return k === 1 ? 'encoder_hidden_states' : `encoder_hidden_states_${k}`;
}
/**
 * Bump when the rewrite or its files change: cached rewritten graphs from another version are not
 * reused. 2: embedded weights are referenced in the source file, not copied. 3: the mask grid of a layer is
 * (round(h/f), round(w/f)) with f real (was h div round(f)); fused MultiHeadAttention is rewritten.
 */
export const REWRITE_VERSION = 3;
/** metadata_props key that marks (and describes) a rewritten graph. */
export const REWRITE_METADATA_KEY = 'dualstyle.attention_merge';

// Plain numbers: tensors carry their data type as a number (ITensorProto.dataType), compared with these.
const FLOAT: number = onnx.TensorProto.DataType.FLOAT;
/** Halvings of the latent the mask grids cover (SD 1.x has 3; 7 covers any UNet on a 128-pixel latent and more). */
const MAX_HALVINGS = 7;
const FLOAT16: number = onnx.TensorProto.DataType.FLOAT16;
const INT64 = onnx.TensorProto.DataType.INT64;

/** The graph has no cross-attention this rewrite can recognise (or only part of one). */
export class AttentionRewriteError extends Error {}

export interface CrossAttentionLayer {
  /** Name of the output projection node (to_out.0) whose input is blended. */
  projection: string;
  /** The attention output A that the projection consumes (c1 side). */
  attentionOutput: string;
}

export interface AttentionRewrite {
  model: IModelProto;
  layers: CrossAttentionLayer[];
  /** Nodes duplicated for each other conditioning. */
  shadowNodes: number;
  /** Conditionings N the rewritten UNet takes. */
  styles: number;
}

const EHS_NAMES = ['encoder_hidden_states', 'context'];
const WHAT_WE_LOOK_FOR =
  'projections of encoder_hidden_states (to_k, to_v) whose scores go through a Softmax and are applied to V, or feed ' +
  'the key/value of a fused com.microsoft MultiHeadAttention, and reach an output projection (a MatMul with a constant weight)';

function attr(name: string, value: number | string): IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  return typeof value === 'number' ? { name, type: T.INT, i: value } : { name, type: T.STRING, s: new TextEncoder().encode(value) };
}

function int64Tensor(name: string, values: number[]): ITensorProto {
  return { name, dataType: INT64, dims: [values.length], int64Data: values };
}

/** The scalar 1 in the model's float type (raw little-endian bytes: float32 or IEEE half 0x3C00). */
function oneTensor(name: string, dataType: number): ITensorProto {
  const raw = dataType === FLOAT16 ? new Uint8Array([0x00, 0x3c]) : new Uint8Array(new Float32Array([1]).buffer);
  return { name, dataType, dims: [], rawData: raw };
}

/** Finds the text-conditioning input the same way the pipeline binds it: by name, else the third input. */
function findEhsInput(inputs: IValueInfoProto[], initializerNames: Set<string>): IValueInfoProto {
  const real = inputs.filter((i) => !initializerNames.has(i.name ?? ''));
  const byName = real.find((i) => EHS_NAMES.includes(i.name ?? ''));
  const found = byName ?? real[2];
  if (!found) throw new AttentionRewriteError(`the graph has no encoder_hidden_states input (inputs: ${real.map((i) => i.name).join(', ')})`);
  return found;
}

/**
 * The element type of a constant tensor: its initializer's, or what the Cast / Constant producing it
 * says, else that of the first input it is computed from. The attention output A has the dtype of the
 * output projection's weight, which is what the blend must be computed in (fp16 exports compute in fp16
 * even where an input is declared otherwise).
 */
function constantType(name: string, producers: Map<string, INodeProto>, initializers: Map<string, ITensorProto>): number | null {
  for (let current: string | undefined = name, hops = 0; current && hops < 16; hops++) {
    const init = initializers.get(current);
    if (init) return init.dataType ?? null;
    const n = producers.get(current);
    if (!n) return null;
    if (n.opType === 'Cast') return Number(n.attribute?.find((a) => a.name === 'to')?.i ?? 0) || null;
    if (n.opType === 'Constant') return n.attribute?.find((a) => a.name === 'value')?.t?.dataType ?? null;
    current = n.input?.find((x) => x !== '');
  }
  return null;
}

interface Analysis {
  layers: (CrossAttentionLayer & { node: INodeProto; weight: string })[];
  /** Nodes to duplicate with the second conditioning. */
  shadow: Set<INodeProto>;
  /** The node that computes each tensor. */
  producer: Map<string, INodeProto>;
}

function analyse(nodes: INodeProto[], ehs: string, constant: Set<string>): Analysis {
  const { fromText, producer, attention, nestedSoftmax, projections } = walkFromText(nodes, ehs, constant);
  const crossSoftmax = [...attention, ...nestedSoftmax];
  const layers: Analysis['layers'] = projections.map((p, i) => ({ ...p, projection: p.node.name || `#${i}` }));

  // The shadow graph: every text-derived node the blended attention outputs depend on.
  const shadow = new Set<INodeProto>();
  const visit = (tensor: string) => {
    const n = producer.get(tensor);
    if (!n || shadow.has(n) || !fromText.has(tensor)) return;
    shadow.add(n);
    for (const x of n.input ?? []) if (x !== '') visit(x);
  };
  for (const l of layers) visit(l.attentionOutput);

  const orphan = crossSoftmax.find((s) => !shadow.has(s));
  if (orphan) {
    throw new AttentionRewriteError(
      `cross-attention ${orphan.opType} "${orphan.name || orphan.output?.[0]}" does not reach an output projection; looked for ${WHAT_WE_LOOK_FOR}`,
    );
  }
  return { layers, shadow, producer };
}

/** Names not yet used by any node, tensor or initializer of the graph. */
class Names {
  private readonly used = new Set<string>();
  constructor(g: onnxProto.onnx.IGraphProto) {
    for (const n of g.node ?? []) {
      if (n.name) this.used.add(n.name);
      for (const x of [...(n.input ?? []), ...(n.output ?? [])]) this.used.add(x);
    }
    for (const t of g.initializer ?? []) if (t.name) this.used.add(t.name);
    for (const v of [...(g.input ?? []), ...(g.output ?? [])]) if (v.name) this.used.add(v.name);
  }
  fresh(base: string): string {
    let name = base;
    for (let i = 1; this.used.has(name); i++) name = `${base}_${i}`;
    this.used.add(name);
    return name;
  }
}

/**
 * The rewritten graph as it is written: its nodes in order and the initializers it adds, every new
 * name fresh. The order of calls is the order of the file's nodes and initializers (and so its bytes).
 */
class GraphWriter {
  readonly nodes: INodeProto[] = [];
  readonly initializers: ITensorProto[] = [];
  private readonly ones = new Map<number, string>();
  constructor(readonly names: Names) {}

  /** Appends a node with one output and returns that output. */
  add(opType: string, ins: string[], scope: string, attrs: IAttributeProto[] = []): string {
    const name = this.names.fresh(`${scope}/${opType}`);
    const output = this.names.fresh(`${name}_output_0`);
    this.nodes.push({ name, opType, input: ins, output: [output], attribute: attrs });
    return output;
  }
  int64(base: string, values: number[]): string {
    const t = int64Tensor(this.names.fresh(`attention_merge/${base}`), values);
    this.initializers.push(t);
    return t.name!;
  }
  float(base: string, values: number[]): string {
    const t: ITensorProto = { name: this.names.fresh(`attention_merge/${base}`), dataType: FLOAT, dims: [values.length], floatData: values };
    this.initializers.push(t);
    return t.name!;
  }
  /** The scalar 1 in a float type, one initializer per type used. */
  one(dataType: number): string {
    let name = this.ones.get(dataType);
    if (!name) {
      name = this.names.fresh(`attention_merge/one_${dataType === FLOAT16 ? 'fp16' : 'fp32'}`);
      this.initializers.push(oneTensor(name, dataType));
      this.ones.set(dataType, name);
    }
    return name;
  }
}

/** What the rewrite starts from, once the model is known to be a UNet it can rewrite. */
interface Source {
  graph: onnxProto.onnx.IGraphProto & { node: INodeProto[] };
  /** The UNet's own inputs, before the rewrite adds any. */
  inputs: IValueInfoProto[];
  /** The text-conditioning input (conditioning 1). */
  ehsInfo: IValueInfoProto;
  initializerNames: Set<string>;
  /** The other conditionings k = 2..N. */
  others: number[];
}

/** Step 1: checks the style count, that the graph is not rewritten already and its opset, and finds its text input. */
function checkSource(model: IModelProto, styles: number): Source {
  if (!Number.isInteger(styles) || styles < 2 || styles > MAX_STYLES) {
    throw new AttentionRewriteError(`attention merge takes 2..${MAX_STYLES} conditionings, got ${styles}`);
  }
  const g = model.graph;
  if (!g?.node?.length) throw new AttentionRewriteError('the model has no graph');
  const initializerNames = new Set((g.initializer ?? []).map((t) => t.name ?? ''));
  const inputs = g.input ?? [];
  const others = Array.from({ length: styles - 1 }, (_, i) => i + 2);
  if (inputs.some((i) => i.name === EHS2_INPUT || i.name === MASK_INPUT || others.some((k) => i.name === conditioningInput(k)))) {
    throw new AttentionRewriteError(`the graph already has ${EHS2_INPUT} / ${MASK_INPUT} inputs: it is rewritten already`);
  }
  const opset = (model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
  if (opset && Number(opset.version) < 13) {
    throw new AttentionRewriteError(`the graph uses ONNX opset ${Number(opset.version)}; attention merge needs opset 13 or newer`);
  }
  const ehsInfo = findEhsInput(inputs, initializerNames);
  return { graph: { ...g, node: g.node }, inputs, ehsInfo, initializerNames, others };
}

/** Step 2: the cross-attention layers and their shadow graph; throws when there are none. */
function findCrossAttention(source: Source): Analysis {
  const ehs = source.ehsInfo.name!;
  const nodes = source.graph.node;
  const analysis = analyse(nodes, ehs, constantTensors(nodes, source.initializerNames));
  if (analysis.layers.length === 0) {
    throw new AttentionRewriteError(`no cross-attention found (input "${ehs}"); looked for ${WHAT_WE_LOOK_FOR}`);
  }
  return analysis;
}

/** The mask's sizes and grids, computed once in the graph and shared by all layers. */
interface MaskGrids {
  /** The int64 indices 0..3, for Gather. */
  idx: string[];
  one64: string;
  /** [0, −1, 1]: a resized mask as [B|1, S, 1]. */
  tokensShape: string;
  batch: string;
  /** Height, width and their product, as float. */
  height: string;
  width: string;
  area: string;
  /** The height and width after 0..MAX_HALVINGS stride-2 halvings, rounding up then down. */
  gridH: string;
  gridW: string;
  /** M_1..M_{N−1}: each channel of the mask input. */
  channels: string[];
}

/** Step 3: the mask's batch, height, width and h·w, the stride-2 grids, and its channels sliced once. */
function maskGrids(w: GraphWriter, styles: number, others: number[]): MaskGrids {
  const idx = [0, 1, 2, 3].map((i) => w.int64(`index_${i}`, [i]));
  const one64 = w.int64('one', [1]);
  const tokensShape = w.int64('tokens_shape', [0, -1, 1]);
  const scope = '/attention_merge/mask';
  const shape = w.add('Shape', [MASK_INPUT], scope);
  const batch = w.add('Gather', [shape, idx[0]!], scope, [attr('axis', 0)]);
  const side = (i: number) => w.add('Cast', [w.add('Gather', [shape, idx[i]!], scope, [attr('axis', 0)])], scope, [attr('to', FLOAT)]);
  const height = side(2);
  const width = side(3);
  const area = w.add('Mul', [height, width], scope);
  // The grids of 0..MAX_HALVINGS stride-2 halvings, rounding up (SD's 3×3 pad-1 convolutions) then down.
  const halvings = w.float(
    'halvings',
    Array.from({ length: MAX_HALVINGS + 1 }, (_, k) => 2 ** k),
  );
  const halved = (length: string) => ['Ceil', 'Floor'].map((op) => w.add(op, [w.add('Div', [length, halvings], scope)], scope));
  const gridH = w.add('Concat', halved(height), scope, [attr('axis', 0)]);
  const gridW = w.add('Concat', halved(width), scope, [attr('axis', 0)]);
  // Two styles: the mask input is M itself; more: channel k of it is M_{k+1}, sliced once for all layers.
  const channels =
    styles === 2
      ? [MASK_INPUT]
      : others.map((k) => w.add('Slice', [MASK_INPUT, w.int64(`channel_${k - 2}`, [k - 2]), w.int64(`channel_end_${k - 2}`, [k - 1]), one64], scope));
  return { idx, one64, tokensShape, batch, height, width, area, gridH, gridW, channels };
}

/** M_k at the token grid of the layer whose attention output is `attention`, as [B|1, S, 1] in `floatType`, per mask channel. */
function layerMasks(w: GraphWriter, mask: MaskGrids, attention: string, scope: string, floatType: number): string[] {
  const { idx } = mask;
  // S tokens: f = sqrt(h·w/S), a real number; the grid is (round(h/f), round(w/f)) (see the header),
  // else, where that grid does not have S cells, the first stride-2 grid that does.
  const tokens = w.add('Cast', [w.add('Gather', [w.add('Shape', [attention], scope), idx[1]!], scope, [attr('axis', 0)])], scope, [attr('to', FLOAT)]);
  const f = w.add('Sqrt', [w.add('Div', [mask.area, tokens], scope)], scope);
  const rounded = (length: string) => w.add('Round', [w.add('Div', [length, f], scope)], scope);
  const candidatesH = w.add('Concat', [rounded(mask.height), mask.gridH], scope, [attr('axis', 0)]);
  const candidatesW = w.add('Concat', [rounded(mask.width), mask.gridW], scope, [attr('axis', 0)]);
  const fits = w.add('Cast', [w.add('Equal', [w.add('Mul', [candidatesH, candidatesW], scope), tokens], scope)], scope, [attr('to', FLOAT)]);
  const first = w.add('ArgMax', [fits], scope, [attr('axis', 0), attr('keepdims', 1)]);
  const side = (candidates: string) => w.add('Cast', [w.add('Gather', [candidates, first], scope, [attr('axis', 0)])], scope, [attr('to', INT64)]);
  const sizes = w.add('Concat', [mask.batch, mask.one64, side(candidatesH), side(candidatesW)], scope, [attr('axis', 0)]);
  return mask.channels.map((channel) => {
    const resized = w.add('Resize', [channel, '', '', sizes], scope, [attr('mode', 'linear'), attr('coordinate_transformation_mode', 'half_pixel')]);
    const perToken = w.add('Reshape', [resized, mask.tokensShape], scope);
    return floatType === FLOAT ? perToken : w.add('Cast', [perToken], scope, [attr('to', floatType)]);
  });
}

/**
 * Step 4b: the blend before one output projection: Σ_{k<N} M_k·A_k + (1 − Σ_{k<N} M_k)·A_N, computed in
 * the projection's float type, then the projection itself fed the blend.
 */
function writeBlend(w: GraphWriter, mask: MaskGrids, projection: INodeProto, layer: Analysis['layers'][number], attention: string[], floatType: number): void {
  const scope = `/attention_merge${(projection.name ?? '').replace(/\/[^/]*$/, '') || `/layer_${w.nodes.length}`}`;
  if (floatType !== FLOAT && floatType !== FLOAT16) {
    throw new AttentionRewriteError(`the output projection ${layer.projection} has weights of ONNX type ${floatType}; only float32 and float16 are supported`);
  }
  const m = layerMasks(w, mask, attention[0]!, scope, floatType);
  // Two styles: Add(Mul(M, A1), Mul(Sub(1, M), A2)).
  let weighted = w.add('Mul', [m[0]!, attention[0]!], scope);
  let rest = w.add('Sub', [w.one(floatType), m[0]!], scope);
  for (let k = 1; k < m.length; k++) {
    weighted = w.add('Add', [weighted, w.add('Mul', [m[k]!, attention[k]!], scope)], scope);
    rest = w.add('Sub', [rest, m[k]!], scope);
  }
  const blended = w.add('Add', [weighted, w.add('Mul', [rest, attention.at(-1)!], scope)], scope);
  w.nodes.push({ ...projection, input: (projection.input ?? []).map((x) => (x === attention[0] ? blended : x)) });
}

/** Step 4c: a text-derived node's twin for each other conditioning k, fed that conditioning's twins. */
function writeShadows(w: GraphWriter, n: INodeProto, shadows: Map<number, Map<string, string>>): void {
  for (const [k, shadowOf] of shadows) {
    const outputs = (n.output ?? []).map((o) => {
      const twin = w.names.fresh(`${o}__c${k}`);
      shadowOf.set(o, twin);
      return twin;
    });
    w.nodes.push({
      ...n,
      name: w.names.fresh(`${n.name || n.opType}__c${k}`),
      input: (n.input ?? []).map((x) => shadowOf.get(x) ?? x),
      output: outputs,
    });
  }
}

/** Step 4: the graph's nodes in order, each output projection after its blend and each shadow node after its original. */
function writeNodes(w: GraphWriter, source: Source, analysis: Analysis, mask: MaskGrids): void {
  const { graph, ehsInfo, others } = source;
  /** The twin of each text-derived tensor for conditioning k (k = 2..N). */
  const shadows = new Map(others.map((k) => [k, new Map<string, string>([[ehsInfo.name!, conditioningInput(k)]])]));
  const projections = new Map(analysis.layers.map((l) => [l.node, l]));
  const initializersByName = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  const inputFloatType = ehsInfo.type?.tensorType?.elemType ?? FLOAT;
  for (const n of graph.node) {
    const layer = projections.get(n);
    if (layer) {
      const attention = [layer.attentionOutput, ...others.map((k) => shadows.get(k)!.get(layer.attentionOutput)!)];
      const floatType = constantType(layer.weight, analysis.producer, initializersByName) ?? inputFloatType;
      writeBlend(w, mask, n, layer, attention, floatType);
      continue;
    }
    w.nodes.push(n);
    if (analysis.shadow.has(n)) writeShadows(w, n, shadows);
  }
}

/** Step 5: the inputs of the other conditionings (typed like the first) and the mask [B|1, N − 1, h, w]. */
function rewrittenInputs(source: Source, styles: number): IValueInfoProto[] {
  const { inputs, ehsInfo, initializerNames, others } = source;
  const sampleDims = inputs.find((i) => i !== ehsInfo && !initializerNames.has(i.name ?? ''))?.type?.tensorType?.shape?.dim ?? [];
  const dim = (i: number, fallback: string) => sampleDims[i] ?? { dimParam: fallback };
  return [
    ...inputs,
    ...others.map((k) => ({ ...ehsInfo, name: conditioningInput(k) })),
    {
      name: MASK_INPUT,
      type: {
        tensorType: {
          elemType: FLOAT,
          shape: { dim: [{ dimParam: 'mask_batch' }, { dimValue: styles - 1 }, dim(2, 'height'), dim(3, 'width')] },
        },
      },
    },
  ];
}

/** Step 6: the metadata that marks the graph rewritten (the cache compares its version and source). */
function markRewritten(model: IModelProto, sourceHash: string, layers: number, styles: number): void {
  // Two styles keep the description they always had (and with it the file's bytes).
  const description = { version: REWRITE_VERSION, source: sourceHash, layers, ...(styles > 2 ? { styles } : {}) };
  model.metadataProps = [
    ...(model.metadataProps ?? []).filter((p) => p.key !== REWRITE_METADATA_KEY),
    { key: REWRITE_METADATA_KEY, value: JSON.stringify(description) },
  ];
}

/**
 * Rewrites a decoded UNet model in place into the UNet of `styles` conditionings and returns it with a
 * description of the layers found. Throws AttentionRewriteError, naming what it looked for, when the
 * graph has no recognisable cross-attention.
 */
export function rewriteForAttentionMerge(model: IModelProto, sourceHash = '', styles = 2): AttentionRewrite {
  const source = checkSource(model, styles);
  const analysis = findCrossAttention(source);
  const w = new GraphWriter(new Names(source.graph));
  const mask = maskGrids(w, styles, source.others);
  writeNodes(w, source, analysis, mask);
  const g = model.graph!;
  g.node = w.nodes;
  g.initializer = [...(g.initializer ?? []), ...w.initializers];
  g.input = rewrittenInputs(source, styles);
  markRewritten(model, sourceHash, analysis.layers.length, styles);
  const layers = analysis.layers.map(({ projection, attentionOutput }) => ({ projection, attentionOutput }));
  return { model, layers, shadowNodes: analysis.shadow.size, styles };
}

/** Decodes, rewrites (for `styles` conditionings) and re-encodes an ONNX file's bytes. */
export function rewriteOnnxBytes(bytes: Uint8Array, sourceHash = '', styles = 2): AttentionRewrite & { bytes: Uint8Array } {
  const model = onnx.ModelProto.decode(bytes);
  const result = rewriteForAttentionMerge(model, sourceHash, styles);
  return { ...result, bytes: onnx.ModelProto.encode(result.model).finish() };
}

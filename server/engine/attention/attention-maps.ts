/**
 * Cross-attention maps as extra outputs of a UNet graph: the "words" mask (a Mask shape that places
 * the source prompt's words where the picture shows them) needs, for each text token, where the
 * image attends to it. The UNet computes exactly that in every cross-attention layer (the Softmax of
 * Q·Kᵀ over the text tokens), so no extra model is needed: this rewrite adds one float32 output per
 * cross-attention layer, `attention_map_<i>` [B, S, L] (batch row, image token, text token), the
 * probabilities averaged over the heads. Everything else is left as it is: the noise output is the
 * same function, so the inversion can run on this graph instead of the plain one at no extra UNet call.
 *
 * It is a separate derived graph, not a variant of the attention-merge rewrite (rewrite.ts), and
 * finds cross-attention the same way (by structure: a Softmax whose scores come from
 * encoder_hidden_states, up to the output projection, a MatMul with a constant weight):
 * - MatMul / Einsum exports hold the heads in the batch ([B·heads, S, L], batch-major, as diffusers'
 *   head_to_batch_dim makes them), SDPA exports as [B, heads, S, L]: both are reshaped to
 *   [B, −1, S, L] and averaged over axis 1;
 * - fused com.microsoft MultiHeadAttention does not expose its probabilities, so they are computed again
 *   from its query and key (separate K, or K/V packed as [B, L, heads, 2, d]; the packed bias added to Q
 *   and K): softmax(Q·Kᵀ·scale) per head, scale the node's own or 1/√d.
 *
 * attentionMapAverage() turns the outputs of many calls into one map per text token at the latent grid:
 * averaged over layers (each resized bilinearly from its token grid, the grid rule of rewrite.ts) and
 * over the calls (the inversion's steps).
 */
import onnxProto from 'onnx-proto';
import { constantTensors, isFusedMultiHeadAttention, walkFromText } from './text-walk.ts';
import { resizeBilinear } from '../diffusion/bilinear.ts';

const { onnx } = onnxProto;
type IModelProto = onnxProto.onnx.IModelProto;
type INodeProto = onnxProto.onnx.INodeProto;
type ITensorProto = onnxProto.onnx.ITensorProto;
type IAttributeProto = onnxProto.onnx.IAttributeProto;

/** Bump when the derived graph changes: cached graphs of another version are not reused. */
export const ATTENTION_MAPS_VERSION = 1;
/** Graph outputs added by the rewrite: attention_map_0 … attention_map_{layers − 1}. */
export const ATTENTION_MAP_OUTPUT = 'attention_map_';
/** metadata_props key that marks (and describes) a graph with attention-map outputs. */
export const ATTENTION_MAPS_METADATA_KEY = 'dualstyle.attention_maps';

const FLOAT: number = onnx.TensorProto.DataType.FLOAT;
const INT64: number = onnx.TensorProto.DataType.INT64;
const EHS_NAMES = ['encoder_hidden_states', 'context'];

/** The graph has no cross-attention whose maps this rewrite can read. */
export class AttentionMapsError extends Error {}

export interface AttentionMapsRewrite {
  model: IModelProto;
  /** The added outputs, one per cross-attention layer, in graph order. */
  outputs: string[];
  /** Layers whose probabilities were computed again from a fused attention's Q and K. */
  fused: number;
}

function attr(name: string, value: number | number[]): IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  return Array.isArray(value) ? { name, type: T.INTS, ints: value } : { name, type: T.INT, i: value };
}

/** The graph the maps are read from, once it is known to be a UNet this rewrite can read. */
interface MapsSource {
  graph: onnxProto.onnx.IGraphProto & { node: INodeProto[] };
  opset: number;
  /** The text-conditioning input. */
  ehs: string;
  /** Each layer's Softmax (the probabilities) or fused attention, in graph order. */
  layers: INodeProto[];
}

/** Step 1: checks the graph (not rewritten already, opset 13 or newer), finds its text input and cross-attention layers. */
function checkMapsSource(model: IModelProto): MapsSource {
  const g = model.graph;
  if (!g?.node?.length) throw new AttentionMapsError('the model has no graph');
  if ((g.output ?? []).some((o) => o.name?.startsWith(ATTENTION_MAP_OUTPUT))) {
    throw new AttentionMapsError('the graph already has attention-map outputs: it is rewritten already');
  }
  const opset = Number((model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx')?.version ?? 13);
  if (opset < 13) throw new AttentionMapsError(`the graph uses ONNX opset ${opset}; attention maps need opset 13 or newer`);
  const initializerNames = new Set((g.initializer ?? []).map((t) => t.name ?? ''));
  const real = (g.input ?? []).filter((i) => !initializerNames.has(i.name ?? ''));
  const ehs = (real.find((i) => EHS_NAMES.includes(i.name ?? '')) ?? real[2])?.name;
  if (!ehs) throw new AttentionMapsError(`the graph has no encoder_hidden_states input (inputs: ${real.map((i) => i.name).join(', ')})`);
  // The same walk as the attention-merge rewrite's (text-walk.ts): each layer's probabilities, in order.
  const layers = walkFromText(g.node, ehs, constantTensors(g.node, initializerNames)).attention;
  if (layers.length === 0) {
    throw new AttentionMapsError(
      `no cross-attention found (input "${ehs}"): looked for a Softmax of scores computed from ${ehs}, or a com.microsoft MultiHeadAttention whose key comes from it`,
    );
  }
  return { graph: g as MapsSource['graph'], opset, ehs, layers };
}

/** Makes a value once, on first use. */
function once<T>(make: () => T): () => T {
  let value: T | undefined;
  return () => (value ??= make());
}

/**
 * The nodes and initializers the rewrite adds, every new name fresh. The order of calls is the order of
 * the file's nodes and initializers (and so its bytes).
 */
class MapsWriter {
  readonly used = new Set<string>();
  readonly added: INodeProto[] = [];
  readonly initializers: ITensorProto[] = [];
  /** Constants only fused layers use, made on first use (an unused initializer is an onnxruntime warning). */
  readonly biasRows = once(() => this.int64('bias_rows', [3, -1]));
  readonly first = once(() => this.int64('part_0', [0], true));
  readonly second = once(() => this.int64('part_1', [1], true));

  constructor(g: onnxProto.onnx.IGraphProto & { node: INodeProto[] }) {
    const initializerNames = (g.initializer ?? []).map((t) => t.name ?? '');
    for (const n of g.node) for (const x of [n.name ?? '', ...(n.input ?? []), ...(n.output ?? [])]) this.used.add(x);
    for (const x of [...initializerNames, ...(g.input ?? []).map((i) => i.name ?? ''), ...(g.output ?? []).map((o) => o.name ?? '')]) this.used.add(x);
  }
  fresh(base: string): string {
    let name = base;
    for (let i = 1; this.used.has(name); i++) name = `${base}_${i}`;
    this.used.add(name);
    return name;
  }
  /** Appends a node with one output (`output`, else a fresh name) and returns that output. */
  add(opType: string, ins: string[], scope: string, attrs: IAttributeProto[] = [], output?: string): string {
    const name = this.fresh(`${scope}/${opType}`);
    const out = output ?? this.fresh(`${name}_output_0`);
    this.added.push({ name, opType, input: ins, output: [out], attribute: attrs });
    return out;
  }
  int64(base: string, values: number[], scalar = false): string {
    const name = this.fresh(`attention_maps/${base}`);
    this.initializers.push({ name, dataType: INT64, dims: scalar ? [] : [values.length], int64Data: values });
    return name;
  }
  toFloat(x: string, scope: string): string {
    return this.add('Cast', [x], scope, [attr('to', FLOAT)]);
  }
}

const SCOPE = '/attention_maps';

/** Step 2: what every layer's head mean uses: the batch B (from encoder_hidden_states [B, L, D]) and the Slice and ReduceMean operands. */
function headMeanConstants(w: MapsWriter, ehs: string, opset: number) {
  const batch = w.add('Slice', [w.add('Shape', [ehs], SCOPE), w.int64('zero', [0]), w.int64('one', [1])], SCOPE);
  const lastTwo = w.int64('last_two', [-2]);
  const end = w.int64('end', [2 ** 31 - 1]);
  const minusOne = w.int64('minus_one', [-1]);
  const headsAxis = opset >= 18 ? [w.int64('heads_axis', [1])] : [];
  const headsAxisAttr = opset >= 18 ? [attr('keepdims', 0)] : [attr('axes', [1]), attr('keepdims', 0)];
  return { batch, lastTwo, end, minusOne, headsAxis, headsAxisAttr };
}
type HeadMeanConstants = ReturnType<typeof headMeanConstants>;

/** Probabilities [B·heads, S, L] or [B, heads, S, L] → their mean over the heads, [B, S, L]. */
function headMean(w: MapsWriter, c: HeadMeanConstants, probs: string, scope: string): string {
  const shape = w.add('Concat', [c.batch, c.minusOne, w.add('Slice', [w.add('Shape', [probs], scope), c.lastTwo, c.end], scope)], scope, [attr('axis', 0)]);
  return w.add('ReduceMean', [w.add('Reshape', [probs, shape], scope), ...c.headsAxis], scope, c.headsAxisAttr);
}

/** softmax(Q·Kᵀ·scale) per head of a fused MultiHeadAttention, [B, heads, S, L] in float32. */
function fusedProbabilities(w: MapsWriter, n: INodeProto, scope: string): string {
  const heads = Number(n.attribute?.find((a) => a.name === 'num_heads')?.i ?? 0);
  if (!(heads > 0)) throw new AttentionMapsError(`fused attention "${n.name}" has no num_heads attribute`);
  const headShape = w.int64('head_shape', [0, 0, heads, -1]);
  const [query, key, , bias] = [0, 1, 2, 3].map((i) => n.input?.[i] ?? '');
  const packed = !n.input?.[2];
  const biasRowsOf = bias ? w.add('Reshape', [w.toFloat(bias, scope), w.biasRows()], scope) : null;
  let q = w.toFloat(query!, scope);
  if (biasRowsOf) q = w.add('Add', [q, w.add('Gather', [biasRowsOf, w.first()], scope, [attr('axis', 0)])], scope);
  const qh = w.add('Transpose', [w.add('Reshape', [q, headShape], scope)], scope, [attr('perm', [0, 2, 1, 3])]);
  let kh: string;
  if (packed) {
    // K/V packed as [B, L, heads, 2, d]: K is part 0 of axis 3.
    kh = w.add('Gather', [w.toFloat(key!, scope), w.first()], scope, [attr('axis', 3)]);
  } else {
    let k = w.toFloat(key!, scope);
    if (biasRowsOf) k = w.add('Add', [k, w.add('Gather', [biasRowsOf, w.second()], scope, [attr('axis', 0)])], scope);
    kh = w.add('Reshape', [k, headShape], scope);
  }
  const kT = w.add('Transpose', [kh], scope, [attr('perm', [0, 2, 3, 1])]);
  const given = n.attribute?.find((a) => a.name === 'scale')?.f;
  let scale: string;
  if (given) {
    scale = w.fresh('attention_maps/scale');
    w.initializers.push({ name: scale, dataType: FLOAT, dims: [], floatData: [given] });
  } else {
    const d = w.toFloat(w.add('Slice', [w.add('Shape', [qh], scope), w.int64('head_dim', [3]), w.int64('head_dim_end', [4])], scope), scope);
    scale = w.add('Reciprocal', [w.add('Sqrt', [d], scope)], scope);
  }
  return w.add('Softmax', [w.add('Mul', [w.add('MatMul', [qh, kT], scope), scale], scope)], scope, [attr('axis', -1)]);
}

/** Step 4: the new outputs declared [batch, tokens, text tokens] in float32, and the metadata that marks the graph. */
function declareMaps(model: IModelProto, w: MapsWriter, outputs: string[], fused: number, sourceHash: string): void {
  const g = model.graph!;
  g.node = [...(g.node ?? []), ...w.added];
  g.initializer = [...(g.initializer ?? []), ...w.initializers];
  g.output = [
    ...(g.output ?? []),
    ...outputs.map((name) => ({
      name,
      type: { tensorType: { elemType: FLOAT, shape: { dim: [{ dimParam: 'batch' }, { dimParam: `${name}_tokens` }, { dimParam: 'text_tokens' }] } } },
    })),
  ];
  model.metadataProps = [
    ...(model.metadataProps ?? []).filter((p) => p.key !== ATTENTION_MAPS_METADATA_KEY),
    { key: ATTENTION_MAPS_METADATA_KEY, value: JSON.stringify({ version: ATTENTION_MAPS_VERSION, source: sourceHash, layers: outputs.length, fused }) },
  ];
}

/**
 * Adds the attention-map outputs to a decoded UNet model, in place. Throws AttentionMapsError naming
 * what it looked for when the graph has no recognisable cross-attention.
 */
export function rewriteForAttentionMaps(model: IModelProto, sourceHash = ''): AttentionMapsRewrite {
  const { graph, opset, ehs, layers } = checkMapsSource(model);
  const w = new MapsWriter(graph);
  const constants = headMeanConstants(w, ehs, opset);
  // Step 3: each layer's probabilities (a fused layer's computed again), averaged over the heads, as an output.
  const outputs: string[] = [];
  let fused = 0;
  for (const [i, n] of layers.entries()) {
    const scope = `${SCOPE}/layer_${i}`;
    const probs = isFusedMultiHeadAttention(n) ? (fused++, fusedProbabilities(w, n, scope)) : w.toFloat(n.output![0]!, scope);
    const name = `${ATTENTION_MAP_OUTPUT}${i}`;
    if (w.used.has(name)) throw new AttentionMapsError(`the graph already uses the name ${name}`);
    w.used.add(name);
    w.added.push({ name: w.fresh(`${scope}/Identity`), opType: 'Identity', input: [headMean(w, constants, probs, scope)], output: [name] });
    outputs.push(name);
  }
  declareMaps(model, w, outputs, fused, sourceHash);
  return { model, outputs, fused };
}

/** Decodes, rewrites and re-encodes an ONNX file's bytes. */
export function attentionMapsOnnxBytes(bytes: Uint8Array, sourceHash = ''): AttentionMapsRewrite & { bytes: Uint8Array } {
  const model = onnx.ModelProto.decode(bytes);
  const result = rewriteForAttentionMaps(model, sourceHash);
  return { ...result, bytes: onnx.ModelProto.encode(result.model).finish() };
}

/**
 * The token grid of a layer with S tokens on an h×w latent: f = sqrt(h·w/S) as a real number, grid
 * (round(h/f), round(w/f)) where that has S cells, else the first grid of 0..7 stride-2 halvings
 * (rounding up, then down) that does; the rule the attention-merge rewrite resizes its masks by.
 */
export function tokenGrid(h: number, w: number, S: number): { gh: number; gw: number } {
  const f = Math.sqrt((h * w) / S);
  const candidates: [number, number][] = [[Math.round(h / f), Math.round(w / f)]];
  for (const round of [Math.ceil, Math.floor]) {
    for (let k = 0; k <= 7; k++) candidates.push([round(h / 2 ** k), round(w / 2 ** k)]);
  }
  const fit = candidates.find(([a, b]) => a * b === S);
  if (!fit) throw new AttentionMapsError(`an attention layer has ${S} image tokens, which is no grid of a ${w}×${h} latent`);
  return { gh: fit[0], gw: fit[1] };
}

/**
 * The running mean of attention maps over layers and calls, for one batch row: one map per text token at
 * the latent grid. Sums are kept at each layer's own token grid and resized once, at the end (resizing
 * is linear, so the mean of resized maps is the resized mean).
 */
export class AttentionMapAverage {
  private readonly sums = new Map<number, Float64Array>();
  private layers = 0;
  private textTokens = 0;

  constructor(
    readonly width: number,
    readonly height: number,
  ) {}

  /** Adds row `row` of one layer's output [B, S, L] (`dims` as the tensor reports them). */
  add(data: Float32Array, dims: readonly number[], row: number): void {
    const [B, S, L] = dims as [number, number, number];
    if (dims.length !== 3 || !(row >= 0 && row < B)) throw new Error(`an attention map must be [B, S, L] with row ${row} < B, got [${dims.join(', ')}]`);
    if (this.textTokens && this.textTokens !== L) throw new Error(`attention maps over ${L} text tokens after maps over ${this.textTokens}`);
    this.textTokens = L;
    let sum = this.sums.get(S);
    if (!sum) {
      tokenGrid(this.height, this.width, S); // refuse a layer with no grid now, not at the end
      sum = new Float64Array(S * L);
      this.sums.set(S, sum);
    }
    const base = row * S * L;
    for (let i = 0; i < S * L; i++) sum[i]! += data[base + i]!;
    this.layers++;
  }

  /** Layer maps added so far (layers × calls). */
  get count(): number {
    return this.layers;
  }

  /** The mean map of every text token, [L, height, width] (token-major). */
  result(): { tokens: number; maps: Float32Array } {
    const { width: w, height: h } = this;
    if (this.layers === 0) throw new Error('no attention maps were recorded');
    const L = this.textTokens;
    const maps = new Float32Array(L * w * h);
    for (const [S, sum] of this.sums) {
      const { gh, gw } = tokenGrid(h, w, S);
      const plane = new Float32Array(S);
      for (let t = 0; t < L; t++) {
        for (let s = 0; s < S; s++) plane[s] = sum[s * L + t]! / this.layers;
        const resized = resizeBilinear(plane, gw, gh, w, h);
        const out = maps.subarray(t * w * h, (t + 1) * w * h);
        for (let p = 0; p < w * h; p++) out[p]! += resized[p]!;
      }
    }
    return { tokens: L, maps };
  }
}

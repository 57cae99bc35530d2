/**
 * Attention fusion: the unfused attention of an SD 1.x export, in every style the attention-merge rewrite
 * recognises (TorchScript MatMul with heads in the batch, also with diffusers' baddbmm zero term; Einsum;
 * PyTorch 2 SDPA with Q and Kᵀ scaled apart), becomes one `com.microsoft` MultiHeadAttention(Q, K, V)
 * with num_heads and scale, as onnxruntime's transformer optimizer does (fusion_attention_unet.py).
 * MultiHeadAttention has a CPU kernel and a CUDA one (flash / memory-efficient attention there).
 *
 * Found by meaning, not names: from each Softmax, the scores are followed back to a MatMul/Einsum of Q
 * and K, each traced back through Reshape/Transpose and constant scalings to a rank-3 projection
 * [B, S, C] (a MatMul with a constant weight, optionally plus a constant bias); the probabilities times V
 * likewise; then forward through Reshape/Transpose to the heads merged back, [B, S, C]. Every axis is
 * tracked by its meaning (B, S or L, H, d, B·H), so only the standard split and merge of heads fuses; the
 * number of heads is read from the split's shape constant (H, or d with H = C/d) and the scale is the
 * product of the constant factors met on the way. Anything else is left as it is.
 */
import {
  attribute,
  ensureDomain,
  GraphIndex,
  intAttr,
  intsAttr,
  MICROSOFT,
  removeDeadNodes,
  stringAttr,
  tensorValues,
  type IModelProto,
  type INodeProto,
} from './graph.ts';

type Axis = 'B' | 'S' | 'L' | 'C' | 'H' | 'd' | 'BH';

interface Traced {
  /** The projection [B, seq, C] the path starts from. */
  root: string;
  /** Axes of the tensor at the end of the path. */
  axes: Axis[];
  heads: number;
  scale: number;
}

/** The fused layers: their MultiHeadAttention nodes' names. */
export interface AttentionFusion {
  fused: string[];
}

/** The elements of a shape tensor: a constant, or a Concat of constants and one-element pieces; null entries unknown. */
function shapeElements(g: GraphIndex, tensor: string): (number | null)[] | null {
  const c = g.constant(tensor);
  if (c) return c.values;
  const n = g.producer.get(tensor);
  if (n?.opType !== 'Concat') return null;
  const out: (number | null)[] = [];
  for (const part of n.input ?? []) {
    const k = g.constant(part);
    if (k) {
      out.push(...k.values);
      continue;
    }
    const p = g.producer.get(part);
    if (p?.opType === 'Unsqueeze') out.push(null);
    else if (p?.opType === 'Slice') {
      const [starts, ends] = [g.constant(p.input?.[1] ?? ''), g.constant(p.input?.[2] ?? '')];
      const len = starts && ends && starts.values[0]! >= 0 && ends.values[0]! >= 0 ? ends.values[0]! - starts.values[0]! : -1;
      if (len <= 0 || len > 4) return null;
      for (let i = 0; i < len; i++) out.push(null);
    } else return null;
  }
  return out;
}

/** Channels C of a projection: the constant weight's output width (MatMul, optionally + bias). */
function projectionWidth(g: GraphIndex, tensor: string): number | null {
  let n = g.producer.get(tensor);
  if (n?.opType === 'Add') {
    const [a, b] = n.input ?? [];
    const matmul = [a, b].map((x) => g.producer.get(x ?? '')).find((p) => p?.opType === 'MatMul');
    const other = matmul === g.producer.get(a ?? '') ? b : a;
    if (!matmul || !g.isConstant(other ?? '')) return null;
    n = matmul;
  }
  if (n?.opType !== 'MatMul') return null;
  const w = g.initializers.get(n.input?.[1] ?? '');
  const dims = w?.dims?.map(Number);
  return dims?.length === 2 ? dims[1]! : null;
}

/** The axes after a Reshape of `axes` to `shape` (split or merge of heads), with the heads it implies; null if not one of those. */
function reshapeAxes(axes: Axis[], shape: (number | null)[], channels: number | null, heads: number): { axes: Axis[]; heads: number } | null {
  const key = axes.join(',');
  if (shape.length === 4 && axes.length === 3 && axes[2] === 'C') {
    if (!channels) return null;
    const h = shape[2]! > 0 ? shape[2]! : shape[3]! > 0 ? channels / shape[3]! : 0;
    if (!Number.isInteger(h) || h <= 0 || channels % h !== 0 || (heads && h !== heads)) return null;
    return { axes: [axes[0]!, axes[1]!, 'H', 'd'], heads: h };
  }
  if (shape.length === 4 && key.startsWith('BH,')) return { axes: ['B', 'H', axes[1]!, axes[2]!], heads };
  if (shape.length === 3 && axes.length === 4 && axes[0] === 'B' && axes[1] === 'H') return { axes: ['BH', axes[2]!, axes[3]!], heads };
  if (shape.length === 3 && axes.length === 4 && axes[2] === 'H' && axes[3] === 'd') return { axes: [axes[0]!, axes[1]!, 'C'], heads };
  return null;
}

/**
 * Follows `tensor` back through Reshape, Transpose and constant scalings to a projection [B, seq, C],
 * tracking the axes forward from it; null when the path is anything else.
 */
function traceBack(g: GraphIndex, tensor: string, seq: Axis): Traced | null {
  const path: INodeProto[] = [];
  let t = tensor;
  for (let hops = 0; hops < 12; hops++) {
    const n = g.producer.get(t);
    if (!n) break;
    if (n.opType === 'Reshape' || n.opType === 'Transpose') {
      path.unshift(n);
      t = n.input![0]!;
      continue;
    }
    if ((n.opType === 'Mul' || n.opType === 'Div') && n.input?.length === 2) {
      const c = g.scalar(n.input[1]!);
      if (c !== null) {
        path.unshift(n);
        t = n.input[0]!;
        continue;
      }
      if (n.opType === 'Mul' && g.scalar(n.input[0]!) !== null) {
        path.unshift(n);
        t = n.input[1]!;
        continue;
      }
    }
    break;
  }
  const channels = projectionWidth(g, t);
  if (!channels || path.length === 0) return null;
  let axes: Axis[] = ['B', seq, 'C'];
  let heads = 0;
  let scale = 1;
  for (const n of path) {
    if (n.opType === 'Transpose') {
      const perm = intsAttr(n, 'perm');
      if (!perm || perm.length !== axes.length) return null;
      axes = perm.map((p) => axes[p]!);
    } else if (n.opType === 'Reshape') {
      const shape = shapeElements(g, n.input![1]!);
      const next = shape && reshapeAxes(axes, shape, channels, heads);
      if (!next) return null;
      ({ axes, heads } = next);
    } else {
      const c = g.scalar(n.input![1]!) ?? g.scalar(n.input![0]!)!;
      scale *= n.opType === 'Div' ? 1 / c : c;
    }
  }
  return heads > 0 ? { root: t, axes, heads, scale } : null;
}

/** Whether `tensor` is zero whatever the inputs: ConstantOfShape(0), or a constant-shaped tensor times 0 (baddbmm with beta 0). */
function isZero(g: GraphIndex, tensor: string): boolean {
  const n = g.producer.get(tensor);
  if (!n) return false;
  if (n.opType === 'ConstantOfShape') {
    const v = n.attribute?.find((a) => a.name === 'value')?.t;
    return !v || (tensorValues(v)?.every((x) => x === 0) ?? false);
  }
  if (n.opType === 'Mul') {
    const [a, b] = n.input ?? [];
    const finite = (x: string) => g.producer.get(x)?.opType === 'ConstantOfShape' || g.scalar(x) !== null;
    return (g.scalar(b ?? '') === 0 && finite(a ?? '')) || (g.scalar(a ?? '') === 0 && finite(b ?? ''));
  }
  return false;
}

/** Float and float16: a Cast between them around the probabilities is the export's dtype bookkeeping. */
const FLOAT_TYPES = new Set([1, 10]);

/**
 * The one consumer of a tensor that computes with its values (Shape nodes only read its shape, for the
 * reshapes this fusion removes; any that stay keep their part of the old path alive, which stays correct).
 */
function next(g: GraphIndex, tensor: string): INodeProto | null {
  if (g.outputs.has(tensor)) return null;
  const users = (g.consumers.get(tensor) ?? []).filter((n) => n.opType !== 'Shape');
  return users.length === 1 ? users[0]! : null;
}

const same = (a: Axis[], b: Axis[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/** Tries to fuse the attention around one Softmax; returns the new node, or null to leave it. */
function fuseAt(g: GraphIndex, softmax: INodeProto): { node: INodeProto; output: string } | null {
  const axis = intAttr(softmax, 'axis') ?? -1;
  // Scores: back through constant scalings and a zero term to the Q·Kᵀ product.
  let scale = 1;
  let t = softmax.input![0]!;
  let scores: INodeProto | undefined;
  for (let hops = 0; hops < 6; hops++) {
    const n = g.producer.get(t);
    if (!n) return null;
    if ((n.opType === 'Mul' || n.opType === 'Div') && g.scalar(n.input![1]!) !== null) {
      const c = g.scalar(n.input![1]!)!;
      scale *= n.opType === 'Div' ? 1 / c : c;
      t = n.input![0]!;
    } else if (n.opType === 'Mul' && g.scalar(n.input![0]!) !== null) {
      scale *= g.scalar(n.input![0]!)!;
      t = n.input![1]!;
    } else if (n.opType === 'Add' && isZero(g, n.input![1]!)) t = n.input![0]!;
    else if (n.opType === 'Add' && isZero(g, n.input![0]!)) t = n.input![1]!;
    else {
      scores = n;
      break;
    }
  }
  if (!scores) return null;
  let q: Traced | null, k: Traced | null;
  if (scores.opType === 'MatMul') {
    q = traceBack(g, scores.input![0]!, 'S');
    k = traceBack(g, scores.input![1]!, 'L');
    if (!q || !k || q.axes.length !== k.axes.length) return null;
    const lead = q.axes.slice(0, -2);
    if (!same(q.axes, [...lead, 'S', 'd']) || !same(k.axes, [...lead, 'd', 'L'])) return null;
  } else if (scores.opType === 'Einsum') {
    const eq = stringAttr(scores, 'equation')?.replace(/\s/g, '');
    if (eq !== 'bid,bjd->bij' && eq !== 'bhid,bhjd->bhij') return null;
    q = traceBack(g, scores.input![0]!, 'S');
    k = traceBack(g, scores.input![1]!, 'L');
    if (!q || !k || q.axes.length !== k.axes.length) return null;
    const lead = q.axes.slice(0, -2);
    if (!same(q.axes, [...lead, 'S', 'd']) || !same(k.axes, [...lead, 'L', 'd'])) return null;
  } else return null;
  const lead = q.axes.slice(0, -2);
  if (!same(lead, ['BH']) && !same(lead, ['B', 'H'])) return null;
  if (axis !== -1 && axis !== q.axes.length - 1) return null;
  if (q.heads !== k.heads) return null;

  // Probabilities (cast to V's type by some exports: a float-to-float Cast) times V, then the heads merged back to [B, S, C].
  let probs = softmax.output![0]!;
  let pv = next(g, probs);
  if (pv?.opType === 'Cast' && FLOAT_TYPES.has(intAttr(pv, 'to') ?? 0)) {
    probs = pv.output![0]!;
    pv = next(g, probs);
  }
  if (!pv || pv.input![0] !== probs) return null;
  if (pv.opType === 'Einsum') {
    const eq = stringAttr(pv, 'equation')?.replace(/\s/g, '');
    if (eq !== 'bij,bjd->bid' && eq !== 'bhij,bhjd->bhid') return null;
  } else if (pv.opType !== 'MatMul') return null;
  const v = traceBack(g, pv.input![1]!, 'L');
  if (!v || v.heads !== q.heads || v.scale !== 1 || !same(v.axes, [...lead, 'L', 'd'])) return null;
  let axes: Axis[] = [...lead, 'S', 'd'];
  let out = pv.output![0]!;
  let last: INodeProto | null = null;
  for (let hops = 0; hops < 4 && !same(axes, ['B', 'S', 'C']); hops++) {
    const n = next(g, out);
    if (!n || n.input![0] !== out) return null;
    if (n.opType === 'Transpose') {
      const perm = intsAttr(n, 'perm');
      if (!perm || perm.length !== axes.length) return null;
      axes = perm.map((p) => axes[p]!);
    } else if (n.opType === 'Reshape') {
      const shape = shapeElements(g, n.input![1]!);
      const next = shape && reshapeAxes(axes, shape, null, q.heads);
      if (!next) return null;
      axes = next.axes;
    } else return null;
    out = n.output![0]!;
    last = n;
  }
  if (!last || !same(axes, ['B', 'S', 'C'])) return null;
  const name = `${(softmax.name ?? '').replace(/\/[^/]*$/, '')}/MultiHeadAttention`;
  const node: INodeProto = {
    name,
    opType: 'MultiHeadAttention',
    domain: MICROSOFT,
    input: [q.root, k.root, v.root],
    output: [out],
    attribute: [attribute('num_heads', q.heads), attribute('scale', scale * q.scale * k.scale, 'float')],
  };
  return { node, output: out };
}

/** Fuses every recognisable attention of the model in place (see the header); returns the fused nodes' names. */
export function fuseAttention(model: IModelProto): AttentionFusion {
  const g = new GraphIndex(model);
  const fused: INodeProto[] = [];
  const replaced = new Set<string>();
  for (const n of model.graph?.node ?? []) {
    if (n.opType !== 'Softmax') continue;
    const f = fuseAt(g, n);
    if (f && !replaced.has(f.output)) {
      fused.push(f.node);
      replaced.add(f.output);
    }
  }
  if (fused.length === 0) return { fused: [] };
  const nodes: INodeProto[] = [];
  const byOutput = new Map(fused.map((f) => [f.output![0]!, f]));
  for (const n of model.graph!.node!) {
    const f = (n.output ?? []).map((o) => byOutput.get(o)).find((x) => x);
    // The node that produced the merged heads gives way to the fused node, in its place (topological order holds:
    // the fused node's inputs are the projections, computed before).
    nodes.push(f ?? n);
  }
  model.graph!.node = nodes;
  removeDeadNodes(model);
  ensureDomain(model, MICROSOFT);
  return { fused: fused.map((f) => f.name!) };
}

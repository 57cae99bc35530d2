/**
 * The feed-forward fusions of onnxruntime's SD optimizer (fusion_bias_split_gelu.py, fusion_bias_add.py),
 * for CUDA only: their com.microsoft kernels (contrib_ops/cuda/diffusion) have no CPU version, and they
 * take only SD's widths, so a graph of other widths is left as exported.
 *
 * - BiasSplitGelu: a transformer block's GEGLU, `MatMul → Add(bias) → chunk in two (two Slices, or Split)
 *   → value · GELU(gate)` with GELU as torch exports it (x·½·(1 + erf(x/√2))) or one Gelu node, becomes
 *   BiasSplitGelu(MatMul output, bias) = (x + b)[:D] · GELU((x + b)[D:]). Widths 2D ∈ {2560, 5120, 10240}.
 * - BiasAdd: the block's last Linear and residual, `MatMul → Add(bias) → Add(skip)`, after a
 *   BiasSplitGelu, with the skip the residual stream that the block's norm3 reads, becomes
 *   BiasAdd(MatMul output, bias, skip) = x + b + skip. Channels C ∈ {320, 640, 1280}.
 * Weights are not copied: the fused nodes read the bias initializers the exported graph has.
 */
import { ensureDomain, GraphIndex, MICROSOFT, removeDeadNodes, type IModelProto, type INodeProto } from './graph.ts';

/** Input widths onnxruntime's CUDA BiasSplitGelu takes (bias_split_gelu.cc). */
export const BIAS_SPLIT_GELU_WIDTHS: readonly number[] = [2560, 5120, 10240];
/** Channels onnxruntime's CUDA BiasAdd takes (bias_add.cc). */
export const BIAS_ADD_CHANNELS: readonly number[] = [320, 640, 1280];

/** One fused pattern: the fused node, and the exported nodes it computes (for checks of equivalence). */
export interface FusedPattern {
  node: INodeProto;
  replaced: INodeProto[];
}

export interface BiasFusionOptions {
  /** The widths to fuse; 'any' ignores the kernels' limits (tests of the matcher on small graphs). */
  widths?: readonly number[] | 'any';
}

const near = (a: number | null, b: number) => a !== null && Math.abs(a - b) <= 1e-3 * Math.abs(b);

/** `Add(c, y)` or `Add(y, c)` with c a [n] initializer: returns y and the bias, or null. */
function biasAdd(g: GraphIndex, add: INodeProto | undefined): { input: string; bias: string; width: number } | null {
  if (add?.opType !== 'Add') return null;
  const [a, b] = add.input ?? [];
  for (const [bias, input] of [
    [a, b],
    [b, a],
  ] as const) {
    const dims = bias ? g.initializers.get(bias)?.dims?.map(Number) : undefined;
    if (input && bias && dims?.length === 1 && g.producer.get(input)?.opType === 'MatMul') return { input, bias, width: dims[0]! };
  }
  return null;
}

/** The consumers of a tensor that compute with it (Shape reads only its shape). */
function users(g: GraphIndex, tensor: string): INodeProto[] {
  return (g.consumers.get(tensor) ?? []).filter((n) => n.opType !== 'Shape');
}

/** The two halves of `x` along the last axis: [value, gate] tensors and the nodes that cut them, or null. */
function halves(g: GraphIndex, x: string): { value: string; gate: string; nodes: INodeProto[] } | null {
  const u = users(g, x);
  if (u.length === 1 && u[0]!.opType === 'Split' && u[0]!.output?.length === 2) {
    const axis = Number(u[0]!.attribute?.find((a) => a.name === 'axis')?.i ?? 0);
    if (axis !== -1 && axis !== 2) return null;
    return { value: u[0]!.output[0]!, gate: u[0]!.output[1]!, nodes: u };
  }
  if (u.length !== 2 || !u.every((n) => n.opType === 'Slice')) return null;
  // The first half starts at 0; the second starts where the first ends. Both on the last axis.
  const first = u.find((n) => g.scalar(n.input![1]!) === 0);
  const second = u.find((n) => n !== first);
  if (!first || !second || second.input![1] !== first.input![2]) return null;
  const lastAxis = (n: INodeProto) => [-1, 2].includes(g.scalar(n.input![3] ?? '') ?? NaN);
  if (!lastAxis(first) || !lastAxis(second)) return null;
  return { value: first.output![0]!, gate: second.output![0]!, nodes: [first, second] };
}

/** GELU(gate) ending in `end`'s input: a Gelu node, or torch's gate·(erf(gate/√2) + 1)·½; its output and nodes. */
function gelu(g: GraphIndex, gate: string): { output: string; nodes: INodeProto[] } | null {
  const u = users(g, gate);
  if (u.length === 1 && u[0]!.opType === 'Gelu') return { output: u[0]!.output![0]!, nodes: u };
  const div = u.find((n) => n.opType === 'Div' && near(g.scalar(n.input![1]!), Math.SQRT2));
  const erf = div && g.only(div.output![0]!);
  const plus = erf?.opType === 'Erf' ? g.only(erf.output![0]!) : null;
  if (!div || !erf || plus?.opType !== 'Add' || !plus.input!.some((x) => near(g.scalar(x), 1))) return null;
  // Then ·gate and ·½, in either order.
  const nodes = [div, erf, plus];
  let t = plus.output![0]!;
  let timesGate = false;
  let half = false;
  while (!(timesGate && half)) {
    const m = g.only(t);
    if (m?.opType !== 'Mul') return null;
    const other = m.input!.find((x) => x !== t) ?? t;
    if (!timesGate && other === gate) timesGate = true;
    else if (!half && near(g.scalar(other), 0.5)) half = true;
    else return null;
    nodes.push(m);
    t = m.output![0]!;
  }
  if (u.length !== 2) return null; // the gate is read by the Div and the ·gate Mul only
  return { output: t, nodes };
}

function allowed(width: number, kernel: readonly number[], option: BiasFusionOptions['widths']): boolean {
  return option === 'any' || (option ?? kernel).includes(width);
}

/** Fuses every GEGLU into com.microsoft BiasSplitGelu, in place. */
export function fuseBiasSplitGelu(model: IModelProto, options: BiasFusionOptions = {}): { fused: FusedPattern[] } {
  const g = new GraphIndex(model);
  const replace = new Map<INodeProto, INodeProto>();
  const fused: FusedPattern[] = [];
  for (const add of model.graph?.node ?? []) {
    const b = biasAdd(g, add);
    if (!b || b.width % 2 !== 0 || !allowed(b.width, BIAS_SPLIT_GELU_WIDTHS, options.widths)) continue;
    const split = halves(g, add.output![0]!);
    const act = split && gelu(g, split.gate);
    const mul = act && g.only(act.output);
    if (!split || !act || mul?.opType !== 'Mul' || !mul.input!.includes(split.value) || g.consumers.get(split.value)?.length !== 1) continue;
    const node: INodeProto = {
      name: `${add.name ?? 'geglu'}/BiasSplitGelu`,
      opType: 'BiasSplitGelu',
      domain: MICROSOFT,
      input: [b.input, b.bias],
      output: [mul.output![0]!],
    };
    replace.set(mul, node);
    fused.push({ node, replaced: [add, ...split.nodes, ...act.nodes, mul] });
  }
  return { fused: apply(model, replace, fused) };
}

/** Fuses the Linear + residual after each BiasSplitGelu into com.microsoft BiasAdd, in place. */
export function fuseBiasAdd(model: IModelProto, options: BiasFusionOptions = {}): { fused: FusedPattern[] } {
  const g = new GraphIndex(model);
  const replace = new Map<INodeProto, INodeProto>();
  const fused: FusedPattern[] = [];
  for (const outer of model.graph?.node ?? []) {
    if (outer.opType !== 'Add') continue;
    for (const [i, inner] of (outer.input ?? []).map((x) => [x, g.producer.get(x)] as const)) {
      const b = biasAdd(g, inner);
      const matmul = b && g.producer.get(b.input);
      const skip = outer.input!.find((x) => x !== i);
      if (!b || !inner || !skip || g.only(i) !== outer || !allowed(b.width, BIAS_ADD_CHANNELS, options.widths)) continue;
      if (g.producer.get(matmul!.input![0]!)?.opType !== 'BiasSplitGelu') continue;
      // The skip is the residual stream [B, S, C] the block's last LayerNorm reads.
      if (!(g.consumers.get(skip) ?? []).some((n) => ['ReduceMean', 'LayerNormalization', 'SkipLayerNormalization'].includes(n.opType ?? ''))) continue;
      const node: INodeProto = {
        name: `${outer.name ?? 'ff'}/BiasAdd`,
        opType: 'BiasAdd',
        domain: MICROSOFT,
        input: [b.input, b.bias, skip],
        output: [outer.output![0]!],
      };
      replace.set(outer, node);
      fused.push({ node, replaced: [inner, outer] });
      break;
    }
  }
  return { fused: apply(model, replace, fused) };
}

/** Puts each fused node where the pattern's last node was and drops what no longer has a reader. */
function apply(model: IModelProto, replace: Map<INodeProto, INodeProto>, fused: FusedPattern[]): FusedPattern[] {
  if (fused.length === 0) return fused;
  model.graph!.node = model.graph!.node!.map((n) => replace.get(n) ?? n);
  removeDeadNodes(model);
  ensureDomain(model, MICROSOFT);
  return fused;
}

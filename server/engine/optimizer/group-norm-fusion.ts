/**
 * GroupNorm fusion, for CUDA only (onnxruntime's `com.microsoft` GroupNorm has no CPU kernel): torch
 * exports GroupNorm as Reshape(x, [0, G, −1]) → InstanceNormalization(scale 1, bias 0, ε) → Reshape(back
 * to x's shape) → Mul(γ [C, 1, 1]) → Add(β [C, 1, 1]), usually followed by SiLU (x·Sigmoid(x)). As
 * onnxruntime's fusion_group_norm.py does, that becomes Transpose(NCHW → NHWC) → GroupNorm(γ, β; groups
 * G, ε, activation 1 when the SiLU is taken in) → Transpose(NHWC → NCHW). γ and β become [C] initializers
 * over the same bytes (external weights keep their file and offset: nothing is copied).
 */
import {
  attribute,
  ensureDomain,
  GraphIndex,
  intsAttribute,
  MICROSOFT,
  removeDeadNodes,
  type IModelProto,
  type INodeProto,
  type ITensorProto,
} from './graph.ts';

/** A [C, 1, 1] or [C] constant as a [C] initializer named `name` (the same data), or null. */
function perChannel(g: GraphIndex, tensor: string, name: string): ITensorProto | null {
  const t = g.initializers.get(tensor);
  const dims = t?.dims?.map(Number);
  if (!t || !dims || dims.length < 1 || dims.slice(1).some((d) => d !== 1)) return null;
  return { ...t, name, dims: [dims[0]!] };
}

/** Fuses every torch-exported GroupNorm (+SiLU) in place; returns the GroupNorm nodes' names. */
export function fuseGroupNorm(model: IModelProto): { fused: string[] } {
  const g = new GraphIndex(model);
  const replace = new Map<INodeProto, INodeProto[]>();
  const added: ITensorProto[] = [];
  const fused: string[] = [];
  const users = (t: string) => (g.consumers.get(t) ?? []).filter((n) => n.opType !== 'Shape');
  for (const norm of model.graph?.node ?? []) {
    if (norm.opType !== 'InstanceNormalization') continue;
    const before = g.producer.get(norm.input![0]!);
    const shape = before?.opType === 'Reshape' ? g.constant(before.input![1]!) : null;
    if (!before || !shape || shape.values.length !== 3 || shape.values[0] !== 0 || shape.values[2] !== -1) continue;
    const groups = shape.values[1]!;
    const [scale, bias] = [g.constant(norm.input![1]!), g.constant(norm.input![2]!)];
    if (!scale?.values.every((v) => v === 1) || !bias?.values.every((v) => v === 0)) continue;
    const epsilon = norm.attribute?.find((a) => a.name === 'epsilon')?.f ?? 1e-5;
    const after = users(norm.output![0]!);
    if (after.length !== 1 || after[0]!.opType !== 'Reshape') continue;
    const mul = users(after[0]!.output![0]!);
    if (mul.length !== 1 || mul[0]!.opType !== 'Mul') continue;
    const add = users(mul[0]!.output![0]!);
    if (add.length !== 1 || add[0]!.opType !== 'Add') continue;
    const scope = (norm.name ?? '').replace(/\/[^/]*$/, '') || `/group_norm_${fused.length}`;
    const gammaName = mul[0]!.input!.find((x) => x !== after[0]!.output![0]);
    const betaName = add[0]!.input!.find((x) => x !== mul[0]!.output![0]);
    const gamma = gammaName ? perChannel(g, gammaName, `${scope.slice(1)}/GroupNorm_gamma`) : null;
    const beta = betaName ? perChannel(g, betaName, `${scope.slice(1)}/GroupNorm_beta`) : null;
    if (!gamma || !beta || gamma.dims![0] !== beta.dims![0] || Number(gamma.dims![0]) % groups !== 0) continue;
    // SiLU after it: Sigmoid(y) and y·Sigmoid(y) the only users of y.
    let out = add[0]!.output![0]!;
    let last: INodeProto = add[0]!;
    const y = users(out);
    const sigmoid = y.find((n) => n.opType === 'Sigmoid');
    const silu = sigmoid && users(sigmoid.output![0]!)[0];
    const withSilu =
      y.length === 2 && sigmoid && silu?.opType === 'Mul' && y.includes(silu) && silu.input!.includes(out) && silu.input!.includes(sigmoid.output![0]!);
    if (withSilu) {
      out = silu.output![0]!;
      last = silu;
    }
    const nhwc = `${scope}/GroupNorm_nhwc_input`;
    const normed = `${scope}/GroupNorm_nhwc_output`;
    replace.set(last, [
      { name: `${scope}/GroupNorm_to_nhwc`, opType: 'Transpose', input: [before.input![0]!], output: [nhwc], attribute: [intsAttribute('perm', [0, 2, 3, 1])] },
      {
        name: `${scope}/GroupNorm`,
        opType: 'GroupNorm',
        domain: MICROSOFT,
        input: [nhwc, gamma.name!, beta.name!],
        output: [normed],
        attribute: [
          attribute('epsilon', epsilon, 'float'),
          attribute('groups', groups),
          attribute('activation', withSilu ? 1 : 0),
          attribute('channels_last', 1),
        ],
      },
      { name: `${scope}/GroupNorm_to_nchw`, opType: 'Transpose', input: [normed], output: [out], attribute: [intsAttribute('perm', [0, 3, 1, 2])] },
    ]);
    added.push(gamma, beta);
    fused.push(`${scope}/GroupNorm`);
  }
  if (fused.length === 0) return { fused };
  model.graph!.node = model.graph!.node!.flatMap((n) => replace.get(n) ?? [n]);
  model.graph!.initializer = [...(model.graph!.initializer ?? []), ...added];
  removeDeadNodes(model);
  ensureDomain(model, MICROSOFT);
  return { fused };
}

/**
 * The walk both UNet rewrites make (rewrite.ts: attention merge; attention-maps.ts: words masks): from the
 * text conditioning `encoder_hidden_states` forward through the graph in order, following every value
 * derived from the text, to find each cross-attention: its probabilities (a Softmax of scores computed from
 * the text, or a fused com.microsoft MultiHeadAttention whose key or value comes from it) and its output
 * projection (a MatMul with a constant weight of a value derived from the probabilities), after which the
 * ordinary hidden-state stream resumes.
 */
import type onnxProto from 'onnx-proto';

type INodeProto = onnxProto.onnx.INodeProto;

export function isFusedMultiHeadAttention(n: INodeProto): boolean {
  return n.opType === 'MultiHeadAttention' && n.domain === 'com.microsoft';
}

/** Tensors whose value does not depend on any graph input: initializers and what is computed from them alone. */
export function constantTensors(nodes: INodeProto[], initializers: Set<string>): Set<string> {
  const constant = new Set(initializers);
  for (const n of nodes) {
    const ins = (n.input ?? []).filter((x) => x !== '');
    if (n.opType === 'Constant' || (ins.length > 0 && ins.every((x) => constant.has(x)))) {
      for (const o of n.output ?? []) constant.add(o);
    }
  }
  return constant;
}

export interface TextWalk {
  /** Tensors derived from the text (up to the output projections). */
  fromText: Set<string>;
  /** The node that computes each tensor (of the nodes walked). */
  producer: Map<string, INodeProto>;
  /** Each cross-attention's probabilities, in graph order: a Softmax of scores (not of probabilities), or a fused attention. */
  attention: INodeProto[];
  /** Softmax nodes of values that are probabilities already (rewrite.ts checks they reach a projection too). */
  nestedSoftmax: INodeProto[];
  /** Each output projection: the MatMul, its constant weight, and the attention output it projects. */
  projections: { node: INodeProto; weight: string; attentionOutput: string }[];
}

export function walkFromText(nodes: INodeProto[], ehs: string, constant: Set<string>): TextWalk {
  const fromText = new Set<string>([ehs]);
  const fromProbs = new Set<string>();
  const walk: TextWalk = { fromText, producer: new Map(), attention: [], nestedSoftmax: [], projections: [] };
  for (const n of nodes) {
    for (const o of n.output ?? []) walk.producer.set(o, n);
    const ins = (n.input ?? []).filter((x) => x !== '');
    if (!ins.some((x) => fromText.has(x))) continue;
    const probs = ins.some((x) => fromProbs.has(x));
    // A fused attention attends to the text when its key or value (inputs 1, 2) comes from it.
    const fused = isFusedMultiHeadAttention(n) && [n.input?.[1], n.input?.[2]].some((x) => x && fromText.has(x));
    if (probs && n.opType === 'MatMul' && ins.length === 2) {
      const [a, w] = ins as [string, string];
      if (constant.has(w) && !constant.has(a) && fromProbs.has(a)) {
        walk.projections.push({ node: n, weight: w, attentionOutput: a });
        continue;
      }
    }
    for (const o of n.output ?? []) {
      fromText.add(o);
      if (probs || fused || n.opType === 'Softmax') fromProbs.add(o);
    }
    if (fused || (n.opType === 'Softmax' && !probs)) walk.attention.push(n);
    else if (n.opType === 'Softmax') walk.nestedSoftmax.push(n);
  }
  return walk;
}

/**
 * Layers of the demo model, written op by op the way `torch.onnx.export` (opset 14) writes the diffusers /
 * transformers modules: Linear = MatMul (+ Add bias), LayerNorm decomposed (ReduceMean, Sub, Pow, Sqrt, Div),
 * GroupNorm as Reshape → InstanceNormalization → Reshape → Mul → Add, SiLU as x·Sigmoid(x), and
 * attention with heads folded into the batch (Reshape/Transpose), MatMul(Q, Kᵀ), Mul by the scale,
 * Softmax(axis=-1), MatMul with V, heads merged back, then `to_out.0`.
 *
 * `scope` is the torch module path in exporter form (`/down_blocks.0/attentions.0`); parameter names are
 * the same path with dots (`down_blocks.0.attentions.0.proj_in.weight`).
 */
import type { GraphBuilder } from './onnx-builder.ts';

export function paramName(scope: string, leaf: string): string {
  return `${scope.replace(/^\//, '').replace(/\//g, '.')}.${leaf}`;
}

/** Linear layer: MatMul with an anonymous [in, out] weight (torch transposes Linear weights on export), then Add bias. */
export function linear(
  b: GraphBuilder,
  x: string,
  scope: string,
  inFeatures: number,
  outFeatures: number,
  opts: { bias?: boolean; gain?: number } = {},
): string {
  const w = b.weight(b.anonymousName('MatMul'), [inFeatures, outFeatures], (opts.gain ?? 1) / Math.sqrt(inFeatures), paramName(scope, 'weight'), true);
  const y = b.op('MatMul', [x, w], scope);
  if (opts.bias === false) return y;
  const bias = b.weight(paramName(scope, 'bias'), [outFeatures], 0.02);
  return b.op('Add', [bias, y], scope);
}

export function conv(
  b: GraphBuilder,
  x: string,
  scope: string,
  inChannels: number,
  outChannels: number,
  kernel: number,
  opts: { stride?: number; gain?: number; bias?: boolean } = {},
): string {
  const pad = Math.floor(kernel / 2);
  const stride = opts.stride ?? 1;
  const w = b.weight(paramName(scope, 'weight'), [outChannels, inChannels, kernel, kernel], (opts.gain ?? 1) / Math.sqrt(inChannels * kernel * kernel));
  const bias = opts.bias === false ? [] : [b.weight(paramName(scope, 'bias'), [outChannels], 0.02)];
  return b.op('Conv', [x, w, ...bias], scope, {
    dilations: [1, 1],
    group: 1,
    kernel_shape: [kernel, kernel],
    pads: [pad, pad, pad, pad],
    strides: [stride, stride],
  });
}

/** SiLU as the exporter writes it: x · Sigmoid(x). */
export function silu(b: GraphBuilder, x: string, scope: string): string {
  const s = b.op('Sigmoid', [x], scope);
  return b.op('Mul', [x, s], scope);
}

/**
 * LayerNorm over the last axis: decomposed as in opset < 17 exports, or one LayerNormalization node
 * (`fused`, opset 17) as onnxruntime's optimizer leaves it.
 */
export function layerNorm(b: GraphBuilder, x: string, scope: string, features: number, eps = 1e-5, fused = false): string {
  const gamma = () => b.filled(paramName(scope, 'weight'), [features], 1);
  const beta = () => b.filled(paramName(scope, 'bias'), [features], 0);
  if (fused) return b.op('LayerNormalization', [x, gamma(), beta()], scope, { axis: -1, epsilon: { float: eps } });
  const mean = b.op('ReduceMean', [x], scope, { axes: [-1] });
  const centred = b.op('Sub', [x, mean], scope);
  const two = b.constant(scope, b.float, [], [2]);
  const sq = b.op('Pow', [centred, two], scope);
  const variance = b.op('ReduceMean', [sq], scope, { axes: [-1] });
  const epsilon = b.constant(scope, b.float, [], [eps]);
  const std = b.op('Sqrt', [b.op('Add', [variance, epsilon], scope)], scope);
  const normed = b.op('Div', [centred, std], scope);
  return b.op('Add', [b.op('Mul', [normed, gamma()], scope), beta()], scope);
}

/** GroupNorm on [B, C, h, w] the way torch exports it before opset 18. */
export function groupNorm(b: GraphBuilder, x: string, scope: string, channels: number, groups: number, eps = 1e-5): string {
  const grouped = b.op('Reshape', [x, b.constant(scope, 'int64', [3], [0, groups, -1])], scope);
  const ones = b.constant(scope, b.float, [groups], new Array<number>(groups).fill(1));
  const zeros = b.constant(scope, b.float, [groups], new Array<number>(groups).fill(0));
  const normed = b.op('InstanceNormalization', [grouped, ones, zeros], scope, { epsilon: { float: eps } });
  const back = b.op('Reshape', [normed, b.op('Shape', [x], scope)], scope);
  const gamma = b.filled(b.anonymousName('Mul'), [channels, 1, 1], 1, paramName(scope, 'weight'));
  const beta = b.filled(b.anonymousName('Add'), [channels, 1, 1], 0, paramName(scope, 'bias'));
  return b.op('Add', [b.op('Mul', [back, gamma], scope), beta], scope);
}

/** [B, S, heads·d] → [B·heads, S, d] (diffusers' head_to_batch_dim). */
function headsToBatch(b: GraphBuilder, x: string, scope: string, heads: number, headDim: number): string {
  const split = b.op('Reshape', [x, b.constant(scope, 'int64', [4], [0, 0, heads, headDim])], scope);
  const perHead = b.op('Transpose', [split], scope, { perm: [0, 2, 1, 3] });
  const seq = sliceShape(b, x, scope, 1, 2);
  const shape = b.op('Concat', [b.constant(scope, 'int64', [1], [-1]), seq, b.constant(scope, 'int64', [1], [headDim])], scope, { axis: 0 });
  return b.op('Reshape', [perHead, shape], scope);
}

/** [B·heads, S, d] → [B, S, heads·d] (diffusers' batch_to_head_dim). */
function batchToHeads(b: GraphBuilder, x: string, scope: string, heads: number, channels: number): string {
  const seqAndDim = sliceShape(b, x, scope, 1, 3);
  const shape = b.op('Concat', [b.constant(scope, 'int64', [2], [-1, heads]), seqAndDim], scope, { axis: 0 });
  const perHead = b.op('Reshape', [x, shape], scope);
  const perToken = b.op('Transpose', [perHead], scope, { perm: [0, 2, 1, 3] });
  return b.op('Reshape', [perToken, b.constant(scope, 'int64', [3], [0, 0, channels])], scope);
}

/** Shape(x)[start:end] as an int64 vector. */
export function sliceShape(b: GraphBuilder, x: string, scope: string, start: number, end: number): string {
  const shape = b.op('Shape', [x], scope);
  return b.op('Slice', [shape, b.constant(scope, 'int64', [1], [start]), b.constant(scope, 'int64', [1], [end])], scope);
}

/**
 * How an export writes attention. `bmm`: heads folded into the batch, MatMul(Q, Kᵀ)·scale (torch.onnx
 * TorchScript export of diffusers' AttnProcessor); `einsum`: the same with Einsum for QKᵀ and for the
 * product with V (older exports); `sdpa`: heads as their own axis, Q and Kᵀ each scaled by √scale before
 * the MatMul (PyTorch 2 scaled_dot_product_attention). `fused` and `fused-packed` are what onnxruntime's
 * transformer optimizer (fusion_attention_unet.py) makes of them: self-attention becomes one
 * `com.microsoft` Attention node (Q/K/V weights stacked into one [C, 3C] weight), or MultiHeadAttention on
 * a packed [B, S, N, 3, H] QKV; cross-attention becomes MultiHeadAttention(Q, K, V, zero bias) on the three
 * projections, or MultiHeadAttention(Q, KV) with K/V packed per head into [B, L, N, 2, H] by one MatMul.
 * onnxruntime's CPU provider runs Attention and unpacked MultiHeadAttention; packed QKV/KV only run on CUDA.
 * All of them compute the same function from the same weights.
 */
export type AttentionStyle = 'bmm' | 'einsum' | 'sdpa' | 'fused' | 'fused-packed';

export const ATTENTION_STYLES: readonly AttentionStyle[] = ['bmm', 'einsum', 'sdpa', 'fused', 'fused-packed'];

export const isFused = (style: AttentionStyle): boolean => style === 'fused' || style === 'fused-packed';

/** A weight's name and values, drawn as `b.weight` would draw it, before it is (maybe) packed with others. */
function drawWeight(b: GraphBuilder, inFeatures: number, outFeatures: number): { name: string; data: Float32Array } {
  const name = b.anonymousName('MatMul');
  return { name, data: b.random.normal(name, inFeatures * outFeatures, 1 / Math.sqrt(inFeatures)) };
}

/**
 * Weights [in, heads·d] of several projections interleaved per head: [in, heads, parts, d] flattened,
 * the layout of the optimizer's packed QKV / KV MatMul (numpy dstack of the per-head reshapes).
 */
function packPerHead(parts: Float32Array[], inFeatures: number, heads: number, headDim: number): Float32Array {
  const out = new Float32Array(inFeatures * heads * parts.length * headDim);
  let o = 0;
  for (let i = 0; i < inFeatures; i++) {
    for (let h = 0; h < heads; h++) {
      for (const w of parts) for (let d = 0; d < headDim; d++) out[o++] = w[i * heads * headDim + h * headDim + d]!;
    }
  }
  return out;
}

/** The optimizer's fused attention: self-attention as Attention or packed-QKV MultiHeadAttention, cross as MultiHeadAttention. */
function fusedAttention(
  b: GraphBuilder,
  hidden: string,
  context: string,
  scope: string,
  channels: number,
  contextDim: number,
  heads: number,
  packed: boolean,
): string {
  if (b.source) throw new Error('fused attention graphs are written with random weights only (convert with the bmm style)');
  const headDim = channels / heads;
  const [q, k, v] = [drawWeight(b, channels, channels), drawWeight(b, contextDim, channels), drawWeight(b, contextDim, channels)];
  const numHeads = { num_heads: heads };
  if (context === hidden) {
    if (packed) {
      const w = b.initializer(`${scope.slice(1)}/MatMul_QKV_weight`, [channels, 3 * channels], packPerHead([q.data, k.data, v.data], channels, heads, headDim));
      const qkv = b.op('Reshape', [b.op('MatMul', [hidden, w], scope), b.constant(scope, 'int64', [5], [0, 0, heads, 3, headDim])], scope);
      return b.contribOp('MultiHeadAttention', [qkv], scope, numHeads);
    }
    // Attention's weight: for each input row, the Q, K and V rows side by side (numpy stack on axis 1).
    const stacked = new Float32Array(3 * channels * channels);
    for (let i = 0; i < channels; i++) {
      [q, k, v].forEach((w, part) => stacked.set(w.data.subarray(i * channels, (i + 1) * channels), (3 * i + part) * channels));
    }
    const w = b.initializer(`${scope.slice(1)}/Attention_qkv_weight`, [channels, 3 * channels], stacked);
    const bias = b.filled(`${scope.slice(1)}/Attention_qkv_bias`, [3 * channels], 0);
    return b.contribOp('Attention', [hidden, w, bias], scope, numHeads);
  }
  const query = b.op('MatMul', [hidden, b.initializer(q.name, [channels, channels], q.data)], `${scope}/to_q`);
  if (packed) {
    const w = b.initializer(`${scope.slice(1)}/MatMul_KV_weight`, [contextDim, 2 * channels], packPerHead([k.data, v.data], contextDim, heads, headDim));
    const kv = b.op('Reshape', [b.op('MatMul', [context, w], scope), b.constant(scope, 'int64', [5], [0, 0, heads, 2, headDim])], scope);
    return b.contribOp('MultiHeadAttention', [query, kv], scope, numHeads);
  }
  const key = b.op('MatMul', [context, b.initializer(k.name, [contextDim, channels], k.data)], `${scope}/to_k`);
  const value = b.op('MatMul', [context, b.initializer(v.name, [contextDim, channels], v.data)], `${scope}/to_v`);
  const bias = b.filled(`${scope.slice(1)}/MultiHeadAttention_qkv_bias`, [3 * channels], 0);
  return b.contribOp('MultiHeadAttention', [query, key, value, bias], scope, numHeads);
}

/**
 * diffusers `Attention`: self-attention when `context` is the hidden states (attn1), cross-attention
 * when it is `encoder_hidden_states` (attn2: to_k and to_v consume the text states directly).
 */
export function attention(
  b: GraphBuilder,
  hidden: string,
  context: string,
  scope: string,
  channels: number,
  contextDim: number,
  heads: number,
  outGain = 1,
  style: AttentionStyle = 'bmm',
): string {
  const headDim = channels / heads;
  let merged: string;
  if (isFused(style)) {
    merged = fusedAttention(b, hidden, context, scope, channels, contextDim, heads, style === 'fused-packed');
    return linear(b, merged, `${scope}/to_out.0`, channels, channels, { gain: outGain });
  }
  const q = linear(b, hidden, `${scope}/to_q`, channels, channels, { bias: false });
  const k = linear(b, context, `${scope}/to_k`, contextDim, channels, { bias: false });
  const v = linear(b, context, `${scope}/to_v`, contextDim, channels, { bias: false });
  if (style === 'sdpa') {
    // [B, S, C] → [B, heads, S, d]
    const split = (x: string) =>
      b.op('Transpose', [b.op('Reshape', [x, b.constant(scope, 'int64', [4], [0, 0, heads, headDim])], scope)], scope, { perm: [0, 2, 1, 3] });
    const rootScale = b.constant(scope, b.float, [], [Math.sqrt(1 / Math.sqrt(headDim))]);
    const qs = b.op('Mul', [split(q), rootScale], scope);
    const kTs = b.op('Mul', [b.op('Transpose', [split(k)], scope, { perm: [0, 1, 3, 2] }), rootScale], scope);
    const probs = b.op('Softmax', [b.op('MatMul', [qs, kTs], scope)], scope, { axis: -1 });
    const mixed = b.op('Transpose', [b.op('MatMul', [probs, split(v)], scope)], scope, { perm: [0, 2, 1, 3] });
    merged = b.op('Reshape', [mixed, b.constant(scope, 'int64', [3], [0, 0, channels])], scope);
  } else {
    const qh = headsToBatch(b, q, scope, heads, headDim);
    const kh = headsToBatch(b, k, scope, heads, headDim);
    const vh = headsToBatch(b, v, scope, heads, headDim);
    const scores =
      style === 'einsum'
        ? b.op('Einsum', [qh, kh], scope, { equation: 'bid,bjd->bij' })
        : b.op('MatMul', [qh, b.op('Transpose', [kh], scope, { perm: [0, 2, 1] })], scope);
    const scaled = b.op('Mul', [scores, b.constant(scope, b.float, [], [1 / Math.sqrt(headDim)])], scope);
    const probs = b.op('Softmax', [scaled], scope, { axis: -1 });
    const mixed = style === 'einsum' ? b.op('Einsum', [probs, vh], scope, { equation: 'bij,bjd->bid' }) : b.op('MatMul', [probs, vh], scope);
    merged = batchToHeads(b, mixed, scope, heads, channels);
  }
  return linear(b, merged, `${scope}/to_out.0`, channels, channels, { gain: outGain });
}

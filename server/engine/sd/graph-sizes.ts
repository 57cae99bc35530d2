/**
 * The sizes of a UNet graph's spatial tensors as functions of its latent input's side, and the places
 * where two of them must be equal (see latent-size.ts for what that means for the user).
 *
 * Each spatial tensor gets a size expression in the input side: input; window (a convolution or pooling
 * with its kernel, stride and pads; SpaceToDepth); transposed (ConvTranspose); scale (a constant-scale
 * Resize, DepthToSpace); like (a Resize whose sizes come from another tensor's Shape); fixed (constant
 * sizes). Every node that needs equal sides (a skip joining the up path, a residual: Concat, Add, ...)
 * where two different expressions meet is a constraint.
 */
import { tensorValues, type GraphOutline, type INodeProto } from '../runtime/graph-outline.ts';

/** 0 = height, 1 = width. */
export type Axis = 0 | 1;
type Pair = [number, number];

export type SizeExpr =
  | { kind: 'input' }
  | { kind: 'window'; of: SizeExpr; kernel: Pair; stride: Pair; pads: Pair; dilation: Pair; ceil: boolean; same: boolean }
  | { kind: 'transposed'; of: SizeExpr; kernel: Pair; stride: Pair; pads: Pair; dilation: Pair; outputPadding: Pair }
  | { kind: 'scale'; of: SizeExpr; scale: Pair }
  | { kind: 'like'; of: SizeExpr }
  | { kind: 'fixed'; size: Pair };

/** The side of a tensor of expression `e` for an input side `s`; NaN where a window leaves nothing. */
export function sideOf(e: SizeExpr, axis: Axis, s: number): number {
  switch (e.kind) {
    case 'input':
      return s;
    case 'fixed':
      return e.size[axis];
    case 'like':
      return sideOf(e.of, axis, s);
    case 'scale':
      return Math.floor(sideOf(e.of, axis, s) * e.scale[axis]);
    case 'transposed': {
      const x = sideOf(e.of, axis, s);
      return e.stride[axis] * (x - 1) + e.outputPadding[axis] + e.dilation[axis] * (e.kernel[axis] - 1) + 1 - e.pads[axis];
    }
    case 'window': {
      const x = sideOf(e.of, axis, s);
      const stride = e.stride[axis];
      if (e.same) return Math.ceil(x / stride);
      const span = x + e.pads[axis] - e.dilation[axis] * (e.kernel[axis] - 1) - 1;
      if (span < 0) return NaN;
      return (e.ceil ? Math.ceil(span / stride) : Math.floor(span / stride)) + 1;
    }
  }
}

/** Input pixels per pixel of `e` (2 after a stride-2 convolution, 1 again after ×2 up). */
function factorOf(e: SizeExpr): number {
  switch (e.kind) {
    case 'input':
      return 1;
    case 'fixed':
      return NaN;
    case 'like':
      return factorOf(e.of);
    case 'scale':
      return factorOf(e.of) / Math.max(e.scale[0], e.scale[1]);
    case 'transposed':
      return factorOf(e.of) / Math.max(...e.stride);
    case 'window':
      return factorOf(e.of) * Math.max(...e.stride);
  }
}

const WINDOW_OPS = new Set(['Conv', 'NhwcConv', 'ConvInteger', 'QLinearConv', 'MaxPool', 'AveragePool', 'LpPool']);
/**
 * Ops whose spatial inputs must have equal sides: a skip joining the up path (Concat), residuals and
 * other elementwise ops, and onnxruntime's fused residual + norm ops. MatMul and attention are not among
 * them: their operands may come from different grids (the product runs over tokens).
 */
const SAME_SIZE_OPS = new Set([
  'Concat',
  'Add',
  'Sub',
  'Mul',
  'Div',
  'Pow',
  'Mod',
  'Sum',
  'Mean',
  'Max',
  'Min',
  'Where',
  'PRelu',
  'And',
  'Or',
  'Xor',
  'Equal',
  'Greater',
  'Less',
  'GreaterOrEqual',
  'LessOrEqual',
  'SkipLayerNormalization',
  'SkipSimplifiedLayerNormalization',
  'SkipGroupNorm',
  'BiasAdd',
]);
const GLOBAL_OPS = new Set(['GlobalAveragePool', 'GlobalMaxPool', 'GlobalLpPool']);

function attrOf(n: INodeProto, name: string) {
  return n.attribute?.find((a) => a.name === name);
}
function ints(n: INodeProto, name: string): number[] | null {
  const a = attrOf(n, name);
  return a?.ints?.length ? a.ints.map(Number) : null;
}
function pair(values: number[] | null, fallback: number): Pair {
  return values && values.length >= 2 ? [values[0]!, values[1]!] : [fallback, fallback];
}

/** What the up path of a graph does, for the description and the tests. */
export type Upsampling = 'constant-scale' | 'shape-driven' | 'mixed' | 'none';

export interface GraphSizes {
  constraints: [SizeExpr, SizeExpr][];
  /** 2^(number of halvings on the deepest path); 1 when the graph has no strided structure. */
  deepestFactor: number;
  upsampling: Upsampling;
}

/** Constant-folds a small int/float vector (Constant, initializer, Identity, Cast, Concat); null if not constant. */
function constantFolder(outline: GraphOutline, producer: Map<string, INodeProto>) {
  const memo = new Map<string, number[] | null>();
  const value = (name: string | undefined, depth = 0): number[] | null => {
    if (!name || depth > 16) return null;
    if (memo.has(name)) return memo.get(name)!;
    let out: number[] | null = null;
    const init = outline.initializers.get(name);
    const n = producer.get(name);
    if (init) out = tensorValues(init);
    else if (n?.opType === 'Constant') {
      const a = n.attribute?.[0];
      if (a?.t) out = tensorValues(a.t);
      else if (a?.ints?.length) out = a.ints.map(Number);
      else if (a?.floats?.length) out = [...a.floats];
      else if (a?.name === 'value_int') out = [Number(a.i)];
      else if (a?.name === 'value_float') out = [a.f ?? 0];
    } else if (n && (n.opType === 'Identity' || n.opType === 'Cast')) out = value(n.input?.[0], depth + 1);
    else if (n?.opType === 'Concat') {
      const parts = (n.input ?? []).map((x) => value(x, depth + 1));
      out = parts.every((p) => p !== null) ? (parts as number[][]).flat() : null;
    }
    memo.set(name, out);
    return out;
  };
  return value;
}

/** The spatial entries of a 4-element NCHW (or NHWC) scales/sizes vector. */
function spatialPair(v: number[]): Pair {
  return v[1] === 1 || v.length < 4 ? [v[2]!, v[3]!] : [v[1]!, v[2]!];
}

/** Builds the size expressions of a UNet graph whose latent input is `sampleName`. */
export function analyseGraphSizes(outline: GraphOutline, sampleName: string): GraphSizes {
  const producer = new Map<string, INodeProto>();
  for (const n of outline.nodes) for (const o of n.output ?? []) producer.set(o, n);
  const constant = constantFolder(outline, producer);
  const INPUT: SizeExpr = { kind: 'input' };
  const exprOf = new Map<string, SizeExpr>([[sampleName, INPUT]]);
  /** Integer tensors computed from the Shape of spatial tensors: whose sizes they carry. */
  const shapeSources = new Map<string, Set<SizeExpr>>();
  const constraints: [SizeExpr, SizeExpr][] = [];
  const seen = new Set<string>();
  const ids = new Map<SizeExpr, number>();
  const idOf = (e: SizeExpr) => ids.get(e) ?? (ids.set(e, ids.size), ids.size - 1);
  const resizeKinds = new Set<'constant' | 'shape'>();
  let deepest = 1;

  for (const n of outline.nodes) {
    const ins = n.input ?? [];
    const spatial = [...new Set(ins.map((x) => exprOf.get(x)).filter((e): e is SizeExpr => e !== undefined))];
    const outs = n.output ?? [];
    if (spatial.length === 0) {
      const sources = new Set(ins.flatMap((x) => [...(shapeSources.get(x) ?? [])]));
      if (sources.size > 0) for (const o of outs) shapeSources.set(o, sources);
      continue;
    }
    if (n.opType === 'Shape' || n.opType === 'Size') {
      for (const o of outs) shapeSources.set(o, new Set(spatial));
      continue;
    }
    if (GLOBAL_OPS.has(n.opType ?? '')) continue; // [B, C, 1, 1]: no longer a grid
    for (const other of SAME_SIZE_OPS.has(n.opType ?? '') ? spatial.slice(1) : []) {
      const key = [idOf(spatial[0]!), idOf(other)].sort().join(',');
      if (!seen.has(key)) constraints.push([spatial[0]!, other]);
      seen.add(key);
    }
    const data = exprOf.get(ins[0] ?? '');
    let out: SizeExpr = data ?? spatial[0]!;
    if (data && WINDOW_OPS.has(n.opType ?? '')) {
      const weight = outline.initializers.get(ins[1] ?? '')?.dims?.map(Number);
      const kernel = pair(ints(n, 'kernel_shape') ?? (weight && weight.length === 4 ? weight.slice(2) : null), 1);
      const pads = ints(n, 'pads');
      const autoPad = new TextDecoder().decode(attrOf(n, 'auto_pad')?.s ?? new Uint8Array());
      out = {
        kind: 'window',
        of: data,
        kernel,
        stride: pair(ints(n, 'strides'), 1),
        pads: pads && pads.length >= 4 ? [pads[0]! + pads[2]!, pads[1]! + pads[3]!] : [0, 0],
        dilation: pair(ints(n, 'dilations'), 1),
        ceil: Number(attrOf(n, 'ceil_mode')?.i ?? 0) === 1,
        same: autoPad.startsWith('SAME'),
      };
    } else if (data && (n.opType === 'SpaceToDepth' || n.opType === 'DepthToSpace')) {
      const block = Number(attrOf(n, 'blocksize')?.i ?? 1);
      out =
        n.opType === 'SpaceToDepth'
          ? { kind: 'window', of: data, kernel: [block, block], stride: [block, block], pads: [0, 0], dilation: [1, 1], ceil: false, same: false }
          : { kind: 'scale', of: data, scale: [block, block] };
    } else if (data && n.opType === 'ConvTranspose') {
      const pads = ints(n, 'pads');
      const weight = outline.initializers.get(ins[1] ?? '')?.dims?.map(Number);
      out = {
        kind: 'transposed',
        of: data,
        kernel: pair(ints(n, 'kernel_shape') ?? (weight && weight.length === 4 ? weight.slice(2) : null), 1),
        stride: pair(ints(n, 'strides'), 1),
        pads: pads && pads.length >= 4 ? [pads[0]! + pads[2]!, pads[1]! + pads[3]!] : [0, 0],
        dilation: pair(ints(n, 'dilations'), 1),
        outputPadding: pair(ints(n, 'output_padding'), 0),
      };
    } else if (data && (n.opType === 'Resize' || n.opType === 'Upsample')) {
      const opset = outline.opsets.get('') ?? outline.opsets.get('ai.onnx') ?? 1;
      const scalesInput = n.opType === 'Upsample' || opset < 11 ? ins[1] : ins[2];
      const scales = constant(scalesInput) ?? (n.opType === 'Upsample' ? (attrOf(n, 'scales')?.floats ?? null) : null);
      const sizes = constant(ins[3]);
      const drivers = [...(shapeSources.get(ins[3] ?? '') ?? [])].filter((e) => e !== data);
      if (scales && scales.length >= 4) out = { kind: 'scale', of: data, scale: spatialPair([...scales]) };
      else if (sizes && sizes.length >= 4) out = { kind: 'fixed', size: spatialPair(sizes) };
      else if (drivers.length > 0) out = { kind: 'like', of: drivers[0]! };
      // Sizes computed from its own input's shape: SD's Upsample2D doubles.
      else out = { kind: 'scale', of: data, scale: [2, 2] };
      resizeKinds.add(out.kind === 'like' ? 'shape' : 'constant');
    }
    const f = factorOf(out);
    if (Number.isFinite(f)) deepest = Math.max(deepest, f);
    for (const o of outs) exprOf.set(o, out);
  }
  const upsampling: Upsampling =
    resizeKinds.size === 2 ? 'mixed' : resizeKinds.has('shape') ? 'shape-driven' : resizeKinds.has('constant') ? 'constant-scale' : 'none';
  return { constraints, deepestFactor: deepest, upsampling };
}

/**
 * What unet/config.json's `levels` imply where the graph shows nothing: levels − 1 stride-2 halvings, each
 * doubled back by a constant ×2 and joined to its skip (the stricter kind of export).
 */
export function evenHalvings(levels: number): GraphSizes {
  let e: SizeExpr = { kind: 'input' };
  const constraints: [SizeExpr, SizeExpr][] = [];
  for (let i = 1; i < levels; i++) {
    const down: SizeExpr = { kind: 'window', of: e, kernel: [3, 3], stride: [2, 2], pads: [2, 2], dilation: [1, 1], ceil: false, same: false };
    constraints.push([{ kind: 'scale', of: down, scale: [2, 2] }, e]);
    e = down;
  }
  return { constraints, deepestFactor: 2 ** (levels - 1), upsampling: 'constant-scale' };
}

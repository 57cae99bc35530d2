/**
 * Which latent sizes a UNet takes, read from its graph, never from the model family.
 *
 * Along the UNet the latent's height and width go through stride-2 convolutions (each maps a side x to
 * ⌈x/2⌉ with SD's 3×3, padding 1) and back up through Resize nodes, and tensors of two paths meet where a
 * skip joins the up path (Concat) or a residual is added. Those meetings need equal sides. The Resize is
 * what decides: an export traced at 64×64 resizes by a constant ×2 (2·⌈x/2⌉ = x only for even x, so
 * sides must survive every halving: multiples of 8 in SD 1.x); one traced at a size that does not divide
 * evenly takes the output size from the skip tensor's Shape and meets it whatever x is.
 *
 * So each spatial tensor gets a size expression in the input side (input, window = convolution or pooling
 * with its kernel, stride and pads, scale = constant-scale Resize, like = Resize to another tensor's
 * size, fixed = constant sizes), every node where two different expressions meet is a constraint, and a
 * side is taken when every constraint evaluates equal on both sides. Sides are independent (height and
 * width go through their own kernel, stride and pad), so each axis is searched on its own.
 * Where the graph shows no strided structure, `unet/config.json`'s levels stand in (constant ×2 assumed).
 */
import { UserError } from '../errors.ts';
import { readGraphOutline, tensorValues, type GraphOutline, type INodeProto } from './graph-outline.ts';
import type { TensorInfo } from './runtime.ts';

/** 0 = height, 1 = width. */
type Axis = 0 | 1;
type Pair = [number, number];

type SizeExpr =
  | { kind: 'input' }
  | { kind: 'window'; of: SizeExpr; kernel: Pair; stride: Pair; pads: Pair; dilation: Pair; ceil: boolean; same: boolean }
  | { kind: 'transposed'; of: SizeExpr; kernel: Pair; stride: Pair; pads: Pair; dilation: Pair; outputPadding: Pair }
  | { kind: 'scale'; of: SizeExpr; scale: Pair }
  | { kind: 'like'; of: SizeExpr }
  | { kind: 'fixed'; size: Pair };

/** The side of a tensor of expression `e` for an input side `s`; NaN where a window leaves nothing. */
function sideOf(e: SizeExpr, axis: Axis, s: number): number {
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
  'Concat', 'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Mod', 'Sum', 'Mean', 'Max', 'Min', 'Where', 'PRelu',
  'And', 'Or', 'Xor', 'Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual',
  'SkipLayerNormalization', 'SkipSimplifiedLayerNormalization', 'SkipGroupNorm', 'BiasAdd',
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

/** Where a latent-size rule comes from. */
export type RuleSource = 'graph' | 'config' | 'none';

/**
 * The latent sides a UNet takes, per axis, with the user-facing message for a size it does not take.
 * `fixed` are sides declared fixed in the graph's input (static exports).
 */
export class LatentSizeRule {
  private readonly memo = [new Map<number, boolean>(), new Map<number, boolean>()];

  constructor(
    readonly source: RuleSource,
    private readonly graph: GraphSizes,
    readonly fixed: [height: number | null, width: number | null] = [null, null],
  ) {}

  /** From the graph's structure; `configLevels` (unet/config.json's block_out_channels) where the graph shows none. */
  static of(graph: GraphSizes | null, fixed: [number | null, number | null], configLevels: number | null): LatentSizeRule {
    if (graph && graph.deepestFactor > 1) return new LatentSizeRule('graph', graph, fixed);
    if (configLevels && configLevels > 1) {
      // Only the number of halvings is known: assume the stricter, constant ×2 up path.
      let e: SizeExpr = { kind: 'input' };
      const constraints: [SizeExpr, SizeExpr][] = [];
      for (let i = 1; i < configLevels; i++) {
        const down: SizeExpr = { kind: 'window', of: e, kernel: [3, 3], stride: [2, 2], pads: [2, 2], dilation: [1, 1], ceil: false, same: false };
        constraints.push([{ kind: 'scale', of: down, scale: [2, 2] }, e]);
        e = down;
      }
      return new LatentSizeRule('config', { constraints, deepestFactor: 2 ** (configLevels - 1), upsampling: 'constant-scale' }, fixed);
    }
    return new LatentSizeRule('none', { constraints: [], deepestFactor: 1, upsampling: 'none' }, fixed);
  }

  get upsampling(): Upsampling {
    return this.graph.upsampling;
  }

  /** Sides that are multiples of this always fit: they survive every halving. */
  get safeMultiple(): number {
    return this.graph.deepestFactor;
  }

  takesSide(axis: Axis, s: number): boolean {
    if (!Number.isInteger(s) || s < 1) return false;
    const fixed = this.fixed[axis];
    if (fixed !== null) return s === fixed;
    let hit = this.memo[axis]!.get(s);
    if (hit === undefined) {
      hit = this.graph.constraints.every(([a, b]) => {
        const x = sideOf(a, axis, s);
        return x >= 1 && x === sideOf(b, axis, s);
      });
      this.memo[axis]!.set(s, hit);
    }
    return hit;
  }

  takes(w: number, h: number): boolean {
    return this.takesSide(1, w) && this.takesSide(0, h);
  }

  /** The sides nearest `s` that the axis takes: `s` itself, or the next below and above (either may be missing). */
  nearestSides(axis: Axis, s: number, limit = Math.max(64, 4 * s)): number[] {
    if (this.takesSide(axis, s)) return [s];
    const out: number[] = [];
    for (let x = Math.min(s - 1, limit); x >= 1; x--) {
      if (this.takesSide(axis, x)) {
        out.push(x);
        break;
      }
    }
    for (let x = Math.max(1, s + 1); x <= limit; x++) {
      if (this.takesSide(axis, x)) {
        out.push(x);
        break;
      }
    }
    return out;
  }

  /** The largest side at most `max` the axis takes (the smallest it takes when none is that small). */
  fitSide(axis: Axis, max: number): number | null {
    for (let x = Math.floor(max); x >= 1; x--) if (this.takesSide(axis, x)) return x;
    return this.nearestSides(axis, Math.max(1, Math.floor(max)))[0] ?? null;
  }

  /** "any size", "multiples of 8", or examples, for latent sides (times `scale` for image sides). */
  describe(scale = 1): string {
    const [fh, fw] = this.fixed;
    if (fh !== null || fw !== null) return `only ${fw === null ? 'any' : fw * scale}×${fh === null ? 'any' : fh * scale}`;
    const probe = Array.from({ length: 4 * Math.max(16, this.safeMultiple) }, (_, i) => i + 1);
    const taken = probe.filter((s) => this.takesSide(0, s) && this.takesSide(1, s));
    if (taken.length === probe.length) return 'any size';
    const m = taken[0];
    if (m !== undefined && probe.every((s) => (s % m === 0) === taken.includes(s))) return `sides that are multiples of ${m * scale}`;
    return `sides such as ${taken.slice(0, 6).map((s) => s * scale).join(', ')}`;
  }

  /** Why the model cannot take a w×h latent (image factor `f`), naming the nearest sizes it takes; null if it can. */
  problem(w: number, h: number, f: number): string | null {
    if (this.takes(w, h)) return null;
    const size = (x: number | null, y: number | null) => `${x ?? 'any'}×${y ?? 'any'}`;
    const [fh, fw] = this.fixed;
    if ((fh !== null && fh !== h) || (fw !== null && fw !== w)) {
      return (
        `unet/model.onnx only takes ${size(fw, fh)} latents (images of ${size(fw && fw * f, fh && fh * f)}), got ${w}×${h} ` +
        `(a ${w * f}×${h * f} image): use an image of that size, or export the UNet with dynamic height and width`
      );
    }
    let why = `it takes image ${this.describe(f)} (latent ${this.describe()})`;
    if (this.upsampling === 'constant-scale' || this.upsampling === 'mixed') {
      const halvings = Math.round(Math.log2(this.safeMultiple));
      why +=
        `: it halves the latent ${halvings} times and its up path doubles it back by a fixed ×2, ` +
        (this.source === 'config' ? `as unet/config.json's ${halvings + 1} levels imply` : 'as exports traced at a size that divides evenly do');
    }
    return `this UNet does not take a ${w * f}×${h * f} image (a ${w}×${h} latent): ${why}. Nearest sizes it takes: ${this.nearestImages(w, h, f)}`;
  }

  /** Up to four nearest w×h image sizes the model takes, nearest first. */
  nearestImages(w: number, h: number, f: number): string {
    const ws = this.nearestSides(1, w);
    const hs = this.nearestSides(0, h);
    const combos = ws.flatMap((x) => hs.map((y) => [x, y] as const)).sort((a, b) => Math.abs(a[0] - w) + Math.abs(a[1] - h) - (Math.abs(b[0] - w) + Math.abs(b[1] - h)));
    const names = combos.map(([x, y]) => `${x * f}×${y * f}`);
    if (names.length === 0) return 'none near it';
    return names.length === 1 ? names[0]! : `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}`;
  }

  /** Throws the user-facing error when the model cannot take a w×h latent. */
  check(w: number, h: number, f: number): void {
    const problem = this.problem(w, h, f);
    if (problem) throw new UserError(problem, 'image');
  }

  /**
   * onnxruntime refused a call on shapes (the graph holds something this rule did not model): the same
   * message, naming the sizes that survive every halving, which every UNet of this depth takes.
   * Null when the error is not about shapes, or the size is one of those.
   */
  translateRuntimeError(error: unknown, w: number, h: number, f: number): UserError | null {
    const msg = error instanceof Error ? error.message : String(error);
    if (!/dimension|shape|broadcast|concat/i.test(msg)) return null;
    const m = this.safeMultiple;
    if (w % m === 0 && h % m === 0) return null;
    const safe = LatentSizeRule.of(null, this.fixed, Math.round(Math.log2(m)) + 1);
    const first = msg.split('\n')[0]!.replace(/^.*Status Message: /, '').trim();
    return new UserError(
      `this UNet does not take a ${w * f}×${h * f} image (a ${w}×${h} latent): onnxruntime refused it (${first}). ` +
        `Image sides that are multiples of ${m * f} survive its ${Math.round(Math.log2(m))} halvings and always work; nearest: ${safe.nearestImages(w, h, f)}`,
      'image',
    );
  }
}

/**
 * The rule of a UNet file whose latent input is `sample` (as the session declares it): from the graph,
 * else from `configLevels` (unet/config.json), else none. A graph that cannot be read is not an error
 * here (onnxruntime opened it): the session's own errors are translated instead.
 */
export async function readLatentSizeRule(modelPath: string, sample: TensorInfo, configLevels: number | null): Promise<LatentSizeRule> {
  const side = (d: number | string | undefined) => (typeof d === 'number' && d > 0 ? d : null);
  const fixed: [number | null, number | null] = [side(sample.shape[2]), side(sample.shape[3])];
  let graph: GraphSizes | null = null;
  try {
    graph = analyseGraphSizes(await readGraphOutline(modelPath), sample.name);
  } catch {
    graph = null;
  }
  return LatentSizeRule.of(graph, fixed, configLevels);
}

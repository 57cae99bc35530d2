/**
 * A tiny ONNX graph builder for the built-in demo model: nodes, initializers (inline or in an external
 * weights file, as real Stable Diffusion exports store them), constants and a seeded weight generator.
 * It writes only what the demo graphs need, in the shape `torch.onnx.export` gives them
 * (opset 14, node names like `/down_blocks.0/attentions.0/.../attn2/to_k/MatMul`).
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import onnxProto from 'onnx-proto';
import { float32ToFloat16 } from '../../engine/runtime/runtime.ts';

const { onnx } = onnxProto;
type IModelProto = onnxProto.onnx.IModelProto;
type INodeProto = onnxProto.onnx.INodeProto;
export type ITensorProto = onnxProto.onnx.ITensorProto;
type IValueInfoProto = onnxProto.onnx.IValueInfoProto;
type IAttributeProto = onnxProto.onnx.IAttributeProto;

/** The opset torch.onnx.export writes for SD exports; fused (optimizer) graphs need 17 for LayerNormalization. */
export const OPSET = 14;
/** IR version 7 is what torch.onnx.export writes for opset 14 (and what the fixture carries). */
export const IR_VERSION = 7;

export const DType = { float32: 1, int32: 6, int64: 7, float16: 10 } as const;
export type DTypeName = keyof typeof DType;
/** The float type a model computes in (weights, activations, float inputs and outputs). */
export type FloatType = 'float32' | 'float16';

/** A dimension: a fixed size or a symbolic name such as "batch". */
export type Dim = number | string;

/** Attribute values as torch exports them: numbers are ints unless listed in `floatAttrs`. */
export type AttrValue = number | number[] | string | { float: number } | { floats: number[] } | { tensor: ITensorProto };

export interface ExternalWeights {
  /** File name next to model.onnx, e.g. "weights.pb". */
  location: string;
  /** Tensors at least this many bytes go to the external file (onnx's default threshold is 1024). */
  minBytes: number;
  /** Offsets are padded to this many bytes. */
  align: number;
  /**
   * Write the weights straight to this file as they are made instead of keeping them in memory (an SD
   * 1.5 UNet is 3.4 GB: more than one Buffer holds). model() then returns no `weights`.
   */
  file?: string;
}

/**
 * Where a model's trained weights come from when they are not drawn at random: a checkpoint's tensors by
 * their state-dict key (`down_blocks.0.attentions.0.proj_in.weight`), as float32 in the builder's `dims`
 * (GroupNorm scales [C, 1, 1] hold the checkpoint's [C]; Linear weights [in, out] are the checkpoint's
 * [out, in] transposed when `transpose` is set). server/models/convert/ reads safetensors files this way.
 */
export interface WeightSource {
  read(key: string, dims: number[], transpose: boolean): Float32Array;
  /** Checks that `key` exists with a shape that fits `dims`, reading nothing (shapesOnly builds). */
  check(key: string, dims: number[], transpose: boolean): void;
  /**
   * The initializer `name` (parameter `key`) as already stored in another model's external data, when its
   * bytes would be the same (a LoRA-merged conversion's untouched weights, in the plain conversion's file):
   * the builder then references those bytes instead of reading and writing them. Null: build it as usual.
   */
  stored?(key: string, name: string): ITensorProto | null;
}

export interface BuilderOptions {
  /** The float type of weights, float constants and float inputs; float32 by default. */
  float?: FloatType;
  /** Take every parameter from here instead of the seeded generator (random streams are then unused). */
  source?: WeightSource;
  /** The default opset's version (OPSET unless the graph needs newer operators). */
  opset?: number;
  /**
   * Build the graph and count the parameters without making any weight data (initializers carry dims
   * only): to check an architecture's size without writing gigabytes.
   */
  shapesOnly?: boolean;
}

/** Deterministic 32-bit hash of a string (FNV-1a), used to give each weight its own random stream. */
export function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * Seeded normal random numbers (mulberry32 + Box–Muller). Every weight tensor draws from a stream keyed by
 * (seed, tensor name), so adding a layer does not reshuffle the others and a seed always gives the same bytes.
 */
export class WeightRandom {
  constructor(private readonly seed: number) {}

  normal(name: string, count: number, std: number): Float32Array {
    let state = (hashString(name) ^ Math.imul(this.seed >>> 0, 0x9e3779b1)) >>> 0;
    const uniform = (): number => {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const out = new Float32Array(count);
    for (let i = 0; i < count; i += 2) {
      const u1 = Math.max(uniform(), 1e-12);
      const u2 = uniform();
      const r = Math.sqrt(-2 * Math.log(u1));
      out[i] = r * Math.cos(2 * Math.PI * u2) * std;
      if (i + 1 < count) out[i + 1] = r * Math.sin(2 * Math.PI * u2) * std;
    }
    return out;
  }
}

function valueInfo(name: string, dtype: DTypeName, shape: Dim[]): IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: DType[dtype],
        shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attribute(name: string, value: AttrValue): IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === 'number') return { name, type: T.INT, i: value };
  if (typeof value === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: T.INTS, ints: value };
  if ('float' in value) return { name, type: T.FLOAT, f: value.float };
  if ('floats' in value) return { name, type: T.FLOATS, floats: value.floats };
  return { name, type: T.TENSOR, t: value.tensor };
}

function rawBytes(data: Float32Array | Uint16Array | Int32Array | BigInt64Array): Uint8Array {
  // Little-endian on every platform Node runs on; copy so the proto owns its bytes.
  return new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
}

export class GraphBuilder {
  private readonly nodes: INodeProto[] = [];
  private readonly initializers: ITensorProto[] = [];
  private readonly inputs: IValueInfoProto[] = [];
  private readonly outputs: IValueInfoProto[] = [];
  private readonly names = new Set<string>();
  private readonly initializerNames = new Set<string>();
  private readonly externalChunks: Uint8Array[] = [];
  private externalLength = 0;
  private externalFd: number | null = null;
  private anonymous = 0;
  private readonly domains = new Set<string>();
  /** The float type of weights, float constants and float inputs (`constant(scope, b.float, …)`). */
  readonly float: FloatType;
  private readonly opset: number;
  readonly shapesOnly: boolean;
  /** Trained weights (see WeightSource); null: the seeded generator's. */
  readonly source: WeightSource | null;
  /** Elements of every float initializer: the model's parameter count. */
  parameters = 0;

  constructor(
    readonly graphName: string,
    readonly random: WeightRandom,
    private readonly external?: ExternalWeights,
    options: BuilderOptions = {},
  ) {
    this.float = options.float ?? 'float32';
    this.opset = options.opset ?? OPSET;
    this.shapesOnly = options.shapesOnly ?? false;
    this.source = options.source ?? null;
  }

  input(name: string, dtype: DTypeName, shape: Dim[]): string {
    this.inputs.push(valueInfo(name, dtype, shape));
    return name;
  }

  output(name: string, dtype: DTypeName, shape: Dim[]): void {
    this.outputs.push(valueInfo(name, dtype, shape));
  }

  /**
   * Adds a node named like torch's exporter (`/scope/Op` or `/scope/Op_1`); its outputs are
   * `<name>_output_<i>` unless given.
   */
  node(
    opType: string,
    inputs: string[],
    scope: string,
    attrs: Record<string, AttrValue> = {},
    opts: { outputs?: string[]; outputCount?: number; name?: string; domain?: string } = {},
  ): string[] {
    const name = this.uniqueName(opts.name ?? `${scope}/${opType}`);
    const outputs = opts.outputs ?? Array.from({ length: opts.outputCount ?? 1 }, (_, i) => `${name}_output_${i}`);
    this.nodes.push({
      name,
      opType,
      input: inputs,
      output: outputs,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
      ...(opts.domain ? { domain: opts.domain } : {}),
    });
    if (opts.domain) this.domains.add(opts.domain);
    return outputs;
  }

  /** A node with one output; returns that output's name. */
  op(opType: string, inputs: string[], scope: string, attrs: Record<string, AttrValue> = {}, name?: string): string {
    return this.node(opType, inputs, scope, attrs, { name })[0]!;
  }

  /** An onnxruntime contrib op (domain com.microsoft), as the transformer optimizer writes fused nodes. */
  contribOp(opType: string, inputs: string[], scope: string, attrs: Record<string, AttrValue> = {}): string {
    return this.node(opType, inputs, scope, attrs, { domain: 'com.microsoft', name: `${scope}/${opType}` })[0]!;
  }

  private uniqueName(base: string): string {
    if (!this.names.has(base)) {
      this.names.add(base);
      return base;
    }
    for (let i = 1; ; i++) {
      const candidate = `${base}_${i}`;
      if (!this.names.has(candidate)) {
        this.names.add(candidate);
        return candidate;
      }
    }
  }

  /** A float initializer in the model's float type; large ones go to the external weights file when one is configured. */
  initializer(name: string, dims: number[], data: Float32Array): string {
    const count = dims.reduce((a, b) => a * b, 1);
    if (count !== data.length) throw new Error(`initializer ${name}: ${data.length} values for dims [${dims.join(',')}]`);
    if (this.shapesOnly) return this.shapeOnly(name, dims);
    if (this.initializerNames.has(name)) throw new Error(`initializer ${name} defined twice`);
    this.initializerNames.add(name);
    this.parameters += count;
    const bytes = rawBytes(this.float === 'float16' ? float32ToFloat16(data) : data);
    const tensor: ITensorProto = { name, dims, dataType: DType[this.float] };
    if (this.external && bytes.byteLength >= this.external.minBytes) {
      const pad = (this.external.align - (this.externalLength % this.external.align)) % this.external.align;
      if (pad > 0) this.appendExternal(new Uint8Array(pad));
      tensor.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
      tensor.externalData = [
        { key: 'location', value: this.external.location },
        { key: 'offset', value: String(this.externalLength) },
        { key: 'length', value: String(bytes.byteLength) },
      ];
      this.appendExternal(bytes);
    } else {
      tensor.rawData = bytes;
    }
    this.initializers.push(tensor);
    return name;
  }

  private appendExternal(bytes: Uint8Array): void {
    if (this.external?.file) {
      this.externalFd ??= openSync(this.external.file, 'w');
      writeSync(this.externalFd, bytes);
    } else {
      this.externalChunks.push(bytes);
    }
    this.externalLength += bytes.byteLength;
  }

  /** An initializer known by its dims only (shapesOnly builds): counted, no data. */
  private shapeOnly(name: string, dims: number[]): string {
    if (this.initializerNames.has(name)) throw new Error(`initializer ${name} defined twice`);
    this.initializerNames.add(name);
    this.parameters += dims.reduce((a, b) => a * b, 1);
    this.initializers.push({ name, dims, dataType: DType[this.float] });
    return name;
  }

  /**
   * A parameter: random N(0, std²) named like a torch parameter (`unet.conv_in.weight`), or, with a
   * WeightSource, the checkpoint's tensor `key` (the name unless the initializer lost it, as a Linear
   * weight does; `transpose` for those).
   */
  weight(name: string, dims: number[], std: number, key = name, transpose = false): string {
    if (this.shapesOnly) {
      this.source?.check(key, dims, transpose);
      return this.shapeOnly(name, dims);
    }
    if (this.source) return this.storedOr(key, name, dims) ?? this.initializer(name, dims, this.source.read(key, dims, transpose));
    return this.initializer(
      name,
      dims,
      this.random.normal(
        name,
        dims.reduce((a, b) => a * b, 1),
        std,
      ),
    );
  }

  /** A parameter that starts constant (norm scales, zero biases), or the checkpoint's tensor `key` with a WeightSource. */
  filled(name: string, dims: number[], value: number, key = name): string {
    if (this.shapesOnly) {
      this.source?.check(key, dims, false);
      return this.shapeOnly(name, dims);
    }
    if (this.source) return this.storedOr(key, name, dims) ?? this.initializer(name, dims, this.source.read(key, dims, false));
    return this.initializer(name, dims, new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(value));
  }

  /** The initializer as the source has it stored elsewhere (WeightSource.stored), referenced; null when it has none. */
  private storedOr(key: string, name: string, dims: number[]): string | null {
    const stored = this.source?.stored?.(key, name);
    if (!stored) return null;
    const same = stored.dims?.length === dims.length && dims.every((d, i) => Number(stored.dims![i]) === d);
    if (!same || stored.dataType !== DType[this.float] || !stored.externalData?.length)
      throw new Error(`initializer ${name}: the stored tensor is not a ${this.float} [${dims.join(',')}] in external data`);
    if (this.initializerNames.has(name)) throw new Error(`initializer ${name} defined twice`);
    this.initializerNames.add(name);
    this.parameters += dims.reduce((a, b) => a * b, 1);
    this.initializers.push({ name, dims, dataType: stored.dataType, dataLocation: onnx.TensorProto.DataLocation.EXTERNAL, externalData: stored.externalData });
    return name;
  }

  /** A `Constant` node, as torch exports shape and scalar literals (`b.float` for the model's float type). */
  constant(scope: string, dtype: FloatType | 'int64', dims: number[], values: number[]): string {
    const data =
      dtype === 'int64'
        ? BigInt64Array.from(values.map((v) => BigInt(v)))
        : dtype === 'float16'
          ? float32ToFloat16(new Float32Array(values))
          : new Float32Array(values);
    const tensor: ITensorProto = { dims, dataType: DType[dtype], rawData: rawBytes(data) };
    return this.op('Constant', [], scope, { value: { tensor } });
  }

  /** A fresh initializer name in torch's style for weights that lost their parameter name (`onnx::MatMul_12`). */
  anonymousName(op: string): string {
    return `onnx::${op}_${++this.anonymous}`;
  }

  model(docString: string): { model: Uint8Array; weights?: Uint8Array } {
    const proto: IModelProto = {
      irVersion: IR_VERSION,
      producerName: 'dualstyle-demo',
      producerVersion: '1',
      docString,
      opsetImport: [{ domain: '', version: this.opset }, ...[...this.domains].map((domain) => ({ domain, version: 1 }))],
      graph: {
        name: this.graphName,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
    };
    const model = onnx.ModelProto.encode(proto).finish();
    if (this.externalFd !== null) {
      closeSync(this.externalFd);
      this.externalFd = null;
    }
    if (!this.external || this.external.file) return { model };
    const weights = new Uint8Array(this.externalLength);
    let offset = 0;
    for (const chunk of this.externalChunks) {
      weights.set(chunk, offset);
      offset += chunk.byteLength;
    }
    return { model, weights };
  }
}

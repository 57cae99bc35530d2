/**
 * The node contract. A node module declares its sockets, its parameters (a zod object with defaults,
 * ranges, descriptions and UI hints) and an async `run`. The executor validates a graph against these
 * declarations before anything runs, keys the cache by content, and hands `run` typed inputs.
 */
import type { z } from 'zod';
import type { SocketType } from '../server/protocol/graph.ts';
import { expandSockets, type VariadicSockets } from '../server/protocol/catalog.ts';
import type { ResultTable } from '../server/protocol/events.ts';
import type { SocketValues } from './values.ts';
import type { InferenceWork, ModelMemoryProfile } from '../server/engine/sd/memory.ts';
import type { LatentPreviewDecoder, Services } from '../server/services/services.ts';
import type { Logger } from '../server/util/log.ts';

export type { InferenceWork, ModelMemoryProfile };

export type { SocketType };

/**
 * The type of a socket: a built-in one (SOCKET_TYPES, whose values nodes/values.ts describes) or one a
 * node package added (defineSocketType in nodes/api.ts), whose values are the package's business.
 */
export type SocketTypeName = SocketType | (string & {});

/** The value a socket of type T carries: known for the built-in types, `unknown` for a package's own. */
export type ValueOf<T extends string> = T extends keyof SocketValues ? SocketValues[T] : unknown;
// The contract's own vocabulary, defined below the nodes (the executor and the server use them without the catalog).
export type { LatentPreviewDecoder, Logger, Services };
export { UserError } from '../server/engine/errors.ts';

export interface InputSpec {
  type: SocketTypeName;
  label?: string;
  description?: string;
  /** May stay unconnected; `run` then receives `undefined`. */
  optional?: boolean;
  /**
   * A numbered family of sockets: `<name>1` … `<name>N`, N the node's whole-number parameter
   * `variadic.param` (min..max; declare that parameter in `params`). `run` receives them as one array
   * `inputs[name]` in order (members left unconnected are `undefined` when the family is optional).
   */
  variadic?: VariadicSockets;
  /**
   * The value must hold as many styles as this whole-number parameter of the node says; where its
   * producer's output declares a countParam too, validation checks that the two agree.
   */
  countParam?: string;
}

export interface OutputSpec {
  type: SocketTypeName;
  label?: string;
  description?: string;
  /** The value holds as many styles as this whole-number parameter of the node says (a Mask's regions). */
  countParam?: string;
}

/** What a node may hand to the preview channel; the server throttles and encodes it. */
export type PreviewSource =
  /**
   * A scaled SD latent [4,h,w] (x̂0 of the current step); decoded by `decoder` when given (which reads
   * `data` later: hand over a copy), else projected with the latent→RGB factors.
   */
  | { kind: 'latent'; data: Float32Array; width: number; height: number; decoder?: LatentPreviewDecoder }
  /** An RGB image, CHW float in [0,1]. */
  | { kind: 'image'; data: Float32Array; width: number; height: number };

/** A value as known before a job runs (see NodeDefinition.plan): its size, or the model it loads. */
export interface PlannedValue {
  /** In the value's own pixels: image pixels for images, latent pixels for latents and inversions. */
  width?: number;
  height?: number;
  /** A Model value: what its model holds in memory and needs per call. */
  model?: ModelMemoryProfile;
  /** A Conditioning value: the UNet rows it can add to an epsilon merge (its prompt, a region's negative and fallback). */
  rows?: number;
  /** A Conditioning value from a Region with a model of its own: that model, a second weight set for the sampler. */
  weights?: ModelMemoryProfile;
  /** An Inversion, Latent or Image value: the pictures of its batch (1 when absent). */
  pictures?: number;
}

export interface NodePlan {
  outputs?: Record<string, PlannedValue>;
  /** The inference calls the node will make (one entry per distinct call shape is enough). */
  work?: InferenceWork[];
}

/** An image an output node shows the user, as stored by ctx.saveResult. */
export interface ResultImage {
  url: string;
  name: string;
  width: number;
  height: number;
}

export interface NodeContext {
  jobId: string;
  nodeId: string;
  /** Aborted when the job is cancelled; long loops check it between steps. */
  signal: AbortSignal;
  /**
   * Report progress: step i of n (1-based i). Cheap; the server throttles what it sends. `label` names a
   * phase that is not the node's own steps (e.g. 'converting' a model on first use): the Queue panel shows
   * it with the percentage, and the step timing the ETA learns from leaves it out.
   */
  progress(step: number, total: number, label?: string): void;
  /** True when a preview frame would be sent now (throttled). Check before doing preview work. */
  previewDue(): boolean;
  /** Send a preview frame for step `step` of `total`. */
  preview(step: number, total: number, source: PreviewSource): void;
  /** A warning the user sees next to the node (e.g. "prompt truncated to 77 tokens"). */
  warn(message: string): void;
  /**
   * Stores a PNG in the results folder, named `<prefix>-<content hash>.png` (an unchanged re-run does
   * not pile up copies), and returns how the user sees it.
   */
  saveResult(prefix: string, png: Buffer, size: { width: number; height: number }): Promise<ResultImage>;
  log: Logger;
  services: Services;
}

type InputValue<S extends InputSpec> = S['optional'] extends true ? ValueOf<S['type']> | undefined : ValueOf<S['type']>;
type Inputs<I extends Record<string, InputSpec>> = {
  [K in keyof I]: I[K]['variadic'] extends VariadicSockets ? InputValue<I[K]>[] : InputValue<I[K]>;
};
type Outputs<O extends Record<string, OutputSpec>> = { [K in keyof O]: ValueOf<O[K]['type']> };

/** What an output node shows the user (images stored with ctx.saveResult). */
export interface NodeRunResult {
  images?: ResultImage[];
  text?: string;
  /** A small table shown on the node (the client renders `text` where it cannot show tables). */
  table?: ResultTable;
}

export interface NodeDefinition<
  I extends Record<string, InputSpec> = Record<string, InputSpec>,
  O extends Record<string, OutputSpec> = Record<string, OutputSpec>,
  P extends z.ZodObject = z.ZodObject,
> {
  /** Stable identifier used in graph files, e.g. "Invert". */
  type: string;
  title: string;
  category: string;
  description: string;
  inputs: I;
  outputs: O;
  params: P;
  /** Output nodes produce what the user sees; a job must contain at least one. */
  output?: boolean;
  /** Semantic checks across parameters that a zod range cannot express (e.g. steps > skip). */
  check?(params: z.infer<P>): { field: string; message: string }[];
  /**
   * Content beyond the parameters that the cache key must include, e.g. a fingerprint of the model
   * folder or of an uploaded file, so that a changed file is never served from cache.
   */
  identity?(params: z.infer<P>, services: Services): Promise<string> | string;
  /**
   * What running the node will take, known before the job starts: its outputs' sizes (from its inputs'
   * planned sizes) and the inference calls it makes. The runner estimates a job's peak memory from
   * these and refuses a job over the budget before anything runs. A node without it passes nothing on;
   * a throw (a missing upload, a refused model path) fails the job at that node, before it starts.
   */
  plan?(args: { params: z.infer<P>; inputs: { [K in keyof I]?: PlannedValue }; services: Services }): Promise<NodePlan> | NodePlan;
  run(args: { inputs: Inputs<I>; params: z.infer<P>; ctx: NodeContext }): Promise<{ outputs: Outputs<O>; result?: NodeRunResult }>;
}

/** Identity helper that keeps the literal socket types so `run` sees typed inputs and outputs. */
export function defineNode<const I extends Record<string, InputSpec>, const O extends Record<string, OutputSpec>, P extends z.ZodObject>(
  def: NodeDefinition<I, O, P>,
): NodeDefinition<I, O, P> {
  return def;
}

/** A node definition with its generic parameters erased, as stored in a catalog. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- erases the parameters: a definition is invariant in them (run takes params and inputs, gives outputs)
export type AnyNodeDefinition = NodeDefinition<any, any, any>;

/** A concrete input socket of a node: a plain one, or a member (index 1..N) of a variadic family. */
export type ConcreteInput = InputSpec & { name: string; family?: string; index?: number };

/**
 * The input sockets a node has for its parameter values (raw or parsed): every variadic family
 * expanded to name1..nameN, N its parameter (the parameter's default when unset). Validation, modes,
 * the executor and the catalog all see a node's sockets through this.
 */
export function concreteInputs(def: AnyNodeDefinition, params: Readonly<Record<string, unknown>> | undefined): ConcreteInput[] {
  const declared = Object.entries(def.inputs as Record<string, InputSpec>).map(([name, spec]) => ({ ...spec, name }));
  return expandSockets(declared, params, (v) => defaultOf(def, v.param));
}

/** A whole-number parameter of a node as given (raw or parsed), else its default; undefined when neither is a number. */
export function countOf(def: AnyNodeDefinition, params: Readonly<Record<string, unknown>> | undefined, param: string): number | undefined {
  const v = params?.[param];
  return typeof v === 'number' ? v : defaultOf(def, param);
}

/** The default of a node's parameter, where it has a numeric one. */
function defaultOf(def: AnyNodeDefinition, param: string): number | undefined {
  const field = (def.params as z.ZodObject).shape[param] as z.ZodType | undefined;
  const parsed = field?.safeParse(undefined);
  return parsed?.success && typeof parsed.data === 'number' ? parsed.data : undefined;
}

/**
 * The inputs `run` receives: values by socket name, each variadic family gathered into one array in
 * socket order (style1..styleN → inputs.style).
 */
export function gatherInputs(def: AnyNodeDefinition, params: Readonly<Record<string, unknown>>, byName: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const socket of concreteInputs(def, params)) {
    const value = byName[socket.name];
    if (socket.family === undefined) out[socket.name] = value;
    else ((out[socket.family] ??= []) as unknown[]).push(value);
  }
  return out;
}

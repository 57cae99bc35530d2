/**
 * The test node catalog, for the executor, validation, catalog and API tests: constants and arithmetic
 * on Number sockets, a slow counter with progress and latent previews (what a sampler relays), nodes
 * that throw or forget an output, output nodes (text, and a PNG stored with ctx.saveResult), and typed
 * stand-ins for Image/Latent/Mask nodes (to test socket type checks and messages). Each node records
 * its runs in `runLog`.
 */
import { existsSync } from 'node:fs';
import sharp from 'sharp';
import { z } from 'zod';
import { defineNode, UserError, type AnyNodeDefinition } from '../../nodes/types.ts';
import { CancelledError } from '../../server/engine/errors.ts';
import type { Graph, GraphEdge, GraphNode } from '../../server/protocol/graph.ts';
import { GRAPH_FORMAT, GRAPH_VERSION } from '../../server/protocol/graph.ts';

/** Node ids in the order they actually ran (cache hits do not appear). */
export const runLog: string[] = [];

/** Changes the identity of `Fingerprinted` nodes, as a changed model file would. */
export const fingerprint = { value: 'v1' };

export const Constant = defineNode({
  type: 'Constant',
  title: 'Constant',
  category: 'test',
  description: 'Outputs a number.',
  inputs: {},
  outputs: { value: { type: 'Number' } },
  params: z.object({ value: z.number().default(1).describe('The number to output') }),
  async run({ params, ctx }) {
    runLog.push(ctx.nodeId);
    return { outputs: { value: params.value } };
  },
});

export const Add = defineNode({
  type: 'Add',
  title: 'Add',
  category: 'test',
  description: 'a + b + offset.',
  inputs: { a: { type: 'Number' }, b: { type: 'Number', optional: true } },
  outputs: { sum: { type: 'Number' } },
  params: z.object({ offset: z.number().min(-1000).max(1000).default(0) }),
  async run({ inputs, params, ctx }) {
    runLog.push(ctx.nodeId);
    return { outputs: { sum: inputs.a + (inputs.b ?? 0) + params.offset } };
  },
});

/**
 * Counts from `start` to `start + steps` like a sampler: a cancellation check, progress and an 8×8
 * latent preview per step (the first, the last, and whenever one is due), in one reused buffer as a
 * real sampler does, so whoever relays previews must copy what it keeps.
 */
export const SlowCounter = defineNode({
  type: 'SlowCounter',
  title: 'Slow Counter',
  category: 'test',
  description: 'Counts slowly.',
  inputs: { start: { type: 'Number', optional: true } },
  outputs: { count: { type: 'Number' } },
  params: z.object({
    steps: z.number().int().min(1).max(10_000).default(5),
    delayMs: z.number().int().min(0).max(1000).default(10),
    warn: z.boolean().default(false),
  }),
  async run({ inputs, params, ctx }) {
    runLog.push(ctx.nodeId);
    if (params.warn) ctx.warn('slow node says hello');
    const latent = new Float32Array(4 * 8 * 8);
    let count = inputs.start ?? 0;
    for (let step = 1; step <= params.steps; step++) {
      if (ctx.signal.aborted) throw new CancelledError();
      if (params.delayMs > 0) await new Promise((r) => setTimeout(r, params.delayMs));
      else if (step % 100 === 0) await new Promise((r) => setImmediate(r)); // fast, but let I/O run
      count++;
      latent.fill(step / params.steps);
      ctx.progress(step, params.steps);
      if (step === 1 || step === params.steps || ctx.previewDue()) {
        ctx.preview(step, params.steps, { kind: 'latent', data: latent, width: 8, height: 8 });
      }
    }
    if (ctx.signal.aborted) throw new CancelledError();
    return { outputs: { count } };
  },
});

/**
 * Waits until `file` exists, without checking for cancellation on the way, as one long inference call
 * that cannot stop midway does; then passes its input on. A test opens the gate by writing the file,
 * so it decides exactly when the node ends (in this process or in a worker's).
 */
export const Gate = defineNode({
  type: 'Gate',
  title: 'Gate',
  category: 'test',
  description: 'Waits for a file, then passes its input on.',
  inputs: { x: { type: 'Number', optional: true } },
  outputs: { y: { type: 'Number' } },
  params: z.object({ file: z.string().min(1).default('gate') }),
  async run({ inputs, params, ctx }) {
    runLog.push(ctx.nodeId);
    ctx.progress(0, 1);
    while (!existsSync(params.file)) await new Promise((r) => setTimeout(r, 5));
    ctx.progress(1, 1);
    return { outputs: { y: inputs.x ?? 0 } };
  },
});

/** Names a model like Load Model does (a `model` parameter), for the workers' model affinity. */
export const ModelName = defineNode({
  type: 'ModelName',
  title: 'Model Name',
  category: 'test',
  description: 'Outputs the length of its model name.',
  inputs: {},
  outputs: { value: { type: 'Number' } },
  params: z.object({ model: z.string().min(1).default('demo') }),
  async run({ params, ctx }) {
    runLog.push(ctx.nodeId);
    return { outputs: { value: params.model.length } };
  },
});

export const Thrower = defineNode({
  type: 'Thrower',
  title: 'Thrower',
  category: 'test',
  description: 'Fails with a user-facing message.',
  inputs: { x: { type: 'Number', optional: true } },
  outputs: { y: { type: 'Number' } },
  params: z.object({ message: z.string().default('NaN at step 3') }),
  async run({ params, ctx }) {
    runLog.push(ctx.nodeId);
    throw new UserError(params.message);
  },
});

/** Forgets to produce its declared output. */
export const Forgetful = defineNode({
  type: 'Forgetful',
  title: 'Forgetful',
  category: 'test',
  description: 'Returns no value for "y".',
  inputs: {},
  outputs: { y: { type: 'Number' } },
  params: z.object({}),
  async run({ ctx }) {
    runLog.push(ctx.nodeId);
    return { outputs: {} as { y: number } };
  },
});

/** Warns once, like an encoder truncating a long prompt. */
export const Warner = defineNode({
  type: 'Warner',
  title: 'Warner',
  category: 'test',
  description: 'Passes a number through with a warning.',
  inputs: { x: { type: 'Number' } },
  outputs: { y: { type: 'Number' } },
  params: z.object({
    text: z
      .string()
      .default('prompt truncated to 77 tokens')
      .meta({ ui: { multiline: true } }),
  }),
  async run({ inputs, params, ctx }) {
    runLog.push(ctx.nodeId);
    ctx.warn(params.text);
    return { outputs: { y: inputs.x } };
  },
});

/** Its cache identity comes from `fingerprint`, as a model folder's fingerprint would. */
export const Fingerprinted = defineNode({
  type: 'Fingerprinted',
  title: 'Fingerprinted',
  category: 'test',
  description: 'A source whose identity lives outside its parameters.',
  inputs: {},
  outputs: { value: { type: 'Number' } },
  params: z.object({}),
  identity: () => fingerprint.value,
  async run({ ctx }) {
    runLog.push(ctx.nodeId);
    return { outputs: { value: 42 } };
  },
});

/** Output node: shows the number as text. */
export const Show = defineNode({
  type: 'Show',
  title: 'Show',
  category: 'test',
  description: 'Shows a number.',
  inputs: { value: { type: 'Number' } },
  outputs: {},
  params: z.object({}),
  output: true,
  async run({ inputs, ctx }) {
    runLog.push(ctx.nodeId);
    return { outputs: {}, result: { text: String(inputs.value) } };
  },
});

/** Output node: a 16×16 PNG whose red is the value (blue 255 − value), stored with ctx.saveResult. */
export const Save = defineNode({
  type: 'Save',
  title: 'Save',
  category: 'test',
  description: 'Writes a 16×16 PNG to the results folder.',
  inputs: { value: { type: 'Number' } },
  outputs: {},
  output: true,
  params: z.object({}),
  async run({ inputs, ctx }) {
    runLog.push(ctx.nodeId);
    const level = Math.max(0, Math.min(255, Math.round(inputs.value)));
    const png = await sharp({ create: { width: 16, height: 16, channels: 3, background: { r: level, g: 0, b: 255 - level } } })
      .png()
      .toBuffer();
    const image = await ctx.saveResult('test', png, { width: 16, height: 16 });
    return { outputs: {}, result: { images: [image], text: `value ${inputs.value}` } };
  },
});

// Typed stand-ins used by validation tests (never run).
const never = async (): Promise<never> => {
  throw new Error('not runnable in tests');
};

export const LoadImage = defineNode({
  type: 'LoadImage',
  title: 'Load Image',
  category: 'image',
  description: 'Loads an image.',
  inputs: {},
  outputs: { image: { type: 'Image' } },
  params: z.object({
    file: z
      .string()
      .min(1)
      .meta({ ui: { kind: 'image' } })
      .describe('Uploaded file name'),
    width: z.number().int().min(64).max(2048).multipleOf(64).default(512),
  }),
  run: never,
});

export const Invert = defineNode({
  type: 'Invert',
  title: 'Invert',
  category: 'diffusion',
  description: 'CycleDiffusion encoder.',
  inputs: { latent: { type: 'Latent' }, model: { type: 'Model' } },
  outputs: { inversion: { type: 'Inversion' } },
  params: z.object({
    steps: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(100)
      .meta({ label: 'Steps', ui: { slider: true } }),
    skip: z.number().int().min(0).default(20),
    eta: z.number().min(0).max(1).default(0.1).meta({ step: 0.05 }),
    sourcePrompt: z
      .string()
      .default('')
      .meta({ ui: { multiline: true } })
      .describe('Prompt describing the input image'),
  }),
  check(p) {
    return p.skip >= p.steps ? [{ field: 'skip', message: `must be less than steps (${p.steps}), got ${p.skip}` }] : [];
  },
  run: never,
});

export const Mask = defineNode({
  type: 'Mask',
  title: 'Mask',
  category: 'mask',
  description: 'Spatial mask.',
  inputs: {},
  outputs: { mask: { type: 'Mask' } },
  params: z.object({
    shape: z.enum(['linear', 'logistic']).default('logistic'),
    direction: z.enum(['left-right', 'right-left', 'top-bottom', 'bottom-top']).default('left-right'),
    sharpness: z.number().min(0).max(200).default(20).meta({ label: 'Sharpness (k)' }),
    invert: z.boolean().default(false),
    seed: z.number().int().optional(),
  }),
  run: never,
});

export const LoadModel = defineNode({
  type: 'LoadModel',
  title: 'Load Model',
  category: 'model',
  description: 'Loads a pipeline.',
  inputs: {},
  outputs: { model: { type: 'Model' } },
  params: z.object({
    folder: z
      .string()
      .default('demo')
      .meta({ ui: { kind: 'model' } }),
  }),
  run: never,
});

export const SaveImage = defineNode({
  type: 'SaveImage',
  title: 'Save Image',
  category: 'image',
  description: 'Saves an image.',
  inputs: { image: { type: 'Image' } },
  outputs: {},
  params: z.object({ name: z.string().default('out') }),
  output: true,
  run: never,
});

export const testNodes: AnyNodeDefinition[] = [
  Constant,
  Add,
  SlowCounter,
  Gate,
  ModelName,
  Thrower,
  Forgetful,
  Warner,
  Fingerprinted,
  Show,
  Save,
  LoadImage,
  Invert,
  Mask,
  LoadModel,
  SaveImage,
];

type NodeInput = Pick<GraphNode, 'id' | 'type'> & Partial<GraphNode>;

/** A graph object as it would come from a file. `edges` as [fromNode, output, toNode, input]. */
export function graphJson(nodes: NodeInput[], edges: [string, string, string, string][] = []): Graph {
  return {
    format: GRAPH_FORMAT,
    version: GRAPH_VERSION,
    nodes: nodes.map((n, i) => ({ params: {}, position: { x: i * 200, y: 0 }, ...n })),
    edges: edges.map(([fn, out, tn, inp]): GraphEdge => ({ from: { node: fn, output: out }, to: { node: tn, input: inp } })),
    meta: {},
  };
}

/** A valid graph: Constant → Add → Show. */
export function numberChain() {
  return graphJson(
    [
      { id: 'a', type: 'Constant', params: { value: 2 } },
      { id: 'b', type: 'Add', params: { offset: 1 } },
      { id: 'out', type: 'Show' },
    ],
    [
      ['a', 'value', 'b', 'a'],
      ['b', 'sum', 'out', 'value'],
    ],
  );
}

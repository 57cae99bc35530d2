/**
 * Graph JSON, version 1: the file format of a saved or shared graph, and the body of a job.
 * Shared by the server and the client so the two cannot drift.
 */
import { z } from 'zod';
import { describeExtentProblem, jsonExtentProblem, type JsonLimits } from './json-extent.ts';

export const GRAPH_FORMAT = 'dualstyle-graph';
export const GRAPH_VERSION = 1;

export const SOCKET_TYPES = ['Model', 'Image', 'Latent', 'Conditioning', 'Mask', 'Inversion', 'Number', 'Text', 'Clip', 'Metrics'] as const;
export type SocketType = (typeof SOCKET_TYPES)[number];

/** Editor colour of each socket type (also served in the catalog). */
export const SOCKET_COLORS: Record<SocketType, string> = {
  Model: '#b39ddb',
  Image: '#64b5f6',
  Latent: '#f06292',
  Conditioning: '#ffb74d',
  Mask: '#a1887f',
  Inversion: '#4db6ac',
  Number: '#aed581',
  Text: '#e0e0e0',
  Clip: '#9575cd',
  Metrics: '#fff176',
};

export const NodeIdSchema = z
  .string()
  .min(1, 'node id must not be empty')
  .max(64, 'node id must be at most 64 characters')
  .regex(/^[A-Za-z0-9_.-]+$/, 'node id may use letters, digits, "_", "-" and "." only');

/**
 * Free-form JSON in a graph is bounded: a node's parameters (prompts included) and the graph's meta
 * (title, notes, editor state) are small; anything deeper or larger is an attack on the store, not a graph.
 */
export const PARAMS_LIMITS: JsonLimits = { maxDepth: 16, maxBytes: 64 * 1024 };
export const META_LIMITS: JsonLimits = { maxDepth: 32, maxBytes: 64 * 1024 };

function bounded(limits: JsonLimits) {
  return (value: unknown, ctx: z.RefinementCtx) => {
    const problem = jsonExtentProblem(value, limits);
    if (problem) ctx.addIssue({ code: 'custom', message: describeExtentProblem(problem) });
  };
}

export const GraphNodeSchema = z.object({
  id: NodeIdSchema,
  type: z.string().min(1),
  /** Parameter values; validated later against the node type's own zod schema. */
  params: z.record(z.string(), z.unknown()).superRefine(bounded(PARAMS_LIMITS)).default({}),
  position: z.object({ x: z.number(), y: z.number() }).default({ x: 0, y: 0 }),
  /** Optional user label shown instead of the type's title. */
  title: z.string().max(200).optional(),
  /**
   * How the node takes part in a run (absent: it runs). "bypass": it does not run and passes its
   * input of the same type through to each output (as ComfyUI's bypass); "mute": it does not run,
   * and neither does anything that needs its output.
   */
  mode: z.enum(['bypass', 'mute']).optional(),
  /**
   * The parameters simple mode shows (the one-page form for users who never want to see a graph), in
   * this order; absent or empty: none. Each names a parameter of the node's type (checked on validation).
   */
  exposed: z.array(z.string().min(1).max(100)).max(100, 'a node may expose at most 100 parameters').optional(),
});

const PointSchema = z.object({ x: z.number(), y: z.number() });

export const GraphEdgeSchema = z.object({
  from: z.object({ node: z.string(), output: z.string() }),
  to: z.object({ node: z.string(), input: z.string() }),
  /** Reroute points the editor draws the connection through, in canvas coordinates (layout only). */
  points: z.array(PointSchema).max(50, 'a connection may have at most 50 reroute points').optional(),
});

/** A titled frame drawn behind nodes (layout only: it does not change what runs). */
export const GraphGroupSchema = z.object({
  id: z.string().min(1).max(64),
  title: z.string().max(200),
  x: z.number(),
  y: z.number(),
  width: z.number().positive().max(100_000),
  height: z.number().positive().max(100_000),
  color: z
    .string()
    .regex(/^#[0-9a-fA-F]{6}$/, 'color must look like #rrggbb')
    .optional(),
});

export const GraphMetaSchema = z
  .object({
    title: z.string().max(200).optional(),
    description: z.string().max(5000).optional(),
  })
  .catchall(z.unknown())
  .superRefine(bounded(META_LIMITS))
  .default({});

export const GraphSchema = z.object({
  format: z.literal(GRAPH_FORMAT),
  version: z.literal(GRAPH_VERSION),
  nodes: z.array(GraphNodeSchema).max(500, 'a graph may have at most 500 nodes'),
  edges: z.array(GraphEdgeSchema).max(2000, 'a graph may have at most 2000 edges'),
  /** Frames (groups) around nodes. */
  groups: z.array(GraphGroupSchema).max(200, 'a graph may have at most 200 groups').optional(),
  meta: GraphMetaSchema,
});

export type NodeMode = NonNullable<z.infer<typeof GraphNodeSchema>['mode']>;
export type GraphGroup = z.infer<typeof GraphGroupSchema>;
export type GraphNode = z.infer<typeof GraphNodeSchema>;
export type GraphEdge = z.infer<typeof GraphEdgeSchema>;
export type Graph = z.infer<typeof GraphSchema>;

export type IssueCode =
  | 'invalid_json'
  | 'invalid_format'
  | 'unsupported_version'
  | 'schema'
  | 'duplicate_node_id'
  | 'unknown_node_type'
  | 'unknown_input'
  | 'unknown_output'
  | 'missing_input'
  | 'type_mismatch'
  | 'multiple_edges'
  | 'dangling_edge'
  | 'cycle'
  | 'param_invalid'
  | 'param_out_of_range'
  | 'param_wrong_type'
  | 'no_outputs'
  | 'bypass_unmatched'
  /** The job would need more memory than the server allows one job (found when it is submitted). */
  | 'memory_budget'
  | 'custom';

/** One problem found in a graph, tied to a node and field where there is one. */
export interface ValidationIssue {
  code: IssueCode;
  /** Node the problem belongs to, when it belongs to one. */
  nodeId?: string;
  /** Parameter, input or output name (or JSON path) the problem is about. */
  field?: string;
  /** A sentence a user understands, e.g. "Mask → sharpness must be ≤ 200, got 500". */
  message: string;
}

export interface ValidationResult {
  /** No issues: the graph may run (warnings do not stop it). */
  ok: boolean;
  issues: ValidationIssue[];
  /**
   * Problems of nodes that no output needs (a dangling node, as ComfyUI has them): a run leaves those
   * nodes out, so their problems do not stop it; the editor shows them as warnings.
   */
  warnings: ValidationIssue[];
  /** The parsed, migrated graph with defaults filled in, when it could be parsed at all. */
  graph?: Graph;
}

/**
 * Graph validation: everything that can be known before a job runs is checked here, and every problem
 * is reported at once, tied to a node id and field, in words a user understands
 * ("Mask → sharpness must be ≤ 200, got 500"). Steps: migrate the file forward, check its shape with
 * the zod GraphSchema, then the semantic checks against the node catalog.
 *
 * Unknown parameter names (e.g. left over from an older node version) are dropped silently, so a file
 * keeps loading when a node loses a parameter; pass `strictParams: true` to report them instead.
 */
import {
  GraphEdgeSchema,
  GraphNodeSchema,
  GraphSchema,
  type Graph,
  type GraphEdge,
  type GraphNode,
  type ValidationIssue,
  type ValidationResult,
} from '../protocol/graph.ts';
import { z } from 'zod';
import { concreteInputs, countOf, type AnyNodeDefinition, type ConcreteInput, type OutputSpec } from '../../nodes/types.ts';
import type { NodeCatalog } from '../catalog.ts';
import { migrateGraph, type MigrationTable } from '../protocol/graph-migrate.ts';
import { resolveModes } from './modes.ts';
import { danglingIssue, displayNames, humanParam, suggest, unknownInputMessage, withArticle } from './messages.ts';
import { isRecord, schemaIssue } from '../protocol/issue-words.ts';
import { checkParams, listOrNone } from './params.ts';
import { ancestorsOf, topoOrder } from './topo.ts';

export interface ValidateOptions {
  /** Report 'no_outputs' when the graph has no output node. Default true; the live editor passes false. */
  requireOutput?: boolean;
  /** Report parameters the node type does not have ('param_invalid') instead of dropping them. */
  strictParams?: boolean;
  /** Migration table (tests inject one); defaults to the project's. */
  migrations?: MigrationTable;
}

export function validateGraph(raw: unknown, catalog: NodeCatalog, opts: ValidateOptions = {}): ValidationResult {
  if (typeof raw === 'string') {
    try {
      raw = JSON.parse(raw);
    } catch (err) {
      return { ok: false, issues: [{ code: 'invalid_json', message: `The graph file is not valid JSON: ${(err as Error).message}` }], warnings: [] };
    }
  }

  const migrated = migrateGraph(raw, opts.migrations);
  if (migrated.issues.length > 0) return { ok: false, issues: migrated.issues, warnings: [] };

  const issues: ValidationIssue[] = [];
  const parsed = GraphSchema.safeParse(migrated.graph);
  let shape: { nodes: GraphNode[]; edges: GraphEdge[] };
  // Ids of nodes whose own entry is malformed: their edges are not "dangling", just not checkable.
  const brokenIds = new Set<string>();
  if (parsed.success) {
    shape = parsed.data;
  } else {
    const rawObj = migrated.graph as Record<string, unknown>;
    for (const zi of parsed.error.issues) issues.push(schemaIssue(zi, rawObj));
    // Salvage the entries that are well formed so their problems are reported in this same pass.
    const rawNodes = Array.isArray(rawObj.nodes) ? rawObj.nodes : [];
    const rawEdges = Array.isArray(rawObj.edges) ? rawObj.edges : [];
    const nodes: GraphNode[] = [];
    for (const n of rawNodes) {
      const r = GraphNodeSchema.safeParse(n);
      if (r.success) nodes.push(r.data);
      else if (isRecord(n) && typeof n.id === 'string') brokenIds.add(n.id);
    }
    const edges: GraphEdge[] = [];
    for (const e of rawEdges) {
      const r = GraphEdgeSchema.safeParse(e);
      if (r.success) edges.push(r.data);
    }
    shape = { nodes, edges };
  }

  const { issues: semantic, params, unneeded } = checkGraph(shape, catalog, opts, brokenIds);
  // A node that no output needs does not run: its problems are warnings, unless the graph cannot be read at all.
  const warnings = parsed.success ? semantic.filter((i) => leftOut(i, unneeded)) : [];
  issues.push(...semantic.filter((i) => !warnings.includes(i)));

  if (!parsed.success) return { ok: false, issues, warnings };
  const graph: Graph = {
    ...parsed.data,
    nodes: parsed.data.nodes.map((n, i) => (params.has(i) ? { ...n, params: params.get(i)! } : n)),
  };
  return { ok: issues.length === 0, issues, warnings, graph };
}

/** Problems of the graph as a whole, wherever they sit: a duplicate id, a node type this server lacks, a cycle. */
const ALWAYS_ERRORS = new Set<ValidationIssue['code']>(['duplicate_node_id', 'unknown_node_type', 'cycle']);

/** Problems that belong to one node that no output needs: they would only matter if it ran. */
function leftOut(issue: ValidationIssue, unneeded: Set<string>): boolean {
  return issue.nodeId !== undefined && unneeded.has(issue.nodeId) && !ALWAYS_ERRORS.has(issue.code);
}

/** One line for logs and the command line: "[code] message (node x, field y)". */
export function formatIssue(i: ValidationIssue): string {
  const where = [i.nodeId !== undefined ? `node ${i.nodeId}` : '', i.field !== undefined ? `field ${i.field}` : ''].filter(Boolean).join(', ');
  return `[${i.code}] ${i.message}${where ? ` (${where})` : ''}`;
}

/** A refused graph in one line: its first issue, and how many more there are ("(and 2 more problems)"). */
export function summarizeIssues(issues: readonly ValidationIssue[]): string {
  const first = issues[0] ? formatIssue(issues[0]) : 'the graph is invalid';
  const more = issues.length - 1;
  return more > 0 ? `${first} (and ${more} more problem${more > 1 ? 's' : ''})` : first;
}

// ---------------------------------------------------------------------------------------------------

interface Checked {
  issues: ValidationIssue[];
  /** Nodes no running output needs (empty when the graph has no running output: then nothing is left out). */
  unneeded: Set<string>;
  /** Parsed params (defaults filled) by node index, for nodes whose params are valid. */
  params: Map<number, Record<string, unknown>>;
}

/**
 * The semantic checks, in the order their issues are reported: node ids and types, the wiring, bypass
 * stand-ins, each node's inputs and parameters, cycles, and whether anything would run.
 */
function checkGraph(graph: { nodes: GraphNode[]; edges: GraphEdge[] }, catalog: NodeCatalog, opts: ValidateOptions, brokenIds: Set<string>): Checked {
  const issues: ValidationIssue[] = [];
  const index = indexNodes(graph.nodes, catalog, issues);
  const wiring = checkWiring(graph.edges, index, brokenIds, issues);
  // Bypassed and muted nodes, and what needs a muted node, do not run: their inputs and parameters
  // do not matter (as in ComfyUI). A bypassed output that something uses must have an input to take.
  const modes = resolveModes({ nodes: [...index.byId.values()], edges: wiring.checkable }, catalog);
  for (const u of modes.unmatched) {
    issues.push({
      code: 'bypass_unmatched',
      nodeId: u.nodeId,
      field: u.output,
      message: `${index.nameOf(u.nodeId)} is bypassed, but no connected input of type ${u.type} can stand in for its output “${u.output}”; connect one, or mute the node instead.`,
    });
  }
  const params = checkNodes(graph.nodes, index, (id) => !modes.skipped.has(id), wiring.connected, opts, issues);
  issues.push(...cycleIssues({ nodes: [...index.byId.values()], edges: wiring.checkable }, index));
  if (opts.requireOutput !== false) issues.push(...outputIssues(graph.nodes.length, index, (id) => !modes.skipped.has(id)));
  return { issues, params, unneeded: unneededNodes(index, modes) };
}

/** The graph as the checks see it: each id's node (the first, when ids repeat), its name, definition and input sockets. */
interface NodeIndex {
  catalog: NodeCatalog;
  byId: Map<string, GraphNode>;
  names: Map<GraphNode, string>;
  defOf(id: string): AnyNodeDefinition | undefined;
  nameOf(id: string): string;
  /** A node's input sockets for its parameters (a variadic family expanded to its count). */
  socketsOf(id: string): ConcreteInput[];
}

/** Indexes the nodes by id, reporting repeated ids and unknown types. */
function indexNodes(nodes: GraphNode[], catalog: NodeCatalog, issues: ValidationIssue[]): NodeIndex {
  const names = displayNames(nodes, catalog);
  const byId = new Map<string, GraphNode>();
  for (const node of nodes) {
    const first = byId.get(node.id);
    if (first) {
      issues.push({
        code: 'duplicate_node_id',
        nodeId: node.id,
        field: 'id',
        message: `Two nodes share the id "${node.id}" (${names.get(first)} and ${names.get(node)}); node ids must be unique.`,
      });
      continue;
    }
    byId.set(node.id, node);
    if (!catalog.has(node.type)) {
      const hint = suggest(node.type, [...catalog.keys()]);
      issues.push({
        code: 'unknown_node_type',
        nodeId: node.id,
        field: 'type',
        message: `Node "${node.id}" has unknown type "${node.type}"${hint ? `; did you mean "${hint}"?` : '.'}`,
      });
    }
  }
  const inputsOf = new Map<string, ConcreteInput[]>();
  const defOf = (id: string): AnyNodeDefinition | undefined => {
    const n = byId.get(id);
    return n ? catalog.get(n.type) : undefined;
  };
  return {
    catalog,
    byId,
    names,
    defOf,
    nameOf: (id) => names.get(byId.get(id)!)!,
    socketsOf(id) {
      let sockets = inputsOf.get(id);
      if (!sockets) {
        const def = defOf(id);
        sockets = def ? concreteInputs(def, byId.get(id)!.params) : [];
        inputsOf.set(id, sockets);
      }
      return sockets;
    },
  };
}

/** Inputs are keyed "node\u0000input". */
const inputKey = (node: string, input: string) => `${node}\u0000${input}`;

/**
 * The edges: endpoints, socket names, socket types and style counts, one edge per input. Returns the
 * inputs that are wired and the edges whose two ends exist (what modes and cycles are judged on).
 */
function checkWiring(
  edges: GraphEdge[],
  index: NodeIndex,
  brokenIds: Set<string>,
  issues: ValidationIssue[],
): { connected: Set<string>; checkable: GraphEdge[] } {
  const intoInput = new Map<string, number>();
  const connected = new Set<string>();
  const checkable: GraphEdge[] = [];
  edges.forEach((edge, ei) => {
    const { from, to } = edge;
    const fromNode = index.byId.get(from.node);
    const toNode = index.byId.get(to.node);
    if ((!fromNode && brokenIds.has(from.node)) || (!toNode && brokenIds.has(to.node))) return;
    if (!fromNode || !toNode) {
      // The input is wired (to nothing); saying it is also "not connected" would be noise.
      if (toNode) connected.add(inputKey(to.node, to.input));
      issues.push(danglingIssue(edge, ei, fromNode ? index.nameOf(from.node) : undefined, toNode ? index.nameOf(to.node) : undefined));
      return;
    }
    checkable.push(edge);
    const key = inputKey(to.node, to.input);
    intoInput.set(key, (intoInput.get(key) ?? 0) + 1);
    connected.add(key);
    issues.push(...edgeIssues(edge, fromNode, toNode, index));
  });
  for (const [key, count] of intoInput) {
    if (count < 2) continue;
    const [nodeId, input] = key.split('\u0000');
    issues.push({
      code: 'multiple_edges',
      nodeId,
      field: input,
      message: `${index.nameOf(nodeId!)} → ${input} has ${count} connections; an input takes exactly one.`,
    });
  }
  return { connected, checkable };
}

/** What is wrong with one edge between two nodes that exist: its socket names, their types, the style counts on either end. */
function edgeIssues(edge: GraphEdge, fromNode: GraphNode, toNode: GraphNode, index: NodeIndex): ValidationIssue[] {
  const { from, to } = edge;
  const issues: ValidationIssue[] = [];
  const fromDef = index.defOf(from.node);
  const toDef = index.defOf(to.node);
  // Own properties only: "__proto__" or "toString" must read as unknown names, not as Object.prototype.
  const outSpec = fromDef ? ownEntry(fromDef.outputs as Record<string, OutputSpec>, from.output) : undefined;
  const inSpec = toDef ? index.socketsOf(to.node).find((i) => i.name === to.input) : undefined;
  if (fromDef && !outSpec) {
    issues.push({
      code: 'unknown_output',
      nodeId: from.node,
      field: from.output,
      message: `${index.nameOf(from.node)} has no output "${from.output}" (it has ${listOrNone(Object.keys(fromDef.outputs as Record<string, OutputSpec>))}).`,
    });
  }
  if (toDef && !inSpec) {
    issues.push({
      code: 'unknown_input',
      nodeId: to.node,
      field: to.input,
      message: unknownInputMessage(index.nameOf(to.node), toDef, index.socketsOf(to.node), to.input),
    });
  }
  if (outSpec && inSpec && outSpec.type !== inSpec.type) {
    issues.push({
      code: 'type_mismatch',
      nodeId: to.node,
      field: to.input,
      message: `${index.nameOf(to.node)} → ${to.input} expects ${inSpec.type}, got ${outSpec.type} from ${index.nameOf(from.node)} → ${from.output}`,
    });
  } else if (outSpec?.countParam && inSpec?.countParam && fromDef && toDef && !fromNode.mode) {
    // A mask of 2 styles cannot drive a sampler of 3: say which count to change, before anything runs.
    const made = countOf(fromDef, fromNode.params, outSpec.countParam);
    const wanted = countOf(toDef, toNode.params, inSpec.countParam);
    if (made !== undefined && wanted !== undefined && made !== wanted) {
      issues.push({
        code: 'type_mismatch',
        nodeId: to.node,
        field: to.input,
        message:
          `${index.nameOf(to.node)} merges ${wanted} styles, but its ${to.input} comes from ${index.nameOf(from.node)}, which has ${made}; ` +
          `set ${humanParam(outSpec.countParam)} on ${index.nameOf(from.node)} to ${wanted}, or ${humanParam(inSpec.countParam)} here to ${made}.`,
      });
    }
  }
  return issues;
}

/**
 * Per node that runs: its required inputs and its parameters; the node's own checks. Returns the parsed
 * parameters (defaults filled in) by node index, for every node whose parameters are valid.
 */
function checkNodes(
  nodes: GraphNode[],
  index: NodeIndex,
  runs: (id: string) => boolean,
  connected: ReadonlySet<string>,
  opts: ValidateOptions,
  issues: ValidationIssue[],
): Map<number, Record<string, unknown>> {
  const params = new Map<number, Record<string, unknown>>();
  nodes.forEach((node, i) => {
    if (index.byId.get(node.id) !== node) return; // duplicate id, reported above
    const def = index.catalog.get(node.type);
    if (!def) return;
    const name = index.names.get(node)!;
    const running = runs(node.id);
    for (const spec of index.socketsOf(node.id)) {
      if (!running || spec.optional || connected.has(inputKey(node.id, spec.name))) continue;
      issues.push({
        code: 'missing_input',
        nodeId: node.id,
        field: spec.name,
        message: `${name} → ${spec.name} is not connected; it needs ${withArticle(spec.type)} input.`,
      });
    }
    const parsed = checkParams(node, def, name, opts, running ? issues : []);
    if (parsed) params.set(i, parsed);
    issues.push(...exposureIssues(node, def, name));
  });
  return params;
}

/** Simple mode's fields of a node: each a parameter of its type, named once. */
function exposureIssues(node: GraphNode, def: AnyNodeDefinition, name: string): ValidationIssue[] {
  const shape = def.params instanceof z.ZodObject ? (def.params.shape as Record<string, unknown>) : {};
  const seen = new Set<string>();
  return (node.exposed ?? []).flatMap((param): ValidationIssue[] => {
    const twice = seen.has(param);
    seen.add(param);
    if (!Object.hasOwn(shape, param))
      return [{ code: 'param_invalid', nodeId: node.id, field: param, message: `${name} shows "${param}" in simple mode, but it has no such parameter.` }];
    if (twice) return [{ code: 'param_invalid', nodeId: node.id, field: param, message: `${name} shows "${param}" in simple mode twice.` }];
    return [];
  });
}

/** What the outputs need, as a run plans it (executor's planRun): the rest is left out of a run. */
function unneededNodes(index: NodeIndex, modes: ReturnType<typeof resolveModes>): Set<string> {
  const running = [...index.byId.values()].filter((n) => index.catalog.get(n.type)?.output === true && !modes.skipped.has(n.id)).map((n) => n.id);
  const needed = ancestorsOf(modes.graph, running);
  return new Set(running.length ? [...index.byId.keys()].filter((id) => !needed.has(id)) : []);
}

/** Each independent cycle, naming its nodes in edge direction. */
function cycleIssues(graph: { nodes: GraphNode[]; edges: GraphEdge[] }, index: NodeIndex): ValidationIssue[] {
  return findCycles(graph).map((cycle): ValidationIssue => ({
    code: 'cycle',
    nodeId: cycle[0],
    message: `These nodes form a cycle: ${[...cycle, cycle[0]!].map(index.nameOf).join(' → ')}. Remove one of these connections.`,
  }));
}

/** A job must have an output node that runs: say so, with a few output nodes the catalog offers. */
function outputIssues(nodeCount: number, index: NodeIndex, runs: (id: string) => boolean): ValidationIssue[] {
  const outputNodes = [...index.byId.values()].filter((n) => index.catalog.get(n.type)?.output === true);
  if (outputNodes.length > 0) {
    if (outputNodes.some((n) => runs(n.id))) return [];
    return [{ code: 'no_outputs', message: 'Every output node is muted or bypassed, or needs a muted node: nothing would run. Un-mute one.' }];
  }
  const examples = [...index.catalog.values()]
    .filter((d) => d.output)
    .map((d) => d.title)
    .slice(0, 3);
  const hint = examples.length ? ` such as ${examples.length > 1 ? `${examples.slice(0, -1).join(', ')} or ${examples.at(-1)}` : examples[0]}` : '';
  return [
    {
      code: 'no_outputs',
      message:
        nodeCount === 0
          ? `The graph is empty; add nodes and an output node${hint}.`
          : `The graph has no output node; add one${hint} so the job produces a result.`,
    },
  ];
}

function findCycles(graph: { nodes: GraphNode[]; edges: GraphEdge[] }): string[][] {
  const cycles: string[][] = [];
  let nodes = graph.nodes;
  // Each round removes the nodes of one cycle; bounded by the node count.
  for (let round = 0; round < graph.nodes.length; round++) {
    const { cycle } = topoOrder({ nodes, edges: graph.edges });
    if (!cycle) break;
    cycles.push(cycle);
    const drop = new Set(cycle);
    nodes = nodes.filter((n) => !drop.has(n.id));
  }
  return cycles;
}

function ownEntry<T>(record: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

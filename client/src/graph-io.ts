/**
 * Graph JSON v1 <-> editor DTOs. Pure: no DOM, no Rete, so it is unit-tested in plain Node.
 *
 * Rete v2 has no toJSON/fromJSON. The editor module turns its nodes and connections into the plain
 * snapshot below (and back), and everything about the file format lives here.
 */
import {
  GRAPH_FORMAT,
  GRAPH_VERSION,
  GraphGroupSchema,
  GraphSchema,
  type Graph,
  type GraphEdge,
  type GraphGroup,
  type GraphNode,
  type NodeMode,
} from '../../server/protocol/graph.ts';
import { migrateGraph } from '../../server/protocol/graph-migrate.ts';
import { isRecord, schemaIssue } from '../../server/protocol/issue-words.ts';
import { nameProblem } from '../../server/protocol/names.ts';
import { expandSockets, type Catalog, type CatalogNode } from '../../server/protocol/catalog.ts';

export { GRAPH_FORMAT, GRAPH_VERSION };

/** Socket type of a placeholder node whose type the catalog does not know: connects to nothing new. */
export const UNKNOWN_SOCKET = 'Unknown';

export interface Position {
  x: number;
  y: number;
}

export interface EditorNodeDTO {
  id: string;
  type: string;
  params: Record<string, unknown>;
  position: Position;
  title?: string;
  /** Bypassed or muted; absent when the node runs. */
  mode?: NodeMode;
  /** The parameters simple mode shows; absent when none. */
  exposed?: string[];
}

export interface EditorConnectionDTO {
  source: string;
  sourceOutput: string;
  target: string;
  targetInput: string;
  /** Reroute points the connection is drawn through. */
  points?: Position[];
}

export interface EditorSnapshot {
  nodes: EditorNodeDTO[];
  connections: EditorConnectionDTO[];
  /** Titled frames behind the nodes. */
  groups?: GraphGroup[];
}

function cloneJson<T>(value: T): T {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T);
}

/** Positions are stored rounded: sub-pixel drag noise would otherwise mark every graph as changed. */
function roundPosition(p: Position): Position {
  return { x: Math.round(p.x), y: Math.round(p.y) };
}

/** Editor state → graph JSON v1 (the save/export/job format). */
export function snapshotToGraph(snapshot: EditorSnapshot, meta: Graph['meta'] = {}): Graph {
  const nodes: GraphNode[] = snapshot.nodes.map((n) => {
    const node: GraphNode = {
      id: n.id,
      type: n.type,
      params: cloneJson(n.params) ?? {},
      position: roundPosition(n.position),
    };
    if (n.title !== undefined && n.title !== '') node.title = n.title;
    if (n.mode) node.mode = n.mode;
    if (n.exposed?.length) node.exposed = [...n.exposed];
    return node;
  });
  const edges: GraphEdge[] = snapshot.connections.map((c) => ({
    from: { node: c.source, output: c.sourceOutput },
    to: { node: c.target, input: c.targetInput },
    ...(c.points?.length ? { points: c.points.map(roundPosition) } : {}),
  }));
  const graph: Graph = { format: GRAPH_FORMAT, version: GRAPH_VERSION, nodes, edges, meta: cloneJson(meta) ?? {} };
  if (snapshot.groups?.length)
    graph.groups = snapshot.groups.map((g) => ({ ...g, ...roundPosition(g), width: Math.round(g.width), height: Math.round(g.height) }));
  return graph;
}

/**
 * A stable text of the graph's content, for "has this changed since it was saved?". Meta is left
 * out on purpose: saving stamps meta, and that alone must not make the graph dirty.
 */
export function graphFingerprint(graph: Graph): string {
  // Order-insensitive: undoing a delete re-adds a node and its edges at the end of the lists.
  const nodes = [...graph.nodes].sort((a, b) => a.id.localeCompare(b.id)).map((n) => JSON.stringify(n, sortedKeys(n.params)));
  const edges = graph.edges
    .map((e) => `${e.from.node}.${e.from.output}>${e.to.node}.${e.to.input}${e.points?.length ? JSON.stringify(e.points.map((p) => [p.x, p.y])) : ''}`)
    .sort();
  const groups = [...(graph.groups ?? [])]
    .sort((a, b) => a.id.localeCompare(b.id))
    .map((g) => JSON.stringify([g.id, g.title, g.x, g.y, g.width, g.height, g.color ?? '']));
  return JSON.stringify({ nodes, edges, ...(groups.length ? { groups } : {}) });
}

/**
 * What a graph computes, without its layout (positions, reroute points, frames) or meta: two tabs
 * with the same template open have the same content even when their nodes sit elsewhere.
 */
export function graphContent(graph: Pick<Graph, 'nodes' | 'edges'>): string {
  const nodes = [...graph.nodes]
    .sort((a, b) => a.id.localeCompare(b.id))
    .map((n) => JSON.stringify({ id: n.id, type: n.type, params: n.params ?? {}, mode: n.mode ?? null }, sortedKeys(n.params ?? {})));
  const edges = graph.edges.map((e) => `${e.from.node}.${e.from.output}>${e.to.node}.${e.to.input}`).sort();
  return JSON.stringify({ nodes, edges });
}

/** JSON.stringify replacer list that puts object keys in a stable order. */
function sortedKeys(params: Record<string, unknown>): string[] {
  const keys = new Set<string>(['id', 'type', 'params', 'position', 'x', 'y', 'title', 'mode']);
  const walk = (v: unknown) => {
    if (!v || typeof v !== 'object') return;
    for (const [k, x] of Object.entries(v)) {
      keys.add(k);
      walk(x);
    }
  };
  walk(params);
  return [...keys].sort();
}

export type ParseResult = { ok: true; graph: Graph } | { ok: false; message: string };

/**
 * Reads a graph file a user imported or dropped, with the server's own rules: the format check and
 * migration of older versions (protocol/graph-migrate.ts), then the shared zod schema, each problem
 * worded as the server words it. Only layout is forgiven: a broken frame or reroute point is dropped
 * rather than costing the graph. Parameter values are left to the server's validation.
 */
export function parseGraphJson(input: unknown): ParseResult {
  let data: unknown = input;
  if (typeof input === 'string') {
    try {
      data = JSON.parse(input);
    } catch (err) {
      return { ok: false, message: `This file is not valid JSON: ${(err as Error).message}` };
    }
  }
  if (isRecord(data) && data.format === undefined && 'nodes' in data && 'links' in data) {
    return { ok: false, message: 'This looks like a ComfyUI workflow; only Dual Style graph files (format "dualstyle-graph") can be opened.' };
  }
  const migrated = migrateGraph(data);
  if (migrated.issues.length) return { ok: false, message: migrated.issues[0].message };
  const raw = forgiveLayout(migrated.graph as Record<string, unknown>);
  const parsed = GraphSchema.safeParse(raw);
  if (!parsed.success) {
    const [first, ...rest] = parsed.error.issues.map((zi) => schemaIssue(zi, raw).message);
    return { ok: false, message: rest.length ? `${first} (and ${rest.length} more problem${rest.length > 1 ? 's' : ''})` : first };
  }
  const seen = new Set<string>();
  for (const n of parsed.data.nodes) {
    if (seen.has(n.id)) return { ok: false, message: `Two nodes share the id "${n.id}".` };
    seen.add(n.id);
  }
  return { ok: true, graph: parsed.data };
}

/** The file with its broken frames and reroute points left out (layout only: they never change what runs). */
function forgiveLayout(raw: Record<string, unknown>): Record<string, unknown> {
  const out = { ...raw };
  if (Array.isArray(raw.groups)) {
    const groups = raw.groups.flatMap((g, i) => readGroup(g, i));
    if (groups.length) out.groups = groups;
    else delete out.groups;
  }
  if (Array.isArray(raw.edges)) {
    out.edges = raw.edges.map((e: unknown) => {
      if (!isRecord(e) || e.points === undefined) return e;
      const points = Array.isArray(e.points) ? e.points.filter(isPoint).map((p) => ({ x: p.x, y: p.y })) : [];
      const { points: _dropped, ...rest } = e;
      return points.length ? { ...rest, points } : rest;
    });
  }
  return out;
}

function isPoint(p: unknown): p is Position {
  return isRecord(p) && typeof p.x === 'number' && typeof p.y === 'number' && Number.isFinite(p.x) && Number.isFinite(p.y);
}

/** A frame of the file, or nothing when it is not one (a broken frame never costs the graph). */
function readGroup(g: unknown, i: number): GraphGroup[] {
  const group = GraphGroupSchema.safeParse(isRecord(g) ? { title: 'Group', ...g, id: typeof g.id === 'string' ? g.id : `group-${i + 1}` } : g);
  return group.success ? [group.data] : [];
}

/** Parameter values of a fresh node: every declared default. */
export function defaultParams(spec: CatalogNode): Record<string, unknown> {
  const params: Record<string, unknown> = {};
  for (const p of spec.params) {
    if (p.default !== undefined) params[p.name] = cloneJson(p.default);
  }
  return params;
}

/** The one type rule of the editor: an output feeds an input of exactly the same socket type. */
export function socketsCompatible(outputType: string, inputType: string): boolean {
  return outputType === inputType && outputType !== UNKNOWN_SOCKET;
}

export interface PlannedSocket {
  name: string;
  type: string;
  label: string;
  optional?: boolean;
  description?: string;
  /** A member (1-based `index`) of the variadic family `family` (style1 of "style"). */
  family?: string;
  index?: number;
}

/** One node to create in the editor: its DTO plus the sockets to give it. */
export interface PlannedNode {
  dto: EditorNodeDTO;
  /** Null for a type the catalog does not know: it becomes a placeholder that keeps its data. */
  spec: CatalogNode | null;
  inputs: PlannedSocket[];
  outputs: PlannedSocket[];
}

export interface ImportPlan {
  nodes: PlannedNode[];
  connections: EditorConnectionDTO[];
  /** Things that could not be kept, said so the user understands (shown after opening). */
  problems: string[];
}

/**
 * Decides how to rebuild a graph in the editor with the current catalog. Unknown node types become
 * placeholders (their params and edges survive a save); edges to missing nodes or sockets, and extra
 * edges into an already-fed input, are dropped and reported.
 */
export function planImport(graph: Graph, catalog: Catalog): ImportPlan {
  const specs = new Map(catalog.nodes.map((n) => [n.type, n]));
  const problems: string[] = [];
  const nodes: PlannedNode[] = graph.nodes.map((n) => {
    const spec = specs.get(n.type) ?? null;
    const dto: EditorNodeDTO = {
      id: n.id,
      type: n.type,
      params: spec ? { ...defaultParams(spec), ...(cloneJson(n.params) ?? {}) } : (cloneJson(n.params) ?? {}),
      position: { ...(n.position ?? { x: 0, y: 0 }) },
      ...(n.title !== undefined ? { title: n.title } : {}),
      ...(n.mode ? { mode: n.mode } : {}),
      ...(n.exposed?.length ? { exposed: [...n.exposed] } : {}),
    };
    if (spec) return { dto, spec, ...socketsFor(spec, dto.params) };
    problems.push(`Node "${n.id}" has type "${n.type}", which this server does not provide; it is kept as a placeholder.`);
    // Infer the placeholder's sockets from its edges so the wiring is kept.
    const inputs = uniqueNames(graph.edges.filter((e) => e.to.node === n.id).map((e) => e.to.input));
    const outputs = uniqueNames(graph.edges.filter((e) => e.from.node === n.id).map((e) => e.from.output));
    const unknown = (name: string): PlannedSocket => ({ name, type: UNKNOWN_SOCKET, label: name });
    return { dto, spec: null, inputs: inputs.map(unknown), outputs: outputs.map(unknown) };
  });

  const byId = new Map(nodes.map((n) => [n.dto.id, n]));
  const fed = new Set<string>();
  const connections: EditorConnectionDTO[] = [];
  for (const e of graph.edges) {
    const src = byId.get(e.from.node);
    const dst = byId.get(e.to.node);
    const what = `${e.from.node}.${e.from.output} → ${e.to.node}.${e.to.input}`;
    if (!src || !dst) {
      problems.push(`Edge ${what} refers to a node that is not in the graph; it was dropped.`);
      continue;
    }
    const out = src.outputs.find((s) => s.name === e.from.output);
    const inp = dst.inputs.find((s) => s.name === e.to.input);
    if (!out || !inp) {
      problems.push(`Edge ${what} refers to a socket the node does not have; it was dropped.`);
      continue;
    }
    // Placeholder sockets keep whatever wiring they had; known sockets must type-check.
    if (src.spec && dst.spec && !socketsCompatible(out.type, inp.type)) {
      problems.push(`Edge ${what} connects ${out.type} to ${inp.type}; it was dropped.`);
      continue;
    }
    const key = `${e.to.node}\u0000${e.to.input}`;
    if (fed.has(key)) {
      problems.push(`Input ${e.to.node}.${e.to.input} had more than one edge; only the first was kept.`);
      continue;
    }
    fed.add(key);
    connections.push({
      source: e.from.node,
      sourceOutput: e.from.output,
      target: e.to.node,
      targetInput: e.to.input,
      ...(e.points?.length ? { points: e.points } : {}),
    });
  }
  return { nodes, connections, problems };
}

/**
 * The sockets a node of this type has for these parameters: a variadic family (a sampler's styles) as
 * many members as its count parameter says (style1..styleN).
 */
export function socketsFor(spec: CatalogNode, params: Record<string, unknown>): { inputs: PlannedSocket[]; outputs: PlannedSocket[] } {
  return { inputs: expandSockets(spec.inputs, params).map(toPlanned), outputs: spec.outputs.map(toPlanned) };
}

/** The parameters that count a variadic family of the node's inputs (a sampler's "styles"). */
export function countParams(spec: CatalogNode): Set<string> {
  return new Set(spec.inputs.flatMap((s) => (s.variadic ? [s.variadic.param] : [])));
}

function toPlanned(s: { name: string; type: string; label: string; optional?: boolean; description?: string; family?: string; index?: number }): PlannedSocket {
  return {
    name: s.name,
    type: s.type,
    label: s.label || s.name,
    optional: s.optional,
    description: s.description,
    ...(s.family !== undefined ? { family: s.family, index: s.index } : {}),
  };
}

function uniqueNames(names: string[]): string[] {
  return [...new Set(names)];
}

/** A readable node id that the graph schema accepts (letters, digits, "_", "-", "."), unique in the graph. */
export function uniqueNodeId(type: string, existing: Iterable<string>): string {
  const taken = new Set(existing);
  const base =
    type
      .replace(/[^A-Za-z0-9_.-]+/g, '-')
      .replace(/^[-.]+|[-.]+$/g, '')
      .slice(0, 48) || 'node';
  for (let i = 1; ; i++) {
    const id = `${base}-${i}`;
    if (!taken.has(id)) return id;
  }
}

/** The name rule of saved graphs (same as the server's): 1–64 of letters, digits, space, "_", "-", ".". */
export function graphNameProblem(name: string): string | null {
  return name.length === 0 ? 'Give the graph a name.' : nameProblem(name, 'A graph name');
}

/**
 * Would an edge source → target close a loop? True when target already reaches source through the
 * existing connections (or when they are the same node).
 */
export function wouldCreateCycle(connections: Pick<EditorConnectionDTO, 'source' | 'target'>[], source: string, target: string): boolean {
  if (source === target) return true;
  const next = new Map<string, string[]>();
  for (const c of connections) {
    if (!next.has(c.source)) next.set(c.source, []);
    next.get(c.source)!.push(c.target);
  }
  const stack = [target];
  const seen = new Set<string>();
  while (stack.length) {
    const id = stack.pop()!;
    if (id === source) return true;
    if (seen.has(id)) continue;
    seen.add(id);
    stack.push(...(next.get(id) ?? []));
  }
  return false;
}

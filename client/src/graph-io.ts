/**
 * Graph JSON v1 <-> editor DTOs. Pure: no DOM, no Rete, so it is unit-tested in plain Node.
 *
 * Rete v2 has no toJSON/fromJSON. The editor module turns its nodes and connections into the plain
 * snapshot below (and back), and everything about the file format lives here.
 */
import type {
  Graph,
  GraphEdge,
  GraphGroup,
  GraphNode,
  NodeMode,
  GRAPH_FORMAT as GraphFormat,
  GRAPH_VERSION as GraphVersion,
} from '../../server/protocol/graph.ts';
import { expandSockets, type Catalog, type CatalogNode } from '../../server/protocol/catalog.ts';

/** Same literals as server/protocol/graph.ts; the `typeof` annotation makes a drift a type error. */
export const GRAPH_FORMAT: typeof GraphFormat = 'dualstyle-graph';
export const GRAPH_VERSION: typeof GraphVersion = 1;

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

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Reads a graph file a user imported or dropped. Checks the shape well enough to build an editor
 * from it and says clearly what is wrong; parameter values are left to the server's validation.
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
  if (!isRecord(data)) return { ok: false, message: 'A graph file must contain a JSON object.' };
  if (data.format !== GRAPH_FORMAT) {
    if ('nodes' in data && 'links' in data) {
      return { ok: false, message: 'This looks like a ComfyUI workflow; only Dual Style graph files (format "dualstyle-graph") can be opened.' };
    }
    return { ok: false, message: `Not a Dual Style graph: "format" must be "${GRAPH_FORMAT}".` };
  }
  if (typeof data.version !== 'number') return { ok: false, message: 'The graph file has no "version" number.' };
  if (data.version > GRAPH_VERSION) {
    return { ok: false, message: `This graph was saved by a newer version (graph format v${data.version}); this studio reads v${GRAPH_VERSION}.` };
  }
  if (data.version !== GRAPH_VERSION) return { ok: false, message: `Unsupported graph version ${data.version}.` };
  if (!Array.isArray(data.nodes)) return { ok: false, message: 'The graph file has no "nodes" list.' };
  const edgesIn = data.edges ?? [];
  if (!Array.isArray(edgesIn)) return { ok: false, message: '"edges" must be a list.' };

  const nodes: GraphNode[] = [];
  const seen = new Set<string>();
  for (const [i, n] of data.nodes.entries()) {
    if (!isRecord(n)) return { ok: false, message: `Node #${i + 1} is not an object.` };
    if (typeof n.id !== 'string' || n.id === '') return { ok: false, message: `Node #${i + 1} has no "id".` };
    if (typeof n.type !== 'string' || n.type === '') return { ok: false, message: `Node "${n.id}" has no "type".` };
    if (seen.has(n.id)) return { ok: false, message: `Two nodes share the id "${n.id}".` };
    seen.add(n.id);
    const pos =
      isRecord(n.position) && typeof n.position.x === 'number' && typeof n.position.y === 'number' ? { x: n.position.x, y: n.position.y } : { x: 0, y: 0 };
    const node: GraphNode = { id: n.id, type: n.type, params: isRecord(n.params) ? cloneJson(n.params) : {}, position: pos };
    if (typeof n.title === 'string') node.title = n.title;
    if (n.mode === 'bypass' || n.mode === 'mute') node.mode = n.mode;
    nodes.push(node);
  }
  const edges: GraphEdge[] = [];
  for (const [i, e] of edgesIn.entries()) {
    const from = isRecord(e) && isRecord(e.from) ? e.from : null;
    const to = isRecord(e) && isRecord(e.to) ? e.to : null;
    if (!from || !to || typeof from.node !== 'string' || typeof from.output !== 'string' || typeof to.node !== 'string' || typeof to.input !== 'string') {
      return { ok: false, message: `Edge #${i + 1} must look like { from: { node, output }, to: { node, input } }.` };
    }
    const rawPoints = (e as { points?: unknown }).points;
    const points = Array.isArray(rawPoints) ? rawPoints.filter(isPoint).map((p) => ({ x: p.x, y: p.y })) : [];
    edges.push({ from: { node: from.node, output: from.output }, to: { node: to.node, input: to.input }, ...(points.length ? { points } : {}) });
  }
  const meta = isRecord(data.meta) ? cloneJson(data.meta) : {};
  const graph: Graph = { format: GRAPH_FORMAT, version: GRAPH_VERSION, nodes, edges, meta };
  const groups = Array.isArray(data.groups) ? data.groups.flatMap((g, i) => readGroup(g, i)) : [];
  if (groups.length) graph.groups = groups;
  return { ok: true, graph };
}

function isPoint(p: unknown): p is Position {
  return isRecord(p) && typeof p.x === 'number' && typeof p.y === 'number' && Number.isFinite(p.x) && Number.isFinite(p.y);
}

/** A frame of the file, or nothing when it is not one (a broken frame never costs the graph). */
function readGroup(g: unknown, i: number): GraphGroup[] {
  if (!isRecord(g) || !isPoint(g) || !(Number(g.width) > 0) || !(Number(g.height) > 0)) return [];
  const group: GraphGroup = {
    id: typeof g.id === 'string' && /^[A-Za-z0-9_.-]{1,64}$/.test(g.id) ? g.id : `group-${i + 1}`,
    title: typeof g.title === 'string' ? g.title.slice(0, 200) : 'Group',
    x: g.x,
    y: g.y,
    width: Number(g.width),
    height: Number(g.height),
  };
  if (typeof g.color === 'string' && /^#[0-9a-fA-F]{6}$/.test(g.color)) group.color = g.color;
  return [group];
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
  if (name.length === 0) return 'Give the graph a name.';
  if (name.length > 64) return 'A graph name may have at most 64 characters.';
  if (!/^[A-Za-z0-9 _.-]+$/.test(name)) return 'A graph name may use letters, digits, spaces, "_", "-" and "." only.';
  if (name.startsWith('.') || name.includes('..')) return 'A graph name may not start with "." or contain "..".';
  if (name.trim() !== name) return 'A graph name may not start or end with a space.';
  return null;
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

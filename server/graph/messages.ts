/**
 * The words of graph validation: how a node is named ("Mask (m2)"), what a schema or connection
 * problem says, which input a variadic family lacks, and a near-miss suggestion for a misspelt type.
 * validate.ts decides what is wrong; this module only says it.
 */
import type { GraphEdge, GraphNode, ValidationIssue } from '../protocol/graph.ts';
import type { AnyNodeDefinition, ConcreteInput } from '../../nodes/types.ts';
import type { NodeCatalog } from '../catalog.ts';
import { listOrNone } from './params.ts';

export function danglingIssue(edge: GraphEdge, index: number, fromName?: string, toName?: string): ValidationIssue {
  const { from, to } = edge;
  if (toName) {
    return {
      code: 'dangling_edge',
      nodeId: to.node,
      field: to.input,
      message: `${toName} → ${to.input} is connected to node "${from.node}", which does not exist.`,
    };
  }
  if (fromName) {
    return {
      code: 'dangling_edge',
      nodeId: from.node,
      field: from.output,
      message: `${fromName} → ${from.output} is connected to node "${to.node}", which does not exist.`,
    };
  }
  return {
    code: 'dangling_edge',
    field: `edges[${index}]`,
    message: `A connection links nodes "${from.node}" and "${to.node}", neither of which exists.`,
  };
}

/**
 * How each node is named in messages: its user title, else its type's title; the id is added when
 * two nodes would otherwise read the same ("Mask (m2)").
 */
export function displayNames(nodes: GraphNode[], catalog: NodeCatalog): Map<GraphNode, string> {
  const base = new Map<GraphNode, string>();
  const count = new Map<string, number>();
  for (const n of nodes) {
    const title = n.title?.trim() || catalog.get(n.type)?.title || n.type;
    base.set(n, title);
    count.set(title, (count.get(title) ?? 0) + 1);
  }
  const names = new Map<GraphNode, string>();
  for (const [n, title] of base) names.set(n, count.get(title)! > 1 ? `${title} (${n.id})` : title);
  return names;
}

/** "a Latent", "an Image": a socket type with its article. */
export function withArticle(word: string): string {
  return `${/^[AEIOU]/i.test(word) ? 'an' : 'a'} ${word}`;
}

/**
 * "X has no input "y" (it has ...)", or, for a member of a variadic family beyond the node's count,
 * what to change: "Epsilon Merge Sampler has 3 styles (style1 … style3), but style5 is connected; ...".
 */
export function unknownInputMessage(name: string, def: AnyNodeDefinition, sockets: ConcreteInput[], input: string): string {
  for (const [family, spec] of Object.entries(def.inputs as Record<string, ConcreteInput>)) {
    const m = spec.variadic && input.startsWith(family) ? /^(\d+)$/.exec(input.slice(family.length)) : null;
    if (!m || !spec.variadic) continue;
    const count = sockets.filter((s) => s.family === family).length;
    const index = Number(m[1]);
    const range = count > 1 ? `${family}1 … ${family}${count}` : `${family}1`;
    const fix =
      index <= spec.variadic.max
        ? `set ${humanParam(spec.variadic.param)} to ${index} or more, or remove the connection`
        : `a node takes at most ${spec.variadic.max}; remove the connection`;
    return `${name} has ${count} ${family} inputs (${range}), but ${input} is connected; ${fix}.`;
  }
  return `${name} has no input "${input}" (it has ${listOrNone(sockets.map((s) => s.name))}).`;
}

export function humanParam(param: string): string {
  return param.charAt(0).toUpperCase() + param.slice(1);
}

/** A catalog type close to a misspelt one: same letters ignoring case, or at most 2 edits away. */
export function suggest(type: string, known: string[]): string | undefined {
  const lower = type.toLowerCase();
  let best: string | undefined;
  let bestDist = 3;
  for (const k of known) {
    const d = k.toLowerCase() === lower ? 0 : editDistance(lower, k.toLowerCase());
    if (d < bestDist) {
      best = k;
      bestDist = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

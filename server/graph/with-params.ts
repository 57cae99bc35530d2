import type { Graph } from '../protocol/graph.ts';

/**
 * A copy of `graph` with parameters overridden by node type (every node of that type) or by node id
 * (the id wins): how the bench, the CLIs and the tests adapt a template.
 */
export function withParams(graph: Graph, byTypeOrId: Record<string, Record<string, unknown>>): Graph {
  const g = structuredClone(graph);
  for (const n of g.nodes) n.params = { ...n.params, ...byTypeOrId[n.type], ...byTypeOrId[n.id] };
  return g;
}

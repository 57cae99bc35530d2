/**
 * Topological order of a graph (Kahn's algorithm) and upstream closure. Deterministic: among nodes
 * that are ready at the same time, the one that comes first in the file runs first, so the same file
 * always runs in the same order and events read the same way in every run.
 */
/** The part of a graph this module looks at (ids and edges); a validated Graph fits, and so does a partial one. */
export interface GraphShape {
  nodes: readonly { id: string }[];
  edges: readonly { from: { node: string }; to: { node: string } }[];
}

/**
 * Node ids in an order where every edge goes forward. Edges that reference a missing node are
 * ignored (validation reports them). When the graph has a cycle, `order` holds the nodes that could
 * be ordered and `cycle` lists one cycle in edge direction: [a, b, c] means a → b → c → a.
 */
export function topoOrder(graph: GraphShape): { order: string[]; cycle?: string[] } {
  const index = firstIndexById(graph);
  const ids = [...index.keys()];
  const indegree = new Map<string, number>(ids.map((id) => [id, 0]));
  const downstream = new Map<string, string[]>(ids.map((id) => [id, []]));
  const upstream = new Map<string, string[]>(ids.map((id) => [id, []]));
  for (const e of graph.edges) {
    const from = e.from.node;
    const to = e.to.node;
    if (!index.has(from) || !index.has(to)) continue;
    downstream.get(from)!.push(to);
    upstream.get(to)!.push(from);
    indegree.set(to, indegree.get(to)! + 1);
  }

  // Ready set kept sorted by file position; graphs are at most a few hundred nodes, so a sorted
  // insert is simpler than a heap and just as fast here.
  const ready: string[] = ids.filter((id) => indegree.get(id) === 0);
  const order: string[] = [];
  while (ready.length > 0) {
    const id = ready.shift()!;
    order.push(id);
    for (const next of downstream.get(id)!) {
      const d = indegree.get(next)! - 1;
      indegree.set(next, d);
      if (d === 0) insertSorted(ready, next, index);
    }
  }
  if (order.length === ids.length) return { order };

  const placed = new Set(order);
  const remaining = ids.filter((id) => !placed.has(id));
  return { order, cycle: findCycle(remaining, upstream) };
}

/**
 * The given nodes and every node upstream of them (what must run to compute them). Ids that are not
 * in the graph are ignored.
 */
export function ancestorsOf(graph: GraphShape, nodeIds: string[]): Set<string> {
  const present = new Set(graph.nodes.map((n) => n.id));
  const upstream = new Map<string, string[]>();
  for (const e of graph.edges) {
    const list = upstream.get(e.to.node);
    if (list) list.push(e.from.node);
    else upstream.set(e.to.node, [e.from.node]);
  }
  const seen = new Set<string>();
  const stack = nodeIds.filter((id) => present.has(id));
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    for (const up of upstream.get(id) ?? []) if (present.has(up) && !seen.has(up)) stack.push(up);
  }
  return seen;
}

function firstIndexById(graph: GraphShape): Map<string, number> {
  const index = new Map<string, number>();
  graph.nodes.forEach((n, i) => {
    if (!index.has(n.id)) index.set(n.id, i);
  });
  return index;
}

function insertSorted(list: string[], id: string, index: Map<string, number>): void {
  const pos = index.get(id)!;
  let i = list.length;
  while (i > 0 && index.get(list[i - 1])! > pos) i--;
  list.splice(i, 0, id);
}

/**
 * Every node Kahn could not place has at least one unplaced predecessor, so walking predecessors from
 * any of them must revisit a node; the walk between the two visits is a cycle.
 */
function findCycle(remaining: string[], upstream: Map<string, string[]>): string[] {
  const left = new Set(remaining);
  const path: string[] = [];
  const onPath = new Map<string, number>();
  let id = remaining[0];
  while (!onPath.has(id)) {
    onPath.set(id, path.length);
    path.push(id);
    id = upstream.get(id)!.find((up) => left.has(up))!;
  }
  // path walks against the edges; reverse to report the cycle in edge direction.
  return path.slice(onPath.get(id)!).reverse();
}

/**
 * Estimated time to finish, from step times measured on this installation. Every computed node teaches
 * its type's typical time and the steps it reported (a moving average, so a model warming up or a
 * change of model soon shows). A job's estimate is the sum over the nodes it runs: a node whose own
 * parameters say how many steps it takes (`steps` − `skip`, as the inversion) is timed per step; other
 * nodes take their type's typical time. The running node is timed by its own pace: elapsed / step ×
 * steps left. With several workers, the queue is dealt to whichever worker frees up first.
 *
 * Nodes served from the cache take no time, which a plan made before the run cannot know: estimates
 * lean long for a re-run of an unchanged graph.
 */
import type { Graph } from '../protocol/graph.ts';
import type { JobProgress } from '../protocol/events.ts';

/** The typical run of a node type: its time, and the steps it reported (absent when it reports none). */
export interface NodeTime {
  ms: number;
  steps?: number;
}

export type NodeTimes = ReadonlyMap<string, NodeTime>;

/** One node a job will run, as the estimate needs it. */
export interface PlannedNode {
  id: string;
  type: string;
  title?: string;
  /** Steps its parameters ask for, when they say (steps − skip). */
  steps?: number;
}

/** What the running job is doing; the worker updates it as events come. Times are epoch ms. */
export interface LiveState {
  done: string[];
  current?: { nodeId: string; type: string; startedAt: number; step?: number; steps?: number; label?: string };
}

/** The plan of a run: the nodes in order, with what the estimate needs. */
export function planOf(graph: Graph, nodeIds: string[], titleOf: (type: string) => string | undefined): PlannedNode[] {
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  return nodeIds.map((id) => {
    const node = byId.get(id);
    const type = node?.type ?? 'unknown';
    const params = (node?.params ?? {}) as Record<string, unknown>;
    const steps = typeof params.steps === 'number' ? params.steps - (typeof params.skip === 'number' ? params.skip : 0) : undefined;
    const title = node?.title?.trim() || titleOf(type);
    return { id, type, ...(title ? { title } : {}), ...(steps !== undefined && steps > 0 ? { steps } : {}) };
  });
}

/** A moving average: the latest run counts half. */
export function learnNodeTime(before: NodeTime | undefined, ms: number, steps?: number): NodeTime {
  const mix = (a: number | undefined, b: number) => (a === undefined ? b : 0.5 * a + 0.5 * b);
  const learnedSteps = steps !== undefined ? mix(before?.steps, steps) : before?.steps;
  return { ms: mix(before?.ms, ms), ...(learnedSteps !== undefined ? { steps: learnedSteps } : {}) };
}

function nodeMs(times: NodeTimes, node: PlannedNode): number | undefined {
  const t = times.get(node.type);
  if (!t) return undefined;
  return t.steps && node.steps ? (t.ms / t.steps) * node.steps : t.ms;
}

/** The whole plan's time, or the part not in `skip`; undefined while a node type has never run here. */
export function planMs(times: NodeTimes, plan: PlannedNode[], skip?: ReadonlySet<string>): number | undefined {
  let total = 0;
  for (const node of plan) {
    if (skip?.has(node.id)) continue;
    const ms = nodeMs(times, node);
    if (ms === undefined) return undefined;
    total += ms;
  }
  return total;
}

/** The running job's time left: the current node at its own pace, then the nodes after it. */
export function remainingMs(times: NodeTimes, plan: PlannedNode[], live: LiveState, now: number): number | undefined {
  const skip = new Set(live.done);
  let current = 0;
  const c = live.current;
  if (c) {
    skip.add(c.nodeId);
    const spent = Math.max(0, now - c.startedAt);
    if (c.step && c.steps) current = (spent * (c.steps - c.step)) / c.step;
    else {
      const node = plan.find((n) => n.id === c.nodeId);
      const typical = node ? nodeMs(times, node) : undefined;
      if (typical === undefined) return undefined;
      current = Math.max(0, typical - spent);
    }
  }
  const rest = planMs(times, plan, skip);
  return rest === undefined ? undefined : current + rest;
}

export function progressOf(plan: PlannedNode[], live: LiveState): JobProgress {
  const c = live.current;
  const title = c ? plan.find((n) => n.id === c.nodeId)?.title : undefined;
  return {
    nodesDone: live.done.length,
    nodesTotal: plan.length,
    ...(c ? { nodeId: c.nodeId, ...(title ? { nodeTitle: title } : {}) } : {}),
    ...(c?.steps ? { step: c.step ?? 0, steps: c.steps, ...(c.label ? { stepLabel: c.label } : {}) } : {}),
  };
}

/**
 * When each waiting job will be done: `workers` run at once; the running jobs free theirs after their
 * time left, and each waiting job in turn goes to the worker that frees up first. An unknown time makes
 * that worker's later jobs unknown too (undefined).
 */
export function queueEtas(runningLeft: (number | undefined)[], waitingOwn: (number | undefined)[], workers: number): (number | undefined)[] {
  const free: number[] = runningLeft.map((ms) => (ms === undefined ? NaN : ms));
  while (free.length < Math.max(1, workers)) free.push(0);
  return waitingOwn.map((own) => {
    // The earliest known slot; an unknown (NaN) slot is taken only when every slot is unknown.
    let best = 0;
    for (let i = 1; i < free.length; i++) {
      if (Number.isNaN(free[best]!) || free[i]! < free[best]!) best = i;
    }
    const eta = own === undefined ? NaN : free[best]! + own;
    free[best] = eta;
    return Number.isNaN(eta) ? undefined : Math.round(eta);
  });
}

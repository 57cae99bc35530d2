/**
 * The memory check before a job runs. Each node the job needs announces, from its parameters and its
 * inputs' planned sizes, the sizes of its outputs and the inference calls it will make (NodeDefinition
 * .plan); those calls give the job's peak memory (engine/sd/memory.ts), which must fit the budget
 * (`--max-job-memory`). A node's plan that throws (a missing upload, a model path outside the models
 * folders) fails the job at that node, before anything runs.
 */
import os from 'node:os';
import { estimateJobMemory, type InferenceWork, type MemoryEstimate } from '../engine/sd/memory.ts';
import type { AnyNodeDefinition, PlannedValue } from '../../nodes/types.ts';
import { UserError } from '../engine/errors.ts';
import type { Services } from '../services/services.ts';
import type { NodeCatalog } from '../catalog.ts';
import type { Graph, GraphNode } from '../protocol/graph.ts';
import { formatBytes } from '../util/bytes.ts';
import { NodeFailedError, planRun } from './executor.ts';

/**
 * The default budget: three quarters of the memory this process may use (the machine's, or the
 * container's limit when it has one), leaving the rest to the system and the editor's browser.
 */
export function defaultMemoryBudget(): number {
  const total = os.totalmem();
  const constrained = typeof process.constrainedMemory === 'function' ? process.constrainedMemory() : 0;
  const available = constrained && constrained > 0 && constrained < total ? constrained : total;
  return Math.floor(available * 0.75);
}

/** A job whose estimated peak memory is over the budget; `nodeId` is the node of the largest call. */
export class JobMemoryError extends UserError {
  constructor(
    readonly estimate: MemoryEstimate,
    readonly budgetBytes: number,
  ) {
    const largest = estimate.largest;
    const work = largest?.work;
    const f = work?.model.vaeDownsample ?? 8;
    const where = work
      ? ` at ${work.latentWidth * f}×${work.latentHeight * f} px` +
        (work.stage === 'unet' ? ` (${work.rows} row${work.rows > 1 ? 's' : ''} per UNet call)` : '')
      : '';
    super(
      `this job needs about ${formatBytes(estimate.totalBytes)} of memory${where}: ${formatBytes(estimate.weightsBytes)} of model weights` +
        (largest ? ` and ${formatBytes(largest.bytes)} for its largest step` : '') +
        `, more than the ${formatBytes(budgetBytes)} one job may use (--max-job-memory). ` +
        'Use a smaller image (Load Image → max side), or start the studio with a larger --max-job-memory if this machine has the memory.',
    );
    this.name = 'JobMemoryError';
  }
}

export interface PlannedWork extends InferenceWork {
  nodeId: string;
}

/** The inference calls a run of `graph` (validated) will make, node by node in run order. */
export async function planJob(graph: Graph, catalog: NodeCatalog, services: Services, outputs?: string[]): Promise<PlannedWork[]> {
  const nodes = new Map<string, GraphNode>();
  for (const n of graph.nodes) if (!nodes.has(n.id)) nodes.set(n.id, n);
  const planned = new Map<string, Record<string, PlannedValue>>();
  const work: PlannedWork[] = [];
  for (const nodeId of planRun(graph, catalog, outputs)) {
    const node = nodes.get(nodeId)!;
    const def = catalog.get(node.type) as AnyNodeDefinition | undefined;
    if (!def?.plan) continue;
    const inputs: Record<string, PlannedValue | undefined> = {};
    for (const e of graph.edges) if (e.to.node === nodeId) inputs[e.to.input] = planned.get(e.from.node)?.[e.from.output];
    let plan;
    try {
      plan = await def.plan({ params: node.params, inputs, services });
    } catch (err) {
      throw new NodeFailedError(nodeId, def.type, node.title?.trim() || def.title, err);
    }
    if (plan.outputs) planned.set(nodeId, plan.outputs);
    for (const w of plan.work ?? []) work.push({ ...w, nodeId, by: w.by ?? `${node.title?.trim() || def.title} (${nodeId})` });
  }
  return work;
}

/** The estimate of a job's calls; throws JobMemoryError (as a failure of the node of its largest call) when it is over the budget. */
export function checkMemory(work: PlannedWork[], budgetBytes: number, catalog: NodeCatalog, graph: Graph): MemoryEstimate {
  const estimate = estimateJobMemory(work);
  if (estimate.totalBytes <= budgetBytes) return estimate;
  const error = new JobMemoryError(estimate, budgetBytes);
  const nodeId = (estimate.largest?.work as PlannedWork | undefined)?.nodeId;
  const node = graph.nodes.find((n) => n.id === nodeId);
  const def = node ? catalog.get(node.type) : undefined;
  if (!node || !def) throw error;
  throw new NodeFailedError(node.id, def.type, node.title?.trim() || def.title, error);
}

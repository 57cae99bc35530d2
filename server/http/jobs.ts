/** Jobs: submit (validated before queueing), inspect, cancel; and the queue. */
import { Router, type Request, type RequestHandler } from 'express';
import type { NodeCatalog } from '../catalog.ts';
import { NodeFailedError } from '../executor/executor.ts';
import { JobMemoryError } from '../executor/memory-plan.ts';
import { QueueFullError } from '../executor/queue.ts';
import { UserError } from '../../nodes/types.ts';
import type { Graph, ValidationIssue } from '../protocol/graph.ts';
import { formatIssue, validateGraph } from '../graph/validate.ts';
import { jsonObject, param } from './body.ts';
import { ApiError } from './errors.ts';
import type { JobRunner } from './job-runner.ts';

function jobOf(runner: JobRunner, req: Request) {
  const id = param(req, 'id');
  const detail = runner.describe(id);
  if (!detail) throw new ApiError(404, 'not_found', `no job with id "${id}"`);
  return detail;
}

/**
 * What can be known before a job runs is checked before it is queued: a missing upload or a refused
 * model path (400, on its node), and the memory estimate against the budget (422). The runner checks
 * again when the job starts, since the files may change meanwhile.
 */
async function checkBeforeQueueing(runner: JobRunner, graph: Graph, outputs: string[] | undefined): Promise<void> {
  try {
    await runner.preflight(graph, outputs);
  } catch (err) {
    if (!(err instanceof NodeFailedError) || !(err.cause instanceof UserError)) throw err;
    const overBudget = err.cause instanceof JobMemoryError;
    const issue: ValidationIssue = { code: overBudget ? 'memory_budget' : 'custom', nodeId: err.nodeId, message: err.detail };
    throw new ApiError(overBudget ? 422 : 400, overBudget ? 'memory_budget' : 'invalid_graph', err.message, [issue]);
  }
}

export function jobRoutes(runner: JobRunner, catalog: NodeCatalog): Router {
  const router = Router();

  router.post('/jobs', async (req, res) => {
    const body = jsonObject(req, '{ graph, outputs?, front? }');
    if (body.front !== undefined && typeof body.front !== 'boolean') throw new ApiError(400, 'bad_request', '"front" must be true or false');
    const result = validateGraph(body.graph, catalog, { requireOutput: true });
    if (!result.ok || !result.graph) {
      const n = result.issues.length;
      const first = result.issues[0] ? formatIssue(result.issues[0]) : 'the graph is invalid';
      throw new ApiError(400, 'invalid_graph', n > 1 ? `${first} (and ${n - 1} more problems)` : first, result.issues);
    }
    const graph = result.graph;
    let outputs: string[] | undefined;
    if (body.outputs !== undefined) {
      if (!Array.isArray(body.outputs) || !body.outputs.every((o) => typeof o === 'string')) {
        throw new ApiError(400, 'bad_request', '"outputs" must be a list of output node ids');
      }
      if (body.outputs.length === 0) {
        throw new ApiError(400, 'bad_request', '"outputs" is empty: name at least one output node, or leave "outputs" out to run them all');
      }
      for (const id of body.outputs as string[]) {
        const node = graph.nodes.find((n) => n.id === id);
        if (!node) throw new ApiError(400, 'bad_request', `"outputs" names node "${id}", which is not in the graph`);
        if (catalog.get(node.type)?.output !== true) {
          throw new ApiError(400, 'bad_request', `"outputs" names node "${id}" (${node.type}), which is not an output node`);
        }
      }
      outputs = body.outputs as string[];
    }
    await checkBeforeQueueing(runner, graph, outputs);
    let job;
    try {
      job = runner.submit(graph, outputs, { front: body.front === true });
    } catch (err) {
      if (err instanceof QueueFullError) {
        // The queue's message already says what to do ("try again when some have finished").
        throw new ApiError(429, 'queue_full', err.message);
      }
      throw err;
    }
    res.status(202).json({ job });
  });

  router.get('/jobs/:id', (req, res) => {
    res.json(jobOf(runner, req));
  });

  const cancel: RequestHandler = (req, res) => {
    const { job } = jobOf(runner, req);
    const outcome = runner.cancel(job.id);
    if (outcome === 'finished') {
      throw new ApiError(409, 'job_finished', `job "${job.id}" already finished (${runner.describe(job.id)?.job.state ?? job.state})`);
    }
    res.json({ cancelled: true, job: runner.describe(job.id)?.job ?? job });
  };
  router.delete('/jobs/:id', cancel);
  router.post('/jobs/:id/cancel', cancel);

  router.get('/queue', (_req, res) => {
    res.json(runner.state());
  });

  return router;
}

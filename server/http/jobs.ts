/**
 * Jobs and the queue over HTTP, through the job service (embedded or distributed alike): submit
 * (validated before queueing), inspect, cancel, move in line; the history (paged, cleared, one entry
 * removed). Routes, all under /api:
 *
 *   POST   /jobs               { graph, outputs?, front? }  → 202 { job }         (429 queue_full)
 *   GET    /jobs/:id           → { job, graph, outputs?, results?, error?, ... }  (404)
 *   DELETE /jobs/:id           cancel a queued or running job → { cancelled, job } (409 when finished)
 *   POST   /jobs/:id/cancel    the same
 *   POST   /jobs/:id/move      { position } (1 = next to start) → { queue }       (409 when not queued)
 *   GET    /queue              → { running, active, pending, workers, paused? }
 *   POST   /queue/pause        no job starts until resumed (the running one goes on) → { queue }
 *   POST   /queue/resume       → { queue }
 *   GET    /workers            → { workers: [{ name, gpu?, models, jobId?, seen }] }
 *   GET    /history            ?offset=0&limit=50 → { jobs, total, offset }     (newest first)
 *   DELETE /history            → { removed }  (every finished job; result files stay)
 *   DELETE /history/:id        → { removed: 1 } (409 when the job has not finished)
 */
import { Router, type Request } from 'express';
import type { NodeCatalog } from '../catalog.ts';
import { NodeFailedError } from '../executor/executor.ts';
import { QueueFullError, type JobService } from '../executor/job-service.ts';
import { JobMemoryError } from '../executor/memory-plan.ts';
import type { Graph, ValidationIssue, ValidationResult } from '../protocol/graph.ts';
import { summarizeIssues } from '../graph/validate.ts';
import { jsonObject, param } from './body.ts';
import { ApiError } from './errors.ts';

async function jobOf(jobs: JobService, req: Request) {
  const id = param(req, 'id');
  const detail = await jobs.describe(id);
  if (!detail) throw new ApiError(404, 'not_found', `no job with id "${id}"`);
  return detail;
}

/** A whole number query parameter in [min, max], or the default when absent. */
function intQuery(req: Request, name: string, fallback: number, min: number, max: number): number {
  const raw = req.query[name];
  if (raw === undefined) return fallback;
  const n = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new ApiError(400, 'bad_request', `"${name}" must be a whole number from ${min} to ${max}`);
  return n;
}

/** The checks a job passes before it runs (GraphRunner.preflight): node plans, the memory budget. */
export type Preflight = (graph: Graph, outputs?: string[]) => Promise<unknown>;

/**
 * A job over the memory budget is refused before it is queued (422, on the node of its largest call).
 * Other problems a plan finds (a missing upload, a refused model path) fail the job when it starts, on
 * their node, as any failure of that node would; the runner checks everything again then, since the
 * files may change meanwhile.
 */
async function checkBeforeQueueing(preflight: Preflight, graph: Graph, outputs: string[] | undefined): Promise<void> {
  try {
    await preflight(graph, outputs);
  } catch (err) {
    if (!(err instanceof NodeFailedError)) throw err;
    if (!(err.cause instanceof JobMemoryError)) return;
    const issue: ValidationIssue = { code: 'memory_budget', nodeId: err.nodeId, message: err.detail };
    throw new ApiError(422, 'memory_budget', err.message, [issue]);
  }
}

/**
 * How a graph that is about to run is checked (GraphRunner.check with requireOutput): the editor asks
 * /api/validate?requireOutput=1 before it submits, and the runner remembers what passed, so the
 * submission and the run find it there instead of validating it again.
 */
export type ValidateForRun = (raw: unknown) => ValidationResult;

export function jobRoutes(jobs: JobService, catalog: NodeCatalog, checks: { validate: ValidateForRun; preflight: Preflight }): Router {
  const { validate, preflight } = checks;
  const router = Router();

  router.post('/jobs', async (req, res) => {
    const body = jsonObject(req, '{ graph, outputs?, front? }');
    if (body.front !== undefined && typeof body.front !== 'boolean') throw new ApiError(400, 'bad_request', '"front" must be true or false');
    const result = validate(body.graph);
    if (!result.ok || !result.graph) {
      throw new ApiError(400, 'invalid_graph', summarizeIssues(result.issues), result.issues);
    }
    const graph = result.graph;
    const outputs = requestedOutputs(body.outputs, graph, catalog);
    await checkBeforeQueueing(preflight, graph, outputs);
    let job;
    try {
      job = await jobs.submit(graph, { ...(outputs ? { outputs } : {}), front: body.front === true });
    } catch (err) {
      if (err instanceof QueueFullError) {
        // The queue's message already says what to do ("try again when some have finished").
        throw new ApiError(429, 'queue_full', err.message);
      }
      throw err;
    }
    res.status(202).json({ job });
  });

  router.get('/jobs/:id', async (req, res) => {
    res.json(await jobOf(jobs, req));
  });

  const cancel = async (req: Request, res: import('express').Response) => {
    const { job } = await jobOf(jobs, req);
    const outcome = await jobs.cancel(job.id);
    const now = (await jobs.describe(job.id))?.job ?? job;
    if (outcome === 'finished') throw new ApiError(409, 'job_finished', `job "${job.id}" already finished (${now.state})`);
    res.json({ cancelled: true, job: now });
  };
  router.delete('/jobs/:id', cancel);
  router.post('/jobs/:id/cancel', cancel);

  router.post('/jobs/:id/move', async (req, res) => {
    const body = jsonObject(req, '{ position }');
    const position = body.position;
    if (typeof position !== 'number' || !Number.isSafeInteger(position) || position < 1) {
      throw new ApiError(400, 'bad_request', '"position" must be a whole number from 1 (next to start)');
    }
    const { job } = await jobOf(jobs, req);
    const outcome = await jobs.move(job.id, position);
    if (outcome === 'not_queued') throw new ApiError(409, 'not_queued', `job "${job.id}" is not waiting (${job.state}); only queued jobs move`);
    if (outcome === 'not_found') throw new ApiError(404, 'not_found', `no job with id "${job.id}"`);
    res.json({ queue: await jobs.queue() });
  });

  queueRoutes(router, jobs);
  historyRoutes(router, jobs);
  return router;
}

/** The "outputs" of a submission: output nodes of the graph, by id (undefined: run them all). */
function requestedOutputs(outputs: unknown, graph: Graph, catalog: NodeCatalog): string[] | undefined {
  if (outputs === undefined) return undefined;
  if (!Array.isArray(outputs) || !outputs.every((o) => typeof o === 'string')) {
    throw new ApiError(400, 'bad_request', '"outputs" must be a list of output node ids');
  }
  if (outputs.length === 0) {
    throw new ApiError(400, 'bad_request', '"outputs" is empty: name at least one output node, or leave "outputs" out to run them all');
  }
  for (const id of outputs as string[]) {
    const node = graph.nodes.find((n) => n.id === id);
    if (!node) throw new ApiError(400, 'bad_request', `"outputs" names node "${id}", which is not in the graph`);
    if (catalog.get(node.type)?.output !== true) {
      throw new ApiError(400, 'bad_request', `"outputs" names node "${id}" (${node.type}), which is not an output node`);
    }
  }
  return outputs as string[];
}

/** The queue as a whole: its order, pausing and resuming it, and the workers that run it. */
function queueRoutes(router: Router, jobs: JobService): void {
  router.get('/queue', async (_req, res) => {
    res.json(await jobs.queue());
  });

  router.post('/queue/pause', async (_req, res) => {
    await jobs.setPaused(true);
    res.json({ queue: await jobs.queue() });
  });

  router.post('/queue/resume', async (_req, res) => {
    await jobs.setPaused(false);
    res.json({ queue: await jobs.queue() });
  });

  router.get('/workers', async (_req, res) => {
    res.json({ workers: await jobs.workers() });
  });
}

/** Finished jobs: a page of the history, and removing one or all. */
function historyRoutes(router: Router, jobs: JobService): void {
  router.get('/history', async (req, res) => {
    const offset = intQuery(req, 'offset', 0, 0, 1_000_000);
    const limit = intQuery(req, 'limit', 50, 1, 200);
    res.json(await jobs.history(offset, limit));
  });

  router.delete('/history', async (_req, res) => {
    res.json({ removed: await jobs.clearHistory() });
  });

  router.delete('/history/:id', async (req, res) => {
    const id = param(req, 'id');
    const outcome = await jobs.remove(id);
    if (outcome === 'not_found') throw new ApiError(404, 'not_found', `no job with id "${id}"`);
    if (outcome === 'not_finished') throw new ApiError(409, 'not_finished', `job "${id}" has not finished; cancel it first`);
    res.json({ removed: 1 });
  });
}

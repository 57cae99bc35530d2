/** Saved graphs: list, read, save (user graphs only), delete. */
import { Router, type Request } from 'express';
import type { NodeCatalog } from '../catalog.ts';
import { validateGraph } from '../graph/validate.ts';
import { INVALID_NAME_MESSAGE } from '../store/errors.ts';
import type { GraphStore } from '../store/graphs.ts';
import { isSafeName } from '../store/paths.ts';
import { jsonObject, param } from './body.ts';
import { ApiError } from './errors.ts';

function graphName(req: Request): string {
  const name = param(req, 'name');
  if (!isSafeName(name)) throw new ApiError(400, 'invalid_name', INVALID_NAME_MESSAGE);
  return name;
}

export function graphRoutes(store: GraphStore, catalog: NodeCatalog): Router {
  const router = Router();

  router.get('/graphs', async (_req, res) => {
    res.json(await store.list());
  });

  router.get('/graphs/:name', async (req, res) => {
    const { graph } = await store.read(graphName(req));
    res.json(graph);
  });

  /**
   * Work in progress may be saved: a graph with a missing input or an unknown node type is stored and
   * its issues come back as warnings. Only a file that is not a graph at all is refused.
   */
  router.put('/graphs/:name', async (req, res) => {
    const name = graphName(req);
    const body = jsonObject(req, '{ graph }');
    // Accept the graph itself as the body too (what a user gets from "export").
    const raw = 'graph' in body ? body.graph : body;
    const result = validateGraph(raw, catalog, { requireOutput: false });
    if (!result.graph) {
      throw new ApiError(400, 'invalid_graph', 'not a graph file that can be saved: ' + summary(result.issues), result.issues);
    }
    // store.save refuses a template's name (read_only → 409).
    const saved = await store.save(name, result.graph);
    res.json({ saved, warnings: [...result.issues, ...result.warnings] });
  });

  router.delete('/graphs/:name', async (req, res) => {
    const name = graphName(req);
    await store.delete(name);
    res.json({ deleted: name });
  });

  // Names with a slash (or an empty name on a write) never match the routes above: say why.
  router.all('/graphs/*rest', () => {
    throw new ApiError(400, 'invalid_name', INVALID_NAME_MESSAGE);
  });
  router.all('/graphs', (req, _res, next) => {
    if (req.method === 'GET' || req.method === 'HEAD') return next();
    throw new ApiError(400, 'invalid_name', INVALID_NAME_MESSAGE + ' (the name is empty)');
  });

  return router;
}

function summary(issues: { message: string }[]): string {
  if (issues.length === 0) return 'unknown problem';
  return issues.length === 1 ? issues[0]!.message : `${issues[0]!.message} (and ${issues.length - 1} more)`;
}

/** Health, the node catalog, and live validation for the editor. */
import { Router } from 'express';
import { catalogJson, type NodeCatalog } from '../catalog.ts';
import { validateGraph } from '../graph/validate.ts';
import { jsonObject } from './body.ts';
import { listModels } from '../../nodes/load-model.ts';
import { cudaProviderStatus } from '../engine/onnx/runtime.ts';

export interface SystemInfo {
  version: string;
  executionProvider: string;
}

export function systemRoutes(catalog: NodeCatalog, info: SystemInfo & { modelRoots: readonly string[] }): Router {
  const router = Router();
  // The catalog does not change while the server runs: build its JSON once.
  const catalogBody = catalogJson(catalog);

  router.get('/health', (_req, res) => {
    res.json({ ok: true, version: info.version, executionProvider: info.executionProvider, ...providerChoice(info.executionProvider) });
  });

  /** Models Load Model can use; the demo is labelled as such (random weights, pictures mean nothing). */
  router.get('/models', async (_req, res) => {
    res.json({ models: await listModels(info.modelRoots) });
  });

  router.get('/catalog', (_req, res) => {
    res.json(catalogBody);
  });

  /** Problems in a graph are the answer here, not an HTTP error: the editor calls this on every edit. */
  router.post('/validate', (req, res) => {
    const body = jsonObject(req, '{ graph }');
    const requireOutput = req.query.requireOutput === '1' || req.query.requireOutput === 'true';
    const result = validateGraph(body.graph, catalog, { requireOutput });
    res.json({ ok: result.ok, issues: result.issues });
  });

  return router;
}

/**
 * Where models will run, as far as the server can tell before it loads one: "auto" becomes CUDA when
 * its provider library is installed (a model that then fails to start on it falls back to CPU, and
 * Load Model says so), else CPU, with the reason.
 */
export function providerChoice(requested: string): { executionProviderUsed: string; executionProviderNote: string } {
  if (requested === 'auto') {
    const cuda = cudaProviderStatus();
    return cuda.available
      ? { executionProviderUsed: 'cuda', executionProviderNote: 'auto: CUDA provider installed, so CUDA (CPU if it fails to start)' }
      : { executionProviderUsed: 'cpu', executionProviderNote: `auto: CUDA unavailable (${cuda.reason}); using CPU` };
  }
  return { executionProviderUsed: requested, executionProviderNote: `${requested}: chosen with --ep` };
}

/** Health, the node catalog, and live validation for the editor. */
import { Router } from 'express';
import { catalogJson, type NodeCatalog } from '../catalog.ts';
import { validateGraph } from '../graph/validate.ts';
import type { QueueHealth } from '../executor/job-service.ts';
import type { ValidateForRun } from './jobs.ts';
import { jsonObject } from './body.ts';
import { listModels } from '../models/model-list.ts';
import { TokenCounter } from '../models/token-count.ts';
import { ApiError } from './errors.ts';
import { listWeightFiles } from '../models/weight-files.ts';
import { cudaUnavailableReason, diagnoseCuda, type CudaDiagnosis } from '../engine/cuda/cuda-doctor.ts';

export interface SystemInfo {
  version: string;
  executionProvider: string;
  /** CUDA device index (`--gpu N`). */
  gpu?: number;
  /** The job queue's backend and whether it works now (distributed: Redis answers). */
  queueHealth?: () => Promise<QueueHealth>;
}

/** What /api/health says about CUDA: enough for the editor to show why it is (not) used and how to fix it. */
export interface CudaHealth {
  ready: boolean;
  summary: string;
  /** The provider package and whether it is installed for this onnxruntime-node. */
  provider: { package: string; version: string; onnxruntime: string; cuda: number; installed: boolean };
  /** Every library the provider needs, resolved as the loader would (path and how), or missing (path null). */
  libraries: { name: string; what: string; path: string | null; via: string | null }[];
  missing: { name: string; what: string; inPythonEnv?: string }[];
  driver: CudaDiagnosis['driver'];
  gpu: number;
  fixes: string[];
}

function cudaHealth(gpu = 0, d: CudaDiagnosis = diagnoseCuda()): CudaHealth {
  return {
    ready: d.ready,
    summary: d.summary,
    provider: {
      package: d.provider.package,
      version: d.provider.version,
      onnxruntime: d.provider.builtFor,
      cuda: d.provider.cudaMajor,
      installed: d.provider.installed,
    },
    libraries: d.libraries.map((l) => ({ name: l.name, what: l.what, path: l.path, via: l.via })),
    missing: d.libraries.filter((l) => !l.path).map((l) => ({ name: l.name, what: l.what, ...(l.inPythonEnv ? { inPythonEnv: l.inPythonEnv } : {}) })),
    driver: d.driver,
    gpu,
    fixes: d.fixes,
  };
}

/**
 * Where models will run, as far as the server can tell before it loads one: "auto" becomes CUDA when
 * the diagnosis finds everything it needs (a model that then fails to start on it falls back to CPU,
 * and Load Model says so), else CPU, with the reason.
 */
function providerChoice(requested: string, d: CudaDiagnosis = diagnoseCuda()): { executionProviderUsed: string; executionProviderNote: string } {
  if (requested === 'auto') {
    return d.ready
      ? { executionProviderUsed: 'cuda', executionProviderNote: `auto: CUDA (${d.summary}); CPU if a model fails to start on it` }
      : { executionProviderUsed: 'cpu', executionProviderNote: `auto: CUDA unavailable (${cudaUnavailableReason(d)}); using CPU` };
  }
  if (requested === 'cuda' && !d.ready)
    return { executionProviderUsed: 'cuda', executionProviderNote: `cuda: models will fail to load: ${cudaUnavailableReason(d)}` };
  return { executionProviderUsed: requested, executionProviderNote: `${requested}: chosen with --ep` };
}

export function systemRoutes(catalog: NodeCatalog, info: SystemInfo & { modelRoots: readonly string[]; validateForRun?: ValidateForRun }): Router {
  const router = Router();
  // The catalog does not change while the server runs: build its JSON once.
  const catalogBody = catalogJson(catalog);

  /** 503 while the job queue cannot be used (Redis away), so a health check notices. */
  router.get('/health', async (_req, res) => {
    // The CUDA diagnosis is computed once per process (ldconfig, nvidia-smi); later calls reuse it.
    const d = diagnoseCuda();
    const queue: QueueHealth = info.queueHealth ? await info.queueHealth() : { backend: 'embedded', ok: true };
    res.status(queue.ok ? 200 : 503).json({
      ok: queue.ok,
      queue,
      // What the editor's status bar shows for a failed request.
      ...(queue.ok ? {} : { error: { code: 'queue_unavailable', message: queue.message ?? 'the job queue cannot be used' } }),
      version: info.version,
      executionProvider: info.executionProvider,
      ...providerChoice(info.executionProvider, d),
      cuda: cudaHealth(info.gpu ?? 0, d),
    });
  });

  /**
   * Models Load Model can use, each with its kind; the demo is labelled as such (random weights, pictures
   * mean nothing); then the LoRA and VAE files (kind 'lora', 'vae') for Load LoRA and Load Model's vae.
   */
  router.get('/models', async (_req, res) => {
    const [models, files] = await Promise.all([listModels(info.modelRoots), listWeightFiles(info.modelRoots)]);
    res.json({ models: [...models, ...files] });
  });

  const counter = new TokenCounter(info.modelRoots);
  /** Token counts of prompt fields (client: the line under each prompt), with the tokenizer of the model they go to. */
  router.post('/tokens', async (req, res) => {
    const { texts, model } = tokensRequest(jsonObject(req, '{ texts: string[], model?: string }'));
    const counts = await counter.count(texts, model).catch((e: unknown) => {
      throw new ApiError(400, 'bad_model', (e as Error).message);
    });
    res.json({ counts });
  });

  router.get('/catalog', (_req, res) => {
    res.json(catalogBody);
  });

  /** Problems in a graph are the answer here, not an HTTP error: the editor calls this on every edit. */
  router.post('/validate', (req, res) => {
    const body = jsonObject(req, '{ graph }');
    const requireOutput = req.query.requireOutput === '1' || req.query.requireOutput === 'true';
    // The editor's live check (no output needed) changes with every edit: not worth remembering.
    const result = requireOutput && info.validateForRun ? info.validateForRun(body.graph) : validateGraph(body.graph, catalog, { requireOutput });
    res.json({ ok: result.ok, issues: result.issues, warnings: result.warnings });
  });

  return router;
}

/** At most this many prompts per request, each at most as long as a Text Prompt's text. */
const MAX_TEXTS = 64;
const MAX_TEXT = 4000;

function tokensRequest(body: Record<string, unknown>): { texts: string[]; model?: string } {
  const { texts, model } = body;
  if (!Array.isArray(texts) || texts.length > MAX_TEXTS || !texts.every((t) => typeof t === 'string' && t.length <= MAX_TEXT)) {
    throw new ApiError(400, 'bad_request', `texts must be a list of at most ${MAX_TEXTS} strings of at most ${MAX_TEXT} characters`);
  }
  if (model !== undefined && (typeof model !== 'string' || model === '')) throw new ApiError(400, 'bad_request', 'model must be a Load Model value (a string)');
  return { texts: texts as string[], ...(model === undefined ? {} : { model }) };
}

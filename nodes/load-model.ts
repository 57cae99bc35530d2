import path from 'node:path';
import { z } from 'zod';
import { defineNode, UserError, type Services } from './types.ts';
import { resolveModelDir, withShownPath } from './lib/model-roots.ts';
import { DEMO_MODEL, DEMO_NOTE } from '../server/models/model-list.ts';
import { ModelFolderError, fingerprintFolder, checkModelFolder, readModelConfig } from '../server/engine/sd/model-folder.ts';
import { modelMemoryProfile } from '../server/engine/sd/memory.ts';
import { DEMO_ACTIVATIONS } from '../server/models/demo/memory.ts';
import type { SdPipeline } from '../server/engine/sd/pipeline.ts';
import type { PipelineHandle } from '../server/engine/sd/pipelines.ts';
import { modelImageSizes } from './lib/model.ts';
import { ensureDemoModel, DEMO_MODEL_VERSION } from '../server/models/demo/index.ts';

export { DEMO_MODEL, DEMO_NOTE, listModels, type ModelEntry } from '../server/models/model-list.ts';

/** The demo's folder, or the Load Model path inside the allowed models folders (see lib/model-roots.ts). */
async function modelDir(model: string, services: Services): Promise<string> {
  return model === DEMO_MODEL ? ensureDemoModel() : resolveModelDir(model, services.modelRoots);
}

export const loadModel = defineNode({
  type: 'LoadModel',
  title: 'Load Model',
  category: 'Model',
  description:
    'A Stable Diffusion 1.x model in the diffusers ONNX layout (a folder path, e.g. one fetched with `npm run fetch-model`), ' +
    'or "demo" for the built-in demo model. Sessions are created once and reused.',
  inputs: {},
  outputs: { model: { type: 'Model', label: 'model' } },
  params: z.object({
    model: z
      .string()
      .min(1)
      .max(1000)
      .default(DEMO_MODEL)
      .describe('Model folder in the models folders (<data>/models, the studio\'s models/, or a --models-root), or "demo".')
      .meta({ ui: { kind: 'model' } }),
  }),
  async identity(params, services) {
    // A changed model file must invalidate everything downstream; fingerprinting stats is cheap.
    if (params.model === DEMO_MODEL) return `demo-v${DEMO_MODEL_VERSION}`;
    try {
      return await fingerprintFolder(await modelDir(params.model, services));
    } catch {
      return 'unreadable'; // run() reports the problem
    }
  },
  async plan({ params, services }) {
    const dir = await modelDir(params.model, services);
    const demo = params.model === DEMO_MODEL;
    // A folder whose configs cannot be read is reported by run(); SD's downsampling is assumed here.
    const vaeDownsample = await readModelConfig(dir).then(
      (c) => c.vaeDownsample,
      () => 8,
    );
    const model = await modelMemoryProfile(dir, {
      label: demo ? 'the demo model' : params.model,
      vaeDownsample,
      ...(demo ? { activations: DEMO_ACTIVATIONS } : {}),
    });
    return { outputs: { model: { model } } };
  },
  async run({ params, ctx }) {
    const dir = await modelDir(params.model, ctx.services);
    const ep = ctx.services.executionProvider;
    let pipe: SdPipeline;
    let handle: PipelineHandle;
    try {
      // Layout first: a folder without model_index.json must be reported as "not an SD folder", not "not found".
      await checkModelFolder(dir);
      handle = ctx.services.models.pipelines.handle(dir, ep, await fingerprintFolder(dir), { deviceId: ctx.services.gpu ?? 0 });
      pipe = await handle.acquire();
    } catch (err) {
      // Messages about the folder's files name it as the user did, never by its absolute path.
      const message = withShownPath(err instanceof Error ? err.message : String(err), dir, params.model);
      if (err instanceof ModelFolderError || (err as NodeJS.ErrnoException).code === 'ENOENT') throw new UserError(message, 'model');
      throw new Error(message, { cause: err });
    }
    const demo = params.model === DEMO_MODEL;
    const label = demo ? 'demo' : path.basename(dir);
    const sessions = Object.values(pipe.info.sessions);
    const hits = sessions.filter((s) => s.cache === 'hit').length;
    const loaded = `sessions created in ${(sessions.reduce((t, s) => t + s.ms, 0) / 1000).toFixed(1)} s${hits ? `, ${hits} of ${sessions.length} optimized graphs from the cache` : ''}`;
    // Three parts: the provider and why (on CPU after `auto`, why CUDA was not used and how to fix it; see
    // engine/runtime/sessions.ts), the image sizes the model takes, and how long its sessions took to start.
    const note =
      `${label} on ${pipe.info.executionProvider.toUpperCase()} (${pipe.info.executionProviderNote}). ` +
      `Takes images with ${modelImageSizes(pipe).describe}. ` +
      `${loaded[0]!.toUpperCase()}${loaded.slice(1)}.`;
    if (demo) ctx.warn(DEMO_NOTE);
    return {
      outputs: { model: { id: pipe.info.id, label, demo, pipeline: handle } },
      result: { text: demo ? `${DEMO_NOTE}\n${note}` : note },
    };
  },
});

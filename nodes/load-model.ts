import path from 'node:path';
import { z } from 'zod';
import { defineNode, UserError, type NodeContext, type Services } from './types.ts';
import { resolveModelPath, withShownPath } from '../server/models/model-roots.ts';
import { DEMO_MODEL, DEMO_NOTE } from '../server/models/model-list.ts';
import { conversionDtype, conversionOptions, openConverted, sourceIdentity } from './lib/converted.ts';
import { convertedPath, isConverted, needsConversion } from '../server/models/convert/index.ts';
import type { ModelSource } from './values.ts';
import { ModelFolderError, fingerprintFolder, checkModelFolder, readModelConfig } from '../server/engine/sd/model-folder.ts';
import { modelMemoryProfile } from '../server/engine/sd/memory.ts';
import { DEMO_ACTIVATIONS } from '../server/models/demo/memory.ts';
import type { SdPipeline } from '../server/engine/sd/pipeline.ts';
import type { PipelineHandle } from '../server/engine/sd/pipelines.ts';
import { modelImageSizes } from './lib/model.ts';
import { ensureDemoModel, DEMO_MODEL_VERSION } from '../server/models/demo/index.ts';

/** The demo's folder, or the Load Model path inside the allowed models folders (see server/models/model-roots.ts): a folder or a checkpoint file. */
async function modelDir(model: string, services: Services): Promise<string> {
  return model === DEMO_MODEL ? ensureDemoModel() : resolveModelPath(model, services.modelRoots, { files: true });
}

interface LoadModelParams {
  model: string;
  dtype: 'auto' | 'float32' | 'float16';
  config: string;
  vae: string;
}

/** The conversion source of a safetensors model (PyTorch folder or single file); null for ONNX folders and the demo. */
async function conversionSource(found: string, params: LoadModelParams, services: Services): Promise<ModelSource | null> {
  if (params.model === DEMO_MODEL || !needsConversion(found)) return null;
  const configDir = params.config ? await resolveModelPath(params.config, services.modelRoots, { files: false, field: 'config' }) : undefined;
  const vae = params.vae ? await resolveModelPath(params.vae, services.modelRoots, { files: true, field: 'vae' }) : undefined;
  return { path: found, dtype: conversionDtype(params.dtype, services), ...(configDir ? { configDir } : {}), ...(vae ? { vae } : {}), loras: [] };
}

/** An ONNX folder's pipeline; errors about its files name it as the user did, never by its absolute path. */
async function openOnnxFolder(dir: string, shownAs: string, ctx: NodeContext): Promise<{ handle: PipelineHandle; pipe: SdPipeline }> {
  try {
    // Layout first: a folder without model_index.json must be reported as "not an SD folder", not "not found".
    await checkModelFolder(dir);
    const handle = ctx.services.models.pipelines.handle(dir, ctx.services.executionProvider, await fingerprintFolder(dir), { deviceId: ctx.services.gpu ?? 0 });
    return { handle, pipe: await handle.acquire() };
  } catch (err) {
    const message = withShownPath(err instanceof Error ? err.message : String(err), dir, shownAs);
    if (err instanceof ModelFolderError || (err as NodeJS.ErrnoException).code === 'ENOENT') throw new UserError(message, 'model');
    throw new Error(message, { cause: err });
  }
}

/** The settings of a conversion (dtype, config, VAE file) mean nothing for the demo model: the editor hides them there. */
const CONVERTED_ONLY = { model: [DEMO_MODEL] };

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
      .describe(
        "Model in the models folders (<data>/models, the studio's models/, or a --models-root): a diffusers ONNX folder, a diffusers PyTorch folder or a " +
          'single-file checkpoint (.safetensors, or .ckpt read for its tensors only; all converted once, then cached), or "demo".',
      )
      .meta({ ui: { kind: 'model' } }),
    dtype: z
      .enum(['auto', 'float32', 'float16'])
      .default('auto')
      .describe('Weights of a converted safetensors model: auto = float16 on CUDA, float32 elsewhere.')
      .meta({ ui: { unless: CONVERTED_ONLY } }),
    config: z
      .string()
      .max(1000)
      .default('')
      .describe('A diffusers folder whose configs and tokenizer describe a single-file checkpoint (only for non-standard models).')
      .meta({ ui: { unless: CONVERTED_ONLY } }),
    vae: z
      .string()
      .max(1000)
      .default('')
      .describe("A VAE file (.safetensors or .ckpt/.pt, e.g. vae-ft-mse-840000-ema-pruned) that replaces the model's own VAE; converted models only.")
      .meta({ ui: { kind: 'model', picks: 'vae', unless: CONVERTED_ONLY } }),
  }),
  async identity(params, services) {
    // A changed model file must invalidate everything downstream; fingerprinting stats is cheap.
    if (params.model === DEMO_MODEL) return `demo-v${DEMO_MODEL_VERSION}`;
    try {
      const found = await modelDir(params.model, services);
      const source = await conversionSource(found, params, services);
      if (source) return sourceIdentity(source);
      return await fingerprintFolder(found);
    } catch {
      return 'unreadable'; // run() reports the problem
    }
  },
  async plan({ params, services }) {
    let dir = await modelDir(params.model, services);
    const demo = params.model === DEMO_MODEL;
    const source = await conversionSource(dir, params, services).catch(() => null);
    if (source) {
      // Not converted yet: the estimate comes once it is (the conversion itself runs in run()).
      const converted = (() => {
        try {
          return convertedPath(source.path, conversionOptions(source));
        } catch {
          return null;
        }
      })();
      if (!converted || !isConverted(converted)) return { outputs: { model: {} } };
      dir = converted;
    }
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
    let pipe: SdPipeline;
    let handle: PipelineHandle;
    const source = await conversionSource(dir, params, ctx.services);
    if (source) ({ handle, pipe } = await openConverted(source, params.model, ctx));
    else ({ handle, pipe } = await openOnnxFolder(dir, params.model, ctx));
    const demo = params.model === DEMO_MODEL;
    const label = demo ? 'demo' : path.basename(dir).replace(/\.safetensors$/i, '');
    const sessions = Object.values(pipe.info.sessions);
    const hits = sessions.filter((s) => s.cache === 'hit').length;
    const loaded = `sessions created in ${(sessions.reduce((t, s) => t + s.ms, 0) / 1000).toFixed(1)} s${hits ? `, ${hits} of ${sessions.length} optimized graphs from the cache` : ''}`;
    // Three parts: the provider and why (on CPU after `auto`, why CUDA was not used and how to fix it; see
    // engine/runtime/sessions.ts), the image sizes the model takes, and how long its sessions took to start.
    const note =
      `${label} on ${pipe.info.executionProvider.toUpperCase()} (${pipe.info.executionProviderNote}). ` +
      `Takes images with ${modelImageSizes(pipe).describe}. ` +
      `UNet ${pipe.info.graphOptimizer}. ` +
      `${loaded[0]!.toUpperCase()}${loaded.slice(1)}.`;
    if (demo) ctx.warn(DEMO_NOTE);
    return {
      outputs: { model: { id: pipe.info.id, label, demo, pipeline: handle, ...(source ? { source } : {}) } },
      result: { text: demo ? `${DEMO_NOTE}\n${note}` : note },
    };
  },
});

/**
 * Load LoRA: a model with a LoRA merged into its weights (ComfyUI's LoraLoader). Chainable: the model it
 * gives carries its LoRAs, so a second Load LoRA stacks on the first. The merged model is a conversion of
 * the same safetensors source with the LoRA list added (server/models/convert/lora.ts), cached by the
 * model's content, every LoRA's content and every strength, so a changed strength or file never reuses
 * a stale merge, and going back to a combination already made reuses it.
 */
import path from 'node:path';
import { z } from 'zod';
import { contentKey } from '../server/models/convert/index.ts';
import { openConverted } from './lib/converted.ts';
import { resolveModelPath } from '../server/models/model-roots.ts';
import { defineNode, UserError } from './types.ts';

export const loadLora = defineNode({
  type: 'LoadLora',
  title: 'Load LoRA',
  category: 'Model',
  description:
    'Merges a LoRA (.safetensors, kohya or diffusers/PEFT format) into a model loaded from safetensors, with one strength for the UNet and one for ' +
    'the text encoder. Chain several to stack LoRAs. The merged weights are converted once and cached.',
  inputs: { model: { type: 'Model', label: 'model' } },
  outputs: { model: { type: 'Model', label: 'model' } },
  params: z.object({
    lora: z
      .string()
      .min(1)
      .max(1000)
      .describe("LoRA file in the models folders (<data>/models, the studio's models/, or a --models-root), e.g. loras/style.safetensors.")
      .meta({ ui: { kind: 'model', picks: 'lora' } }),
    strength_unet: z.number().min(-4).max(4).default(1).describe('Strength on the UNet (0: leave the UNet as it is).'),
    strength_text: z.number().min(-4).max(4).default(1).describe('Strength on the text encoder (0: leave it as it is).'),
  }),
  async identity(params, services) {
    // The file's content, so that a LoRA replaced under the same name is merged again.
    try {
      return contentKey(await resolveModelPath(params.lora, services.modelRoots, { files: true, field: 'lora' }));
    } catch {
      return 'unreadable'; // run() reports the problem
    }
  },
  plan({ inputs }) {
    // The merged model has the base model's size, and is a weight set of its own (a second UNet session where both run).
    const base = inputs.model;
    return { outputs: { model: base?.model ? { ...base, model: { ...base.model, label: `${base.model.label} + LoRA` } } : (base ?? {}) } };
  },
  async run({ inputs, params, ctx }) {
    const base = inputs.model;
    if (!base.source) {
      throw new UserError(
        `${base.label} is an ONNX export${base.demo ? ' (the built-in demo)' : ''}: a LoRA is merged while converting a safetensors model, ` +
          'so load the model as a diffusers PyTorch folder or a .safetensors checkpoint',
        'model',
      );
    }
    const file = await resolveModelPath(params.lora, ctx.services.modelRoots, { files: true, field: 'lora' });
    if (!/\.safetensors$/i.test(file)) throw new UserError(`${params.lora}: a LoRA must be a .safetensors file (pickles are never loaded)`, 'lora');
    const source = { ...base.source, loras: [...base.source.loras, { file, unet: params.strength_unet, text: params.strength_text }] };
    const { handle, pipe } = await openConverted(source, base.label, ctx, 'lora');
    const label = `${base.label} + ${path.basename(file).replace(/\.safetensors$/i, '')}`;
    return {
      outputs: { model: { id: pipe.info.id, label, demo: false, pipeline: handle, source } },
      result: { text: `${label} (UNet ${params.strength_unet}, text encoder ${params.strength_text})` },
    };
  },
});

import { z } from 'zod';
import path from 'node:path';
import { defineNode } from './types.ts';
import { fingerprintFolder } from '../server/engine/sd/model-folder.ts';
import { resolveModelPath } from './lib/model.ts';

/** Where `npm run fetch-model -- --kind clip` puts CLIP ViT-B/32. */
export const DEFAULT_CLIP_FOLDER = 'models/clip-vit-base-patch32';

export const loadClip = defineNode({
  type: 'LoadClip',
  title: 'Load CLIP',
  category: 'Metrics',
  description:
    'A CLIP model for the CLIP metrics, in the common split ONNX export (text_model.onnx, vision_model.onnx, tokenizer, preprocessor config), ' +
    `e.g. fetched with \`npm run fetch-model -- --kind clip\` into ${DEFAULT_CLIP_FOLDER}. Empty: no CLIP, the Metrics nodes leave the CLIP scores out.`,
  inputs: {},
  outputs: { clip: { type: 'Clip', label: 'clip' } },
  params: z.object({
    clip: z
      .string()
      .max(1000)
      .default('')
      .describe(`CLIP folder (in <data>/models, the studio's models/ or a --models-root), e.g. ${DEFAULT_CLIP_FOLDER}; empty for none.`),
  }),
  async identity(params, services) {
    if (!params.clip.trim()) return 'none';
    return fingerprintFolder(await resolveModelPath(params.clip.trim(), services)).catch(() => 'unreadable');
  },
  async run({ params, ctx }) {
    const name = params.clip.trim();
    if (!name) {
      ctx.warn(`no CLIP model set: CLIP metrics are left out (fetch one with \`npm run fetch-model -- --kind clip\` and set ${DEFAULT_CLIP_FOLDER})`);
      return { outputs: { clip: { id: 'none', label: 'none', handle: null } }, result: { text: 'no CLIP model: CLIP metrics left out' } };
    }
    const dir = await resolveModelPath(name, ctx.services);
    const handle = await ctx.services.models.clip.open(dir, ctx.services.executionProvider, { deviceId: ctx.services.gpu ?? 0 });
    const model = await handle.acquire();
    const p = model.preprocessor;
    return {
      outputs: { clip: { id: handle.id, label: path.basename(dir), handle } },
      result: { text: `${path.basename(dir)}: ${p.crop}×${p.crop} crops` },
    };
  },
});

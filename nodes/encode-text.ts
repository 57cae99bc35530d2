import { z } from 'zod';
import { defineNode } from './types.ts';
import { pipelineOf } from './lib/model.ts';
import { embeddingsFingerprint, loadPromptEmbeddings } from '../server/models/embeddings.ts';

export const encodeText = defineNode({
  type: 'EncodeText',
  title: 'Encode Text',
  category: 'Conditioning',
  description:
    'Runs the CLIP text encoder on a prompt. Prompts longer than 75 tokens are cut, with a warning. ' +
    "`embedding:NAME` uses the textual-inversion embedding NAME.safetensors of the models folders' embeddings/ folder.",
  inputs: {
    model: { type: 'Model', label: 'model' },
    text: { type: 'Text', label: 'text' },
  },
  outputs: { conditioning: { type: 'Conditioning', label: 'conditioning' } },
  params: z.object({}),
  // The embedding files a prompt may name (`embedding:NAME`): a changed one is never served from the cache.
  identity: (_params, services) => embeddingsFingerprint(services.modelRoots),
  // One prompt, one UNet row: what a sampler's plan counts for what is connected to it.
  plan: () => ({ outputs: { conditioning: { rows: 1 } } }),
  async run({ inputs, ctx }) {
    const pipe = await pipelineOf(inputs.model);
    pipe.addEmbeddings(await loadPromptEmbeddings(inputs.text, ctx.services.modelRoots, pipe.info.textDim));
    const enc = await pipe.encodeText(inputs.text);
    const limit = pipe.info.textLength - 2;
    if (enc.truncated) {
      ctx.warn(`prompt has ${enc.tokens} tokens; the text encoder reads ${limit}, the rest was cut: "${inputs.text.slice(0, 60)}…"`);
    }
    return {
      outputs: {
        conditioning: {
          prompt: inputs.text,
          embedding: enc.embedding,
          tokens: Math.min(enc.tokens, limit),
          dim: pipe.info.textDim,
          truncated: enc.truncated,
          modelId: inputs.model.id,
        },
      },
      result: { text: `${Math.min(enc.tokens, limit)} of ${limit} tokens${enc.truncated ? ' (truncated)' : ''}` },
    };
  },
});

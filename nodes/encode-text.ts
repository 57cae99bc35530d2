import { z } from 'zod';
import { defineNode } from './types.ts';
import { pipelineOf } from './lib/model.ts';
import { LONG_PROMPT_MODES } from '../server/protocol/prompt-tokens.ts';
import { embeddingsFingerprint, loadPromptEmbeddings } from '../server/models/embeddings.ts';

export const encodeText = defineNode({
  type: 'EncodeText',
  title: 'Encode Text',
  category: 'Conditioning',
  description:
    'Runs the CLIP text encoder on a prompt. A prompt longer than 75 tokens is cut, with a warning, or, with long prompt "chunks", ' +
    'read as A1111 does: chunks of 75 tokens encoded one by one and joined (77·k tokens of context). ' +
    "`embedding:NAME` uses the textual-inversion embedding NAME.safetensors of the models folders' embeddings/ folder.",
  inputs: {
    model: { type: 'Model', label: 'model' },
    text: { type: 'Text', label: 'text' },
  },
  outputs: { conditioning: { type: 'Conditioning', label: 'conditioning' } },
  params: z.object({
    longPrompt: z
      .enum(LONG_PROMPT_MODES)
      .default('truncate')
      .describe('A prompt over 75 tokens: cut at 75 (as the paper and the seed), or read in chunks of 75 that are encoded one by one and joined.'),
  }),
  // The embedding files a prompt may name (`embedding:NAME`): a changed one is never served from the cache.
  identity: (_params, services) => embeddingsFingerprint(services.modelRoots),
  // One prompt, one UNet row: what a sampler's plan counts for what is connected to it.
  plan: () => ({ outputs: { conditioning: { rows: 1 } } }),
  async run({ inputs, params, ctx }) {
    const pipe = await pipelineOf(inputs.model);
    pipe.addEmbeddings(await loadPromptEmbeddings(inputs.text, ctx.services.modelRoots, pipe.info.textDim));
    const enc = await pipe.encodeText(inputs.text, params.longPrompt);
    const limit = pipe.info.textLength - 2;
    if (enc.truncated) {
      ctx.warn(
        `prompt has ${enc.tokens} tokens; the text encoder reads ${limit}, the rest was cut (long prompt "chunks" reads it all): "${inputs.text.slice(0, 60)}…"`,
      );
    }
    const kept = params.longPrompt === 'chunks' ? enc.tokens : Math.min(enc.tokens, limit);
    return {
      outputs: {
        conditioning: {
          prompt: inputs.text,
          embedding: enc.embedding,
          tokens: kept,
          dim: pipe.info.textDim,
          truncated: enc.truncated,
          longPrompt: params.longPrompt,
          chunks: enc.chunks,
          modelId: inputs.model.id,
        },
      },
      result: {
        text:
          params.longPrompt === 'chunks'
            ? `${enc.tokens} tokens in ${enc.chunks} chunk${enc.chunks === 1 ? '' : 's'} (${enc.chunks * pipe.info.textLength} tokens of context)`
            : `${kept} of ${limit} tokens${enc.truncated ? ' (truncated)' : ''}`,
      },
    };
  },
});

/**
 * Opens the text encoder that reads textual-inversion tokens (token-embedding-rewrite.ts): derived once
 * from `text_encoder/model.onnx` beside it, or in the cache when the model folder is read-only, exactly as
 * the UNet's derived graphs are (attention/unet-cache.ts); the weights stay where they are.
 */
import path from 'node:path';
import { prepareDerivedUnet } from '../attention/unet-cache.ts';
import { readGraphOutline } from '../runtime/graph-outline.ts';
import type { ExecutionProvider, InferenceSession } from '../runtime/runtime.ts';
import { createSession, type SessionSettings } from '../runtime/sessions.ts';
import { UserError } from '../errors.ts';
import { findTokenLookup, rewriteTokenEmbedding, TokenEmbeddingRewriteError, TOKEN_EMBEDDING_REWRITE_VERSION } from './token-embedding-rewrite.ts';

export async function openTextEncoderWithEmbeddings(
  modelDir: string,
  cacheDir: string | undefined,
  provider: ExecutionProvider,
  settings: SessionSettings,
): Promise<{ session: InferenceSession; vocab: number; path: string }> {
  const source = path.join(modelDir, 'text_encoder', 'model.onnx');
  try {
    // The model's own vocabulary size: the first added token's id (read without the weights).
    const outline = await readGraphOutline(source);
    const vocab = Number(findTokenLookup(outline.nodes, outline.initializers).table.dims![0]);
    const prepared = await prepareDerivedUnet(source, cacheDir, {
      stem: 'model.added-tokens',
      tag: `added-tokens v${TOKEN_EMBEDDING_REWRITE_VERSION}\0`,
      transform: (model) => {
        rewriteTokenEmbedding(model);
        return 1;
      },
    });
    const { session } = await createSession(prepared.path, provider, settings);
    return { session, vocab, path: prepared.path };
  } catch (e) {
    if (e instanceof TokenEmbeddingRewriteError) throw new UserError(`this model's text encoder cannot take embeddings: ${e.message}`, 'text');
    throw e;
  }
}

/**
 * Token counts for the editor's prompt fields (POST /api/tokens): the prompt tokenized by the tokenizer of
 * the model it will be encoded with (the demo's byte-level vocabulary, or the model folder's CLIP BPE),
 * so "82 / 75 — cut at 75" under a field says what Encode Text will do. Tokenizers are read once per
 * model and kept (vocab.json is parsed in tens of milliseconds; a field asks on every pause in typing).
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../engine/errors.ts';
import { ClipTokenizer } from '../engine/text/tokenizer.ts';
import type { TokenCount } from '../protocol/prompt-tokens.ts';
import { tokenizerFiles } from './demo/text-encoder.ts';
import { DEMO_MODEL } from './model-list.ts';
import { resolveModelPath } from './model-roots.ts';

/** Kept tokenizers; beyond this many models the oldest is dropped. */
const KEPT = 8;

export class TokenCounter {
  private readonly tokenizers = new Map<string, Promise<ClipTokenizer>>();

  constructor(private readonly roots: readonly string[]) {}

  /** The count of each text with the tokenizer of `model` (a Load Model value; the demo when absent). */
  async count(texts: readonly string[], model = DEMO_MODEL): Promise<TokenCount[]> {
    const tok = await this.tokenizer(model);
    const window = tok.maxLength - 2;
    return texts.map((text) => {
      const { tokens, chunks } = tok.encodeChunks(text);
      return { tokens, window, chunks };
    });
  }

  private tokenizer(model: string): Promise<ClipTokenizer> {
    let hit = this.tokenizers.get(model);
    if (!hit) {
      hit = this.load(model);
      this.tokenizers.set(model, hit);
      hit.catch(() => this.tokenizers.delete(model));
      if (this.tokenizers.size > KEPT) this.tokenizers.delete(this.tokenizers.keys().next().value!);
    }
    return hit;
  }

  private async load(model: string): Promise<ClipTokenizer> {
    if (model === DEMO_MODEL) {
      const files = tokenizerFiles();
      const config = JSON.parse(files['tokenizer_config.json']!) as { eos_token: string; bos_token: string; pad_token: string; unk_token: string };
      return new ClipTokenizer({
        vocab: JSON.parse(files['vocab.json']!) as Record<string, number>,
        merges: [],
        bosToken: config.bos_token,
        eosToken: config.eos_token,
        padToken: config.pad_token,
        unkToken: config.unk_token,
      });
    }
    const found = await resolveModelPath(model, this.roots, { files: true });
    // A folder holds its tokenizer; a single-file checkpoint borrows the one beside it, as its conversion does.
    const dir = (await stat(found)).isDirectory() ? path.join(found, 'tokenizer') : path.join(path.dirname(found), 'tokenizer');
    try {
      return await ClipTokenizer.fromFolder(dir);
    } catch (e) {
      throw new UserError(`cannot count the tokens of a prompt for ${model}: ${(e as Error).message}`, 'model');
    }
  }
}

/**
 * Textual-inversion tokens in a prompt, written the ComfyUI way: `embedding:NAME` stands for the vectors of
 * the embedding file NAME (its file name without extension, in the models' `embeddings/` folder), one
 * placeholder token per vector. This module finds those names and cuts a prompt around them, so the
 * tokenizer (encode, and the words of the attention maps) and the caller that loads the files agree on
 * what a prompt names.
 */

/** `embedding:` then a file name; a trailing extension (`.safetensors`, `.pt`) and dots are not part of the name. */
const EMBEDDING_REFERENCE = /embedding:([\p{L}\p{N}_][\p{L}\p{N}_.-]*)/giu;
const EXTENSION = /(?:\.(?:safetensors|pt|bin))?\.*$/i;

/** Token ids of each embedding name a prompt may use (name as written, extension dropped). */
export type AddedTokens = ReadonlyMap<string, readonly number[]>;

/** A prompt cut into plain text and embedding references, in order. */
export type PromptPart = { text: string } | { embedding: string };

export function splitPrompt(text: string): PromptPart[] {
  const parts: PromptPart[] = [];
  let at = 0;
  for (const m of text.matchAll(EMBEDDING_REFERENCE)) {
    const name = m[1]!.replace(EXTENSION, '');
    if (name.length === 0) continue;
    if (m.index > at) parts.push({ text: text.slice(at, m.index) });
    parts.push({ embedding: name });
    at = m.index + m[0].length;
  }
  if (at < text.length) parts.push({ text: text.slice(at) });
  return parts;
}

/** The embedding names a prompt refers to, each once, in order of first use. */
export function embeddingNames(text: string): string[] {
  const names = splitPrompt(text).flatMap((p) => ('embedding' in p ? [p.embedding] : []));
  return [...new Set(names)];
}

/** The word an embedding reference is in the prompt's words (attention maps, words masks): lower-cased like the others. */
export function embeddingWord(name: string): string {
  return `embedding:${name}`.toLowerCase();
}

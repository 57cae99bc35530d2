/**
 * Long prompts, as the server and the editor both speak of them: the two ways a prompt longer than the
 * text encoder's window is read (engine/text/chunks.ts does the chunking), and the token count a prompt
 * field shows under it (POST /api/tokens answers with a TokenCount).
 */

/** Cut at the window (the seed's way, and the default), or A1111-style chunks of 75 tokens. */
export const LONG_PROMPT_MODES = ['truncate', 'chunks'] as const;
export type LongPromptMode = (typeof LONG_PROMPT_MODES)[number];

/** What POST /api/tokens answers for one text. */
export interface TokenCount {
  /** Content tokens of the prompt (BOS and EOS not counted). */
  tokens: number;
  /** Content tokens the encoder reads at once (75 for CLIP). */
  window: number;
  /** Chunks the prompt takes in chunks mode (1 for a prompt that fits). */
  chunks: number;
}

/** The line under a prompt field: "82 / 75 — cut at 75" (truncate) or "82 tokens, 2 chunks". */
export function tokenCountLabel(count: TokenCount, mode: LongPromptMode): string {
  const { tokens, window, chunks } = count;
  if (mode === 'chunks') return `${tokens} token${tokens === 1 ? '' : 's'}, ${chunks} chunk${chunks === 1 ? '' : 's'}`;
  return tokens > window ? `${tokens} / ${window} — cut at ${window}` : `${tokens} / ${window}`;
}

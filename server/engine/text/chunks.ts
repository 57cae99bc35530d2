/**
 * Long prompts as A1111 reads them: the content tokens are cut into chunks of at most 75 (the text
 * encoder's 77 less BOS and EOS), each chunk is wrapped BOS … EOS and padded to 77, encoded on its own,
 * and the encodings are concatenated along the sequence axis, so a prompt of k chunks conditions the
 * UNet with 77·k tokens. When a chunk fills up and a comma lies within its last `backtrack` tokens, the
 * chunk ends after that comma and the tokens behind it open the next one (A1111's "comma padding
 * backtrack"), so a phrase is not split between two chunks.
 */

export interface ChunkOptions {
  /** Content tokens per chunk (the window less BOS and EOS: 75 for CLIP). */
  size: number;
  /** The comma's token id, when the vocabulary has one; without it chunks are cut at `size` exactly. */
  comma?: number;
  /** How far back from a full chunk's end a comma may move the cut (A1111: 20; 0 turns it off). */
  backtrack?: number;
}

/** A1111's default for how far back a comma may move a chunk's end. */
export const COMMA_BACKTRACK = 20;

/**
 * The content tokens of each chunk (none longer than `size`; at least one chunk, empty for an empty
 * prompt). Follows A1111's `tokenize_line`: a comma is remembered where it stands; when the chunk is
 * full and the last comma is at most `backtrack` tokens from its end, the tokens after the comma move on.
 */
export function chunkTokens(content: readonly number[], options: ChunkOptions): number[][] {
  const { size, comma } = options;
  const backtrack = options.backtrack ?? COMMA_BACKTRACK;
  if (!Number.isInteger(size) || size < 1) throw new Error(`a chunk holds a positive whole number of tokens, got ${size}`);
  const chunks: number[][] = [];
  let chunk: number[] = [];
  let lastComma = -1;
  const next = () => {
    chunks.push(chunk);
    chunk = [];
    lastComma = -1;
  };
  for (const token of content) {
    if (token === comma) {
      lastComma = chunk.length;
    } else if (backtrack > 0 && chunk.length === size && lastComma !== -1 && chunk.length - lastComma <= backtrack) {
      const moved = chunk.slice(lastComma + 1);
      chunk = chunk.slice(0, lastComma + 1);
      next();
      chunk = moved;
    }
    if (chunk.length === size) next();
    chunk.push(token);
  }
  if (chunk.length > 0 || chunks.length === 0) next();
  return chunks;
}

/** Token ids of the chunks, each BOS + content + EOS padded to `size + 2`, one after the other. */
export function chunkIds(chunks: readonly number[][], special: { bos: number; eos: number; pad: number }, size: number): Int32Array {
  const length = size + 2;
  const ids = new Int32Array(chunks.length * length).fill(special.pad);
  chunks.forEach((tokens, c) => {
    const at = c * length;
    ids[at] = special.bos;
    ids.set(tokens, at + 1);
    ids[at + 1 + tokens.length] = special.eos;
  });
  return ids;
}

/**
 * Where each content token lands in the chunked ids: chunk c's j-th token at c·(size + 2) + 1 + j (BOS
 * of each chunk first). The words mask uses it to find a word's columns in a long prompt's attention.
 */
export function chunkPositions(chunks: readonly number[][], size: number): number[] {
  const out: number[] = [];
  chunks.forEach((tokens, c) => {
    for (let j = 0; j < tokens.length; j++) out.push(c * (size + 2) + 1 + j);
  });
  return out;
}

/**
 * Long prompts (issue 26, item 14): A1111-style chunks of 75 tokens, each wrapped BOS … EOS and encoded on
 * its own, concatenated into 77·k tokens of context; rows of fewer chunks padded with the empty prompt's
 * chunk wherever prompts meet in one UNet call. Truncation stays the default.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { resultsDir } from '../server/store/paths.ts';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunkIds, chunkPositions, chunkTokens } from '../server/engine/text/chunks.ts';
import { ClipTokenizer } from '../server/engine/text/tokenizer.ts';
import { SdPipeline } from '../server/engine/sd/pipeline.ts';
import { stackRows } from '../server/engine/diffusion/rows.ts';
import { tokenCountLabel } from '../server/protocol/prompt-tokens.ts';
import type { Graph } from '../server/protocol/graph.ts';
import { promptFields } from '../client/src/editor/prompt-fields.ts';
import { loadTemplate, Runner, shrink, tinySd } from './support/pipeline-harness.ts';

const hasFixture = existsSync(path.join(tinySd, 'tokenizer/vocab.json'));
if (!hasFixture) console.warn(`long-prompts: fixture ${tinySd} not found; the tiny-sd tests are skipped`);

const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);
const COMMA = 0;

/** A prompt of exactly `n` tokens on the CLIP vocabulary ("red" and "blue" are one token each). */
const wordsPrompt = (n: number) =>
  range(0, n)
    .map((i) => (i % 2 ? 'blue' : 'red'))
    .join(' ');

describe('chunking the tokens of a prompt', () => {
  it('keeps a prompt of up to 75 tokens in one chunk, and an empty prompt as one empty chunk', () => {
    expect(chunkTokens([], { size: 75 })).toEqual([[]]);
    expect(chunkTokens(range(1, 75), { size: 75 })).toEqual([range(1, 75)]);
  });

  it('cuts at 75 tokens exactly when no comma is near the end', () => {
    const chunks = chunkTokens(range(1, 160), { size: 75, comma: COMMA });
    expect(chunks.map((c) => c.length)).toEqual([75, 75, 10]);
    expect(chunks.flat()).toEqual(range(1, 160));
  });

  it('ends a full chunk after its last comma when it lies within the last 20 tokens (A1111), else at 75', () => {
    const near = [...range(1, 60), COMMA, ...range(100, 30)];
    const cut = chunkTokens(near, { size: 75, comma: COMMA });
    expect(cut[0]).toEqual([...range(1, 60), COMMA]);
    expect(cut[1]).toEqual(range(100, 30));
    // A comma 30 tokens before the end is too far back: the chunk is cut at 75.
    const far = [...range(1, 44), COMMA, ...range(100, 60)];
    expect(chunkTokens(far, { size: 75, comma: COMMA }).map((c) => c.length)).toEqual([75, 30]);
    // Backtrack 0 turns the comma rule off.
    expect(chunkTokens(near, { size: 75, comma: COMMA, backtrack: 0 }).map((c) => c.length)).toEqual([75, 16]);
  });

  it('wraps each chunk BOS … EOS, padded to 77, and places every token', () => {
    const chunks = chunkTokens(range(10, 80), { size: 75 });
    const ids = chunkIds(chunks, { bos: 1, eos: 2, pad: 3 }, 75);
    expect(ids.length).toBe(154);
    expect([ids[0], ids[1], ids[75], ids[76]]).toEqual([1, 10, 84, 2]);
    expect([ids[77], ids[78], ids[82], ids[83], ids[153]]).toEqual([1, 85, 89, 2, 3]);
    const at = chunkPositions(chunks, 75);
    expect(at.map((p) => ids[p])).toEqual(range(10, 80));
  });

  it('words the count under a prompt field for each mode', () => {
    expect(tokenCountLabel({ tokens: 82, window: 75, chunks: 2 }, 'truncate')).toBe('82 / 75 — cut at 75');
    expect(tokenCountLabel({ tokens: 40, window: 75, chunks: 1 }, 'truncate')).toBe('40 / 75');
    expect(tokenCountLabel({ tokens: 82, window: 75, chunks: 2 }, 'chunks')).toBe('82 tokens, 2 chunks');
  });
});

describe.skipIf(!hasFixture)('long prompts on the CLIP vocabulary and the tiny-sd model', () => {
  let tok: ClipTokenizer;
  let pipe: SdPipeline;
  beforeAll(async () => {
    tok = await ClipTokenizer.fromFolder(path.join(tinySd, 'tokenizer'));
    pipe = await SdPipeline.load(tinySd, { executionProvider: 'cpu', optimize: false });
  });
  afterAll(async () => {
    await pipe?.release();
  });

  it('chunks a prompt so that its first chunk is the truncated encoding', () => {
    const text = wordsPrompt(100);
    const chunked = tok.encodeChunks(text);
    expect(chunked).toMatchObject({ chunks: 2, tokens: 100 });
    expect(Array.from(chunked.ids.subarray(0, 77))).toEqual(Array.from(tok.encode(text).ids));
    // The words after the first 75 tokens are kept, at their place in the second chunk.
    const words = tok.words(text, 'chunks');
    expect(words).toHaveLength(100);
    expect(words[75]!.positions).toEqual([78]);
    expect(chunked.ids[78]).toBe(tok.tokenize(words[75]!.word)[0]);
    expect(tok.words(text)).toHaveLength(75);
  });

  it('breaks after a comma near the end of a chunk', () => {
    const text = `${wordsPrompt(70)}, ${wordsPrompt(20)}`;
    const chunked = tok.encodeChunks(text);
    expect(chunked.chunks).toBe(2);
    // Chunk 1: BOS, 70 words, the comma, EOS; the words behind the comma open chunk 2.
    expect(chunked.ids[71]).toBe(tok.tokenize(',')[0]);
    expect(chunked.ids[72]).toBe(tok.eos);
    expect(chunked.ids[78]).toBe(tok.tokenize('red')[0]);
  });

  it('encodes a 2-chunk prompt as 154 tokens of context whose first chunk equals the truncated encoding', async () => {
    const text = wordsPrompt(100);
    const D = pipe.info.textDim;
    const truncated = await pipe.encodeText(text);
    const chunked = await pipe.encodeText(text, 'chunks');
    expect(truncated).toMatchObject({ truncated: true, chunks: 1 });
    expect(chunked).toMatchObject({ truncated: false, chunks: 2, tokens: 100 });
    expect(chunked.embedding.length).toBe(154 * D);
    expect(chunked.embedding.subarray(0, 77 * D)).toEqual(truncated.embedding);
    expect(chunked.embedding.subarray(77 * D)).not.toEqual(truncated.embedding);
    // A prompt that fits is the same in either mode.
    expect((await pipe.encodeText('a red house', 'chunks')).embedding).toEqual((await pipe.encodeText('a red house')).embedding);
  });

  it('pads the shorter rows of a call with the empty prompt, and the UNet takes 154 tokens', async () => {
    const D = pipe.info.textDim;
    const long = await pipe.encodeText(wordsPrompt(100), 'chunks');
    const empty = await pipe.unconditional();
    const ehs = await stackRows(pipe, ['unconditional', { embedding: long.embedding, what: 'style 1' }]);
    expect(ehs.length).toBe(2 * 154 * D);
    expect(ehs.subarray(0, 77 * D)).toEqual(empty);
    expect(ehs.subarray(77 * D, 154 * D)).toEqual(empty);
    expect(ehs.subarray(154 * D)).toEqual(long.embedding);
    const w = 8;
    const out = await pipe.unet(new Float32Array(2 * 4 * w * w).fill(0.1), 2, w, w, 500, ehs);
    expect(out.length).toBe(2 * 4 * w * w);
    expect(out.every(Number.isFinite)).toBe(true);
    await expect(stackRows(pipe, [{ embedding: new Float32Array(5), what: 'style 2' }])).rejects.toThrow(/style 2 conditioning has 5 values/);
  });
});

/** The attention-merge template with a long first style, the style prompts read in `mode`. */
async function longPromptGraph(mode: 'truncate' | 'chunks'): Promise<Graph> {
  const g = shrink(await loadTemplate('attention-merge'), tinySd, 6, 2);
  const long = `A Van Gogh painting of [prompt], ${wordsPrompt(70)}, swirling brushstrokes, starry night sky, thick impasto, vivid colors`;
  return {
    ...g,
    nodes: g.nodes.map((n) =>
      n.id === 'style1'
        ? { ...n, params: { ...n.params, text: long } }
        : n.id.startsWith('encode_style')
          ? { ...n, params: { ...n.params, longPrompt: mode } }
          : n,
    ),
  };
}

describe.skipIf(!hasFixture)('a long prompt end to end on tiny-sd', () => {
  it('runs an attention merge of a 2-chunk and a 1-chunk style in chunks mode, unlike truncate mode', async () => {
    const runner = await Runner.create();
    const cut = await runner.run(await longPromptGraph('truncate'));
    const whole = await runner.run(await longPromptGraph('chunks'));
    const warnings = (s: typeof cut) =>
      Object.values(s.warnings)
        .flat()
        .filter((w) => /the rest was cut/.test(w));
    expect(warnings(cut)).toHaveLength(1);
    expect(warnings(whole)).toEqual([]);
    expect(whole.results['encode_style1']!.text).toMatch(/in 2 chunks \(154 tokens of context\)/);
    const pixels = async (s: typeof cut) => {
      const file = path.join(resultsDir(runner.services.dataDir), path.basename(s.results['save_attn']!.images![0]!.url));
      return sharp(await readFile(file))
        .raw()
        .toBuffer();
    };
    const [a, b] = [await pixels(cut), await pixels(whole)];
    expect(a.length).toBe(b.length);
    let differ = 0;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) differ++;
    expect(differ).toBeGreaterThan(a.length / 10);
    // The inversion (its source prompt read as before) is shared: only the style encodings and the decode ran again.
    expect(whole.cached).toContain('invert');
  });
});

describe('the prompt fields an editor counts', () => {
  it('counts a Text Prompt with its subject, as the Encode Text it feeds reads it, with that encoder’s model', async () => {
    const g = await loadTemplate('attention-merge');
    const edited: Graph = {
      ...g,
      nodes: g.nodes.map((n) =>
        n.id === 'encode_style1' ? { ...n, params: { longPrompt: 'chunks' } } : n.type === 'LoadModel' ? { ...n, params: { model: 'tiny-sd' } } : n,
      ),
    };
    const fields = promptFields(edited);
    expect(fields.map((f) => f.nodeId).sort()).toEqual(['source', 'style1', 'style2']);
    const style1 = fields.find((f) => f.nodeId === 'style1')!;
    expect(style1).toMatchObject({ mode: 'chunks', model: 'tiny-sd' });
    expect(style1.text).toMatch(/^A Van Gogh painting of a house, /);
    expect(fields.find((f) => f.nodeId === 'style2')).toMatchObject({ mode: 'truncate', model: 'tiny-sd' });
    // A prompt wired to nothing is counted with the demo's tokenizer, truncated.
    const alone = promptFields({
      nodes: [{ id: 'p', type: 'TextPrompt', params: { text: ' [prompt] ', subject: 'a cat' }, position: { x: 0, y: 0 } }],
      edges: [],
    });
    expect(alone).toEqual([{ nodeId: 'p', text: 'a cat', mode: 'truncate', model: 'demo' }]);
  });
});

describe.skipIf(!hasFixture)('a long source prompt and the words mask', () => {
  /** The words-mask template whose source prompt names the house only after its first 75 tokens. */
  async function wordsGraph(mode: 'truncate' | 'chunks'): Promise<Graph> {
    const g = shrink(await loadTemplate('words-mask'), tinySd, 6, 2);
    const text = `a photo of ${wordsPrompt(80)} and a house`;
    return {
      ...g,
      nodes: g.nodes.map((n) =>
        n.id === 'source' ? { ...n, params: { ...n.params, text } } : n.id === 'encode_source' ? { ...n, params: { longPrompt: mode } } : n,
      ),
    };
  }

  it('finds a word of the second chunk where the truncated prompt has none', async () => {
    const runner = await Runner.create();
    await expect(runner.run(await wordsGraph('truncate'))).rejects.toThrow(/"house" is not a word of the source prompt/);
    const summary = await runner.run(await wordsGraph('chunks'));
    expect(summary.results['save_eps']!.images).toHaveLength(1);
    expect(summary.results['invert']!.text).toMatch(/attention maps of \d+ words/);
  });
});

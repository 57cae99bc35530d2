/**
 * Textual inversion: `embedding:NAME` in a prompt expands to the file's vectors as placeholder tokens, read by
 * the text encoder rewritten to take them (token-embedding-rewrite.ts). Checked on tiny-sd: an embedding equal
 * to a token's own row encodes exactly as that token; a 2-vector embedding is 2 tokens; bad and unknown files
 * are refused with their name.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SdPipeline } from '../server/engine/sd/pipeline.ts';
import { ensureDemoModel } from '../server/models/demo/index.ts';
import { splitPrompt } from '../server/engine/text/added-tokens.ts';
import { ClipTokenizer } from '../server/engine/text/tokenizer.ts';
import { rewriteTokenEmbedding } from '../server/engine/sd/token-embedding-rewrite.ts';
import { demoVocab } from '../server/models/demo/text-encoder.ts';
import { encodeSafetensors } from '../server/models/convert/safetensors.ts';
import { loadPromptEmbeddings } from '../server/models/embeddings.ts';
import { encodeText } from '../nodes/encode-text.ts';
import type { Services } from '../nodes/types.ts';
import { nodeContext } from './support/node-context.ts';
import { loadModel } from '../nodes/load-model.ts';
import { nodeDefinitions } from '../nodes/index.ts';
import { createCatalog } from '../server/catalog.ts';
import { GraphRunner } from '../server/executor/graph-runner.ts';

const fixture = path.resolve(import.meta.dirname, '../../shared/fixtures/tiny-sd');
const hasFixture = existsSync(path.join(fixture, 'model_index.json'));
if (!hasFixture) console.warn(`textual-inversion tests on tiny-sd skipped: ${fixture} is absent`);

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'dss-ti-'));
  await mkdir(path.join(tmp, 'embeddings'));
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

const writeEmbedding = (name: string, tensors: { name: string; shape: number[]; data: Float32Array }[]) =>
  writeFile(path.join(tmp, 'embeddings', `${name}.safetensors`), encodeSafetensors(tensors));

function maxDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
}

describe('embedding references in a prompt', () => {
  it('cuts a prompt around embedding:NAME, an extension dropped', () => {
    expect(splitPrompt('a embedding:cat-toy.safetensors, on a (embedding:Style_2:1.2)')).toEqual([
      { text: 'a ' },
      { embedding: 'cat-toy' },
      { text: ', on a (' },
      { embedding: 'Style_2' },
      { text: ':1.2)' },
    ]);
  });
});

describe('the tokenizer with added tokens (the demo vocabulary: no fixture needed)', () => {
  const tokenizer = new ClipTokenizer({ vocab: demoVocab(), merges: [], maxLength: 8 });
  const added = new Map([['two', [1000, 1001]]]);

  it('expands a reference to its ids, between the BPE of the text around it', () => {
    const plain = tokenizer.tokenize('ab');
    expect(tokenizer.tokenize('ab embedding:two ab', added)).toEqual([...plain, 1000, 1001, ...plain]);
    // Without added tokens the reference is plain text, as before.
    expect(tokenizer.tokenize('embedding:two').length).toBe('embedding:two'.length);
  });

  it('counts the expansion in the words, truncation and the token count', () => {
    expect(tokenizer.words('a embedding:two b', 'truncate', added)).toEqual([
      { word: 'a', positions: [1] },
      { word: 'embedding:two', positions: [2, 3] },
      { word: 'b', positions: [4] },
    ]);
    const enc = tokenizer.encode('a b c embedding:two d', added);
    expect([enc.tokens, enc.truncated]).toEqual([6, false]);
    expect([...enc.ids]).toEqual([tokenizer.bos, ...tokenizer.tokenize('a b c'), 1000, 1001, ...tokenizer.tokenize('d'), tokenizer.eos]);
    expect(tokenizer.encode('a b c d e embedding:two', added).truncated).toBe(true);
    expect(() => tokenizer.tokenize('embedding:other', added)).toThrow(/embedding:other, which was not loaded/);
  });

  it('reads a long prompt with a reference in chunks, the reference expanded where it falls', () => {
    // maxLength 8: chunks of 6 content tokens. 'a b c d e' is 5 tokens, so the reference's 2 ids cross into chunk 2.
    const chunked = tokenizer.encodeChunks('a b c d e embedding:two f', added);
    expect([chunked.tokens, chunked.chunks]).toEqual([8, 2]);
    expect([...chunked.ids].filter((id) => id >= 1000)).toEqual([1000, 1001]);
    const words = tokenizer.words('a b c d e embedding:two f', 'chunks', added);
    expect(words.map((w) => w.word)).toEqual(['a', 'b', 'c', 'd', 'e', 'embedding:two', 'f']);
    expect(words.at(-2)!.positions.map((p) => chunked.ids[p])).toEqual([1000, 1001]);
  });
});

describe('the token-embedding rewrite', () => {
  it('refuses a text encoder without a token lookup, and one rewritten already', () => {
    const empty = { opsetImport: [{ version: 14 }], graph: { node: [], initializer: [], input: [], output: [] } };
    expect(() => rewriteTokenEmbedding(empty)).toThrow(/no token-embedding lookup/);
    const table = { name: 'token_embedding.weight', dataType: 1, dims: [10, 4] };
    const lookup = () => ({
      opsetImport: [{ version: 14 }],
      graph: {
        node: [{ opType: 'Gather', input: ['token_embedding.weight', 'input_ids'], output: ['e'] }],
        initializer: [{ ...table }],
        input: [],
        output: [],
      },
    });
    const model = lookup();
    expect(rewriteTokenEmbedding(model)).toEqual({ vocab: 10, width: 4 });
    expect(() => rewriteTokenEmbedding(model)).toThrow(/rewritten already/);
    expect(() => rewriteTokenEmbedding({ ...lookup(), opsetImport: [{ version: 9 }] })).toThrow(/opset 9 is older than 11/);
  });
});

describe('embedding files', () => {
  it('refuses an unknown name, naming it and the folder', async () => {
    await expect(loadPromptEmbeddings('a embedding:nope', [tmp], 32)).rejects.toThrow(/no embedding "nope": put nope\.safetensors in the embeddings\/ folder/);
  });

  it('refuses other text encoders and odd files, naming the file and the problem', async () => {
    await writeEmbedding('sd2', [{ name: 'emb_params', shape: [1, 1024], data: new Float32Array(1024) }]);
    await expect(loadPromptEmbeddings('embedding:sd2', [tmp], 768)).rejects.toThrow(
      /embedding sd2\.safetensors: vectors of width 1024 \(an SD 2\.x embedding\?\); .* takes 768/,
    );
    await writeEmbedding('xl', [
      { name: 'clip_g', shape: [1, 1280], data: new Float32Array(1280) },
      { name: 'clip_l', shape: [1, 768], data: new Float32Array(768) },
    ]);
    await expect(loadPromptEmbeddings('embedding:xl', [tmp], 768)).rejects.toThrow(/embedding xl\.safetensors: an SDXL embedding/);
    await writeEmbedding('two-keys', [
      { name: 'a', shape: [4], data: new Float32Array(4) },
      { name: 'b', shape: [4], data: new Float32Array(4) },
    ]);
    await expect(loadPromptEmbeddings('embedding:two-keys', [tmp], 4)).rejects.toThrow(/two-keys\.safetensors: holds 2 tensors \(a, b\)/);
  });

  it("are part of Encode Text's cache identity: a changed file encodes again", async () => {
    const services = { modelRoots: [tmp] } as unknown as Services; // identity reads only the models folders
    const before = await encodeText.identity!({ longPrompt: 'truncate' }, services);
    expect(await encodeText.identity!({ longPrompt: 'truncate' }, services)).toBe(before);
    await writeEmbedding('added-later', [{ name: 'emb_params', shape: [1, 4], data: new Float32Array(4) }]);
    expect(await encodeText.identity!({ longPrompt: 'truncate' }, services)).not.toBe(before);
  });

  it('reads A1111 and diffusers keys', async () => {
    await writeEmbedding('a1111', [{ name: 'string_to_param.*', shape: [3, 4], data: new Float32Array(12).fill(1) }]);
    await writeEmbedding('diffusers', [{ name: '<cat-toy>', shape: [4], data: new Float32Array([1, 2, 3, 4]) }]);
    const [a, d] = await loadPromptEmbeddings('embedding:a1111 and embedding:diffusers', [tmp], 4);
    expect([a!.name, a!.count, d!.name, d!.count, [...d!.vectors]]).toEqual(['a1111', 3, 'diffusers', 1, [1, 2, 3, 4]]);
  });
});

describe.skipIf(!hasFixture)('textual inversion on tiny-sd', () => {
  let pipe: SdPipeline;
  let table: Float32Array;
  let width: number;
  const row = (id: number) => table.slice(id * width, (id + 1) * width);
  const idOf = (word: string) => pipe.tokenizer.tokenize(word)[0]!;

  beforeAll(async () => {
    pipe = await SdPipeline.load(fixture, { executionProvider: 'cpu', attentionCacheDir: path.join(tmp, 'cache') });
    const model = onnxProto.onnx.ModelProto.decode(await readFile(path.join(fixture, 'text_encoder/model.onnx')));
    const t = model.graph!.initializer!.find((i) => i.name === 'embeddings.token_embedding.weight')!;
    width = Number(t.dims![1]);
    table = new Float32Array(new Uint8Array(t.rawData!).slice().buffer);
  });
  afterAll(() => pipe?.release());

  it("an embedding equal to a token's row encodes as that token, and plain prompts are unchanged", async () => {
    const stock = await pipe.encodeText('a photo of a cat');
    await writeEmbedding('mycat', [{ name: 'emb_params', shape: [1, width], data: row(idOf('cat')) }]);
    pipe.addEmbeddings(await loadPromptEmbeddings('embedding:mycat', [tmp], pipe.info.textDim));
    const viaEmbedding = await pipe.encodeText('a photo of a embedding:mycat');
    expect(viaEmbedding.tokens).toBe(stock.tokens);
    expect(maxDiff(viaEmbedding.embedding, stock.embedding)).toBeLessThan(1e-6);
    // The rewritten text encoder now serves every prompt: a plain one gives what the model as exported gave.
    const again = await pipe.encodeIds(pipe.tokenizer.encode('a photo of a cat').ids);
    expect(maxDiff(again, stock.embedding)).toBeLessThan(1e-6);
  });

  it('a 2-vector embedding expands to 2 tokens, one word of the attention maps', async () => {
    const vectors = new Float32Array(2 * width);
    vectors.set(row(idOf('red')), 0);
    vectors.set(row(idOf('dog')), width);
    await writeEmbedding('reddog', [{ name: '<red-dog>', shape: [2, width], data: vectors }]);
    pipe.addEmbeddings(await loadPromptEmbeddings('embedding:reddog', [tmp], pipe.info.textDim));
    const prompt = 'a embedding:reddog running';
    const enc = await pipe.encodeText(prompt);
    expect(enc.tokens).toBe(4);
    const plain = await pipe.encodeText('a red dog running');
    expect(maxDiff(enc.embedding, plain.embedding)).toBeLessThan(1e-6);
    expect(pipe.promptWords(prompt).map((w) => [w.word, w.positions])).toEqual([
      ['a', [1]],
      ['embedding:reddog', [2, 3]],
      ['running', [4]],
    ]);
  });

  it('refuses a prompt naming an embedding that was not loaded', async () => {
    await expect(pipe.encodeText('embedding:never')).rejects.toThrow(/embedding:never, which was not loaded/);
  });
});

describe("the studio's own text encoder graph (converted models, the demo)", () => {
  it('takes embeddings too: int32 ids, and plain prompts unchanged', async () => {
    const pipe = await SdPipeline.load(await ensureDemoModel(), { executionProvider: 'cpu', attentionCacheDir: path.join(tmp, 'cache') });
    try {
      const stock = await pipe.encodeText('a cat');
      const catRow = (await pipe.encodeText('cat')).embedding; // not a row of the table: a different vector
      pipe.addEmbeddings([{ name: 'other', vectors: catRow.slice(0, pipe.info.textDim), count: 1, key: 'k' }]);
      const viaEmbedding = await pipe.encodeText('a embedding:other');
      expect(viaEmbedding.tokens).toBe(2);
      expect(maxDiff(viaEmbedding.embedding, stock.embedding)).toBeGreaterThan(1e-3);
      expect(maxDiff(await pipe.encodeIds(pipe.tokenizer.encode('a cat').ids), stock.embedding)).toBe(0);
    } finally {
      await pipe.release();
    }
  });
});

describe.skipIf(!hasFixture)('through Load Model and Encode Text', () => {
  it('a prompt names an embedding of the models folders; an unknown one is refused by name', async () => {
    const modelRoots = [path.dirname(fixture), tmp];
    const dataDir = path.join(tmp, 'data');
    const services = new GraphRunner({ catalog: createCatalog(nodeDefinitions), dataDir, executionProvider: 'cpu', modelRoots }).services;
    const ctx = nodeContext(services);
    const { outputs } = await loadModel.run({ inputs: {}, params: { model: 'tiny-sd', dtype: 'auto', config: '', vae: '' }, ctx });
    try {
      const width = (await outputs.model.pipeline.acquire()).info.textDim;
      await writeEmbedding('three', [{ name: 'emb_params', shape: [3, width], data: new Float32Array(3 * width).fill(0.5) }]);
      const encoded = await encodeText.run({ inputs: { model: outputs.model, text: 'a embedding:three cat' }, params: { longPrompt: 'truncate' }, ctx });
      expect(encoded.outputs.conditioning.tokens).toBe(5);
      expect(encoded.result?.text).toMatch(/^5 of \d+ tokens/);
      await expect(encodeText.run({ inputs: { model: outputs.model, text: 'embedding:nope' }, params: { longPrompt: 'truncate' }, ctx })).rejects.toThrow(
        /no embedding "nope": put nope\.safetensors in the embeddings\/ folder/,
      );
    } finally {
      await services.models.releaseAll();
    }
  });
});

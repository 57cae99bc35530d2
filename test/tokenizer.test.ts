import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClipTokenizer, cleanText } from '../server/engine/text/tokenizer.ts';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tinySd = path.resolve(projectRoot, '../shared/fixtures/tiny-sd');
const casesFile = path.join(tinySd, 'reference/tokenizer_cases.json');
const haveFixture = existsSync(casesFile) && existsSync(path.join(tinySd, 'tokenizer/vocab.json'));
if (!haveFixture) console.warn(`[tokenizer.test] skipping CLIP vocabulary tests: ${casesFile} not found`);

interface Case {
  prompt: string;
  input_ids: number[];
}

describe.skipIf(!haveFixture)('ClipTokenizer on the real CLIP vocabulary', () => {
  let tok: ClipTokenizer;
  let loadMs = 0;
  beforeAll(async () => {
    // CPU time of this test's process (vitest runs each file in its own), so a busy machine does not count.
    const c0 = process.cpuUsage();
    tok = await ClipTokenizer.fromFolder(path.join(tinySd, 'tokenizer'));
    const used = process.cpuUsage(c0);
    loadMs = (used.user + used.system) / 1000;
  });

  it('reads the special tokens from vocab.json', () => {
    expect(tok.maxLength).toBe(77);
    const vocab = JSON.parse(readFileSync(path.join(tinySd, 'tokenizer/vocab.json'), 'utf8')) as Record<string, number>;
    expect(tok.bos).toBe(vocab['<|startoftext|>']);
    expect(tok.eos).toBe(vocab['<|endoftext|>']);
    expect(tok.pad).toBe(tok.eos);
  });

  const cases = haveFixture ? (JSON.parse(readFileSync(casesFile, 'utf8')) as Case[]) : [];
  it.each(cases.map((c, i) => [i, c] as const))('reproduces reference case %i exactly', (_i, c) => {
    const { ids } = tok.encode(c.prompt);
    expect(ids).toBeInstanceOf(Int32Array);
    expect(Array.from(ids)).toEqual(c.input_ids);
  });

  it('truncates to BOS + 75 tokens + EOS and says so', () => {
    const long = Array.from({ length: 120 }, () => 'very').join(' ');
    const r = tok.encode(long);
    expect(r.ids.length).toBe(77);
    expect(r.truncated).toBe(true);
    expect(r.tokens).toBe(120);
    expect(r.ids[0]).toBe(tok.bos);
    expect(r.ids[76]).toBe(tok.eos);
    const very = tok.encode('very').ids[1];
    expect(Array.from(r.ids.subarray(1, 76)).every((id) => id === very)).toBe(true);
  });

  it('keeps exactly 75 content tokens without truncating', () => {
    const r = tok.encode(Array.from({ length: 75 }, () => 'cat').join(' '));
    expect(r.tokens).toBe(75);
    expect(r.truncated).toBe(false);
    expect(r.ids[76]).toBe(tok.eos);
  });

  it('pads after EOS with the pad token', () => {
    const r = tok.encode('a photo of a cat');
    expect(r.tokens).toBe(5);
    expect(r.truncated).toBe(false);
    expect(r.ids[6]).toBe(tok.eos);
    expect(Array.from(r.ids.subarray(7)).every((id) => id === tok.pad)).toBe(true);
  });

  it('unescapes HTML entities (twice, like OpenAI CLIP)', () => {
    const plain = Array.from(tok.encode("salt & pepper, it's <b>").ids);
    expect(Array.from(tok.encode('salt &amp; pepper, it&#39;s &lt;b&gt;').ids)).toEqual(plain);
    expect(Array.from(tok.encode('salt &amp;amp; pepper, it&#x27;s &lt;b&gt;').ids)).toEqual(plain);
    expect(cleanText('caf&eacute;')).toBe('café');
  });

  it('collapses whitespace and strips', () => {
    const plain = Array.from(tok.encode('a photo of a cat').ids);
    expect(Array.from(tok.encode('  a \t photo\n\nof\u00a0a   cat \r\n').ids)).toEqual(plain);
  });

  it('folds case', () => {
    expect(Array.from(tok.encode('A PHOTO Of A Cat').ids)).toEqual(Array.from(tok.encode('a photo of a cat').ids));
  });

  it('treats a literal special-token string as that token', () => {
    const r = tok.encode('cat <|endoftext|> dog');
    expect(r.ids[2]).toBe(tok.eos);
    expect(r.tokens).toBe(3);
  });

  it('never crashes on odd input and always returns 77 ids', () => {
    for (const p of ['constructor __proto__ toString', '\u0000\u0007', '😀'.repeat(100), 'ﬁne ’quoted’ ＡＢＣ', '\ud800']) {
      const r = tok.encode(p);
      expect(r.ids.length).toBe(77);
      expect(r.ids[0]).toBe(tok.bos);
    }
  });

  it('loads quickly and encodes a 77-token prompt in well under a millisecond', () => {
    // The budget is 300 ms of CPU; allow headroom for a slower CI core.
    expect(loadMs).toBeLessThan(1500);
    const prompt = cases.find((c) => c.prompt.startsWith('A Minecraft'))?.prompt ?? 'a photo of a cat';
    const n = 500;
    const t0 = process.cpuUsage();
    for (let i = 0; i < n; i++) tok.encode(`${prompt} ${i}`);
    const used = process.cpuUsage(t0);
    const perCall = (used.user + used.system) / 1000 / n;
    console.log(`[tokenizer.test] vocab load ${loadMs.toFixed(0)} ms, encode ${(perCall * 1000).toFixed(0)} µs`);
    expect(perCall).toBeLessThan(1);
  });
});

/** Every byte symbol of CLIP's bytes_to_unicode, in byte order. */
function byteSymbols(): string[] {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const out = new Array<string>(256);
  for (const b of bs) out[b] = String.fromCharCode(b);
  let n = 0;
  for (let b = 0; b < 256; b++) if (out[b] === undefined) out[b] = String.fromCharCode(256 + n++);
  return out;
}

describe('ClipTokenizer on a synthetic byte-level vocabulary', () => {
  let dir: string;
  const vocab: Record<string, number> = {};
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'clip-tok-'));
    // Ids deliberately unlike CLIP's, so a hard-coded id would show.
    let next = 1000;
    for (const s of byteSymbols()) {
      vocab[s] = next++;
      vocab[s + '</w>'] = next++;
    }
    vocab['hi</w>'] = 7;
    vocab['BEGIN'] = 3;
    vocab['END'] = 5;
    vocab['PAD'] = 0;
    await writeFile(path.join(dir, 'vocab.json'), JSON.stringify(vocab));
    await writeFile(path.join(dir, 'merges.txt'), '#version: 0.2\nh i</w>\n');
    await writeFile(
      path.join(dir, 'tokenizer_config.json'),
      JSON.stringify({
        model_max_length: 12,
        bos_token: { content: 'BEGIN', __type: 'AddedToken' },
        eos_token: 'END',
        pad_token: 'PAD',
      }),
    );
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('takes special tokens, length and merges from the files', async () => {
    const tok = await ClipTokenizer.fromFolder(dir);
    expect([tok.bos, tok.eos, tok.pad, tok.maxLength]).toEqual([3, 5, 0, 12]);
    const r = tok.encode('Hi ab é');
    // "hi" merges to one token; "ab" is byte symbols with </w> on the last; "é" is bytes C3 A9.
    expect(Array.from(r.ids)).toEqual([3, 7, vocab['a']!, vocab['b</w>']!, vocab['\u00c3']!, vocab['\u00a9</w>']!, 5, 0, 0, 0, 0, 0]);
    expect(r.tokens).toBe(5);
    expect(r.truncated).toBe(false);
  });

  it('truncates to its own maxLength with EOS last', async () => {
    const tok = await ClipTokenizer.fromFolder(dir);
    const r = tok.encode('abcdefghijklmnop');
    expect(r.ids.length).toBe(12);
    expect(r.tokens).toBe(16);
    expect(r.truncated).toBe(true);
    expect(r.ids[11]).toBe(5);
    expect(r.ids[10]).toBe(vocab['j']);
  });

  it('works without tokenizer_config.json and without a merges header', async () => {
    const bare = await mkdtemp(path.join(os.tmpdir(), 'clip-tok-bare-'));
    try {
      const v: Record<string, number> = { ...vocab, '<|startoftext|>': 90001, '<|endoftext|>': 90002 };
      await writeFile(path.join(bare, 'vocab.json'), JSON.stringify(v));
      await writeFile(path.join(bare, 'merges.txt'), 'h i</w>\n');
      const tok = await ClipTokenizer.fromFolder(bare);
      expect([tok.bos, tok.eos, tok.pad, tok.maxLength]).toEqual([90001, 90002, 90002, 77]);
      expect(Array.from(tok.encode('hi').ids.subarray(0, 4))).toEqual([90001, 7, 90002, 90002]);
    } finally {
      await rm(bare, { recursive: true, force: true });
    }
  });

  it('falls back to unk, or skips, a symbol missing from the vocabulary', async () => {
    const holes = await mkdtemp(path.join(os.tmpdir(), 'clip-tok-holes-'));
    try {
      const v = { ...vocab, UNK: 9 };
      delete (v as Record<string, number>)['z</w>'];
      await writeFile(path.join(holes, 'vocab.json'), JSON.stringify(v));
      await writeFile(path.join(holes, 'merges.txt'), '');
      const cfg = { bos_token: 'BEGIN', eos_token: 'END', pad_token: 'PAD' };
      await writeFile(path.join(holes, 'tokenizer_config.json'), JSON.stringify({ ...cfg, unk_token: 'UNK' }));
      const withUnk = await ClipTokenizer.fromFolder(holes);
      expect(Array.from(withUnk.encode('az').ids.subarray(0, 4))).toEqual([3, vocab['a'], 9, 5]);
      await writeFile(path.join(holes, 'tokenizer_config.json'), JSON.stringify(cfg));
      const noUnk = await ClipTokenizer.fromFolder(holes);
      const r = noUnk.encode('az');
      expect(Array.from(r.ids.subarray(0, 4))).toEqual([3, vocab['a'], 5, 0]);
      expect(r.tokens).toBe(1);
    } finally {
      await rm(holes, { recursive: true, force: true });
    }
  });

  it('names the problem when files or special tokens are missing', async () => {
    const empty = await mkdtemp(path.join(os.tmpdir(), 'clip-tok-empty-'));
    try {
      await expect(ClipTokenizer.fromFolder(empty)).rejects.toThrow(/tokenizer file missing: .*vocab\.json/);
      await writeFile(path.join(empty, 'vocab.json'), JSON.stringify({ a: 1 }));
      await writeFile(path.join(empty, 'merges.txt'), '');
      await expect(ClipTokenizer.fromFolder(empty)).rejects.toThrow(/no start-of-text \(BOS\) token "<\|startoftext\|>"/);
      await writeFile(path.join(empty, 'vocab.json'), '{not json');
      await expect(ClipTokenizer.fromFolder(empty)).rejects.toThrow(/vocab\.json is not valid JSON/);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});

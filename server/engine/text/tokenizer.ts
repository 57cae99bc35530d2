/**
 * CLIP byte-level BPE tokenizer, read from a diffusers `tokenizer/` folder (vocab.json + merges.txt
 * + optional tokenizer_config.json). Reproduces OpenAI CLIP's `SimpleTokenizer` exactly:
 *   clean text (a few ftfy-like fixes, HTML-unescape twice, NFC, collapse whitespace, lower-case)
 *   → split with CLIP's regex → bytes → CLIP's bytes_to_unicode symbols → BPE by merge rank
 *   (the last symbol of a word carries `</w>`) → ids; then BOS + at most maxLength−2 tokens + EOS,
 *   padded to maxLength.
 * Special-token ids are looked up in the vocabulary by their strings, never hard-coded, so a small
 * byte-level demo vocabulary works with the same class.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { decodeHTML } from 'entities';
import type { LongPromptMode } from '../../protocol/prompt-tokens.ts';
import { chunkIds, chunkPositions, chunkTokens } from './chunks.ts';
import { embeddingWord, splitPrompt, type AddedTokens } from './added-tokens.ts';

export interface TokenizedPrompt {
  /** BOS, content tokens, EOS, then padding; always `maxLength` long. */
  ids: Int32Array;
  /** Number of content tokens the prompt produced before truncation (BOS/EOS not counted). */
  tokens: number;
  /** True when content tokens were dropped to fit `maxLength`. */
  truncated: boolean;
}

/** A prompt in chunks (chunks.ts): k rows of `maxLength` ids, one after the other. */
export interface ChunkedPrompt {
  ids: Int32Array;
  /** Number of rows k (at least 1). */
  chunks: number;
  /** Content tokens of the prompt (BOS/EOS not counted); none is dropped. */
  tokens: number;
}

/** CLIP's pre-tokenisation pattern (case-insensitive in the original; the text is lower-cased first). */
const CLIP_PATTERN = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+/giu;

/** Python's str.isspace() set (what CLIP's `re.sub(r'\s+', ' ', text)` collapses). */
// eslint-disable-next-line no-control-regex -- \x1c-\x1f are in Python's whitespace set, on purpose
const PY_WHITESPACE = /[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/g;

const DEFAULT_MAX_LENGTH = 77;
const BPE_CACHE_LIMIT = 50_000;

/**
 * CLIP's bytes_to_unicode: printable Latin-1 bytes map to themselves, the other 68 bytes to
 * U+0100.., so every byte becomes one visible symbol that BPE can work on.
 */
function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const table = new Array<string>(256);
  for (const b of bs) table[b] = String.fromCharCode(b);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (table[b] === undefined) table[b] = String.fromCharCode(256 + n++);
  }
  return table;
}
const BYTE_SYMBOL = bytesToUnicode();

// ftfy fixes that OpenAI CLIP applies via ftfy.fix_text and that change ids of everyday input.
// (ftfy's mojibake repair is not reproduced.)
const CURLY_SINGLE = /[\u02bc\u2018-\u201b]/g;
const CURLY_DOUBLE = /[\u201c-\u201f]/g;
const LIGATURES: Record<string, string> = {
  Ĳ: 'IJ',
  ĳ: 'ij',
  ŉ: 'ʼn',
  Ǆ: 'DŽ',
  ǅ: 'Dž',
  ǆ: 'dž',
  Ǉ: 'LJ',
  ǈ: 'Lj',
  ǉ: 'lj',
  Ǌ: 'NJ',
  ǋ: 'Nj',
  ǌ: 'nj',
  Ǳ: 'DZ',
  ǲ: 'Dz',
  ǳ: 'dz',
  ﬀ: 'ff',
  ﬁ: 'fi',
  ﬂ: 'fl',
  ﬃ: 'ffi',
  ﬄ: 'ffl',
  ﬅ: 'ſt',
  ﬆ: 'st',
};
const LIGATURE_RE = new RegExp(`[${Object.keys(LIGATURES).join('')}]`, 'g');
/** Full-width / half-width forms → their ordinary characters (ftfy's fix_character_width). */
const WIDTH_RE = /[\u3000\uff01-\uffef]/g;
function fixWidth(ch: string): string {
  if (ch === '\u3000') return ' ';
  const alt = ch.normalize('NFKC');
  return alt;
}
/** Control characters ftfy removes (C0 except tab/newlines, DEL, some format chars). */
// eslint-disable-next-line no-control-regex -- the control characters are what this pattern removes
const CONTROL_RE = /[\x00-\x08\x0b\x0e-\x1f\x7f\u206a-\u206f\ufeff\ufff9-\ufffc]/g;

export function cleanText(text: string): string {
  let t = text
    .replace(CONTROL_RE, '')
    .replace(CURLY_SINGLE, "'")
    .replace(CURLY_DOUBLE, '"')
    .replace(LIGATURE_RE, (c) => LIGATURES[c] ?? c)
    .replace(WIDTH_RE, fixWidth)
    .normalize('NFC');
  // OpenAI's basic_clean unescapes twice so that doubly-escaped text ("&amp;amp;") comes out plain.
  t = decodeHTML(decodeHTML(t));
  return t.replace(PY_WHITESPACE, ' ').trim().toLowerCase();
}

interface TokenizerConfig {
  model_max_length?: unknown;
  bos_token?: unknown;
  eos_token?: unknown;
  pad_token?: unknown;
  unk_token?: unknown;
}

/** tokenizer_config.json holds tokens either as strings or as AddedToken objects `{content}`. */
function tokenString(v: unknown, fallback: string | null): string | null {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') {
    return (v as { content: string }).content;
  }
  return fallback;
}

export class ClipTokenizer {
  readonly bos: number;
  readonly eos: number;
  readonly pad: number;
  readonly maxLength: number;
  private readonly unk: number | null;
  /** token → id; the parsed vocab.json object itself (building a Map would double the load time). */
  private readonly encoder: Record<string, number>;
  /** Merge rank keyed by "left right". */
  private readonly ranks: Map<string, number>;
  /** word (byte symbols) → token ids; special tokens pre-seeded like CLIP's cache. */
  private readonly cache = new Map<string, number[]>();

  constructor(opts: {
    vocab: Record<string, number>;
    merges: string[];
    bosToken?: string;
    eosToken?: string;
    padToken?: string;
    unkToken?: string | null;
    maxLength?: number;
    source?: string;
  }) {
    const where = opts.source ?? 'the tokenizer vocabulary';
    this.encoder = opts.vocab;
    this.ranks = new Map();
    opts.merges.forEach((m, i) => {
      if (!this.ranks.has(m)) this.ranks.set(m, i);
    });
    const need = (tok: string, role: string): number => {
      const id = this.lookup(tok);
      if (id === undefined) throw new Error(`${where} has no ${role} token "${tok}"`);
      return id;
    };
    const bosToken = opts.bosToken ?? '<|startoftext|>';
    const eosToken = opts.eosToken ?? '<|endoftext|>';
    this.bos = need(bosToken, 'start-of-text (BOS)');
    this.eos = need(eosToken, 'end-of-text (EOS)');
    this.pad = need(opts.padToken ?? eosToken, 'padding');
    this.unk = opts.unkToken ? (this.lookup(opts.unkToken) ?? null) : null;
    const maxLength = opts.maxLength ?? DEFAULT_MAX_LENGTH;
    if (!Number.isInteger(maxLength) || maxLength < 2) {
      throw new Error(`${where}: maxLength must be an integer ≥ 2, got ${maxLength}`);
    }
    this.maxLength = maxLength;
    for (const special of [bosToken, eosToken]) this.cache.set(special, [this.lookup(special)!]);
  }

  /** Load `<dir>/vocab.json`, `<dir>/merges.txt` and, when present, `<dir>/tokenizer_config.json`. */
  static async fromFolder(dir: string): Promise<ClipTokenizer> {
    const vocabPath = path.join(dir, 'vocab.json');
    const mergesPath = path.join(dir, 'merges.txt');
    // One after the other: with both files missing, the error names vocab.json whichever read ends first.
    const vocabText = await readRequired(vocabPath);
    const mergesText = await readRequired(mergesPath);
    const configText = await readFile(path.join(dir, 'tokenizer_config.json'), 'utf8').catch(() => null);
    let vocab: Record<string, number>;
    try {
      vocab = JSON.parse(vocabText) as Record<string, number>;
    } catch (e) {
      throw new Error(`${vocabPath} is not valid JSON: ${(e as Error).message}`, { cause: e });
    }
    if (!vocab || typeof vocab !== 'object' || Array.isArray(vocab)) {
      throw new Error(`${vocabPath} must be a JSON object mapping tokens to ids`);
    }
    let config: TokenizerConfig = {};
    if (configText !== null) {
      try {
        config = JSON.parse(configText) as TokenizerConfig;
      } catch (e) {
        throw new Error(`${path.join(dir, 'tokenizer_config.json')} is not valid JSON: ${(e as Error).message}`, { cause: e });
      }
    }
    const merges: string[] = [];
    const lines = mergesText.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.trim();
      // A merge is exactly "left right"; the "#version" header and blank lines are skipped.
      if (line.length === 0 || (i === 0 && line.startsWith('#version'))) continue;
      const sp = line.indexOf(' ');
      if (sp > 0 && sp === line.lastIndexOf(' ')) merges.push(line);
    }
    // Some configs carry a huge sentinel (1e30) for "no limit"; CLIP text encoders take 77.
    const ml = config.model_max_length;
    const maxLength = typeof ml === 'number' && Number.isInteger(ml) && ml >= 2 && ml <= 4096 ? ml : DEFAULT_MAX_LENGTH;
    const eosToken = tokenString(config.eos_token, '<|endoftext|>')!;
    return new ClipTokenizer({
      vocab,
      merges,
      bosToken: tokenString(config.bos_token, '<|startoftext|>')!,
      eosToken,
      padToken: tokenString(config.pad_token, eosToken)!,
      unkToken: tokenString(config.unk_token, null),
      maxLength,
      source: vocabPath,
    });
  }

  /** `added`: the ids of the `embedding:NAME` references the prompt may hold (added-tokens.ts); without it they are plain text. */
  encode(text: string, added?: AddedTokens): TokenizedPrompt {
    const content = this.tokenize(text, added);
    const room = this.maxLength - 2;
    const kept = Math.min(content.length, room);
    const ids = new Int32Array(this.maxLength).fill(this.pad);
    ids[0] = this.bos;
    for (let i = 0; i < kept; i++) ids[i + 1] = content[i]!;
    ids[kept + 1] = this.eos;
    return { ids, tokens: content.length, truncated: content.length > room };
  }

  /** The prompt as A1111 reads a long one: chunks of maxLength − 2 tokens, broken after a comma where one is near the end. */
  encodeChunks(text: string, added?: AddedTokens): ChunkedPrompt {
    const content = this.tokenize(text, added);
    const chunks = this.chunksOf(content);
    return { ids: chunkIds(chunks, this, this.maxLength - 2), chunks: chunks.length, tokens: content.length };
  }

  private chunksOf(content: readonly number[]): number[][] {
    const comma = this.lookup(',</w>');
    return chunkTokens(content, { size: this.maxLength - 2, ...(comma === undefined ? {} : { comma }) });
  }

  /**
   * The words of a prompt, CLIP's pre-tokenisation pieces as `tokenize` splits them (lower-cased, so
   * punctuation is a word of its own), each with the positions of its tokens in `encode`'s ids (BOS at
   * 0, so the first content token is at 1). An embedding reference is one word (`embedding:name`) with
   * a position per vector. Words cut off by truncation are left out; in chunks mode every word is kept,
   * at its place in the chunked ids (encodeChunks).
   */
  words(text: string, mode: LongPromptMode = 'truncate', added?: AddedTokens): { word: string; positions: number[] }[] {
    const pieces = this.wordIds(text, added);
    const room = this.maxLength - 2;
    const place = mode === 'chunks' ? chunkPositions(this.chunksOf(pieces.flatMap((w) => w.ids)), room) : Array.from({ length: room }, (_, i) => i + 1);
    const out: { word: string; positions: number[] }[] = [];
    let next = 0;
    for (const { word, ids } of pieces) {
      if (next + ids.length > place.length) break;
      out.push({ word, positions: place.slice(next, next + ids.length) });
      next += ids.length;
    }
    return out;
  }

  /** Content token ids of `text` (no BOS/EOS, no truncation). */
  tokenize(text: string, added?: AddedTokens): number[] {
    return this.wordIds(text, added).flatMap((w) => w.ids);
  }

  /** Each word of the prompt with its ids: BPE for text, the given ids for an embedding reference. */
  private wordIds(text: string, added: AddedTokens | undefined): { word: string; ids: readonly number[] }[] {
    const out: { word: string; ids: readonly number[] }[] = [];
    for (const part of added ? splitPrompt(text) : [{ text }]) {
      if ('embedding' in part) {
        const ids = added!.get(part.embedding);
        if (!ids) throw new Error(`the prompt uses embedding:${part.embedding}, which was not loaded for it`);
        out.push({ word: embeddingWord(part.embedding), ids });
        continue;
      }
      for (const match of cleanText(part.text).matchAll(CLIP_PATTERN)) out.push({ word: match[0], ids: this.wordTokens(match[0]) });
    }
    return out;
  }

  /** BPE ids of one pre-tokenised word, cached. */
  private wordTokens(word: string): number[] {
    let ids = this.cache.get(word);
    if (!ids) {
      ids = this.bpeIds(toByteSymbols(word));
      if (this.cache.size >= BPE_CACHE_LIMIT) this.cache.clear();
      this.cache.set(word, ids);
    }
    return ids;
  }

  /** Own properties only, so words like "constructor" never reach Object.prototype. */
  private lookup(token: string): number | undefined {
    if (!Object.hasOwn(this.encoder, token)) return undefined;
    const id = this.encoder[token];
    return typeof id === 'number' && Number.isInteger(id) ? id : undefined;
  }

  /** BPE of one word given as byte symbols: repeatedly merge the adjacent pair of lowest rank. */
  private bpeIds(symbols: string): number[] {
    if (symbols.length === 0) return [];
    let word: string[] = Array.from(symbols.slice(0, -1));
    word.push(symbols.slice(-1) + '</w>');
    while (word.length > 1) {
      let best = Infinity;
      let first = '';
      let second = '';
      for (let i = 0; i < word.length - 1; i++) {
        const r = this.ranks.get(word[i] + ' ' + word[i + 1]);
        if (r !== undefined && r < best) {
          best = r;
          first = word[i]!;
          second = word[i + 1]!;
        }
      }
      if (best === Infinity) break;
      // Merge every occurrence of the chosen pair, left to right (as CLIP's loop does).
      const merged: string[] = [];
      for (let i = 0; i < word.length;) {
        if (word[i] === first && i < word.length - 1 && word[i + 1] === second) {
          merged.push(first + second);
          i += 2;
        } else {
          merged.push(word[i]!);
          i += 1;
        }
      }
      word = merged;
    }
    const ids: number[] = [];
    for (const piece of word) {
      const id = this.lookup(piece);
      if (id !== undefined) ids.push(id);
      else if (this.unk !== null) ids.push(this.unk);
      // else: a symbol the vocabulary cannot express is dropped rather than failing the prompt.
    }
    return ids;
  }
}

const utf8 = new TextEncoder();
function toByteSymbols(word: string): string {
  let s = '';
  for (const b of utf8.encode(word)) s += BYTE_SYMBOL[b];
  return s;
}

async function readRequired(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`tokenizer file missing: ${file}`, { cause: e });
    throw new Error(`cannot read tokenizer file ${file}: ${(e as Error).message}`, { cause: e });
  }
}

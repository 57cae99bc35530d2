/**
 * The graph inside a PNG: text chunks written into (and read from) PNG bytes, so a downloaded
 * result carries the graph that made it and dropping it on the editor restores that graph (as
 * ComfyUI does with its `workflow` chunk).
 *
 * Pure (bytes in, bytes out; no DOM): unit-tested in Node. Hand-written rather than taken from
 * png-chunks-extract/-encode: those are CommonJS packages unpublished since 2016, and the whole job
 * is a chunk walk, a CRC-32 and an insert before IEND.
 *
 * We write iTXt (UTF-8), not tEXt (Latin-1 only): prompts may hold any character. We read tEXt,
 * iTXt and zTXt, compressed or not, so PNGs from other tools can be inspected too.
 */

/** Keyword of the chunk that holds the graph JSON. */
export const GRAPH_KEYWORD = 'dualstyle-graph';
/** Keyword of a human-readable summary (the name Stable Diffusion tools use for their settings). */
export const PARAMETERS_KEYWORD = 'parameters';

const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];
const TEXT_TYPES = new Set(['tEXt', 'iTXt', 'zTXt']);

export class PngError extends Error {}

export interface PngChunk {
  type: string;
  /** Offset of the chunk's length field in the file. */
  offset: number;
  data: Uint8Array;
  crc: number;
}

let crcTable: Uint32Array | undefined;

/** CRC-32 as PNG defines it (ISO 3309 polynomial), over the concatenation of `parts`. */
export function crc32(...parts: Uint8Array[]): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (const bytes of parts) for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export function isPng(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && SIGNATURE.every((b, i) => bytes[i] === b);
}

/** The chunks of a PNG up to and including IEND. Throws PngError when the structure is broken. */
export function readChunks(bytes: Uint8Array): PngChunk[] {
  if (!isPng(bytes)) throw new PngError('not a PNG file');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const chunks: PngChunk[] = [];
  let pos = 8;
  while (pos + 12 <= bytes.length) {
    const length = view.getUint32(pos);
    const type = String.fromCharCode(...bytes.subarray(pos + 4, pos + 8));
    const end = pos + 12 + length;
    if (end > bytes.length) throw new PngError(`the PNG is cut short (chunk ${type} runs past the end)`);
    chunks.push({ type, offset: pos, data: bytes.subarray(pos + 8, pos + 8 + length), crc: view.getUint32(pos + 8 + length) });
    pos = end;
    if (type === 'IEND') return chunks;
  }
  throw new PngError('the PNG has no IEND chunk (the file is cut short)');
}

function chunkCrcOk(c: PngChunk): boolean {
  return crc32(new TextEncoder().encode(c.type), c.data) === c.crc;
}

function latin1(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
}

async function inflate(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as BlobPart]).stream().pipeThrough(new DecompressionStream('deflate'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** keyword → text of every tEXt/iTXt/zTXt chunk whose CRC is right (the first of a keyword wins). */
export async function readPngText(bytes: Uint8Array): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const c of readChunks(bytes)) {
    // A damaged chunk may hold half a graph: it is ignored rather than trusted.
    if (!TEXT_TYPES.has(c.type) || !chunkCrcOk(c)) continue;
    const nul = c.data.indexOf(0);
    if (nul < 1) continue;
    const keyword = latin1(c.data.subarray(0, nul));
    if (out.has(keyword)) continue;
    const rest = c.data.subarray(nul + 1);
    try {
      if (c.type === 'tEXt') {
        out.set(keyword, latin1(rest));
      } else if (c.type === 'zTXt') {
        out.set(keyword, latin1(await inflate(rest.subarray(1))));
      } else {
        // iTXt: compression flag, method, language tag \0, translated keyword \0, text.
        const compressed = rest[0] === 1;
        const langEnd = rest.indexOf(0, 2);
        const transEnd = langEnd < 0 ? -1 : rest.indexOf(0, langEnd + 1);
        if (transEnd < 0) continue;
        const body = rest.subarray(transEnd + 1);
        out.set(keyword, new TextDecoder('utf-8', { fatal: false }).decode(compressed ? await inflate(body) : body));
      }
    } catch {
      continue; // a zTXt that does not inflate: skip it like a bad CRC
    }
  }
  return out;
}

function checkKeyword(keyword: string): void {
  // PNG: 1-79 printable Latin-1 characters, no leading, trailing or double spaces.
  const ok = /^[\x20-\x7e\xa1-\xff]{1,79}$/.test(keyword) && keyword.trim() === keyword && !keyword.includes('  ');
  if (!ok) throw new PngError(`"${keyword}" cannot be a PNG text keyword`);
}

function encodeChunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  const typeBytes = new TextEncoder().encode(type);
  view.setUint32(0, data.length);
  out.set(typeBytes, 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(typeBytes, data));
  return out;
}

/** An uncompressed iTXt chunk (no language tag). */
export function itxtChunk(keyword: string, text: string): Uint8Array {
  checkKeyword(keyword);
  const key = Uint8Array.from(keyword, (ch) => ch.charCodeAt(0));
  const body = new TextEncoder().encode(text);
  // keyword \0, compression flag 0, method 0, empty language \0, empty translated keyword \0, text
  const data = new Uint8Array(key.length + 5 + body.length);
  data.set(key, 0);
  data.set(body, key.length + 5);
  return encodeChunk('iTXt', data);
}

/**
 * A copy of `png` with one iTXt chunk per entry, inserted before IEND. Text chunks that already
 * carry one of these keywords are dropped: downloading a downloaded PNG again must not leave two
 * graphs in it.
 */
export function writePngText(png: Uint8Array, entries: Record<string, string>): Uint8Array {
  const chunks = readChunks(png);
  const keywords = new Set(Object.keys(entries));
  const kept = chunks.filter((c) => {
    if (!TEXT_TYPES.has(c.type)) return true;
    const nul = c.data.indexOf(0);
    return nul < 1 || !keywords.has(latin1(c.data.subarray(0, nul)));
  });
  const added = Object.entries(entries).map(([k, v]) => itxtChunk(k, v));
  const raw = (c: PngChunk) => png.subarray(c.offset, c.offset + 12 + c.data.length);
  const parts = [png.subarray(0, 8), ...kept.slice(0, -1).map(raw), ...added, raw(kept[kept.length - 1])];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

export type PngGraphRead = { ok: true; json: string } | { ok: false; reason: 'not-png' | 'damaged' | 'no-graph'; message: string };

/** The graph JSON text a PNG carries; the caller parses and validates it like any graph file. */
export async function graphJsonFromPng(bytes: Uint8Array): Promise<PngGraphRead> {
  if (!isPng(bytes)) return { ok: false, reason: 'not-png', message: 'it is not a PNG image' };
  let text: Map<string, string>;
  try {
    text = await readPngText(bytes);
  } catch (err) {
    return { ok: false, reason: 'damaged', message: `the PNG is damaged: ${(err as Error).message}` };
  }
  const json = text.get(GRAPH_KEYWORD);
  if (json === undefined) {
    return { ok: false, reason: 'no-graph', message: 'this PNG carries no studio graph (only images downloaded as PNG from Dual Style Studio do)' };
  }
  return { ok: true, json };
}

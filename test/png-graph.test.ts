/**
 * The PNG text-chunk module of the editor (client/src/png-graph.ts), checked against independent
 * implementations: pngjs decodes the pixels (it verifies the CRCs of the chunks it parses, but skips
 * unknown ancillary chunks such as iTXt unchecked), and zlib's own CRC-32 verifies every chunk.
 */
import { crc32 as zlibCrc32, deflateSync } from 'node:zlib';
import fs from 'node:fs';
import path from 'node:path';
import { PNG } from 'pngjs';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import {
  crc32,
  GRAPH_KEYWORD,
  graphJsonFromPng,
  itxtChunk,
  PARAMETERS_KEYWORD,
  PngError,
  readChunks,
  readPngText,
  writePngText,
} from '../client/src/png-graph.ts';
import { parseGraphJson } from '../client/src/graph-io.ts';

function smallPng(width = 5, height = 3): Uint8Array {
  const png = new PNG({ width, height });
  for (let i = 0; i < png.data.length; i++) png.data[i] = (i * 37) & 0xff;
  return new Uint8Array(PNG.sync.write(png));
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  Buffer.from(data).copy(out, 8);
  out.writeUInt32BE(crc32(Buffer.from(type, 'latin1'), data), 8 + data.length);
  return out;
}

/** Inserts raw chunks before IEND (to build PNGs as other tools write them). */
function withChunks(png: Uint8Array, ...extra: Uint8Array[]): Uint8Array {
  const iend = readChunks(png).at(-1)!.offset;
  return Buffer.concat([png.subarray(0, iend), ...extra, png.subarray(iend)]);
}

/** Every chunk's stored CRC against zlib's CRC-32 of its type and data. */
function badCrcChunks(png: Uint8Array): string[] {
  const buf = Buffer.from(png);
  const bad: string[] = [];
  for (let pos = 8; pos + 12 <= buf.length;) {
    const length = buf.readUInt32BE(pos);
    const stored = buf.readUInt32BE(pos + 8 + length);
    if (zlibCrc32(buf.subarray(pos + 4, pos + 8 + length)) !== stored) bad.push(buf.toString('latin1', pos + 4, pos + 8));
    pos += 12 + length;
  }
  return bad;
}

const template = fs.readFileSync(path.join(import.meta.dirname, '..', 'graphs', 'epsilon-merge.json'), 'utf8');

describe('png-graph', () => {
  it('computes the PNG CRC-32 (check value of "123456789")', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    expect(crc32(new TextEncoder().encode('1234'), new TextEncoder().encode('56789'))).toBe(0xcbf43926);
  });

  it('round-trips a graph and a readable summary; the file stays a valid PNG with the same pixels', async () => {
    const original = smallPng();
    const graph = JSON.stringify(JSON.parse(template));
    const summary = 'Style 1: A Van Gogh-style painting — “naïve” ✓\nsteps: 100';
    const out = writePngText(original, { [GRAPH_KEYWORD]: graph, [PARAMETERS_KEYWORD]: summary });

    expect(badCrcChunks(out)).toEqual([]);
    const decoded = PNG.sync.read(Buffer.from(out));
    const before = PNG.sync.read(Buffer.from(original));
    expect(decoded.width).toBe(5);
    expect(Buffer.compare(decoded.data, before.data)).toBe(0);
    // And libvips (sharp) still reads it.
    expect((await sharp(out).metadata()).format).toBe('png');

    const types = readChunks(out).map((c) => c.type);
    expect(types.at(-1)).toBe('IEND');
    expect(types.filter((t) => t === 'iTXt')).toHaveLength(2);
    expect(types.indexOf('iTXt')).toBeGreaterThan(types.lastIndexOf('IDAT'));

    const text = await readPngText(out);
    expect(text.get(GRAPH_KEYWORD)).toBe(graph);
    expect(text.get(PARAMETERS_KEYWORD)).toBe(summary);
    const read = await graphJsonFromPng(out);
    expect(read.ok).toBe(true);
    const parsed = parseGraphJson(read.ok ? read.json : '');
    expect(parsed.ok && parsed.graph.nodes.map((n) => n.id)).toEqual(JSON.parse(template).nodes.map((n: { id: string }) => n.id));
  });

  it('writes into a PNG encoded by libvips (as the server encodes results)', async () => {
    const png = new Uint8Array(
      await sharp({ create: { width: 64, height: 32, channels: 3, background: '#36c' } })
        .png()
        .toBuffer(),
    );
    const out = writePngText(png, { [GRAPH_KEYWORD]: template });
    expect(badCrcChunks(out)).toEqual([]);
    expect((await sharp(out).stats()).channels[2].mean).toBeGreaterThan(200);
    expect(await graphJsonFromPng(out)).toEqual({ ok: true, json: template });
  });

  it('replaces the graph of a PNG written twice instead of keeping two', async () => {
    const once = writePngText(smallPng(), { [GRAPH_KEYWORD]: '{"a":1}' });
    const twice = writePngText(once, { [GRAPH_KEYWORD]: '{"a":2}' });
    expect(badCrcChunks(twice)).toEqual([]);
    expect(readChunks(twice).filter((c) => c.type === 'iTXt')).toHaveLength(1);
    expect((await readPngText(twice)).get(GRAPH_KEYWORD)).toBe('{"a":2}');
  });

  it('reads tEXt, zTXt and compressed iTXt chunks as other tools write them', async () => {
    const latin = Buffer.from(`${GRAPH_KEYWORD}\0{"x":"caf\xe9"}`, 'latin1');
    const z = Buffer.concat([Buffer.from('workflow\0\0', 'latin1'), deflateSync(Buffer.from('{"z":1}'))]);
    const itxtZ = Buffer.concat([Buffer.from('prompt\0\x01\0en\0\0', 'latin1'), deflateSync(Buffer.from('{"é":1}', 'utf8'))]);
    const png = withChunks(smallPng(), chunk('tEXt', latin), chunk('zTXt', z), chunk('iTXt', itxtZ));
    expect(badCrcChunks(png)).toEqual([]);
    const text = await readPngText(png);
    expect(text.get(GRAPH_KEYWORD)).toBe('{"x":"café"}');
    expect(text.get('workflow')).toBe('{"z":1}');
    expect(text.get('prompt')).toBe('{"é":1}');
  });

  it('ignores a text chunk whose CRC is wrong', async () => {
    const good = itxtChunk(GRAPH_KEYWORD, '{"nodes":[]}');
    const bad = Uint8Array.from(good);
    bad[bad.length - 1] ^= 0xff;
    const png = withChunks(smallPng(), bad);
    expect(badCrcChunks(png)).toEqual(['iTXt']);
    expect((await readPngText(png)).has(GRAPH_KEYWORD)).toBe(false);
    const read = await graphJsonFromPng(png);
    expect(read).toMatchObject({ ok: false, reason: 'no-graph' });
  });

  it('refuses what is not a PNG, a cut-short PNG, and a PNG without a graph', async () => {
    expect(await graphJsonFromPng(new TextEncoder().encode(template))).toMatchObject({ ok: false, reason: 'not-png' });
    const jpeg = new Uint8Array(
      await sharp({ create: { width: 4, height: 4, channels: 3, background: '#f00' } })
        .jpeg()
        .toBuffer(),
    );
    expect(await graphJsonFromPng(jpeg)).toMatchObject({ ok: false, reason: 'not-png' });
    const plain = smallPng();
    const none = await graphJsonFromPng(plain);
    expect(none).toMatchObject({ ok: false, reason: 'no-graph' });
    expect(none.ok ? '' : none.message).toMatch(/no studio graph/);
    const cut = writePngText(plain, { [GRAPH_KEYWORD]: template }).subarray(0, plain.length + 40);
    expect(await graphJsonFromPng(cut)).toMatchObject({ ok: false, reason: 'damaged' });
    expect(() => writePngText(new Uint8Array([1, 2, 3]), { a: 'b' })).toThrow(PngError);
  });

  it('refuses keywords PNG does not allow', () => {
    expect(() => itxtChunk('', 'x')).toThrow(PngError);
    expect(() => itxtChunk(' lead', 'x')).toThrow(PngError);
    expect(() => itxtChunk('a'.repeat(80), 'x')).toThrow(PngError);
    expect(() => itxtChunk('bad\0key', 'x')).toThrow(PngError);
    expect(() => itxtChunk('fine key', 'x')).not.toThrow();
  });
});

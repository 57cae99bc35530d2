/**
 * Re-merging only what a LoRA touches (server/models/convert/base-weights.ts): a LoRA-merged conversion
 * links the plain conversion's weights and writes only the tensors the LoRA changes. On tiny-sd-diffusers
 * and its LoRA: a strength change writes about the touched tensors' bytes (counted independently, as the
 * tensors whose bytes differ between the plain conversion and a full merge written without sharing), the
 * result holds the full merge's every weight byte for byte and computes what it computes, and a LoRA with
 * no strength on the text encoder writes nothing for it.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SdPipeline } from '../server/engine/sd/pipeline.ts';
import { convertToFolder, ensureConverted } from '../server/models/convert/index.ts';
import { BASE_WEIGHTS } from '../server/models/convert/base-weights.ts';
import { seededValues } from './support/numeric.ts';
import { projectRoot } from './support/pipeline-harness.ts';

const fixture = path.resolve(projectRoot, '../shared/fixtures/tiny-sd-diffusers');
const hasFixture = existsSync(path.join(fixture, 'lora/manifest.json'));
if (!hasFixture) console.warn(`lora-remerge: fixture ${fixture} not found; tests skipped`);

const GRAPHS = ['text_encoder', 'unet', 'vae_encoder', 'vae_decoder'];

/** Every initializer of a graph folder's model.onnx, by name: its bytes, wherever they are stored. */
function initializers(dir: string): Map<string, { bytes: Buffer; location: string | null }> {
  const model = onnxProto.onnx.ModelProto.decode(readFileSync(path.join(dir, 'model.onnx')));
  const out = new Map<string, { bytes: Buffer; location: string | null }>();
  const files = new Map<string, Buffer>();
  const fileAt = (location: string) => files.get(location) ?? files.set(location, readFileSync(path.join(dir, location))).get(location)!;
  for (const t of model.graph!.initializer!) {
    const ext = new Map((t.externalData ?? []).map((e) => [e.key, e.value]));
    const location = ext.get('location') ?? null;
    const bytes = location
      ? fileAt(location).subarray(Number(ext.get('offset') ?? 0), Number(ext.get('offset') ?? 0) + Number(ext.get('length')))
      : Buffer.from(t.rawData ?? new Uint8Array(0));
    out.set(t.name!, { bytes, location });
  }
  return out;
}

/** Bytes of the files under `dir` that are not the same file as one under `shared` (hard links cost nothing). */
async function bytesWritten(dir: string, shared: string): Promise<{ total: number; weights: number }> {
  const sharedInodes = new Set<number>();
  for (const g of GRAPHS) if (existsSync(path.join(shared, g, 'weights.pb'))) sharedInodes.add(statSync(path.join(shared, g, 'weights.pb')).ino);
  let total = 0;
  let weights = 0;
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const st = statSync(path.join(entry.parentPath, entry.name));
    if (sharedInodes.has(st.ino)) continue;
    total += st.size;
    if (entry.name === 'weights.pb') weights += st.size;
  }
  return { total, weights };
}

describe.skipIf(!hasFixture)('re-merging only the weights a LoRA touches', () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'dualstyle-remerge-'));
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('a strength change writes the touched tensors; the result is the full merge, byte for byte', async () => {
    const cacheRoot = path.join(tmp, 'cache');
    const file = path.join(fixture, 'lora/tiny-style.safetensors');
    const loras = (s: number, text = s) => [{ file, unet: s, text }];
    const plain = await ensureConverted(fixture, { cacheRoot });
    await ensureConverted(fixture, { cacheRoot, loras: loras(0.8) });
    const changed = await ensureConverted(fixture, { cacheRoot, loras: loras(0.5) });
    const full = await convertToFolder(fixture, path.join(tmp, 'full'), { loras: loras(0.5) });

    let touchedBytes = 0;
    let touchedCount = 0;
    for (const g of GRAPHS) {
      const [p, c, f] = [initializers(path.join(plain, g)), initializers(path.join(changed, g)), initializers(path.join(full, g))];
      expect([...c.keys()].sort(), g).toEqual([...f.keys()].sort());
      for (const [name, { bytes, location }] of f) {
        const mine = c.get(name)!;
        expect(mine.bytes.equals(bytes), `${g} ${name}`).toBe(true);
        const touched = !p.get(name)!.bytes.equals(bytes);
        if (touched) {
          touchedBytes += bytes.byteLength;
          touchedCount++;
        }
        // External untouched weights are the plain conversion's bytes, referenced; touched ones are written anew.
        if (location) expect(mine.location, `${g} ${name}`).toBe(touched ? 'weights.pb' : BASE_WEIGHTS);
      }
    }
    // Every module of the LoRA touches one weight (the fixture's manifest counts them).
    const manifest = JSON.parse(readFileSync(path.join(fixture, 'lora/manifest.json'), 'utf8')) as { unet_modules: number; text_modules: number };
    expect(touchedCount).toBe(manifest.unet_modules + manifest.text_modules);
    const written = await bytesWritten(changed, plain);
    const fullSize = (await bytesWritten(full, path.join(tmp, 'nothing'))).total;
    console.log(
      `[lora-remerge] strength change: ${written.weights} weight bytes written for ${touchedCount} touched tensors of ${touchedBytes} bytes; ` +
        `${written.total} bytes in all (graphs, configs, tokenizer) against ${fullSize} for a full conversion`,
    );
    // The touched tensors, and at most the 64-byte alignment of each.
    expect(written.weights).toBeGreaterThanOrEqual(touchedBytes);
    expect(written.weights).toBeLessThanOrEqual(touchedBytes + 64 * touchedCount);

    // It loads and computes what the full merge computes.
    const [a, b] = await Promise.all([changed, full].map((dir) => SdPipeline.load(dir, { executionProvider: 'cpu' })));
    try {
      const ehs = (await a!.encodeText('a house')).embedding;
      expect(ehs).toEqual((await b!.encodeText('a house')).embedding);
      const sample = seededValues(4 * 8 * 8, 3);
      expect(await a!.unet(sample, 1, 8, 8, 500, ehs)).toEqual(await b!.unet(sample, 1, 8, 8, 500, ehs));
    } finally {
      await a!.release();
      await b!.release();
    }
  });

  it('no strength on the text encoder: its graph references every weight, and writes none', async () => {
    const cacheRoot = path.join(tmp, 'cache-text');
    const file = path.join(fixture, 'lora/tiny-style.safetensors');
    const plain = await ensureConverted(fixture, { cacheRoot });
    const merged = await ensureConverted(fixture, { cacheRoot, loras: [{ file, unet: 0.8, text: 0 }] });
    for (const g of ['text_encoder', 'vae_encoder', 'vae_decoder']) {
      expect(existsSync(path.join(merged, g, 'weights.pb')), g).toBe(false);
      expect(statSync(path.join(merged, g, BASE_WEIGHTS)).ino).toBe(statSync(path.join(plain, g, 'weights.pb')).ino);
    }
  });
});

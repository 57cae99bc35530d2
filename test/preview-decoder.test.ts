/**
 * The optional preview decoder (`--preview-decoder DIR`, TAESD's layout): it loads from a folder with
 * taesd_decoder.onnx and refuses anything else with a message naming the layout; the samplers' frames are
 * decoded by it when given; its time budget skips frames; a decoder that fails gives way to the projection.
 */
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeContext, PreviewSource } from '../nodes/types.ts';
import { stepReporter } from '../nodes/lib/sampling.ts';
import { UserError } from '../server/engine/errors.ts';
import { BudgetedPreviewDecoder, loadPreviewDecoder, PreviewDecoder } from '../server/engine/sd/preview-decoder.ts';
import { encodePreview, latentToRgb } from '../server/executor/preview.ts';
import { writeDemoModel } from '../server/models/demo/index.ts';
import { WeightRandom } from '../server/models/demo/onnx-builder.ts';
import { buildPreviewDecoder, TAESD_ARCHITECTURE, writePreviewDecoder } from '../server/models/demo/taesd.ts';
import { loadTemplate, Runner, shrink } from './support/pipeline-harness.ts';

/** A narrow decoder in TAESD's layout (fast to build and run); the full one is checked by its size. */
const SMALL = { channels: 8, blocks: 1 };

let root: string;
let decoderDir: string;
let decoder: PreviewDecoder;
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'dualstyle-taesd-'));
  decoderDir = path.join(root, 'taesd');
  await writePreviewDecoder(decoderDir, { arch: SMALL, seed: 7 });
  decoder = await PreviewDecoder.load(decoderDir, 'cpu');
});
afterAll(async () => {
  await decoder?.release();
  await rm(root, { recursive: true, force: true });
});

const latent = (w: number, h: number) => Float32Array.from({ length: 4 * w * h }, (_, i) => Math.sin(i * 0.37));

/** A fake decoder for the budget and failure paths: takes `costMs` on the fake clock, or throws. */
function fakeDecoder(clock: { t: number }, costMs: number, fail = false) {
  const stats = { calls: 0, ms: 0 };
  return {
    stats,
    async decode(_l: Float32Array, w: number, h: number) {
      stats.calls++;
      clock.t += costMs;
      if (fail) throw new Error('decoder exploded');
      return { width: 8 * w, height: 8 * h, data: new Float32Array(3 * 64 * w * h).fill(1) };
    },
    async release() {},
  };
}

/** The part of a NodeContext stepReporter uses; frames are recorded. */
function fakeContext(previewDecoder?: BudgetedPreviewDecoder) {
  const frames: { step: number; source: PreviewSource }[] = [];
  const ctx = {
    services: { executionProvider: 'cpu', dataDir: root, readUpload: async () => null, ...(previewDecoder ? { previewDecoder } : {}) },
    progress() {},
    previewDue: () => true,
    preview: (step: number, _total: number, source: PreviewSource) => frames.push({ step, source }),
  } as unknown as NodeContext;
  return { ctx, frames };
}

describe('generated decoder in TAESD layout', () => {
  it("has TAESD's 1,222,531 decoder parameters at 64 channels and 3 blocks", () => {
    expect(buildPreviewDecoder(new WeightRandom(1), TAESD_ARCHITECTURE, { shapesOnly: true }).parameters).toBe(1_222_531);
  });
});

describe('PreviewDecoder.load', () => {
  it('decodes a scaled latent [4, h, w] into an image [3, 8h, 8w] in [0, 1], deterministically', async () => {
    const a = await decoder.decode(latent(6, 4), 6, 4);
    expect([a.width, a.height, a.data.length]).toEqual([48, 32, 3 * 48 * 32]);
    expect(Math.min(...a.data)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...a.data)).toBeLessThanOrEqual(1);
    expect(Math.max(...a.data) - Math.min(...a.data)).toBeGreaterThan(0.01); // not a constant picture
    const b = await decoder.decode(latent(6, 4), 6, 4);
    expect(b.data).toEqual(a.data);
    await expect(decoder.decode(new Float32Array(10), 6, 4)).rejects.toThrow(/4×4×6 latent has 96 values, got 10/);
  });

  it('refuses a folder without taesd_decoder.onnx, naming the file and the layout', async () => {
    const empty = path.join(root, 'empty');
    await mkdir(empty);
    const err = await PreviewDecoder.load(empty, 'cpu').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toContain(path.join(empty, 'taesd_decoder.onnx'));
    expect((err as Error).message).toMatch(/not a preview decoder folder.*scaled latent \[1, 4, h, w\].*RGB \[1, 3, 8h, 8w\]/);
  });

  it('refuses a model of another layout (a text encoder under that name), listing its inputs', async () => {
    const model = path.join(root, 'demo');
    await writeDemoModel(model);
    const wrong = path.join(root, 'wrong');
    await mkdir(wrong);
    await copyFile(path.join(model, 'text_encoder/model.onnx'), path.join(wrong, 'taesd_decoder.onnx'));
    const err = await PreviewDecoder.load(wrong, 'cpu').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(/does not have the preview decoder layout \(taesd_decoder\.onnx taking/);
    expect((err as Error).message).toMatch(/its inputs are input_ids int(32|64) \[/);
  });

  it('refuses a file that is not an ONNX model with a UserError naming it', async () => {
    const junk = path.join(root, 'junk');
    await mkdir(junk);
    await writeFile(path.join(junk, 'taesd_decoder.onnx'), 'not a model');
    await expect(PreviewDecoder.load(junk, 'cpu')).rejects.toThrow(new RegExp(`cannot load ${path.join(junk, 'taesd_decoder.onnx').replace(/[.]/g, '\\.')}`));
  });
});

describe('previews with a decoder', () => {
  it('the samplers hand their frames to the decoder, and encodePreview sends its picture, not the projection', async () => {
    const budgeted = await loadPreviewDecoder(decoderDir, 'cpu');
    try {
      const runner = await Runner.create({ previewDecoder: budgeted });
      await runner.run(shrink(await loadTemplate('epsilon-merge'), 'demo', 8, 2), { previewIntervalMs: 0 });
      const previews = runner.eventsOf('node:preview', 'eps_merge') as { source: PreviewSource }[];
      expect(previews.length).toBeGreaterThan(0);
      const source = previews[0]!.source;
      expect(source.kind === 'latent' && source.decoder).toBe(budgeted);
      const frame = await encodePreview(source);
      expect(budgeted.decoder.stats.calls).toBe(1);
      // The frame is the decoder's picture (8× the latent), byte for byte up to rounding.
      const image = await decoder.decode(source.data, source.width, source.height);
      const { data, info } = await sharp(frame.data).raw().toBuffer({ resolveWithObject: true });
      expect([info.width, info.height]).toEqual([image.width, image.height]);
      let worst = 0;
      for (let i = 0; i < image.width * image.height; i++) {
        for (let c = 0; c < 3; c++) worst = Math.max(worst, Math.abs(data[i * info.channels + c]! - image.data[c * image.width * image.height + i]! * 255));
      }
      expect(worst).toBeLessThanOrEqual(1);
      // The projection of the same latent is another picture.
      const projected = latentToRgb(source.data, source.width, source.height);
      expect(Array.from(data.subarray(0, 3))).not.toEqual(Array.from(projected.subarray(0, 3)));
    } finally {
      await budgeted.release();
    }
  });

  it('without a decoder the frames are plain latents (projected)', () => {
    const { ctx, frames } = fakeContext();
    stepReporter(ctx, 2, 2)(1, 3, latent(2, 2));
    expect(frames).toHaveLength(1);
    expect(frames[0]!.source).not.toHaveProperty('decoder');
  });
});

describe('time budget', () => {
  it('after a decode of d ms, the next is due (1/share − 1)·d ms after it ended; none while one runs', async () => {
    const clock = { t: 0 };
    const budgeted = new BudgetedPreviewDecoder(fakeDecoder(clock, 10), { share: 0.05, now: () => clock.t });
    expect(budgeted.due()).toBe(true);
    const pending = budgeted.decode(latent(1, 1), 1, 1);
    expect(budgeted.due()).toBe(false); // busy
    await pending;
    // 10 ms at 5%: 190 ms of other work first.
    clock.t += 189;
    expect(budgeted.due()).toBe(false);
    clock.t += 1;
    expect(budgeted.due()).toBe(true);
  });

  it('the samplers skip frames the decoder has no time for, so decoding stays within its share of the run', async () => {
    const clock = { t: 0 };
    const fake = fakeDecoder(clock, 20);
    const budgeted = new BudgetedPreviewDecoder(fake, { share: 0.04, now: () => clock.t });
    const { ctx, frames } = fakeContext(budgeted);
    const report = stepReporter(ctx, 2, 2);
    // 200 steps of 25 ms each; every frame offered is encoded at once (as job-execution does).
    for (let step = 1; step <= 200; step++) {
      clock.t += 25;
      const before = frames.length;
      report(step, 200, latent(2, 2));
      if (frames.length > before) await encodePreview(frames.at(-1)!.source);
    }
    const decodeMs = fake.stats.calls * 20;
    expect(fake.stats.calls).toBeGreaterThan(5);
    expect(fake.stats.calls).toBe(frames.length); // every frame sent was decoded; skipped ones were not sent
    expect(frames.length).toBeLessThan(200 / 10);
    expect(decodeMs / clock.t).toBeLessThanOrEqual(0.04 + 1e-9);
  });
});

describe('a failing decoder', () => {
  it('gives way to the projection: that frame is projected, later ones carry no decoder, the failure is reported once', async () => {
    const clock = { t: 0 };
    const failures: string[] = [];
    const budgeted = new BudgetedPreviewDecoder(fakeDecoder(clock, 1, true), { share: 1, now: () => clock.t, onFailure: (e) => failures.push(e.message) });
    const { ctx, frames } = fakeContext(budgeted);
    const report = stepReporter(ctx, 4, 4);
    const x0 = latent(4, 4);
    report(1, 3, x0);
    expect(frames[0]!.source).toHaveProperty('decoder', budgeted);
    const frame = await encodePreview(frames[0]!.source);
    const projected = await encodePreview({ kind: 'latent', data: x0, width: 4, height: 4 });
    expect(Buffer.from(frame.data).equals(Buffer.from(projected.data))).toBe(true);
    expect(budgeted.usable).toBe(false);
    expect(budgeted.failure?.message).toBe('decoder exploded');
    report(2, 3, x0);
    report(3, 3, x0);
    expect(frames).toHaveLength(3);
    expect(frames.slice(1).every((f) => !('decoder' in f.source))).toBe(true);
    expect(failures).toEqual(['decoder exploded']);
  });
});

/**
 * Conformance to the Python reference stack on ../shared/fixtures/tiny-sd: every case of the
 * harness, plus CycleDiffusion's defining property (decoding the code with the encoder's prompt and
 * guidance gives x0 back) on fresh seeded noise and on a non-square crop.
 */
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, symlink, writeFile, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FixtureError, runConformance, tolerance } from '../server/conformance/harness.ts';
import { decode, invert } from '../server/engine/diffusion/cycle.ts';
import { singlePrompt } from '../server/engine/diffusion/guidance.ts';
import { seededNoise } from '../server/engine/diffusion/noise.ts';
import { readNpyFloat32 } from '../server/conformance/npy.ts';
import { SdPipeline } from '../server/engine/sd/pipeline.ts';
import { maxAbsDiff } from './support/numeric.ts';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fixture = path.resolve(projectRoot, '../shared/fixtures/tiny-sd');
const hasFixture = existsSync(path.join(fixture, 'reference/manifest.json'));
if (!hasFixture) console.warn(`conformance: fixture ${fixture} not found; conformance tests skipped`);

describe.skipIf(!hasFixture)('conformance harness on tiny-sd', () => {
  it('passes every case of the manifest', async () => {
    const lines: string[] = [];
    const r = await runConformance(fixture, { log: (l) => lines.push(l), executionProvider: 'cpu' });
    const failures = r.cases.filter((c) => c.status === 'fail');
    expect(failures, lines.join('\n')).toEqual([]);
    const names = new Set(r.cases.filter((c) => c.pass).map((c) => c.name));
    for (const n of [
      'tokenizer_0',
      'text_uncond',
      'text_c2',
      'schedule',
      'mask_linear',
      'mask_logistic',
      'unet_out_t500',
      'x0',
      'cycle_z',
      'recon_latent',
      'recon_image',
      'epsmerge_linear_latent',
      'epsmerge_logistic_image',
      'single_c1_latent',
      'single_c2_image',
      'pixelmerge_linear_image',
      'pixelmerge_logistic_image',
      'attnmerge_out_t500_ones',
      'attnmerge_out_t500_zeros',
      'attnmerge_out_t500_linear',
      'attnmerge_out_t500_logistic',
      'attnmerge_linear_latent',
      'attnmerge_linear_image',
      'attnmerge_logistic_latent',
      'attnmerge_logistic_image',
      'region_negative_linear_latent',
      'region_base_linear_latent',
      'region_window_linear_latent',
    ]) {
      expect(names.has(n), `case ${n} ran and passed`).toBe(true);
    }
    for (const c of r.cases.filter((c) => c.pass && c.tol > 0)) expect(c.maxErr).toBeLessThanOrEqual(c.tol);
    expect(lines.some((l) => /^PASS\s+unet_out_t500\s+max\|err\| \d\.\de-\d\d\s+\(tol /.test(l))).toBe(true);
    expect(r.failed).toBe(0);
  });

  it('fp16: the UNet converted at load passes every case within the fp16 tolerances (tolerance.ts)', async () => {
    const lines: string[] = [];
    const r = await runConformance(fixture, { log: (l) => lines.push(l), executionProvider: 'cpu', fp16: true });
    expect(lines.join('\n')).toMatch(/converted to fp16 at load/);
    expect(
      r.cases.filter((c) => c.status === 'fail'),
      lines.join('\n'),
    ).toEqual([]);
    const byName = new Map(r.cases.map((c) => [c.name, c]));
    // The time embedding in fp32: one UNet call within a tenth of its fp16 tolerance (0.15 with it in fp16).
    expect(byName.get('unet_out_t500')!.maxErr).toBeLessThan(0.1 * byName.get('unet_out_t500')!.tol);
    // The images' tolerance is what the decoder makes of the latent tolerance: at least the fp16 one.
    for (const c of r.cases.filter((c) => c.name.endsWith('_image') && !c.name.startsWith('pixelmerge'))) expect(c.tol).toBeGreaterThan(16 * 1e-3);
  });

  describe('with a tampered manifest', () => {
    let dir: string;
    beforeAll(async () => {
      // Same model (symlinked), reference/ with a manifest whose decoder guidance is wrong.
      dir = await mkdtemp(path.join(os.tmpdir(), 'dss-fixture-'));
      for (const e of await readdir(fixture)) {
        if (e !== 'reference') await symlink(path.join(fixture, e), path.join(dir, e));
      }
      await cp(path.join(fixture, 'reference'), path.join(dir, 'reference'), { recursive: true });
      const m = JSON.parse(await readFile(path.join(fixture, 'reference/manifest.json'), 'utf8'));
      m.decoder_guidance = m.decoder_guidance + 2;
      await writeFile(path.join(dir, 'reference/manifest.json'), JSON.stringify(m));
    });
    afterAll(async () => {
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('fails exactly the cases that depend on the changed setting', async () => {
      const r = await runConformance(dir, { log: () => undefined, executionProvider: 'cpu' });
      const failed = r.cases
        .filter((c) => c.status === 'fail')
        .map((c) => c.name)
        .sort();
      expect(failed).toEqual([
        'attnmerge_linear_image',
        'attnmerge_linear_latent',
        'attnmerge_logistic_image',
        'attnmerge_logistic_latent',
        'epsmerge_linear_image',
        'epsmerge_linear_latent',
        'epsmerge_logistic_image',
        'epsmerge_logistic_latent',
        'region_base_linear_latent',
        'region_negative_linear_latent',
        'region_window_linear_latent',
        'single_c1_image',
        'single_c1_latent',
        'single_c2_image',
        'single_c2_latent',
      ]);
      expect(r.cases.find((c) => c.name === 'recon_latent')?.pass).toBe(true);
      expect(r.cases.find((c) => c.name === 'attnmerge_out_t500_linear')?.pass).toBe(true);
    });
  });

  it('refuses a folder without a manifest', async () => {
    await expect(runConformance(path.join(fixture, 'unet'), { log: () => undefined })).rejects.toThrow(FixtureError);
    await expect(runConformance('/no/such/fixture', { log: () => undefined })).rejects.toThrow(/fixture folder not found/);
  });
});

describe.skipIf(!hasFixture)('CycleDiffusion reconstruction', () => {
  let pipe: SdPipeline;
  let manifest: { seed: number; steps: number; skip: number; eta: number; encoder_guidance: number; prompts: Record<string, string> };
  beforeAll(async () => {
    pipe = await SdPipeline.load(fixture, { executionProvider: 'cpu' });
    manifest = JSON.parse(await readFile(path.join(fixture, 'reference/manifest.json'), 'utf8'));
  });
  afterAll(async () => {
    await pipe?.release();
  });

  it('decode(invert(x0)) with the source prompt and guidance 1 reproduces x0', async () => {
    const image = await readNpyFloat32(path.join(fixture, 'reference/image.npy'));
    const [, , H, W] = image.shape as [number, number, number, number];
    const f = pipe.info.vaeDownsample;
    const x0 = await pipe.vaeEncode({ width: W, height: H, data: image.data });
    const src = (await pipe.encodeText(manifest.prompts.source!)).embedding;
    const steps: number[] = [];
    const code = await invert(pipe, x0, W / f, H / f, {
      source: src,
      guidance: 1,
      steps: manifest.steps,
      skip: manifest.skip,
      eta: manifest.eta,
      noise: seededNoise(manifest.seed),
      onStep: (i) => steps.push(i),
    });
    const R = manifest.steps - manifest.skip;
    expect(code.z.length).toBe(R + 1);
    expect(steps).toEqual(Array.from({ length: R }, (_, i) => i + 1));
    const out = await decode(pipe, code, singlePrompt(src, 1));
    expect(maxAbsDiff(out, x0)).toBeLessThanOrEqual(tolerance(x0));
    // Not vacuous: another prompt with strong guidance moves away from x0.
    const other = (await pipe.encodeText(manifest.prompts.style2!)).embedding;
    const styled = await decode(pipe, code, singlePrompt(other, 7.5));
    expect(maxAbsDiff(styled, x0)).toBeGreaterThan(10 * tolerance(x0));
  });

  it('reconstructs a non-square crop with other steps, skip and guidance', async () => {
    const image = await readNpyFloat32(path.join(fixture, 'reference/image.npy'));
    const [, , H, W] = image.shape as [number, number, number, number];
    const f = pipe.info.vaeDownsample;
    // Non-square: the image beside its mirror image, twice as wide.
    const w = 2 * W;
    const h = H;
    const crop = new Float32Array(3 * w * h);
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < W; x++) {
          const v = image.data[c * W * H + y * W + x]!;
          crop[c * w * h + y * w + x] = v;
          crop[c * w * h + y * w + (w - 1 - x)] = v;
        }
      }
    }
    const x0 = await pipe.vaeEncode({ width: w, height: h, data: crop });
    const src = (await pipe.encodeText(manifest.prompts.source!)).embedding;
    const rule = singlePrompt(src, 3);
    const code = await invert(pipe, x0, w / f, h / f, { source: src, guidance: 3, steps: 10, skip: 3, eta: 0.3, noise: seededNoise(123) });
    expect(code.width).toBe(w / f);
    expect(code.height).toBe(h / f);
    const out = await decode(pipe, code, rule);
    expect(maxAbsDiff(out, x0)).toBeLessThanOrEqual(tolerance(x0));
    // The same seed gives the same code; another seed a different one.
    const again = await invert(pipe, x0, w / f, h / f, { source: src, guidance: 3, steps: 10, skip: 3, eta: 0.3, noise: seededNoise(123) });
    expect(Array.from(again.z[4]!)).toEqual(Array.from(code.z[4]!));
    const other = await invert(pipe, x0, w / f, h / f, { source: src, guidance: 3, steps: 10, skip: 3, eta: 0.3, noise: seededNoise(124) });
    expect(maxAbsDiff(other.z[0]!, code.z[0]!)).toBeGreaterThan(0.1);
  });
});

/**
 * The conformance harness on a fixture of another shape than tiny-sd, built in a temporary folder from a
 * demo-model export (test/support/reference-fixture.ts: references from raw onnxruntime calls and the
 * README's formulas written out again, not from the engine): an 80×48 image (a 10×6 latent, not a
 * multiple of 8, with odd level grids), S = 15 steps (15 does not divide 1000: schedule.json has 16
 * entries), skip 5, η 0.3, encoder guidance 1.5, decoder guidance 10, mask sharpness 12, SDPA attention,
 * int64 ids and timesteps, an 8-channel VAE encoder, and no unet/config.json.
 */
import { cp, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runConformance } from '../server/conformance/harness.ts';
import { writeDemoModel } from '../server/models/demo/index.ts';
import { writeReferenceFixture, type FixtureSettings } from './support/reference-fixture.ts';

const SETTINGS: FixtureSettings = {
  width: 80,
  height: 48,
  steps: 15,
  skip: 5,
  eta: 0.3,
  encoderGuidance: 1.5,
  decoderGuidance: 10,
  sharpness: 12,
  seed: 11,
  prompts: { uncond: '', source: 'a photo of a house', style1: 'an oil painting', style2: 'a pencil sketch of blocks' },
};

let tmp: string;
let fixture: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'dss-fixture-kind-'));
  fixture = path.join(tmp, 'fixture');
  await writeDemoModel(fixture, { attention: 'sdpa', upsample: 'skip', timestep: 'int64', inputIds: 'int64', vaeEncoder: 'mean-logvar', unetConfig: false });
  await writeReferenceFixture(fixture, SETTINGS);
});
afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('conformance harness on a fixture of another shape', () => {
  it("runs every stage's cases and passes them", async () => {
    const lines: string[] = [];
    const r = await runConformance(fixture, { log: (l) => lines.push(l), executionProvider: 'cpu' });
    expect(
      r.cases.filter((c) => !c.pass),
      lines.join('\n'),
    ).toEqual([]);
    expect(r.cases.map((c) => c.name).sort()).toEqual(
      [
        'vae_scaling_factor',
        'tokenizer_0',
        'tokenizer_1',
        'tokenizer_2',
        'tokenizer_3',
        'text_uncond',
        'text_src',
        'text_c1',
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
        'epsmerge_linear_image',
        'epsmerge_logistic_latent',
        'epsmerge_logistic_image',
        'single_c1_latent',
        'single_c1_image',
        'single_c2_latent',
        'single_c2_image',
        'pixelmerge_linear_image',
        'pixelmerge_logistic_image',
        'attnmerge_out_t500_ones',
        'attnmerge_out_t500_zeros',
      ].sort(),
    );
    // schedule.json lists LDM's range(0, 1000, 66) + 1: one entry more than S; the harness uses the first R.
    const schedule = JSON.parse(await readFile(path.join(fixture, 'reference/schedule.json'), 'utf8'));
    expect(schedule.timesteps).toHaveLength(16);
  });

  it('with a tampered manifest (mask sharpness), fails exactly the cases that depend on it', async () => {
    const dir = path.join(tmp, 'tampered');
    await cp(path.join(fixture, 'reference'), path.join(dir, 'reference'), { recursive: true });
    for (const e of await readdir(fixture)) if (e !== 'reference') await symlink(path.join(fixture, e), path.join(dir, e));
    const m = JSON.parse(await readFile(path.join(dir, 'reference/manifest.json'), 'utf8'));
    await writeFile(path.join(dir, 'reference/manifest.json'), JSON.stringify({ ...m, mask_sharpness: 1 }));
    const r = await runConformance(dir, { log: () => undefined, executionProvider: 'cpu' });
    expect(
      r.cases
        .filter((c) => !c.pass)
        .map((c) => c.name)
        .sort(),
    ).toEqual(['epsmerge_logistic_image', 'epsmerge_logistic_latent', 'mask_logistic', 'pixelmerge_logistic_image']);
  });
});

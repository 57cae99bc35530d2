/**
 * Conformance of the metrics to ../shared/fixtures/metrics (every value within metrics.json's
 * tolerances, model-level CLIP within 1e-4), and that the harness reads its fixture rather than
 * knowing the answers: a copy with resized images fails the value cases, and a fixture of the same
 * format with other sizes, aspects and prompts (pictures from test/support/metrics-other.ts, values
 * in test/fixtures/metrics-other by the Python reference stack: scripts/metrics-reference.py) passes.
 */
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { runConformance } from '../server/conformance/harness.ts';
import { encodeNpy, readNpyFloat32 } from '../server/conformance/npy.ts';
import { main as conformanceCli } from '../server/cli/conformance.ts';
import { writeMetricsOtherPictures } from './support/metrics-other.ts';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fixture = path.resolve(projectRoot, '../shared/fixtures/metrics');
const hasFixture = existsSync(path.join(fixture, 'reference/metrics.json'));
if (!hasFixture) console.warn(`metrics conformance: fixture ${fixture} not found; tests skipped`);

describe.skipIf(!hasFixture)('metrics conformance on ../shared/fixtures/metrics', () => {
  const tmp: string[] = [];
  const scratch = async () => {
    const d = await mkdtemp(path.join(os.tmpdir(), 'dss-metrics-'));
    tmp.push(d);
    return d;
  };
  afterAll(async () => {
    for (const d of tmp) await rm(d, { recursive: true, force: true });
  });

  it("passes every case within the file's tolerances", async () => {
    const lines: string[] = [];
    const r = await runConformance(fixture, { log: (l) => lines.push(l), executionProvider: 'cpu' });
    expect(
      r.cases.filter((c) => !c.pass),
      lines.join('\n'),
    ).toEqual([]);
    const spec = JSON.parse(await readFile(path.join(fixture, 'reference/metrics.json'), 'utf8')) as { cases: { generated: string }[] };
    const names = new Set(r.cases.map((c) => c.name));
    for (const c of spec.cases) {
      for (const m of ['l2', 'psnr', 'ssim', 'tv', 'clip', 'clip_left', 'clip_right', 'dclip', 'dclip_left', 'dclip_right'])
        expect(names.has(`${c.generated}:${m}`)).toBe(true);
    }
    const model = r.cases.filter((c) => c.name.startsWith('clip_') && c.name.includes('embeds'));
    expect(model.map((c) => c.name).sort()).toEqual(['clip_image_embeds_original', 'clip_text_embeds_style1']);
    for (const c of model) expect(c.tol).toBe(1e-4);
    expect(r.cases.find((c) => c.name === 'epsmerge_linear_image:clip')!.tol).toBe(0.02);
    expect(r.cases.find((c) => c.name === 'epsmerge_linear_image:ssim')!.tol).toBe(1e-4);
  });

  it('runs through `npm run conformance` (the CLI) with a zero exit', async () => {
    const log = console.log;
    const lines: string[] = [];
    console.log = (l: string) => void lines.push(l);
    try {
      expect(await conformanceCli([fixture, '--ep', 'cpu'])).toBe(0);
    } finally {
      console.log = log;
    }
    expect(lines.at(-1)).toMatch(/^OK: \d+ passed, 0 failed/);
  });

  it('fails the value cases of images that were resized (the values are computed, not known)', async () => {
    const dir = await scratch();
    await symlink(path.join(fixture, 'clip'), path.join(dir, 'clip'));
    await cp(path.join(fixture, 'reference'), path.join(dir, 'reference'), { recursive: true });
    // Upscale the original and one generated image 2× (nearest): same content, another size.
    for (const name of ['original', 'epsmerge_linear_image']) {
      const a = await readNpyFloat32(path.join(fixture, 'reference', `${name}.npy`));
      const [H, W] = a.shape as [number, number];
      const big = new Float32Array(4 * a.data.length);
      for (let y = 0; y < 2 * H; y++)
        for (let x = 0; x < 2 * W; x++) for (let c = 0; c < 3; c++) big[(y * 2 * W + x) * 3 + c] = a.data[((y >> 1) * W + (x >> 1)) * 3 + c]!;
      await writeFile(path.join(dir, 'reference', `${name}.npy`), encodeNpy(big, [2 * H, 2 * W, 3]));
    }
    const r = await runConformance(dir, { log: () => undefined, executionProvider: 'cpu' });
    const failed = new Set(r.cases.filter((c) => !c.pass).map((c) => c.name));
    // L2 doubles with 4× the pixels; TV and SSIM change with the scale; the mean (PSNR) does not.
    for (const m of ['l2', 'tv', 'ssim']) expect(failed.has(`epsmerge_linear_image:${m}`), m).toBe(true);
    expect(failed.has('epsmerge_linear_image:psnr')).toBe(false);
    // The other generated images are now a different size from the original: every case of theirs fails, naming the sizes.
    const other = r.cases.find((c) => c.name === 'recon_image:l2')!;
    expect(other.pass).toBe(false);
    expect(other.detail).toMatch(/differ in size: 64×64 and 128×128/);
    // The model level does not depend on the images.
    expect(r.cases.find((c) => c.name === 'clip_image_embeds_original')!.pass).toBe(true);
    // Preprocessing the 2× original gives other pixel values than the reference of the 64×64 one.
    expect(r.cases.find((c) => c.name === 'clip_pixel_values_original')!.pass).toBe(false);
  });

  it('passes a fixture of the same format with other sizes, aspects and prompts', async () => {
    const dir = await scratch();
    await symlink(path.join(fixture, 'clip'), path.join(dir, 'clip'));
    // Pictures made now (test/support/metrics-other.ts); their values from the Python reference stack.
    await writeMetricsOtherPictures(path.join(dir, 'reference'));
    await cp(path.join(projectRoot, 'test/fixtures/metrics-other/reference/metrics.json'), path.join(dir, 'reference/metrics.json'));
    const lines: string[] = [];
    const r = await runConformance(dir, { log: (l) => lines.push(l), executionProvider: 'cpu' });
    expect(
      r.cases.filter((c) => !c.pass),
      lines.join('\n'),
    ).toEqual([]);
    const names = r.cases.map((c) => c.name);
    // 2 originals (48×26, 24×40) × 2 generated × 11 metrics, tv_seam included.
    expect(names.filter((n) => n.includes(':'))).toHaveLength(44);
    expect(names).toContain('tall_gen1:tv_seam');
    expect(names).toContain('wide_gen0:dclip_right');
  });

  it('refuses a metrics.json that is not of the format, naming the fields', async () => {
    const dir = await scratch();
    await symlink(path.join(fixture, 'clip'), path.join(dir, 'clip'));
    await cp(path.join(fixture, 'reference'), path.join(dir, 'reference'), { recursive: true });
    await writeFile(path.join(dir, 'reference/metrics.json'), JSON.stringify({ prompts: { source: 'x' }, cases: [{}] }));
    await expect(runConformance(dir, { log: () => undefined })).rejects.toThrow(
      /prompts\.style1_left must be a string.*cases must be a list.*tolerance must be an object/,
    );
  });
});

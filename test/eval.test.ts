/**
 * `npm run eval` end to end: 3 images (three sizes and aspects) × 2 style pairs × 4 methods × 2 masks
 * with the demo model at 64 px and the fixture's tiny CLIP. The run is killed with SIGKILL mid-way,
 * started again, and must finish without redoing what was finished (its log, and the untouched files
 * of finished items, say so); one inversion per image; then report.html is opened in Chromium and its
 * tables and pictures must render (screenshot in test-artifacts/eval/).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imageToRgbBytes } from '../server/engine/images/pixels.ts';
import { sampleImage } from '../server/engine/images/sample.ts';
import type { EvalResults } from '../server/eval/run.ts';
import { CHROMIUM, launchChromium, projectRoot } from './support/e2e-browser.ts';

const clip = path.resolve(projectRoot, '../shared/fixtures/metrics/clip');
const hasClip = existsSync(clip);
if (!hasClip) console.warn(`eval: ${clip} not found; the eval end-to-end test is skipped`);
const artifacts = path.join(projectRoot, 'test-artifacts/eval');

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the eval CLI; `killAfter` items finished (as its progress lines say), it is killed with SIGKILL. */
function runEval(args: string[], killAfter?: number): Promise<Run> {
  return new Promise((resolve) => {
    // node itself with tsx's loader (the tsx binary would run the CLI in a child that SIGKILL does not reach).
    const child = spawn(process.execPath, ['--import', 'tsx', 'server/cli/eval.ts', ...args], { cwd: projectRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => {
      stderr += d;
      const m = [...stderr.matchAll(/^\[(\d+)\/48\]/gm)].at(-1);
      if (killAfter !== undefined && m && Number(m[1]) >= killAfter) child.kill('SIGKILL');
    });
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

describe.skipIf(!hasClip)('npm run eval', () => {
  let dir: string;
  let out: string;
  const args = () => [
    '--images',
    path.join(dir, 'images'),
    '--styles',
    'van-gogh/minecraft,mosaic/warhol',
    '--methods',
    'epsilon,attention,pixel,single',
    '--masks',
    'linear,logistic',
    '--model',
    'demo',
    '--clip',
    clip,
    '--out',
    out,
    '--size',
    '64',
    '--steps',
    '6',
    '--skip',
    '2',
    '--ep',
    'cpu',
  ];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'dss-eval-'));
    out = path.join(dir, 'out');
    const images = path.join(dir, 'images');
    await (await import('node:fs/promises')).mkdir(images);
    for (const [i, [w, h]] of [
      [96, 72],
      [64, 64],
      [72, 128],
    ].entries()) {
      await sharp(imageToRgbBytes(sampleImage(w!, h!)), { raw: { width: w!, height: h!, channels: 3 } })
        .png()
        .toFile(path.join(images, `img${i}.png`));
    }
    // CycleDiffusion's format, its paths relative to its repository.
    await writeFile(
      path.join(images, 'translate_text.json'),
      JSON.stringify([
        { img_path: './data/prompt2prompt/img0.png', encode_text: 'A photo of a house.', decode_text: 'unused' },
        { img_path: 'img1.png', encode_text: 'a photo of a cat' },
        { img_path: 'img2.png', encode_text: 'an image of a tower' },
      ]),
    );
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('resumes after kill -9 without redoing finished items, and writes the tables', { timeout: 240_000 }, async () => {
    const first = await runEval(args(), 12);
    expect(first.signal).toBe('SIGKILL');
    const partial = JSON.parse(await readFile(path.join(out, 'results.json'), 'utf8')) as EvalResults;
    const finished = Object.values(partial.items);
    expect(finished.length).toBeGreaterThanOrEqual(12);
    expect(finished.length).toBeLessThan(48);
    const mtimes = new Map<string, number>();
    for (const i of finished) mtimes.set(i.file, (await stat(path.join(out, i.file))).mtimeMs);
    const logBefore = (await readFile(path.join(out, 'eval.log'), 'utf8')).length;

    const second = await runEval(args());
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toContain(`48 items, ${finished.length} already done`);
    const log = (await readFile(path.join(out, 'eval.log'), 'utf8')).slice(logBefore).split('\n');
    const skipped = log.filter((l) => / skip /.test(l)).map((l) => / skip (\S+)/.exec(l)![1]);
    const computed = log.filter((l) => / computed /.test(l)).map((l) => / computed (\S+)/.exec(l)![1]);
    expect(skipped.sort()).toEqual(finished.map((i) => i.key).sort());
    expect(computed).toHaveLength(48 - finished.length);
    expect(computed.filter((k) => skipped.includes(k))).toEqual([]);
    for (const [file, mtime] of mtimes) expect((await stat(path.join(out, file))).mtimeMs, file).toBe(mtime);
    // One inversion per image: every other computed item found it in the cache.
    const inverted = log.filter((l) => / computed /.test(l) && !l.includes('inversion from cache'));
    expect(inverted.length).toBeLessThanOrEqual(3);

    const results = JSON.parse(await readFile(path.join(out, 'results.json'), 'utf8')) as EvalResults;
    const items = Object.values(results.items);
    expect(items).toHaveLength(48);
    // Every image fitted by Load Image to max side 64 and to the demo model's sizes (any multiple of 8): 96×72, 64×64 and 72×128.
    expect(new Set(items.map((i) => `${i.width}x${i.height}`))).toEqual(new Set(['64x48', '64x64', '32x64']));
    for (const i of items) {
      for (const m of ['l2', 'psnr', 'ssim', 'tv', 'tv_seam', 'clip', 'clip_left', 'clip_right', 'dclip', 'dclip_left', 'dclip_right'])
        expect(Number.isFinite(i.metrics[m as 'l2']), `${i.key} ${m}`).toBe(true);
    }
    // The single-prompt baseline does not depend on the mask: same picture, same numbers under both.
    const single = (mask: string) => items.find((i) => i.image === 'img1' && i.pair === 'vangogh/minecraft' && i.mask === mask && i.method === 'single')!;
    expect(single('linear').metrics).toEqual(single('logistic').metrics);
    const csv = (await readFile(path.join(out, 'results.csv'), 'utf8')).trim().split('\n');
    expect(csv).toHaveLength(49);
    expect(csv[0]).toMatch(/^image,style_pair,mask,method,width,height,l2,lpips,psnr,ssim,tv,tv_seam,tv_border,tv_border1,tv_border2,clip,/);
    // Per region, per method: CLIP against its own style, bleed against the other, seam TV along its borders.
    expect(csv[0]).toMatch(/,clip_region1,clip_region2,clip_bleed,clip_bleed1,clip_bleed2,/);
    expect(second.stdout).toMatch(/Mask linear \(mean ± std over 6 image × style pairs\)/);
    expect(second.stdout).toMatch(/PSNR ↑ +\d+\.\d+ ± \d+\.\d+/);
    // A run of other settings into the same folder is refused rather than mixed in.
    const other = await runEval(args().map((a, i, all) => (all[i - 1] === '--steps' ? '8' : a)));
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/holds results of other settings/);
  });

  it.skipIf(!existsSync(CHROMIUM))('report.html opens in Chromium with its tables and pictures', { timeout: 60_000 }, async () => {
    expect(existsSync(path.join(out, 'report.html'))).toBe(true);
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 1200, height: 1400 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(pathToFileURL(path.join(out, 'report.html')).href);
      const tables = page.locator('table.metrics');
      expect(await tables.count()).toBe(2);
      expect(await tables.first().locator('thead th').allTextContents()).toEqual(['Metric', 'Epsilon', 'Cross Attn', 'Pixel', '2 prompts (one)']);
      // 5 pixel metrics, 3 border TVs, 6 CLIP scores, CLIP and bleed of the regions (all, 1, 2).
      expect(await tables.first().locator('tbody tr:not(.group)').count()).toBe(20);
      expect(await tables.first().locator('td.best').count()).toBe(20);
      expect(await tables.first().locator('tbody tr', { hasText: 'Bleed 2' }).count()).toBe(1);
      // 3 images × 2 pairs × 2 masks rows of original, mask and 4 methods.
      expect(await page.locator('section.item').count()).toBe(12);
      const imgs = page.locator('section.item img');
      expect(await imgs.count()).toBe(12 * 6);
      // Every picture of a row (original, mask, methods) has the size the graph gave that image.
      await expect
        .poll(() =>
          imgs.evaluateAll((list) =>
            list.every((i) => (i as HTMLImageElement).complete && (i as HTMLImageElement).naturalWidth === Number(i.getAttribute('width'))),
          ),
        )
        .toBe(true);
      expect(new Set(await imgs.evaluateAll((list) => list.map((i) => (i as HTMLImageElement).naturalWidth)))).toEqual(new Set([64, 32]));
      await (await import('node:fs/promises')).mkdir(artifacts, { recursive: true });
      await page.screenshot({ path: path.join(artifacts, 'report.png'), fullPage: false });
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});

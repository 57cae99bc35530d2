/**
 * Browser end-to-end: the words mask in the real studio. The words-mask template runs on the demo model
 * at a small size; the Mask node shows the regions of the chosen word; another word changes them; a
 * stroke painted over the derived regions corrects them (the stroke's style where it went, the words'
 * regions elsewhere); the mask is saved as a preset and applied to the Mask node of another graph.
 * Screenshots go to test-artifacts/ (words-*.png).
 */
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { STYLE_COLORS } from '../server/protocol/painting.ts';
import { e2eSkipReason, launchChromium, startStudio, type RunningStudio } from './support/e2e-browser.ts';
import { autosavedGraph, clickEmptyCanvas, openStudio, openTemplate, realErrors, runAndWait, visualCheck } from './support/e2e-helpers.ts';

const skipReason = e2eSkipReason();
if (skipReason) console.warn(skipReason);

const node = (page: Page, id: string) => page.locator(`[data-testid="node"][data-node-id="${id}"]`);
const rgb = (hex: string) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));

describe.skipIf(skipReason !== null)("browser end-to-end: a mask from the picture's own words", () => {
  let studio: RunningStudio;
  let browser: Browser;

  beforeAll(async () => {
    [studio, browser] = await Promise.all([startStudio(), launchChromium()]);
  });
  afterAll(async () => {
    await browser?.close();
    await studio?.close();
  });

  /** The mask node's preview as pixels, and the style whose colour is nearest at (x, y) in 0..1. */
  async function previewStyles(page: Page): Promise<{ src: string; styleAt: (x: number, y: number) => number; share: (style: number) => number }> {
    const preview = node(page, 'mask').locator('[data-testid="node-result-img"]');
    await expect.poll(() => preview.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0)).toBe(true);
    const src = (await preview.getAttribute('src'))!;
    const png = PNG.sync.read(Buffer.from(await (await fetch(new URL(src, studio.url))).arrayBuffer()));
    const hue = (c: number[]) => c.map((v) => v / Math.max(1, ...c));
    const styleOf = (i: number) => {
      const c = hue([png.data[i]!, png.data[i + 1]!, png.data[i + 2]!]);
      const d = STYLE_COLORS.slice(0, 2).map((hex) => hue(rgb(hex)).reduce((s, v, k) => s + (v - c[k]!) ** 2, 0));
      return d.indexOf(Math.min(...d)) + 1;
    };
    const styleAt = (x: number, y: number) => styleOf((Math.floor(y * png.height) * png.width + Math.floor(x * png.width)) * 4);
    const share = (style: number) => {
      let n = 0;
      for (let i = 0; i < png.width * png.height; i++) if (styleOf(i * 4) === style) n++;
      return n / (png.width * png.height);
    };
    return { src, styleAt, share };
  }

  it('picks a word, runs the inversion, shows the mask on the node, paints a correction, keeps it as a preset', { timeout: 600_000 }, async () => {
    // The preview redraws the mask at its own size and the painter opens over the Mask node: a tall window.
    const { page, errors } = await openStudio(browser, studio, { width: 1920, height: 1400 });
    await openTemplate(page, 'words-mask');
    await node(page, 'image').locator('[data-testid="param-max_side"]').fill('64');
    await node(page, 'invert').locator('[data-testid="param-steps"]').fill('8');
    await node(page, 'invert').locator('[data-testid="param-skip"]').fill('2');
    const mask = node(page, 'mask');
    expect(await mask.locator('[data-testid="param-words"]').inputValue()).toBe('house');
    await clickEmptyCanvas(page);
    await runAndWait(page);
    const house = await previewStyles(page);
    // Both styles have a region (the word's and the rest), as the words say.
    expect(house.share(1)).toBeGreaterThan(0.02);
    expect(house.share(2)).toBeGreaterThan(0.02);
    await visualCheck(page, 'words-1-house');

    // Another word: other regions.
    await mask.locator('[data-testid="param-words"]').fill('photo');
    await clickEmptyCanvas(page);
    await runAndWait(page);
    const photo = await previewStyles(page);
    expect(photo.src).not.toBe(house.src);
    await mask.locator('[data-testid="param-words"]').fill('house');
    await clickEmptyCanvas(page);
    await runAndWait(page);

    // Paint style 1 over where the rest (style 2) is: the correction shows there, the words' regions elsewhere.
    await mask.locator('[data-testid="mask-painter"]').waitFor();
    await page.click('[data-testid="btn-fit"]');
    let spot: [number, number] | null = null;
    for (let y = 0.1; y < 0.95 && !spot; y += 0.1) for (let x = 0.1; x < 0.95 && !spot; x += 0.1) if (house.styleAt(x, y) === 2) spot = [x, y];
    expect(spot).not.toBeNull();
    await mask.locator('[data-testid="brush-style-1"]').click();
    const box = (await mask.locator('[data-testid="paint-canvas"]').boundingBox())!;
    const [sx, sy] = spot!;
    await page.mouse.move(box.x + sx * box.width, box.y + sy * box.height);
    await page.mouse.down();
    await page.mouse.move(box.x + (sx + 0.02) * box.width, box.y + sy * box.height, { steps: 4 });
    await page.mouse.up();
    await expect
      .poll(async () => ((await autosavedGraph(page)).nodes.find((n) => n.id === 'mask')!.params.strokes as unknown[] | undefined)?.length ?? 0)
      .toBe(1);
    await clickEmptyCanvas(page);
    await runAndWait(page);
    const corrected = await previewStyles(page);
    expect(corrected.styleAt(sx + 0.01, sy)).toBe(1);
    expect(corrected.share(1)).toBeGreaterThan(house.share(1));
    await visualCheck(page, 'words-2-corrected');

    // Saved as a preset, applied to the Mask node of another graph.
    await mask.locator('[data-testid="mask-preset-name"]').fill('the house');
    await mask.locator('[data-testid="mask-preset-save"]').click();
    await expect.poll(() => mask.locator('[data-testid="mask-preset-note"]').textContent()).toContain('saved “the house”');
    await openTemplate(page, 'epsilon-merge');
    const other = node(page, 'mask');
    await expect.poll(() => other.locator('[data-testid="mask-preset-apply"] option').allTextContents()).toContain('the house (words, 2 styles)');
    await other.locator('[data-testid="mask-preset-apply"]').selectOption('the house');
    await expect.poll(async () => (await autosavedGraph(page)).nodes.find((n) => n.id === 'mask')!.params.shape).toBe('words');
    const params = (await autosavedGraph(page)).nodes.find((n) => n.id === 'mask')!.params;
    expect(params.words).toBe('house');
    expect((params.strokes as unknown[]).length).toBe(1);
    expect(realErrors(errors)).toEqual([]);
  });
});

/**
 * Browser end-to-end, issue 14 items 5, 8 and 9: what ran where, feedback at the edges (an emptied
 * number, a text file as image, problem wording, an empty prompt, no job sent that the server would
 * refuse), and the small inconsistencies (server status, titles after a preset, the mask's size,
 * upload names after a reload, the compare slider).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { PNG } from 'pngjs';
import { e2eSkipReason, launchChromium, startStudio, type RunningStudio } from './support/e2e-browser.ts';
import { apiJson, autosavedGraph, clickEmptyCanvas, emptyCanvasPoint, openStudio, openTemplate, realErrors, runAndWait } from './support/e2e-helpers.ts';

const skipReason = e2eSkipReason();
const node = (page: Page, id: string) => page.locator(`[data-testid="node"][data-node-id="${id}"]`);
const toasts = (page: Page) =>
  page
    .locator('[data-testid="toast"]')
    .allTextContents()
    .then((t) => t.join('\n'));

async function addFromMenu(page: Page, query: string) {
  const canvas = (await page.locator('[data-testid="canvas"]').boundingBox())!;
  const spot = await emptyCanvasPoint(page);
  await page.mouse.click(canvas.x + spot.x, canvas.y + spot.y, { button: 'right' });
  await page.fill('[data-testid="menu-search"]', query);
  await page.keyboard.press('Enter');
}

describe.skipIf(skipReason !== null)('browser end-to-end: feedback', () => {
  let studio: RunningStudio;
  let browser: Browser;

  beforeAll(async () => {
    // "auto", as a user starts it: the status bar must say what that became, and why.
    [studio, browser] = await Promise.all([startStudio({ executionProvider: 'auto' }), launchChromium()]);
  });

  afterAll(async () => {
    await browser?.close();
    await studio?.close();
  });

  it(
    'says what ran where, keeps an emptied number, refuses a text file as image, words problems, warns of an empty prompt, sends no job it knows is invalid',
    { timeout: 600_000 },
    async () => {
      const { context, page, errors } = await openStudio(browser, studio);
      const health = await apiJson<{ executionProviderUsed: string }>(studio, '/api/health');
      const used = health.executionProviderUsed.toUpperCase();
      await expect.poll(() => page.locator('[data-testid="execution-provider"]').textContent()).toContain(`Runs on ${used} (auto: `);
      if (used === 'CPU') expect(await page.locator('[data-testid="execution-provider"]').textContent()).toContain('CUDA unavailable');

      // An emptied number says so and keeps its value; leaving the field gives the value back.
      const steps = node(page, 'invert').locator('[data-testid="param-steps"]');
      await steps.fill('');
      await expect.poll(() => node(page, 'invert').locator('[data-testid="param-unusable"]').textContent()).toContain('Empty: enter a number');
      expect(await node(page, 'invert').locator('[data-testid="param-unusable"]').textContent()).toContain('keeps 100');
      expect((await autosavedGraph(page)).nodes.find((n) => n.id === 'invert')!.params.steps).toBe(100);
      await clickEmptyCanvas(page);
      await expect.poll(() => steps.inputValue()).toBe('100');
      expect(await node(page, 'invert').locator('[data-testid="param-unusable"]').count()).toBe(0);

      // A check of the node itself is worded as a kind of problem, not a code.
      await steps.fill('5');
      await page.click('[data-testid="btn-problems"]');
      const panel = page.locator('[data-testid="problems"]');
      await expect.poll(() => panel.locator('[data-testid="problem"]').count(), { timeout: 120_000 }).toBeGreaterThan(0);
      await steps.fill('30');
      await expect.poll(() => panel.locator('[data-testid="problem"]').count(), { timeout: 120_000 }).toBe(0);

      // An empty prompt: said on the node, and again when it runs.
      await node(page, 'source').locator('[data-testid="param-text"]').fill('');
      await expect.poll(() => node(page, 'source').locator('[data-testid="param-empty"]').count()).toBe(1);
      await runAndWait(page, 'done', 200_000, async () => {
        await page.keyboard.press('Control+Enter');
        await expect.poll(() => toasts(page)).toContain('Running with an empty prompt in Source prompt → Text');
      });

      // Load Model says where it ran, in full; its demo warning is not cut.
      const model = node(page, 'model');
      await expect.poll(() => model.locator('[data-testid="node-result-text"]').textContent()).toContain(`demo on ${used} (auto: `);
      const warning = model.locator('[data-testid="node-warning"]');
      expect(await warning.textContent()).toContain('Load a Stable Diffusion 1.x ONNX folder for real images.');
      expect(await warning.evaluate((el) => el.scrollHeight <= el.clientHeight + 1 && el.scrollWidth <= el.clientWidth + 1)).toBe(true);
      // The mask's picture is a thumbnail of the picture's shape; the size it claims is the picture's, the
      // size the samplers draw the mask at, not the thumbnail's.
      const thumb = node(page, 'mask').locator('[data-testid="node-result"] img');
      expect(await thumb.count()).toBe(1);
      const [tw, th] = await thumb.evaluate((img: HTMLImageElement) => [img.naturalWidth, img.naturalHeight]);
      const size = (await node(page, 'mask').locator('[data-testid="media-size"]').textContent())!;
      const [w, h] = size.split('×').map(Number);
      expect(Math.max(w!, h!)).toBeGreaterThan(Math.max(tw, th));
      expect(w! / h!).toBeCloseTo(tw / th, 1);

      // A text file chosen as the image: said in the user's words, nothing of the API's.
      await node(page, 'image')
        .locator('[data-testid="upload-image"]')
        .setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not a picture') });
      await expect
        .poll(() => node(page, 'image').locator('[data-testid="upload-error"]').textContent())
        .toBe('notes.txt is not a picture: choose a PNG, JPEG or WebP file.');
      expect(await page.locator('body').textContent()).not.toContain('Content-Type');

      // A graph the studio already knows is invalid is not sent: no POST /api/jobs, the problems show, worded.
      const posts: string[] = [];
      page.on('request', (r) => {
        if (r.method() === 'POST' && new URL(r.url()).pathname === '/api/jobs') posts.push(r.url());
      });
      await page.click('[data-testid="btn-new"]');
      if (await page.locator('[data-testid="confirm-dialog"]').count()) await page.click('[data-testid="confirm-ok"]');
      await addFromMenu(page, 'save image');
      await addFromMenu(page, 'vae decode');
      await expect.poll(() => page.locator('[data-testid="node"]').count()).toBe(2);
      await page.keyboard.press('Control+Enter');
      await expect.poll(() => toasts(page)).toContain('Cannot run yet');
      expect(posts).toEqual([]);
      await expect.poll(() => panel.textContent()).toContain('it needs an Image input');
      const text = (await panel.textContent())!;
      expect(text).not.toMatch(/\ba Image\b|missing_input|param_|custom|no_outputs/);
      expect(await panel.locator('.sd-problem-kind').allTextContents()).toContain('Missing input');

      expect(realErrors(errors)).toEqual([]);
      await context.close();
    },
  );

  it('titles follow prompt presets, upload names survive a reload, the compare slider follows a drag on the picture', { timeout: 600_000 }, async () => {
    const { context, page, errors } = await openStudio(browser, studio);
    await openTemplate(page, 'comparison');
    await page.click('[data-testid="btn-fit"]');
    // Fewer inversion steps: the same pictures' worth of checks, in a fraction of the time.
    await page.locator('[data-testid="node"][data-node-id="invert"] [data-testid="param-steps"]').fill('30');
    const title = node(page, 'style1').locator('[data-testid="title"]');
    expect(await title.textContent()).toBe('Style 1: Van Gogh (left)');
    await node(page, 'style1').locator('[data-testid="presets-text"]').selectOption({ label: 'Mosaic' });
    await expect.poll(() => title.textContent()).toBe('Style 1: Mosaic (left)');
    await node(page, 'style1').locator('[data-testid="param-text"]').fill('ink drawing of [prompt]');
    await expect.poll(() => title.textContent()).toBe('Style 1: ink drawing of [prompt] (left)');
    await clickEmptyCanvas(page);
    await page.keyboard.press('Control+z');
    await expect.poll(() => title.textContent()).toBe('Style 1: Mosaic (left)');
    await page.keyboard.press('Control+z');
    await expect.poll(() => title.textContent()).toBe('Style 1: Van Gogh (left)');

    // An uploaded picture keeps its own name, also after a reload.
    const png = new PNG({ width: 128, height: 64 });
    png.data.fill(200);
    await node(page, 'image')
      .locator('[data-testid="upload-image"]')
      .setInputFiles({ name: 'holiday.png', mimeType: 'image/png', buffer: PNG.sync.write(png) });
    const name = node(page, 'image').locator('[data-testid="image-name"]');
    await expect.poll(() => name.textContent()).toBe('holiday.png · 128×64');
    await page.reload();
    await page.waitForSelector('[data-testid="canvas"][data-ready="true"]');
    await expect.poll(() => name.textContent()).toBe('holiday.png · 128×64');

    // Two runs, two results; in the slider comparison a drag on the picture moves the divider.
    await page.click('[data-testid="btn-fit"]');
    await runAndWait(page, 'done', 200_000);
    await node(page, 'style2').locator('[data-testid="presets-text"]').selectOption({ label: 'Andy Warhol Pop' });
    await runAndWait(page, 'done', 200_000);
    await page.click('[data-testid="btn-results"]');
    const items = page.locator('[data-testid="gallery-item"][data-node-id="save_style2"]');
    await expect.poll(() => items.count()).toBe(2);
    await items.nth(0).locator('[data-testid="gallery-select"]').check();
    await items.nth(1).locator('[data-testid="gallery-select"]').check();
    await page.click('[data-testid="gallery-compare"]');
    await page.click('[data-testid="compare-mode-slider"]');
    const slider = page.locator('[data-testid="compare-slider"]');
    const box = (await slider.boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.5);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.35, box.y + box.height * 0.6, { steps: 4 });
    await page.mouse.move(box.x + box.width * 0.25, box.y + box.height * 0.4, { steps: 4 });
    await page.mouse.up();
    expect(Number(await slider.getAttribute('data-pos'))).toBeCloseTo(25, -1);
    expect(Number(await page.locator('[data-testid="compare-range"]').inputValue())).toBe(Number(await slider.getAttribute('data-pos')));

    expect(realErrors(errors)).toEqual([]);
    await context.close();
  });

  it('"Server OK" turns into "unreachable" when the server goes away', async () => {
    const own = await startStudio();
    const { context, page } = await openStudio(browser, own);
    const status = page.locator('[data-testid="health"]');
    await expect.poll(() => status.textContent()).toContain('Server OK');
    await own.close();
    await expect.poll(() => status.textContent(), { timeout: 8_000 }).toContain('unreachable');
    expect(await page.locator('[data-testid="health-dot"]').getAttribute('class')).toContain('bad');
    await context.close();
  });
});

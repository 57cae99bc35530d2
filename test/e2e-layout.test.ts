/**
 * Browser end-to-end, issue 14 items 2 and 4: a first open that can be read and says what to do
 * first; nodes that keep the room of their pictures and never overlap, before and after a run; a
 * minimap that Fit keeps clear of; Arrange. Screenshots of the first open and of a finished
 * comparison run at 1440×900 and 1280×720 go to test-artifacts/ for a person to look at.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { e2eSkipReason, launchChromium, projectRoot, startStudio, type RunningStudio } from './support/e2e-browser.ts';
import {
  autosavedGraph,
  intersects,
  nodeBoxes,
  openStudio,
  openTemplate,
  overlappingNodes,
  realErrors,
  visualCheck,
  runAndWait,
} from './support/e2e-helpers.ts';

const skipReason = e2eSkipReason();
const hasTemplates = ['epsilon-merge', 'comparison'].every((t) => fs.existsSync(path.join(projectRoot, 'graphs', `${t}.json`)));
const SIZES = [
  { width: 1440, height: 900 },
  { width: 1280, height: 720 },
];

/** Node titles as drawn: font size times the view's scale, in screen pixels. */
async function titlePixels(page: Page): Promise<number[]> {
  return page
    .locator('[data-testid="node"] [data-testid="title"]')
    .evaluateAll((els) =>
      els
        .filter((e) => e.getBoundingClientRect().height > 0)
        .map((e) => parseFloat(getComputedStyle(e).fontSize) * (e.getBoundingClientRect().height / (e as HTMLElement).offsetHeight)),
    );
}

/** Every node box clear of the minimap; every Download link the topmost thing where it is. */
async function minimapClear(page: Page): Promise<string[]> {
  const map = (await page.locator('[data-testid="minimap"]').boundingBox())!;
  const under = (await nodeBoxes(page)).filter((b) => intersects(b, map)).map((b) => b.id);
  const hidden = await page.locator('[data-testid="download"]').evaluateAll((links) =>
    links
      .filter((a) => {
        const r = a.getBoundingClientRect();
        return document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2) !== a;
      })
      .map((a) => a.closest('[data-testid="node"]')?.getAttribute('data-node-id') ?? '?'),
  );
  return [...under.map((id) => `${id} under the minimap`), ...hidden.map((id) => `${id}: Download covered`)];
}

describe.skipIf(skipReason !== null || !hasTemplates)('browser end-to-end: layout', () => {
  let studio: RunningStudio;
  let browser: Browser;

  beforeAll(async () => {
    [studio, browser] = await Promise.all([startStudio(), launchChromium()]);
  });

  afterAll(async () => {
    await browser?.close();
    await studio?.close();
  });

  it('first open: readable nodes, a line that says what to do, the sample picture, nothing overlapping', async () => {
    for (const size of SIZES) {
      const { context, page, errors } = await openStudio(browser, studio, size);
      // ~7 px before; now at least 10 px on screen.
      await expect.poll(() => page.locator('[data-testid="node"]').count()).toBeGreaterThan(5);
      const sizes = await titlePixels(page);
      expect(Math.min(...sizes), `title sizes ${sizes.join(', ')}`).toBeGreaterThanOrEqual(10);
      const hint = page.locator('[data-testid="first-hint"]');
      await expect
        .poll(() => hint.textContent())
        .toContain('Press Run to see the demo; load your own image in Load Image; fetch a real model with npm run fetch-model');
      // The pipeline's start is in view: Load Model and Load Image, whole.
      const canvas = (await page.locator('[data-testid="canvas"]').boundingBox())!;
      for (const id of ['model', 'image']) {
        const box = (await page.locator(`[data-testid="node"][data-node-id="${id}"]`).boundingBox())!;
        expect(
          box.x >= canvas.x && box.y >= canvas.y && box.x + box.width <= canvas.x + canvas.width && box.y + box.height <= canvas.y + canvas.height,
          `${id} in view`,
        ).toBe(true);
      }
      const thumb = page.locator('[data-testid="node"][data-node-id="image"] [data-testid="image-thumb"]');
      await expect.poll(() => thumb.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0)).toBe(true);
      expect(await page.locator('[data-testid="node"][data-node-id="image"] [data-testid="image-name"]').textContent()).toContain('Built-in sample picture');
      expect(await overlappingNodes(page)).toEqual([]);
      await visualCheck(page, `first-open-${size.width}x${size.height}`);
      // Closed, the line stays closed.
      await hint.locator('button').click();
      await page.reload();
      await page.waitForSelector('[data-testid="canvas"][data-ready="true"]');
      expect(await hint.count()).toBe(0);
      expect(realErrors(errors)).toEqual([]);
      await context.close();
    }
  });

  it('a comparison run: nodes keep their size, nothing overlaps, Fit keeps clear of the minimap, Arrange lays out', { timeout: 600_000 }, async () => {
    const { context, page, errors } = await openStudio(browser, studio);
    await openTemplate(page, 'comparison');
    // Fewer inversion steps: the same pictures' worth of checks, in a fraction of the time.
    await page.locator('[data-testid="node"][data-node-id="invert"] [data-testid="param-steps"]').fill('30');
    // Saved, so that "unsaved" after the run could only come from the studio's own moves.
    await page.keyboard.press('Control+s');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('[data-testid="dirty"]').count()).toBe(0);
    // Samplers, outputs and the mask keep room for their pictures before anything ran, and the
    // pictures fill that room without growing it.
    const media = () =>
      page
        .locator('[data-testid="node"] [data-testid="node-media"]')
        .evaluateAll((els) =>
          Object.fromEntries(els.map((e) => [e.closest('[data-testid="node"]')!.getAttribute('data-node-id'), Math.round(e.getBoundingClientRect().height)])),
        );
    const before = await media();
    await runAndWait(page, 'done', 180_000);
    expect(await page.locator('[data-testid="node-result"] img').count()).toBeGreaterThanOrEqual(6);
    // Nothing overlaps after the run: pictures filled room kept for them, and what grew (notes,
    // warnings) pushed its neighbours; the studio's own moves do not make the document "unsaved".
    expect(await overlappingNodes(page)).toEqual([]);
    expect(await page.locator('[data-testid="dirty"]').count()).toBe(0);
    expect(Object.keys(before).length).toBeGreaterThanOrEqual(10);
    expect(await media()).toEqual(before);

    // With the minimap on, Fit shows everything clear of it, at both sizes, and the panels open.
    await page.click('[data-testid="btn-minimap"]');
    await page.waitForSelector('[data-testid="minimap"]');
    for (const size of SIZES) {
      await page.setViewportSize(size);
      await page.click('[data-testid="btn-fit"]');
      await expect.poll(() => minimapClear(page)).toEqual([]);
      expect(await overlappingNodes(page)).toEqual([]);
      await visualCheck(page, `comparison-run-${size.width}x${size.height}`);
    }
    await page.click('[data-testid="btn-results"]');
    await expect.poll(() => minimapClear(page)).toEqual([]);
    await page.click('[data-testid="btn-results"]');

    // Arrange: every connection runs left to right, nothing overlaps; one Ctrl+Z puts it back.
    const placed = (await autosavedGraph(page)).nodes.map((n) => `${n.id}@${n.position.x},${n.position.y}`).sort();
    await page.click('[data-testid="btn-arrange"]');
    await expect.poll(async () => (await autosavedGraph(page)).nodes.map((n) => `${n.id}@${n.position.x},${n.position.y}`).sort()).not.toEqual(placed);
    const graph = await autosavedGraph(page);
    const x = new Map(graph.nodes.map((n) => [n.id, n.position.x]));
    expect(graph.edges.filter((e) => x.get(e.from.node)! >= x.get(e.to.node)!)).toEqual([]);
    expect(await overlappingNodes(page)).toEqual([]);
    await page.keyboard.press('Control+z');
    await expect.poll(async () => (await autosavedGraph(page)).nodes.map((n) => `${n.id}@${n.position.x},${n.position.y}`).sort()).toEqual(placed);

    expect(realErrors(errors)).toEqual([]);
    await context.close();
  });
});

/**
 * Browser end-to-end, issue 26 item 12 (several graphs open at once, as tabs of the editor): each
 * graph tab has its own graph and undo history, a reload brings back every tab and the active one,
 * closing a tab with unsaved work asks first, the closed tab can be reopened with its work, and
 * leaving the browser tab with unsaved work is warned about. A run paints the nodes of the tab it
 * was started from, not those of another tab whose graph shares its node ids.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { e2eSkipReason, launchChromium, startStudio, type RunningStudio } from './support/e2e-browser.ts';
import { autosavedGraph, clickEmptyCanvas, openStudio, openTemplate, realErrors, visualCheck, waitForRun } from './support/e2e-helpers.ts';

const skipReason = e2eSkipReason();

const tabs = (page: Page) => page.locator('[data-testid="graph-tab"]');
const tabLabels = (page: Page) => page.locator('[data-testid="graph-tab"] [data-testid="tab-label"]').allTextContents();
const activeTab = (page: Page) => page.locator('[data-testid="graph-tab"][data-active="true"]');
const docLabel = (page: Page) => page.locator('[data-testid="doc-label"]').textContent();
/** The inversion's step count on the canvas shown (both templates have an `invert` node). */
const steps = (page: Page) => page.locator('[data-testid="node"][data-node-id="invert"] [data-testid="param-steps"]');

/** Shows the graph tab whose label holds `name`, and waits for its canvas. */
async function showTab(page: Page, name: string): Promise<void> {
  await tabs(page).filter({ hasText: name }).click();
  await expect.poll(() => docLabel(page)).toContain(name);
  await page.waitForSelector('[data-testid="canvas"][data-ready="true"]');
}

/** Sets the inversion's steps as a user would (type, then click the canvas so the field lets go of the keys). */
async function setSteps(page: Page, value: number): Promise<void> {
  await steps(page).fill(String(value));
  await clickEmptyCanvas(page);
  await expect.poll(async () => (await autosavedGraph(page)).nodes.find((n) => n.id === 'invert')?.params.steps).toBe(value);
}

describe.skipIf(skipReason !== null)('browser end-to-end: graph tabs', () => {
  let studio: RunningStudio;
  let browser: Browser;

  beforeAll(async () => {
    [studio, browser] = await Promise.all([startStudio(), launchChromium()]);
  });

  afterAll(async () => {
    await browser?.close();
    await studio?.close();
  });

  it(
    'keeps two graphs in two tabs, each with its own undo, through a reload; closing unsaved work asks, and reopening brings it back',
    { timeout: 300_000 },
    async () => {
      const { context, page, errors } = await openStudio(browser, studio);
      // Tab 1: the welcome template, edited.
      expect(await docLabel(page)).toContain('epsilon-merge');
      await expect.poll(() => tabs(page).count()).toBe(1);
      await setSteps(page, 37);

      // Tab 2: a new empty tab; a template opened there takes it (an empty, untouched tab is replaced).
      await page.click('[data-testid="tab-new"]');
      await expect.poll(() => tabs(page).count()).toBe(2);
      await expect.poll(() => page.locator('[data-testid="node"]').count()).toBe(0);
      await openTemplate(page, 'single-prompt');
      await expect.poll(() => tabs(page).count()).toBe(2);
      await setSteps(page, 55);
      await expect.poll(() => tabLabels(page)).toEqual(['epsilon-merge', 'single-prompt']);
      expect(await page.locator('[data-testid="tab-dirty"]').count()).toBe(2);

      // Undo in tab 2 takes back tab 2's edit only.
      await page.keyboard.press('Control+z');
      await expect.poll(() => steps(page).inputValue()).toBe('100');
      await showTab(page, 'epsilon-merge');
      expect(await steps(page).inputValue()).toBe('37');
      // And tab 1's own history still holds its edit: undo, then redo it.
      await clickEmptyCanvas(page);
      await page.keyboard.press('Control+z');
      await expect.poll(() => steps(page).inputValue()).toBe('100');
      await page.keyboard.press('Control+y');
      await expect.poll(() => steps(page).inputValue()).toBe('37');
      await showTab(page, 'single-prompt');
      expect(await steps(page).inputValue()).toBe('100');
      await showTab(page, 'epsilon-merge');

      await page.setViewportSize({ width: 1440, height: 900 });
      await visualCheck(page, 'tabs-two-graphs-1440x900');
      await page.setViewportSize({ width: 1280, height: 720 });
      await visualCheck(page, 'tabs-two-graphs-1280x720');
      // At the smaller size the strip still shows both tabs and the new-tab button, inside the window.
      const strip = (await page.locator('[data-testid="tab-strip"]').boundingBox())!;
      const plus = (await page.locator('[data-testid="tab-new"]').boundingBox())!;
      expect(plus.x + plus.width).toBeLessThanOrEqual(strip.x + strip.width);
      await page.setViewportSize({ width: 1440, height: 900 });

      // A reload brings back both tabs, the active one, and each tab's graph.
      await page.reload();
      await page.waitForSelector('[data-testid="canvas"][data-ready="true"]');
      await expect.poll(() => tabLabels(page)).toEqual(['epsilon-merge', 'single-prompt']);
      expect(await activeTab(page).textContent()).toContain('epsilon-merge');
      await expect.poll(() => steps(page).inputValue()).toBe('37');
      await showTab(page, 'single-prompt');
      expect(await steps(page).inputValue()).toBe('100');

      // Closing the tab with unsaved work asks (the studio's dialog); cancelled, nothing closes.
      const dirtyTab = tabs(page).filter({ hasText: 'epsilon-merge' });
      await dirtyTab.locator('[data-testid="tab-close"]').click();
      await page.waitForSelector('[data-testid="confirm-dialog"]');
      await page.keyboard.press('Escape');
      await expect.poll(() => page.locator('[data-testid="confirm-dialog"]').count()).toBe(0);
      expect(await tabs(page).count()).toBe(2);
      await dirtyTab.locator('[data-testid="tab-close"]').click();
      await page.click('[data-testid="confirm-ok"]');
      await expect.poll(() => tabLabels(page)).toEqual(['single-prompt']);

      // Reopened from the tab menu, it comes back with its unsaved edit.
      await page.click('[data-testid="tab-menu"]');
      await page.click('[data-testid="tab-reopen"]');
      await expect.poll(() => tabLabels(page)).toEqual(['single-prompt', 'epsilon-merge']);
      expect(await activeTab(page).textContent()).toContain('epsilon-merge');
      await expect.poll(() => steps(page).inputValue()).toBe('37');
      expect(await page.locator('[data-testid="dirty"]').count()).toBe(1);

      // A clean tab closes without asking; Ctrl+Shift+T brings it back.
      await tabs(page).filter({ hasText: 'single-prompt' }).locator('[data-testid="tab-close"]').click();
      await expect.poll(() => tabLabels(page)).toEqual(['epsilon-merge']);
      expect(await page.locator('[data-testid="confirm-dialog"]').count()).toBe(0);
      await clickEmptyCanvas(page);
      await page.keyboard.press('Control+Shift+T');
      await expect.poll(() => tabLabels(page)).toEqual(['epsilon-merge', 'single-prompt']);

      // Rename by double-click: the tab shows the new name (the document keeps its own).
      await tabs(page).filter({ hasText: 'single-prompt' }).dblclick();
      await page.fill('[data-testid="tab-rename-input"]', 'portrait test');
      await page.keyboard.press('Enter');
      await expect.poll(() => tabLabels(page)).toEqual(['epsilon-merge', 'portrait test']);
      // Escape leaves the name as it was.
      await tabs(page).filter({ hasText: 'portrait test' }).dblclick();
      await page.fill('[data-testid="tab-rename-input"]', 'not this');
      await page.keyboard.press('Escape');
      await expect.poll(() => page.locator('[data-testid="tab-rename-input"]').count()).toBe(0);
      expect(await tabLabels(page)).toEqual(['epsilon-merge', 'portrait test']);

      // Leaving the browser tab with unsaved work is warned about (beforeunload).
      const asked = new Promise<string>((resolve) => page.once('dialog', (d) => void d.dismiss().then(() => resolve(d.type()))));
      await page.close({ runBeforeUnload: true });
      expect(await asked).toBe('beforeunload');

      expect(realErrors(errors)).toEqual([]);
      await context.close();
    },
  );

  it('shows a run’s node states in the tab it came from, not in another tab with the same node ids', { timeout: 300_000 }, async () => {
    const { context, page, errors } = await openStudio(browser, studio);
    await openTemplate(page, 'epsilon-merge');
    await page.click('[data-testid="tab-new"]');
    await openTemplate(page, 'single-prompt');
    await expect.poll(() => tabLabels(page)).toEqual(['epsilon-merge', 'single-prompt']);
    // A short inversion (skip 10 of 12 steps): the run is about which tab it paints, not its picture.
    await setSteps(page, 12);
    await page.keyboard.press('Control+Enter');
    await expect.poll(() => page.locator('[data-testid="queue-indicator"]').getAttribute('data-state')).toMatch(/queued|running|done/);
    // Switched away at once: the other tab's nodes (model, image, invert... the same ids) stay at rest.
    await showTab(page, 'epsilon-merge');
    await waitForRun(page, 'done');
    const statuses = await page.locator('[data-testid="node"]').evaluateAll((els) => els.map((e) => e.getAttribute('data-status')));
    expect(new Set(statuses)).toEqual(new Set(['idle']));
    // The tab it came from shows it: every node done (or taken from the cache).
    await showTab(page, 'single-prompt');
    const ran = await page.locator('[data-testid="node"]').evaluateAll((els) => els.map((e) => e.getAttribute('data-status')));
    expect(ran.length).toBeGreaterThan(0);
    expect(ran.filter((s) => s !== 'done' && s !== 'cached')).toEqual([]);
    expect(realErrors(errors)).toEqual([]);
    await context.close();
  });
});

/**
 * Browser end-to-end, issue 26 (the editor for a day's work): each tab keeps its own autosave, a
 * dangling node no longer blocks Run, the queue can be reordered and paused, templates run without
 * a truncation warning, and runs can vary their seed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { e2eSkipReason, launchChromium, startStudio, type RunningStudio } from './support/e2e-browser.ts';
import { autosavedGraph, autosaveKey, openStudio, openTab, openTemplate, realErrors } from './support/e2e-helpers.ts';

const skipReason = e2eSkipReason();
const node = (page: Page, id: string) => page.locator(`[data-testid="node"][data-node-id="${id}"]`);
const docLabel = (page: Page) => page.locator('[data-testid="doc-label"]').textContent();
/** The name of the document this tab autosaved last. */
const autosavedDocName = async (page: Page) => {
  const key = await autosaveKey(page);
  return page.evaluate((key) => (JSON.parse(localStorage.getItem(key) ?? '{}') as { doc?: { name: string | null } }).doc?.name, key);
};

describe.skipIf(skipReason !== null)('browser end-to-end: the editor for a day’s work', () => {
  let studio: RunningStudio;
  let browser: Browser;

  beforeAll(async () => {
    [studio, browser] = await Promise.all([startStudio(), launchChromium()]);
  });

  afterAll(async () => {
    await browser?.close();
    await studio?.close();
  });

  it('keeps each tab’s unsaved work in its own autosave: another tab opening a template does not replace it', { timeout: 300_000 }, async () => {
    const { context, page: a, errors } = await openStudio(browser, studio);
    // Tab A: the welcome template, edited and not saved.
    expect(await docLabel(a)).toContain('epsilon-merge');
    await node(a, 'invert').locator('[data-testid="param-steps"]').fill('37');
    await expect.poll(async () => (await autosavedGraph(a)).nodes.find((n) => n.id === 'invert')?.params.steps).toBe(37);

    // Tab B, fresh: it starts from the most recent work (A's), then opens another template.
    const { page: b, errors: errorsB } = await openTab(context, studio);
    await expect.poll(() => node(b, 'invert').locator('[data-testid="param-steps"]').inputValue()).toBe('37');
    await openTemplate(b, 'single-prompt');
    await expect.poll(() => autosavedDocName(b)).toBe('single-prompt');

    // A reloads: its own graph comes back, with the edit, still unsaved.
    await a.reload();
    await a.waitForSelector('[data-testid="canvas"][data-ready="true"]');
    expect(await docLabel(a)).toContain('epsilon-merge');
    await expect.poll(() => node(a, 'invert').locator('[data-testid="param-steps"]').inputValue()).toBe('37');
    expect(await a.locator('[data-testid="dirty"]').count()).toBe(1);
    // B reloads: its template, not A's graph.
    await b.reload();
    await b.waitForSelector('[data-testid="canvas"][data-ready="true"]');
    expect(await docLabel(b)).toContain('single-prompt');

    // A tab opened afresh (say after closing one) restores the most recent work: B's, written last.
    const { page: c, errors: errorsC } = await openTab(context, studio);
    expect(await docLabel(c)).toContain('single-prompt');

    expect(realErrors([...errors, ...errorsB, ...errorsC])).toEqual([]);
    await context.close();
  });
});

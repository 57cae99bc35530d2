/**
 * Browser end-to-end, issue 26 (the editor for a day's work): each tab keeps its own autosave, a
 * dangling node no longer blocks Run, the queue can be reordered and paused, templates run without
 * a truncation warning, and runs can vary their seed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { PNG } from 'pngjs';
import type { HistoryPage, QueueState } from '../server/protocol/events.ts';
import { e2eSkipReason, launchChromium, startStudio, type RunningStudio } from './support/e2e-browser.ts';
import {
  apiJson,
  autosavedGraph,
  autosaveKey,
  canvasNodeIds,
  clickEmptyCanvas,
  emptyCanvasPoint,
  nodeBoxes,
  openStudio,
  openTab,
  openTemplate,
  realErrors,
  runAndWait,
  visualCheck,
} from './support/e2e-helpers.ts';

const skipReason = e2eSkipReason();

/** Adds a node from the canvas menu: right click on empty canvas, type, Enter. */
async function addFromMenu(page: Page, query: string) {
  const canvas = (await page.locator('[data-testid="canvas"]').boundingBox())!;
  const spot = await emptyCanvasPoint(page);
  await page.mouse.click(canvas.x + spot.x, canvas.y + spot.y, { button: 'right' });
  await page.fill('[data-testid="menu-search"]', query);
  await page.keyboard.press('Enter');
}
const node = (page: Page, id: string) => page.locator(`[data-testid="node"][data-node-id="${id}"]`);
const toasts = (page: Page) =>
  page
    .locator('[data-testid="toast"]')
    .allTextContents()
    .then((t) => t.join('\n'));
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

  /** A state-changing API call from the test (the header the studio's client sends). */
  const send = async (method: string, route: string) => {
    const res = await fetch(new URL(route, studio.url), { method, headers: { 'X-Requested-With': 'test' } });
    expect(res.ok, `${method} ${route}: ${res.status}`).toBe(true);
  };

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

  it('runs what the outputs need when a dangling node has problems, and warns about the node', { timeout: 300_000 }, async () => {
    const { context, page, errors } = await openStudio(browser, studio);
    await openTemplate(page, 'epsilon-merge');
    await node(page, 'invert').locator('[data-testid="param-steps"]').fill('20');
    const before = await canvasNodeIds(page);
    // A second inversion, connected to nothing: its inputs are missing and no output needs it.
    await addFromMenu(page, 'Invert');
    await expect.poll(async () => (await canvasNodeIds(page)).length).toBe(before.length + 1);
    const loose = (await canvasNodeIds(page)).find((id) => !before.includes(id))!;
    await expect.poll(() => node(page, loose).getAttribute('class')).toContain('left-out');
    expect(await node(page, loose).locator('[data-testid="node-left-out"]').textContent()).toMatch(/not connected/);
    await expect.poll(() => page.locator('[data-testid="btn-problems"]').textContent()).toContain('No problems');

    // Run: it goes, and says what it left out.
    await runAndWait(page, 'done', 300_000, async () => {
      await page.keyboard.press('Control+Enter');
      await expect.poll(() => toasts(page)).toMatch(/Left out of this run .*Invert/);
    });
    await page.click('[data-testid="btn-problems"]');
    await expect.poll(() => page.locator(`[data-testid="problem-warning"][data-node-id="${loose}"]`).count()).toBeGreaterThan(0);
    expect(await page.locator('[data-testid="problem"]').count()).toBe(0);
    await visualCheck(page, 'workday-left-out-1440x900');

    // A needed node keeps its errors: too few steps on the template's own inversion.
    await page.click(`[data-testid="node"][data-node-id="${loose}"]`);
    await page.keyboard.press('Delete');
    await node(page, 'invert').locator('[data-testid="param-steps"]').fill('1');
    await expect.poll(() => page.locator('[data-testid="problem"][data-node-id="invert"]').count()).toBeGreaterThan(0);

    expect(realErrors(errors)).toEqual([]);
    await context.close();
  });

  it('pauses the queue, reorders waiting jobs by dragging and with the arrows, and runs them in that order', { timeout: 300_000 }, async () => {
    const { context, page, errors } = await openStudio(browser, studio);
    await openTemplate(page, 'epsilon-merge');
    const steps = node(page, 'invert').locator('[data-testid="param-steps"]');
    await page.click('[data-testid="btn-queue"]');
    await page.click('[data-testid="queue-pause"]');
    await expect.poll(() => page.locator('[data-testid="queue-paused"]').count()).toBe(1);
    await expect.poll(() => page.locator('[data-testid="status-queue"]').textContent()).toContain('paused');

    // Three runs, each with its own step count, wait while the queue is paused.
    const items = page.locator('[data-testid="queue-panel"] [data-testid="queue-item"]');
    for (const [i, n] of ['20', '21', '22'].entries()) {
      await steps.fill(n);
      await page.keyboard.press('Control+Enter');
      await expect.poll(() => items.count(), { timeout: 60_000 }).toBe(i + 1);
    }
    const order = async () => (await apiJson<QueueState>(studio, '/api/queue')).pending.map((j) => j.id);
    const [j1, j2, j3] = await order();
    expect(await items.evaluateAll((els) => els.map((e) => e.getAttribute('data-state')))).toEqual(['queued', 'queued', 'queued']);

    // Drag the last onto the first: it goes first.
    await items.nth(2).dragTo(items.nth(0));
    await expect.poll(order).toEqual([j3, j1, j2]);
    await expect.poll(() => items.evaluateAll((els) => els.map((e) => e.getAttribute('data-job-id')))).toEqual([j3, j1, j2]);
    // ↓ on the first: one place later.
    await items.nth(0).locator('[data-testid="queue-down"]').click();
    await expect.poll(order).toEqual([j1, j3, j2]);
    expect(await items.nth(0).locator('[data-testid="queue-up"]').isDisabled()).toBe(true);
    expect(await items.nth(2).locator('[data-testid="queue-down"]').isDisabled()).toBe(true);
    await expect.poll(() => items.nth(0).locator('[data-testid="queue-meta"]').textContent()).toContain('paused');
    await visualCheck(page, 'workday-queue-paused-1440x900');
    await page.setViewportSize({ width: 1280, height: 720 });
    await visualCheck(page, 'workday-queue-paused-1280x720');
    await page.setViewportSize({ width: 1440, height: 900 });

    // Nothing started while paused; Resume runs them in the new order.
    expect((await apiJson<QueueState>(studio, '/api/queue')).active).toEqual([]);
    await page.click('[data-testid="queue-pause"]');
    await expect.poll(() => page.locator('[data-testid="queue-paused"]').count()).toBe(0);
    await expect
      .poll(async () => (await apiJson<QueueState>(studio, '/api/queue')).pending.length + (await apiJson<QueueState>(studio, '/api/queue')).active.length, {
        timeout: 240_000,
      })
      .toBe(0);
    const history = await apiJson<HistoryPage>(studio, '/api/history?offset=0&limit=10');
    const ran = history.jobs.filter((j) => [j1, j2, j3].includes(j.id)).sort((a, b) => (a.startedAt ?? 0) - (b.startedAt ?? 0));
    expect(ran.map((j) => j.id)).toEqual([j1, j3, j2]);

    expect(realErrors(errors)).toEqual([]);
    await context.close();
  });

  it('runs a template the first time without a warning that its style prompts were cut', { timeout: 300_000 }, async () => {
    const { context, page, errors } = await openStudio(browser, studio);
    await openTemplate(page, 'three-styles');
    await node(page, 'invert').locator('[data-testid="param-steps"]').fill('20');
    await runAndWait(page);
    for (const id of ['encode_style1', 'encode_style2', 'encode_style3']) {
      await expect.poll(() => node(page, id).locator('[data-testid="node-result-text"]').textContent()).toMatch(/\d+ of 75 tokens/);
      expect(await node(page, id).locator('[data-testid="node-result-text"]').textContent()).not.toContain('truncated');
      expect(await node(page, id).locator('[data-testid="node-warning"]').count()).toBe(0);
    }
    expect(realErrors(errors)).toEqual([]);
    await context.close();
  });

  it(
    'moves the seed after each run as its control says, and a batch queues runs with successive seeds, each named by graph and seed',
    { timeout: 300_000 },
    async () => {
      const { context, page, errors } = await openStudio(browser, studio);
      await openTemplate(page, 'epsilon-merge');
      const seed = node(page, 'invert').locator('[data-testid="param-seed"]');
      await seed.fill('40');
      await expect.poll(async () => (await autosavedGraph(page)).nodes.find((n) => n.id === 'invert')?.params.seed).toBe(40);
      // Paused, the queued runs stay to be looked at.
      await send('POST', '/api/queue/pause');
      await page.selectOption('[data-testid="seed-control"]', 'increment');
      await page.fill('[data-testid="batch-count"]', '3');
      await page.click('[data-testid="btn-run"]');
      await expect.poll(async () => (await apiJson<QueueState>(studio, '/api/queue')).pending.length, { timeout: 60_000 }).toBe(3);
      const pending = (await apiJson<QueueState>(studio, '/api/queue')).pending;
      expect(pending.map((j) => j.title)).toEqual([
        'epsilon-merge · run 1 of 3 · seed 40',
        'epsilon-merge · run 2 of 3 · seed 41',
        'epsilon-merge · run 3 of 3 · seed 42',
      ]);
      const seeds = [];
      for (const j of pending) {
        const detail = await apiJson<{ graph: { nodes: { id: string; params: { seed?: number } }[] } }>(studio, `/api/jobs/${j.id}`);
        seeds.push(detail.graph.nodes.find((n) => n.id === 'invert')!.params.seed);
      }
      expect(seeds).toEqual([40, 41, 42]);
      // After the batch the field holds the next seed; the Queue panel tells the runs apart.
      await expect.poll(() => seed.inputValue()).toBe('43');
      await page.click('[data-testid="btn-queue"]');
      const titles = page.locator('[data-testid="queue-panel"] [data-testid="queue-item"] .sd-queue-title');
      await expect.poll(() => titles.allTextContents()).toEqual(pending.map((j) => j.title));
      await visualCheck(page, 'workday-seed-batch-1440x900');
      await page.setViewportSize({ width: 1280, height: 720 });
      await visualCheck(page, 'workday-seed-batch-1280x720');
      await page.setViewportSize({ width: 1440, height: 900 });

      // Randomize: one run, then a seed drawn at random (not the next one).
      await page.selectOption('[data-testid="seed-control"]', 'randomize');
      await page.fill('[data-testid="batch-count"]', '1');
      await page.click('[data-testid="btn-run"]');
      await expect.poll(async () => (await apiJson<QueueState>(studio, '/api/queue')).pending.length, { timeout: 60_000 }).toBe(4);
      await expect.poll(() => seed.inputValue()).not.toBe('43');
      // Fixed: the seed stays.
      await page.selectOption('[data-testid="seed-control"]', 'fixed');
      const kept = await seed.inputValue();
      await page.click('[data-testid="btn-run"]');
      await expect.poll(async () => (await apiJson<QueueState>(studio, '/api/queue')).pending.length, { timeout: 60_000 }).toBe(5);
      expect(await seed.inputValue()).toBe(kept);

      // A cancelled run keeps its name in the finished list.
      const last = (await apiJson<QueueState>(studio, '/api/queue')).pending.at(-1)!;
      await page.locator(`[data-testid="queue-item"][data-job-id="${last.id}"] [data-testid="queue-cancel"]`).click();
      await expect
        .poll(() => page.locator(`[data-testid="queue-finished"][data-job-id="${last.id}"] .sd-queue-title`).textContent())
        .toBe(`epsilon-merge · seed ${kept}`);
      for (const j of (await apiJson<QueueState>(studio, '/api/queue')).pending) await send('DELETE', `/api/jobs/${j.id}`);
      await send('POST', '/api/queue/resume');
      expect(realErrors(errors)).toEqual([]);
      await context.close();
    },
  );

  it('a node taken from the cache keeps its preview, and its badge does not turn into "0 ms"', { timeout: 300_000 }, async () => {
    const { context, page, errors } = await openStudio(browser, studio);
    await openTemplate(page, 'epsilon-merge');
    // Steps no other test of this studio uses: the first run must compute the inversion (and preview it),
    // not take it from the cache of an earlier test.
    await node(page, 'invert').locator('[data-testid="param-steps"]').fill('23');
    await runAndWait(page);
    await expect.poll(() => node(page, 'invert').locator('[data-testid="node-preview"]').count()).toBe(1);
    // Another style prompt: the inversion comes from the cache.
    await node(page, 'style2').locator('[data-testid="param-text"]').fill('A watercolor of [prompt]');
    const invert = node(page, 'invert');
    // The badge shows for a few seconds from the node's end, maybe less than the rest of the run: look while it runs.
    await runAndWait(page, 'done', 300_000, async () => {
      await page.keyboard.press('Control+Enter');
      await expect.poll(() => invert.locator('[data-testid="badge-cached"]').count(), { timeout: 120_000 }).toBe(1);
    });
    // The badge fades after a few seconds (no sleep: wait for it to go).
    await expect.poll(() => invert.locator('[data-testid="badge-cached"]').count(), { timeout: 30_000 }).toBe(0);
    expect(await invert.locator('.sd-badge').allTextContents()).not.toContain('0 ms');
    expect(await invert.locator('[data-testid="node-preview"]').count()).toBe(1);
    expect(realErrors(errors)).toEqual([]);
    await context.close();
  });

  it('Arrange moves a frame with the nodes it holds', { timeout: 300_000 }, async () => {
    const { context, page, errors } = await openStudio(browser, studio);
    await openTemplate(page, 'epsilon-merge');
    await page.click('[data-testid="btn-fit"]');
    await clickEmptyCanvas(page);
    for (const [i, id] of ['style1', 'encode_style1'].entries())
      await node(page, id)
        .locator('[data-testid="title"]')
        .click({ modifiers: i ? ['Control'] : [] });
    await expect.poll(() => page.locator('[data-testid="node"].selected').count()).toBe(2);
    await page.keyboard.press('Control+g');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('[data-testid="frame"]').count()).toBe(1);
    const held = async () => {
      const frame = (await page.locator('[data-testid="frame"]').boundingBox())!;
      const boxes = (await nodeBoxes(page)).filter((b) => ['style1', 'encode_style1'].includes(b.id));
      return boxes.every((b) => b.x >= frame.x && b.y >= frame.y && b.x + b.width <= frame.x + frame.width && b.y + b.height <= frame.y + frame.height);
    };
    expect(await held()).toBe(true);
    const before = (await autosavedGraph(page)).nodes.find((n) => n.id === 'style1')!.position;
    await page.click('[data-testid="btn-arrange"]');
    await expect.poll(async () => (await autosavedGraph(page)).nodes.find((n) => n.id === 'style1')!.position).not.toEqual(before);
    await visualCheck(page, 'workday-arrange-frame-1440x900');
    await expect.poll(held).toBe(true);
    expect(realErrors(errors)).toEqual([]);
    await context.close();
  });

  it('the drop overlay goes away after a picture is dropped on a Load Image node', { timeout: 300_000 }, async () => {
    const { context, page, errors } = await openStudio(browser, studio);
    await openTemplate(page, 'epsilon-merge');
    const png = PNG.sync.write(new PNG({ width: 64, height: 64 }));
    // As a drag from the desktop: over the canvas first (the overlay shows), then dropped on the node.
    const fire = (types: string[]) =>
      page.evaluate(
        ({ types, b64 }) => {
          const w = window as unknown as { __drag?: DataTransfer };
          if (!w.__drag) {
            w.__drag = new DataTransfer();
            w.__drag.items.add(new File([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], 'holiday.png', { type: 'image/png' }));
          }
          const target = document.querySelector('[data-testid="node"][data-node-id="image"] .sd-image')!;
          for (const type of types) target.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: w.__drag }));
        },
        { types, b64: Buffer.from(png).toString('base64') },
      );
    await fire(['dragenter', 'dragover']);
    await expect.poll(() => page.locator('.sd-drop-overlay').count()).toBe(1);
    await fire(['drop']);
    await expect.poll(async () => (await autosavedGraph(page)).nodes.find((n) => n.id === 'image')?.params.image).not.toBe('builtin:sample');
    await expect.poll(() => page.locator('.sd-drop-overlay').count()).toBe(0);
    expect(realErrors(errors)).toEqual([]);
    await context.close();
  });

  it('a node’s failure goes once its value is changed back', { timeout: 300_000 }, async () => {
    const { context, page, errors } = await openStudio(browser, studio);
    await openTemplate(page, 'epsilon-merge');
    const model = node(page, 'model');
    await model.locator('[data-testid="param-model"]').fill('no-such-model');
    await page.keyboard.press('Control+Enter');
    await expect
      .poll(async () => (await model.getAttribute('data-status')) === 'failed' || (await model.locator('[data-testid="node-error"]').count()) > 0, {
        timeout: 120_000,
      })
      .toBe(true);
    await model.locator('[data-testid="param-model"]').fill('demo');
    await expect.poll(() => model.locator('[data-testid="node-error"]').count()).toBe(0);
    expect(await model.getAttribute('data-status')).not.toBe('failed');
    expect(realErrors(errors)).toEqual([]);
    await context.close();
  });
});

/**
 * Browser end-to-end, issue 14 items 1 and 6: Run always queues (Ctrl+Shift+Enter first in line),
 * the Queue panel lists every job of the server from every tab with progress, ETA and cancel, a
 * second tab follows the first tab's job, and the toolbar says what runs (node title, elapsed
 * time, ETA) without squeezing the document's name.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import type { QueueState } from '../server/protocol/events.ts';
import { e2eSkipReason, launchChromium, startStudio, type RunningStudio } from './support/e2e-browser.ts';
import { apiJson, openStudio, openTab, overlappingNodes, realErrors, visualCheck, runAndWait } from './support/e2e-helpers.ts';

const skipReason = e2eSkipReason();

describe.skipIf(skipReason !== null)('browser end-to-end: the queue, from every tab', () => {
  let studio: RunningStudio;
  let browser: Browser;

  beforeAll(async () => {
    [studio, browser] = await Promise.all([startStudio(), launchChromium()]);
  });

  afterAll(async () => {
    await browser?.close();
    await studio?.close();
  });

  const queued = async () => {
    const q = await apiJson<QueueState>(studio, '/api/queue');
    return (q.running ? 1 : 0) + q.pending.length;
  };

  it('queues every Run, shows every job to every tab with progress and ETA, and cancels from the panel', { timeout: 600_000 }, async () => {
    const { context, page: a, errors } = await openStudio(browser, studio);
    // A first (short) run teaches the server how long each node takes: later jobs get an ETA.
    const steps = a.locator('[data-testid="node"][data-node-id="invert"] [data-testid="param-steps"]');
    await steps.fill('30');
    await runAndWait(a);

    // A long run (more inversion steps), then Run again while it runs: a second job, queued.
    await steps.fill('600');
    await a.keyboard.press('Control+Enter');
    await expect.poll(() => a.locator('[data-testid="queue-indicator"]').getAttribute('data-state'), { timeout: 120_000 }).toBe('running');
    const first = (await a.locator('[data-testid="queue-indicator"]').getAttribute('data-job-id'))!;
    await a.keyboard.press('Control+Enter');
    await expect.poll(queued, { timeout: 120_000 }).toBe(2);
    expect((await a.locator('[data-testid="toast"]').allTextContents()).join('\n')).not.toContain('already in progress');
    await a.click('[data-testid="btn-run"]');
    await expect.poll(queued, { timeout: 120_000 }).toBe(3);

    // The toolbar names the node by its title, with its step, the time spent and the time left,
    // and the document's name keeps its room beside it.
    const pill = a.locator('[data-testid="queue-indicator"]');
    await expect.poll(() => pill.textContent(), { timeout: 120_000 }).toMatch(/^Invert \(CycleDiffusion\) \d+\/\d+ · \d+:\d\d · ETA \d+:\d\d$/);
    const docName = a.locator('[data-testid="doc-name"]');
    const fits = () => docName.evaluate((el) => el.scrollWidth <= el.clientWidth + 1 && el.clientWidth > 60);
    expect(await fits()).toBe(true);

    // A second tab of the same graph: it sees the job of the first one, on its nodes and in the toolbar.
    const { page: b, errors: errorsB } = await openTab(context, studio);
    const pillB = b.locator('[data-testid="queue-indicator"]');
    await expect.poll(() => pillB.getAttribute('data-job-id'), { timeout: 120_000 }).toBe(first);
    await expect.poll(() => pillB.textContent()).toContain('(another tab)');
    await expect.poll(() => b.locator('[data-testid="node"][data-node-id="invert"] [data-testid="node-progress"]').count(), { timeout: 120_000 }).toBe(1);

    // Its Queue panel lists all three jobs, with position, progress and ETA; Ctrl+Shift+Enter there
    // puts its own job first in line.
    await b.click('[data-testid="btn-queue"]');
    const items = b.locator('[data-testid="queue-panel"] [data-testid="queue-item"]');
    await expect.poll(() => items.count()).toBe(3);
    await b.keyboard.press('Control+Shift+Enter');
    await expect.poll(() => items.count()).toBe(4);
    await expect
      .poll(() => items.evaluateAll((els) => els.map((e) => [e.getAttribute('data-state'), e.getAttribute('data-mine')])))
      .toEqual([
        ['running', 'false'],
        ['queued', 'true'],
        ['queued', 'false'],
        ['queued', 'false'],
      ]);
    const running = items.first();
    await expect
      .poll(() => running.locator('[data-testid="queue-meta"]').textContent(), { timeout: 120_000 })
      .toMatch(/Invert \(CycleDiffusion\) \d+\/\d+ · node \d+ of \d+ · \d+:\d\d elapsed · ETA \d+:\d\d/);
    const bar = await running.locator('[data-testid="queue-progress"] .sd-progress-bar').evaluate((el) => parseFloat((el as HTMLElement).style.width));
    expect(bar).toBeGreaterThan(0);
    expect(await items.nth(1).locator('[data-testid="queue-meta"]').textContent()).toMatch(/done in ~\d+:\d\d/);
    expect(await overlappingNodes(b)).toEqual([]);
    await visualCheck(b, 'queue-panel-1440x900');
    await b.setViewportSize({ width: 1280, height: 720 });
    await expect.poll(() => items.count()).toBe(4);
    expect(await overlappingNodes(b)).toEqual([]);
    await visualCheck(b, 'queue-panel-1280x720');
    // At 1280 px, while a job runs, the toolbar still shows the whole name.
    await a.setViewportSize({ width: 1280, height: 720 });
    expect(await fits()).toBe(true);

    // Cancel from the panel: a queued job of the other tab leaves the line in both tabs, then the running one stops.
    await items.nth(3).locator('[data-testid="queue-cancel"]').click();
    await expect.poll(queued).toBe(3);
    await items.first().locator('[data-testid="queue-cancel"]').click();
    // Tab B's job was first in line: it runs now, and tab A (nothing of its own running) follows it.
    await expect.poll(() => items.first().getAttribute('data-mine'), { timeout: 120_000 }).toBe('true');
    await expect.poll(() => items.first().getAttribute('data-state')).toBe('running');
    const bJob = (await items.first().getAttribute('data-job-id'))!;
    await expect.poll(() => pillB.getAttribute('data-job-id')).toBe(bJob);
    // A's first job shows as cancelled in the finished list.
    await expect.poll(() => b.locator(`[data-testid="queue-finished"][data-job-id="${first}"]`).getAttribute('data-state')).toBe('cancelled');

    // Esc in B cancels what B looks at; A's last job then runs, and A looks at its own job again.
    await b.keyboard.press('Escape');
    await expect.poll(() => a.locator('[data-testid="queue-indicator"]').textContent(), { timeout: 120_000 }).not.toContain('another tab');
    await expect.poll(() => a.locator('[data-testid="queue-indicator"]').getAttribute('data-state')).toBe('running');
    await a.keyboard.press('Escape');
    await expect.poll(queued, { timeout: 120_000 }).toBe(0);

    expect(realErrors([...errors, ...errorsB])).toEqual([]);
    await context.close();
  });
});

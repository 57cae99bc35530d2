/**
 * What the browser tests do over and over: open the studio in a tab, find empty canvas, read node
 * boxes, check that nothing overlaps, wait for runs, save screenshots for a person to look at.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { expect } from 'vitest';
import { artifactsDir, projectRoot, watchErrors, type RunningStudio } from './e2e-browser.ts';

export interface Box {
  id: string;
  x: number;
  y: number;
  width: number;
  height: number;
}

export async function openTab(context: BrowserContext, studio: RunningStudio): Promise<{ page: Page; errors: string[] }> {
  const page = await context.newPage();
  const errors = watchErrors(page);
  await page.goto(studio.url);
  await page.waitForSelector('[data-testid="canvas"][data-ready="true"]', { timeout: 120_000 });
  return { page, errors };
}

export async function openStudio(browser: Browser, studio: RunningStudio, viewport = { width: 1440, height: 900 }) {
  const context = await browser.newContext({ viewport });
  const { page, errors } = await openTab(context, studio);
  return { context, page, errors };
}

/** Errors that are not the UI's fault: none expected, but keep the filter in one place. */
export function realErrors(errors: string[]): string[] {
  return errors.filter((e) => !/Failed to load resource: the server responded with a status of 4\d\d/.test(e));
}

/** Screen boxes of the nodes on the canvas. */
export async function nodeBoxes(page: Page): Promise<Box[]> {
  return page.locator('[data-testid="node"]').evaluateAll((els) =>
    els.map((e) => {
      const r = e.getBoundingClientRect();
      return { id: e.getAttribute('data-node-id') ?? '', x: r.x, y: r.y, width: r.width, height: r.height };
    }),
  );
}

export function intersects(a: Omit<Box, 'id'>, b: Omit<Box, 'id'>): boolean {
  return a.x < b.x + b.width - 0.5 && b.x < a.x + a.width - 0.5 && a.y < b.y + b.height - 0.5 && b.y < a.y + a.height - 0.5;
}

/** Pairs of nodes whose boxes overlap ("a × b"). */
export async function overlappingNodes(page: Page): Promise<string[]> {
  const boxes = await nodeBoxes(page);
  const pairs: string[] = [];
  for (let i = 0; i < boxes.length; i++)
    for (let j = i + 1; j < boxes.length; j++) if (intersects(boxes[i], boxes[j])) pairs.push(`${boxes[i].id} × ${boxes[j].id}`);
  return pairs;
}

/** A point of the canvas (relative to it) that no node, frame or overlay covers. */
export async function emptyCanvasPoint(page: Page): Promise<{ x: number; y: number }> {
  const point = await page.evaluate(() => {
    const canvas = document.querySelector('[data-testid="canvas"]')!.getBoundingClientRect();
    for (let y = canvas.height - 12; y > 12; y -= 37) {
      for (let x = 12; x < canvas.width - 12; x += 41) {
        const el = document.elementFromPoint(canvas.x + x, canvas.y + y);
        if (el && (el.matches('[data-testid="canvas"]') || el.parentElement?.matches('[data-testid="canvas"]')) && !el.closest('.sd-node, .sd-frame, svg'))
          return { x, y };
      }
    }
    return null;
  });
  if (!point) throw new Error('no empty spot on the canvas');
  return point;
}

/** Clicks empty canvas: deselects, and takes the focus out of a node's field. */
export async function clickEmptyCanvas(page: Page): Promise<void> {
  await page.click('[data-testid="canvas"]', { position: await emptyCanvasPoint(page) });
}

/** The graph as the studio autosaved it in this browser (the fields the tests read). */
export interface AutosavedGraph {
  nodes: { id: string; type: string; params: Record<string, unknown>; mode?: string; title?: string; position: { x: number; y: number } }[];
  edges: { from: { node: string; output: string }; to: { node: string; input: string }; points?: unknown[] }[];
  groups?: { title: string }[];
}

/**
 * The localStorage key of the autosave of the graph tab shown in this browser tab: one slot per graph
 * tab, named in the browser tab's session (whose id lives in sessionStorage).
 */
export async function autosaveKey(page: Page): Promise<string> {
  return page.evaluate(() => {
    const session = JSON.parse(localStorage.getItem(`dualstyle.session.v1.${sessionStorage.getItem('dualstyle.tab-id') ?? ''}`) ?? '{}') as { active?: string };
    return `dualstyle.autosave.v3.${session.active ?? ''}`;
  });
}

/** The autosaved graph of the graph tab shown (what a reload of the browser tab restores). */
export async function autosavedGraph(page: Page): Promise<AutosavedGraph> {
  const key = await autosaveKey(page);
  return page.evaluate((key) => (JSON.parse(localStorage.getItem(key) ?? '{}') as { graph: never }).graph, key);
}

export async function waitForRun(page: Page, state: 'done' | 'failed' | 'cancelled' = 'done', timeout = 300_000): Promise<void> {
  await expect.poll(() => page.locator('[data-testid="queue-indicator"]').getAttribute('data-state'), { timeout }).toBe(state);
}

/**
 * Starts a run (Ctrl+Enter unless `start` says otherwise) and waits until the toolbar follows a job other
 * than the one it showed before and that job reaches `state`. Waiting on the state alone could read the
 * previous run's "done" before the new job is even queued. Returns the new job's id.
 */
export async function runAndWait(
  page: Page,
  state: 'done' | 'failed' | 'cancelled' = 'done',
  timeout = 300_000,
  start: () => Promise<unknown> = () => page.keyboard.press('Control+Enter'),
): Promise<string> {
  const indicator = page.locator('[data-testid="queue-indicator"]');
  const jobShown = async () => ((await indicator.count()) > 0 ? indicator.getAttribute('data-job-id') : null);
  const before = await jobShown();
  await start();
  let id: string | null = null;
  await expect
    .poll(
      async () => {
        id = await jobShown();
        return id !== null && id !== before ? indicator.getAttribute('data-state') : `the toolbar still shows job ${before}`;
      },
      { timeout },
    )
    .toBe(state);
  return id!;
}

/** Opens a template (discarding unsaved changes when the studio asks). */
export async function openTemplate(page: Page, name: string): Promise<void> {
  await page.click('[data-testid="btn-open"]');
  const item = page.locator(`[data-testid="open-${name}"]`);
  await item.click();
  try {
    await expect
      .poll(async () => {
        if (await page.locator('[data-testid="confirm-ok"]').count()) await page.click('[data-testid="confirm-ok"]');
        // A click that landed while the list was being drawn again did not open it: once more.
        else if (await item.count()) await item.click({ timeout: 2_000 }).catch(() => undefined);
        return page.locator('[data-testid="doc-label"]').textContent();
      })
      .toContain(name);
  } catch (err) {
    await visualCheck(page, `failed-open-${name}`);
    throw err;
  }
}

/** A screenshot for people: test-artifacts/<name>.png (the visual check of the layout). */
export async function visualCheck(page: Page, name: string): Promise<string> {
  const dir = path.dirname(artifactsDir);
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.png`);
  await page.screenshot({ path: file });
  return file;
}

/** GET a JSON API route of the studio from the test (not through the page). */
export async function apiJson<T>(studio: RunningStudio, route: string): Promise<T> {
  return (await (await fetch(new URL(route, studio.url))).json()) as T;
}

export interface TemplateFile {
  nodes: { id: string; type: string; params: Record<string, unknown> }[];
  edges: { from: { node: string; output: string }; to: { node: string; input: string } }[];
}

export function readTemplate(name: string): TemplateFile {
  return JSON.parse(fs.readFileSync(path.join(projectRoot, 'graphs', `${name}.json`), 'utf8')) as TemplateFile;
}

/** Node ids on the canvas, sorted. */
export async function canvasNodeIds(page: Page): Promise<string[]> {
  return (await page.locator('[data-testid="node"]').evaluateAll((els) => els.map((e) => e.getAttribute('data-node-id') ?? ''))).sort();
}

/** Clicks a control that downloads a file and returns the file's name and bytes. */
export async function downloadFile(page: Page, selector: string): Promise<{ name: string; bytes: Uint8Array }> {
  const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 120_000 }), page.locator(selector).first().click()]);
  const file = await dl.path();
  return { name: dl.suggestedFilename(), bytes: new Uint8Array(fs.readFileSync(file)) };
}

export async function socketCenter(page: Page, nodeId: string, side: 'input' | 'output', key: string) {
  const box = await page.locator(`[data-testid="node"][data-node-id="${nodeId}"] [data-testid="${side}-${key}"] .sd-socket`).boundingBox();
  if (!box) throw new Error(`socket ${nodeId}.${key} not visible`);
  return { x: box.x + box.width / 2, y: box.y + box.height / 2 };
}

/** A mouse drag in small steps, as a hand does it (a connection from socket to socket, say). */
export async function drag(page: Page, from: { x: number; y: number }, to: { x: number; y: number }) {
  await page.mouse.move(from.x, from.y);
  await page.mouse.down();
  await page.mouse.move((from.x + to.x) / 2, (from.y + to.y) / 2, { steps: 5 });
  await page.mouse.move(to.x, to.y, { steps: 5 });
  await page.mouse.up();
}

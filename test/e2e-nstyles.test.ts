/**
 * Browser end-to-end: three styles and a painted mask in the real studio. The three-styles template
 * opens with a sampler of three style sockets; "+ style" and "− style" make sockets appear and go (a
 * removed socket's connection with it), each one undo step. The Mask is switched to painted, regions
 * are painted with the brushes of styles 2 and 3 and the eraser, strokes are undone and redone, the
 * graph runs on the demo model at a small size, and the mask's preview (each region in its style's
 * colour) and the result are checked on screen; the painting survives a reload, a full painting says so
 * until it is cleared, and strokes that cannot be read leave the painter standing with the reason. Screenshots go to
 * test-artifacts/ (nstyles-*.png).
 */
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { encodePoints, MAX_STROKES, STYLE_COLORS } from '../server/protocol/painting.ts';
import { e2eSkipReason, launchChromium, startStudio, type RunningStudio } from './support/e2e-browser.ts';
import { autosavedGraph, autosaveKey, clickEmptyCanvas, openStudio, openTemplate, realErrors, visualCheck, runAndWait } from './support/e2e-helpers.ts';

const skipReason = e2eSkipReason();
if (skipReason) console.warn(skipReason);

const node = (page: Page, id: string) => page.locator(`[data-testid="node"][data-node-id="${id}"]`);

/** The edges into a node's inputs, from the autosaved graph. */
async function inputsOf(page: Page, id: string): Promise<string[]> {
  const g = await autosavedGraph(page);
  return g.edges
    .filter((e) => e.to.node === id)
    .map((e) => `${e.from.node}>${e.to.input}`)
    .sort();
}

async function strokesOf(page: Page): Promise<{ style: number }[]> {
  const g = await autosavedGraph(page);
  return (g.nodes.find((n) => n.id === 'mask')!.params.strokes ?? []) as { style: number }[];
}

/** Puts strokes into the autosaved graph as a hand-edited file would, and reloads the studio with them. */
async function reloadWithStrokes(page: Page, strokes: unknown[]): Promise<void> {
  const key = await autosaveKey(page);
  await page.evaluate(
    ({ key, strokes }) => {
      const saved = JSON.parse(localStorage.getItem(key)!) as { graph: { nodes: { id: string; params: Record<string, unknown> }[] } };
      saved.graph.nodes.find((n) => n.id === 'mask')!.params.strokes = strokes;
      localStorage.setItem(key, JSON.stringify(saved));
    },
    { key, strokes },
  );
  await page.reload();
  await page.waitForSelector('[data-testid="canvas"][data-ready="true"]');
}

/** A pointer stroke across the painter, from and to fractions of its canvas. */
async function paint(page: Page, from: [number, number], to: [number, number]): Promise<void> {
  const box = (await node(page, 'mask').locator('[data-testid="paint-canvas"]').boundingBox())!;
  const at = ([x, y]: [number, number]) => ({ x: box.x + x * box.width, y: box.y + y * box.height });
  const a = at(from);
  const b = at(to);
  await page.mouse.move(a.x, a.y);
  await page.mouse.down();
  await page.mouse.move(b.x, b.y, { steps: 12 });
  await page.mouse.up();
}

const rgb = (hex: string) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));

describe.skipIf(skipReason !== null)('browser end-to-end: three styles and a painted mask', () => {
  let studio: RunningStudio;
  let browser: Browser;

  beforeAll(async () => {
    [studio, browser] = await Promise.all([startStudio(), launchChromium()]);
  });
  afterAll(async () => {
    await browser?.close();
    await studio?.close();
  });

  it('adds and removes style sockets with undo, paints a mask, runs three styles and shows the regions and the result', { timeout: 600_000 }, async () => {
    const { context, page, errors } = await openStudio(browser, studio, { width: 1920, height: 1200 });
    await openTemplate(page, 'three-styles');
    const sampler = node(page, 'eps_merge');
    await expect.poll(() => sampler.locator('[data-testid^="input-style"]').count()).toBe(3);
    expect(await sampler.locator('[data-testid="count-style"]').textContent()).toBe('3 styles');
    const wired = await inputsOf(page, 'eps_merge');
    expect(wired).toContain('encode_style3>style3');

    // + style: a fourth socket appears; undo takes it away again.
    await sampler.locator('[data-testid="add-style"]').click();
    await expect.poll(() => sampler.locator('[data-testid="input-style4"]').count()).toBe(1);
    await expect.poll(() => page.locator('[data-testid="btn-problems"]').textContent()).not.toContain('No problems');
    await visualCheck(page, 'nstyles-1-four-sockets');
    await clickEmptyCanvas(page);
    await page.keyboard.press('Control+z');
    await expect.poll(() => sampler.locator('[data-testid^="input-style"]').count()).toBe(3);

    // − style: the third socket goes with its connection; undo brings both back.
    const connections = await page.locator('[data-testid="connection"]').count();
    await sampler.locator('[data-testid="remove-style"]').click();
    await expect.poll(() => sampler.locator('[data-testid^="input-style"]').count()).toBe(2);
    await expect.poll(() => inputsOf(page, 'eps_merge')).toEqual(wired.filter((w) => w !== 'encode_style3>style3'));
    await expect.poll(() => page.locator('[data-testid="connection"]').count()).toBe(connections - 1);
    await clickEmptyCanvas(page);
    await page.keyboard.press('Control+z');
    await expect.poll(() => sampler.locator('[data-testid^="input-style"]').count()).toBe(3);
    await expect.poll(() => inputsOf(page, 'eps_merge')).toEqual(wired);
    await expect.poll(() => page.locator('[data-testid="connection"]').count()).toBe(connections);
    // Redo removes it again, undo puts it back once more (the connection object survives both).
    await page.keyboard.press('Control+Shift+z');
    await expect.poll(() => inputsOf(page, 'eps_merge')).toEqual(wired.filter((w) => w !== 'encode_style3>style3'));
    await page.keyboard.press('Control+z');
    await expect.poll(() => inputsOf(page, 'eps_merge')).toEqual(wired);

    // Small and quick: the picture at 96 px, 12 steps.
    await node(page, 'image').locator('[data-testid="param-max_side"]').fill('96');
    await node(page, 'invert').locator('[data-testid="param-steps"]').fill('12');
    await node(page, 'invert').locator('[data-testid="param-skip"]').fill('2');

    // The mask, painted: its painter appears with a brush per style.
    const mask = node(page, 'mask');
    // A field off screen that the browser brings into view (focus, Tab) scrolls the canvas's container.
    const scrolled = () => page.evaluate(() => [...document.querySelectorAll('*')].filter((e) => e.scrollTop > 0 || e.scrollLeft > 0).map((e) => e.className));
    await mask.locator('[data-testid="param-styles"]').focus();
    expect(await scrolled()).toEqual(['sd-canvas']);
    await mask.locator('[data-testid="param-shape"]').selectOption('painted');
    await mask.locator('[data-testid="mask-painter"]').waitFor();
    // The whole graph in view (the template is taller than the window), the painter with it.
    await page.click('[data-testid="btn-fit"]');
    await expect
      .poll(async () => {
        const box = await mask.locator('[data-testid="paint-canvas"]').boundingBox();
        return box !== null && box.y > 0 && box.y + box.height < 1200;
      })
      .toBe(true);
    expect(await mask.locator('[data-testid^="brush-style-"]').count()).toBe(3);
    expect(await mask.locator('[data-testid="control-angle"]').count()).toBe(0);
    // Run once, so the painter shows the picture to paint on.
    await clickEmptyCanvas(page);
    await runAndWait(page);
    await expect.poll(() => mask.locator('[data-testid="paint-status"]').textContent()).toContain('0 strokes');
    expect(await mask.locator('[data-testid="paint-status"]').textContent()).not.toContain('run once');

    // Style 2 across the middle, style 3 along the bottom, then the eraser over part of style 2.
    await mask.locator('[data-testid="brush-style-2"]').click();
    await paint(page, [0.3, 0.45], [0.7, 0.45]);
    await mask.locator('[data-testid="brush-style-3"]').click();
    await paint(page, [0.05, 0.9], [0.95, 0.9]);
    await mask.locator('[data-testid="brush-eraser"]').click();
    await paint(page, [0.65, 0.45], [0.7, 0.45]);
    await expect.poll(async () => (await strokesOf(page)).map((s) => s.style)).toEqual([2, 3, 0]);
    // Each stroke is one undo step.
    await clickEmptyCanvas(page);
    await page.keyboard.press('Control+z');
    await expect.poll(async () => (await strokesOf(page)).map((s) => s.style)).toEqual([2, 3]);
    await page.keyboard.press('Control+Shift+z');
    await expect.poll(async () => (await strokesOf(page)).map((s) => s.style)).toEqual([2, 3, 0]);
    await expect.poll(() => mask.locator('[data-testid="paint-status"]').textContent()).toContain('3 strokes');
    await visualCheck(page, 'nstyles-2-painted');

    // Run the three styles with the painted mask.
    await runAndWait(page);
    const result = node(page, 'save_eps').locator('[data-testid="node-result-img"]');
    await expect.poll(() => result.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0)).toBe(true);
    expect(await result.evaluate((img: HTMLImageElement) => [img.naturalWidth, img.naturalHeight])).toEqual([96, 72]);

    // The mask's preview from the run: each region in its style's colour, where it was painted.
    const preview = mask.locator('[data-testid="node-result-img"]');
    await expect.poll(() => preview.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0)).toBe(true);
    const src = await preview.getAttribute('src');
    const png = PNG.sync.read(Buffer.from(await (await fetch(new URL(src!, studio.url))).arrayBuffer()));
    expect([png.width, png.height]).toEqual([128, 96]);
    /** The style whose colour (times the picture's brightness) is nearest the preview's pixel at (x, y) in 0..1. */
    const styleAt = (x: number, y: number) => {
      const i = (Math.floor(y * png.height) * png.width + Math.floor(x * png.width)) * 4;
      const [r, g, b] = [png.data[i]!, png.data[i + 1]!, png.data[i + 2]!];
      const hue = (c: number[]) => c.map((v) => v / Math.max(1, ...c));
      const distances = STYLE_COLORS.slice(0, 3).map((hex) => hue(rgb(hex)).reduce((d, v, k) => d + (v - hue([r, g, b])[k]!) ** 2, 0));
      return distances.indexOf(Math.min(...distances)) + 1;
    };
    expect([styleAt(0.4, 0.45), styleAt(0.5, 0.9), styleAt(0.1, 0.15), styleAt(0.9, 0.2)]).toEqual([2, 3, 1, 1]);
    // Where the eraser went, the fill style came back.
    expect(styleAt(0.69, 0.45)).toBe(1);
    // The mask's caption is the picture's true size (the painter's canvas has the picture's shape).
    expect(await mask.locator('[data-testid="media-size"]').textContent()).toBe('96×72');
    const canvasBox = (await mask.locator('[data-testid="paint-canvas"]').boundingBox())!;
    expect(canvasBox.width / canvasBox.height).toBeCloseTo(96 / 72, 1);
    // Fit shows the whole graph even after the browser scrolled the container (it showed an empty canvas).
    await page.evaluate(() => document.querySelector('.sd-canvas')!.scrollTo(0, 900));
    expect(await scrolled()).toEqual(['sd-canvas']);
    await page.click('[data-testid="btn-fit"]');
    expect(await scrolled()).toEqual([]);
    for (const id of ['mask', 'save_eps', 'model']) {
      const box = (await node(page, id).boundingBox())!;
      expect(box.y >= 0 && box.x >= 0 && box.y + box.height <= 1200 && box.x + box.width <= 1920, id).toBe(true);
    }
    await visualCheck(page, 'nstyles-3-result');

    // The painting is in the graph: a reload (autosave) brings it back.
    await page.reload();
    await page.waitForSelector('[data-testid="canvas"][data-ready="true"]');
    await expect.poll(() => node(page, 'mask').locator('[data-testid="paint-status"]').textContent()).toContain('3 strokes');
    await expect.poll(async () => (await strokesOf(page)).map((s) => s.style)).toEqual([2, 3, 0]);
    await expect.poll(() => node(page, 'eps_merge').locator('[data-testid^="input-style"]').count()).toBe(3);

    // A full painting (MAX_STROKES strokes) refuses one more stroke and says so; Clear takes the note away.
    const full = Array.from({ length: MAX_STROKES }, (_, i) => ({
      style: 1 + (i % 3),
      radius: 0.02,
      points: encodePoints([i / MAX_STROKES, 0.1, i / MAX_STROKES, 0.2]),
    }));
    await reloadWithStrokes(page, full);
    const fullStatus = node(page, 'mask').locator('[data-testid="paint-status"]');
    await expect.poll(() => fullStatus.textContent()).toMatch(new RegExp(`^${MAX_STROKES} strokes`));
    await page.click('[data-testid="btn-fit"]');
    await paint(page, [0.3, 0.6], [0.6, 0.6]);
    await expect.poll(() => fullStatus.textContent()).toContain('The painting is full');
    await node(page, 'mask').locator('[data-testid="paint-clear"]').click();
    await expect.poll(() => fullStatus.textContent()).toMatch(/^0 strokes/);
    await clickEmptyCanvas(page);
    await page.keyboard.press('Control+z');
    await expect.poll(() => fullStatus.textContent()).toMatch(new RegExp(`^${MAX_STROKES} strokes`));

    // Strokes that cannot be read (a graph edited by hand): the painter stays, paints none and says
    // what is wrong (the node vanished: the error was thrown while drawing it); Clear starts again.
    await reloadWithStrokes(
      page,
      full.map((st, i) => (i === 1 ? { ...st, points: 'AAAAA!' } : st)),
    );
    const status = node(page, 'mask').locator('[data-testid="paint-status"]');
    await expect.poll(() => status.textContent()).toContain('The painting cannot be read, stroke 2 (points): points are 4 base64url characters each');
    expect(await node(page, 'mask').locator('[data-testid="paint-canvas"]').count()).toBe(1);
    await node(page, 'mask').locator('[data-testid="paint-clear"]').click();
    await expect.poll(() => status.textContent()).toMatch(/^0 strokes/);
    // The autosave follows the drawn change (it is written after it): wait for it.
    await expect.poll(() => strokesOf(page)).toEqual([]);
    expect(realErrors(errors)).toEqual([]);
    await context.close();
  });
});

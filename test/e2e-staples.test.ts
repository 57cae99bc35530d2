/**
 * Browser end-to-end, issue 14 items 3 and 7: the right-click menu (search by name, type and what a
 * node does; Esc; above the empty-graph hint), and the staples: copy/paste (also between tabs),
 * duplicate, bypass and mute (honoured by the run), frames and reroute points (through autosave,
 * export and the PNG round trip), renaming, the shortcut sheet, a picture dropped on the canvas.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { PNG } from 'pngjs';
import sharp from 'sharp';
import type { Catalog } from '../server/protocol/catalog.ts';
import { GRAPH_KEYWORD, readPngText } from '../client/src/png-graph.ts';
import { dropFile, e2eSkipReason, launchChromium, recordNodeStatuses, startStudio, type RunningStudio } from './support/e2e-browser.ts';
import {
  apiJson,
  autosavedGraph,
  clickEmptyCanvas,
  emptyCanvasPoint,
  openStudio,
  openTab,
  openTemplate,
  overlappingNodes,
  realErrors,
  runAndWait,
} from './support/e2e-helpers.ts';

const skipReason = e2eSkipReason();

const node = (page: Page, id: string) => page.locator(`[data-testid="node"][data-node-id="${id}"]`);
const ids = async (page: Page) => (await page.locator('[data-testid="node"]').evaluateAll((els) => els.map((e) => e.getAttribute('data-node-id')!))).sort();

async function select(page: Page, ...nodeIds: string[]) {
  await clickEmptyCanvas(page);
  for (const [i, id] of nodeIds.entries())
    await node(page, id)
      .locator('[data-testid="title"]')
      .click({ modifiers: i ? ['Control'] : [] });
  await expect.poll(() => page.locator('[data-testid="node"].selected').count()).toBe(nodeIds.length);
}

/** A point of a connection that nothing covers, on the screen (nearest its middle). */
async function pointOnConnection(page: Page, connectionId: string) {
  return page.locator(`[data-connection-id="${connectionId}"] path`).evaluate((path: SVGPathElement) => {
    const length = path.getTotalLength();
    const tries = Array.from({ length: 39 }, (_, i) => 0.5 + (i % 2 ? 1 : -1) * Math.ceil(i / 2) * 0.025);
    for (const f of tries) {
      const p = path.getPointAtLength(length * f);
      const s = new DOMPoint(p.x, p.y).matrixTransform(path.getScreenCTM()!);
      if (document.elementFromPoint(s.x, s.y) === path) return { x: s.x, y: s.y };
    }
    throw new Error('the connection is covered everywhere');
  });
}

async function download(page: Page, click: () => Promise<void>): Promise<{ name: string; bytes: Uint8Array }> {
  const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 120_000 }), click()]);
  const { readFileSync } = await import('node:fs');
  return { name: dl.suggestedFilename(), bytes: new Uint8Array(readFileSync(await dl.path())) };
}

describe.skipIf(skipReason !== null)('browser end-to-end: menu and staples', () => {
  let studio: RunningStudio;
  let browser: Browser;
  let catalog: Catalog;

  beforeAll(async () => {
    [studio, browser] = await Promise.all([startStudio(), launchChromium()]);
    catalog = await apiJson<Catalog>(studio, '/api/catalog');
  });

  afterAll(async () => {
    await browser?.close();
    await studio?.close();
  });

  it('right-click menu: finds nodes by name, type and purpose, closes on Esc, draws above the empty-graph hint', async () => {
    const { context, page, errors } = await openStudio(browser, studio);
    const canvas = (await page.locator('[data-testid="canvas"]').boundingBox())!;
    const spot = await emptyCanvasPoint(page);
    await page.mouse.click(canvas.x + spot.x, canvas.y + spot.y, { button: 'right' });
    // Typing goes to the menu's search; "vae" finds both VAE nodes (before: only category names matched).
    await page.keyboard.type('vae');
    // Offered outside the canvas's own nodes (whatever the menu is made of).
    const shown = (text: string) =>
      page.evaluate(
        (t) =>
          [...document.querySelectorAll('body *')].filter(
            (el) => el.childElementCount === 0 && el.textContent?.trim() === t && !el.closest('[data-testid="node"]') && el.getBoundingClientRect().width > 0,
          ).length,
        text,
      );
    await expect.poll(() => shown('VAE Encode')).toBeGreaterThan(0);
    expect(await shown('VAE Decode')).toBeGreaterThan(0);
    const menu = page.locator('[data-testid="menu"]');
    const found = async (q: string) => {
      await page.fill('[data-testid="menu-search"]', q);
      return menu.locator('[data-testid="menu-node"]').evaluateAll((els) => els.map((e) => e.getAttribute('data-node-type')));
    };
    expect(await found('vae')).toEqual(expect.arrayContaining(['VAEEncode', 'VAEDecode']));
    expect(await found('encode')).toEqual(expect.arrayContaining(['VAEEncode', 'EncodeText']));
    const merging = catalog.nodes.filter((n) => /merge/i.test(n.title)).map((n) => n.type);
    expect(merging.length).toBeGreaterThanOrEqual(3);
    expect(await found('merge')).toEqual(expect.arrayContaining(merging));
    await page.keyboard.press('Escape');
    await expect.poll(() => menu.count()).toBe(0);

    // On an empty graph the hint sits in the middle; the menu opened there is on top of it.
    await page.click('[data-testid="btn-new"]');
    await expect.poll(() => ids(page)).toEqual([]);
    const hint = (await page.locator('.sd-empty-hint').boundingBox())!;
    await page.mouse.click(hint.x + hint.width / 2, hint.y + 10, { button: 'right' });
    await menu.waitFor();
    const onTop = await page.locator('[data-testid="menu-search"]').evaluate((el) => {
      const r = el.getBoundingClientRect();
      return document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2) === el;
    });
    expect(onTop).toBe(true);
    await page.keyboard.type('vae enc');
    await page.keyboard.press('Enter');
    await expect.poll(() => ids(page)).toEqual(['VAEEncode-1']);
    expect(realErrors(errors)).toEqual([]);
    await context.close();
  });

  it('copy and paste between tabs (with or without incoming connections), duplicate, rename, shortcut sheet, a dropped picture', async () => {
    const { context, page: a, errors } = await openStudio(browser, studio);
    const connections = (p: Page) => p.locator('[data-testid="connection"]').count();
    await select(a, 'source', 'encode_source');
    await a.keyboard.press('Control+c');
    // Another tab of the same browser takes it.
    const { page: b, errors: errorsB } = await openTab(context, studio);
    await b.click('[data-testid="btn-new"]');
    if (await b.locator('[data-testid="confirm-dialog"]').count()) await b.click('[data-testid="confirm-ok"]');
    await expect.poll(() => ids(b)).toEqual([]);
    await b.mouse.move(500, 400);
    await b.keyboard.press('Control+v');
    await expect.poll(() => ids(b)).toEqual(['EncodeText-1', 'TextPrompt-1']);
    expect(await connections(b)).toBe(1);
    expect(await node(b, 'TextPrompt-1').locator('[data-testid="param-text"]').inputValue()).toBe(
      await node(a, 'source').locator('[data-testid="param-text"]').inputValue(),
    );
    expect(await node(b, 'TextPrompt-1').locator('[data-testid="title"]').textContent()).toBe('Source prompt');

    // Ctrl+Shift+V keeps the connection from the model node, which was not copied; Ctrl+V does not.
    const before = await connections(a);
    await a.keyboard.press('Control+Shift+v');
    await expect.poll(() => connections(a)).toBe(before + 2);
    await a.keyboard.press('Control+v');
    await expect.poll(() => connections(a)).toBe(before + 3);
    // Ctrl+D duplicates beside the selection, on free space.
    const count = (await ids(a)).length;
    await select(a, 'mask');
    await a.keyboard.press('Control+d');
    await expect.poll(async () => (await ids(a)).length).toBe(count + 1);
    expect(await overlappingNodes(a)).toEqual([]);

    // Double-clicking a title renames the node.
    await node(a, 'mask').locator('[data-testid="title"]').dblclick();
    await a.fill('[data-testid="title-input"]', 'Left-right mask');
    await a.keyboard.press('Enter');
    await expect.poll(() => node(a, 'mask').locator('[data-testid="title"]').textContent()).toBe('Left-right mask');
    await expect.poll(async () => (await autosavedGraph(a)).nodes.find((n) => n.id === 'mask')?.title).toBe('Left-right mask');

    // ? shows the shortcut sheet.
    await clickEmptyCanvas(a);
    await a.keyboard.press('Shift+?');
    const help = a.locator('[data-testid="help"]');
    await help.waitFor();
    for (const keys of ['Ctrl+C / Ctrl+V', 'Ctrl+D', 'Ctrl+B', 'Ctrl+M', 'Ctrl+G', 'Ctrl+Shift+Enter']) expect(await help.textContent()).toContain(keys);
    await a.keyboard.press('Escape');
    await expect.poll(() => help.count()).toBe(0);

    // A picture dropped on the canvas arrives in a new Load Image node, under its own name.
    const jpeg = await sharp({ create: { width: 80, height: 60, channels: 3, background: '#c08040' } })
      .jpeg()
      .toBuffer();
    await dropFile(a, '[data-testid="canvas"]', { name: 'beach.jpg', mimeType: 'image/jpeg', bytes: new Uint8Array(jpeg) });
    await expect.poll(() => node(a, 'LoadImage-1').locator('[data-testid="image-name"]').textContent(), { timeout: 120_000 }).toBe('beach.jpg · 80×60');
    expect(realErrors([...errors, ...errorsB])).toEqual([]);
    await context.close();
  });

  it('bypass and mute change what runs; frames and reroute points survive reload, export and the PNG round trip', { timeout: 600_000 }, async () => {
    const { context, page, errors } = await openStudio(browser, studio);
    await openTemplate(page, 'comparison');
    await page.click('[data-testid="btn-fit"]');
    // Fewer inversion steps: the same pictures' worth of checks, in a fraction of the time.
    await page.locator('[data-testid="node"][data-node-id="invert"] [data-testid="param-steps"]').fill('30');
    // A frame around the inputs, titled.
    await select(page, 'model', 'image');
    await page.keyboard.press('Control+g');
    await page.keyboard.press('Control+a');
    await page.keyboard.type('Inputs');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('[data-testid="frame-title"]').textContent()).toBe('Inputs');
    // A reroute point on the mask's long connection (double-click it).
    const wire = 'mask.mask->pixel_merge.mask';
    const p = await pointOnConnection(page, wire);
    await page.mouse.dblclick(p.x, p.y);
    await expect.poll(() => page.locator('[data-testid="pin"]').count()).toBe(1);
    // Bypass the pixel merge (it passes image 1 on); mute the attention sampler: what needs it does not
    // run (its decoder, output and Metrics node), the Metrics Table runs without that column.
    await select(page, 'pixel_merge');
    await page.keyboard.press('Control+b');
    await select(page, 'attn_merge');
    await page.keyboard.press('Control+m');
    await expect.poll(() => node(page, 'pixel_merge').getAttribute('data-mode')).toBe('bypass');
    await expect.poll(() => node(page, 'attn_merge').getAttribute('data-mode')).toBe('mute');
    // The autosave is written after the change is drawn: wait for it to hold both modes.
    const modesSaved = async () =>
      (await autosavedGraph(page)).nodes
        .filter((n) => n.mode)
        .map((n) => `${n.id}:${n.mode}`)
        .sort();
    await expect.poll(modesSaved).toEqual(['attn_merge:mute', 'pixel_merge:bypass']);
    const saved = await autosavedGraph(page);
    expect(saved.groups?.map((g) => g.title)).toEqual(['Inputs']);
    expect(saved.edges.find((e) => e.to.node === 'pixel_merge' && e.to.input === 'mask')?.points).toHaveLength(1);

    const statuses = await recordNodeStatuses(page);
    await runAndWait(page, 'done', 200_000);
    const seen = await statuses();
    for (const id of ['attn_merge', 'decode_attn', 'save_attn', 'metrics_attention', 'pixel_merge']) expect(seen[id], `${id} ran`).toBeUndefined();
    expect(seen.eps_merge).toContain('done');
    expect(seen.metrics_table).toContain('done');
    expect(await node(page, 'metrics_table').locator('thead th').allTextContents()).not.toContain('attention');
    // The "pixel merge" output shows image 1 (style 1 alone), pixel for pixel.
    const pixels = async (id: string) => {
      const src = (await node(page, id).locator('[data-testid="node-result"] img').getAttribute('src'))!;
      return PNG.sync.read(Buffer.from(await (await fetch(new URL(src, studio.url))).arrayBuffer())).data;
    };
    expect(Buffer.compare(await pixels('save_pixel'), await pixels('save_style1'))).toBe(0);

    // A result PNG, reload (autosave), export JSON: all carry the frame, the point and the modes.
    const png = await download(page, () => node(page, 'save_eps').locator('[data-testid="download"]').click());
    await page.reload();
    await page.waitForSelector('[data-testid="canvas"][data-ready="true"]');
    await expect.poll(() => page.locator('[data-testid="frame-title"]').textContent()).toBe('Inputs');
    expect(await page.locator('[data-testid="pin"]').count()).toBe(1);
    await page.click('[data-testid="btn-more"]');
    const exported = JSON.parse(Buffer.from((await download(page, () => page.click('[data-testid="btn-export"]'))).bytes).toString('utf8'));
    expect(exported.groups.map((g: { title: string }) => g.title)).toEqual(['Inputs']);
    expect(exported.edges.find((e: { to: { node: string; input: string } }) => e.to.node === 'pixel_merge' && e.to.input === 'mask').points).toHaveLength(1);
    const embedded = JSON.parse((await readPngText(png.bytes)).get(GRAPH_KEYWORD)!);
    expect(embedded.groups.map((g: { title: string }) => g.title)).toEqual(['Inputs']);
    await page.click('[data-testid="btn-new"]');
    if (await page.locator('[data-testid="confirm-dialog"]').count()) await page.click('[data-testid="confirm-ok"]');
    await expect.poll(() => ids(page)).toEqual([]);
    expect(await page.locator('[data-testid="frame"]').count()).toBe(0);
    await dropFile(page, '[data-testid="canvas"]', { name: png.name, mimeType: 'image/png', bytes: png.bytes });
    await expect.poll(() => page.locator('[data-testid="frame-title"]').textContent()).toBe('Inputs');
    expect(await page.locator('[data-testid="pin"]').count()).toBe(1);
    expect(await node(page, 'pixel_merge').getAttribute('data-mode')).toBe('bypass');
    expect(await node(page, 'attn_merge').getAttribute('data-mode')).toBe('mute');
    // Ctrl+B again gives the node its run back.
    await select(page, 'pixel_merge');
    await page.keyboard.press('Control+b');
    await expect.poll(() => node(page, 'pixel_merge').getAttribute('data-mode')).toBe('');
    expect(realErrors(errors)).toEqual([]);
    await context.close();
  });
});

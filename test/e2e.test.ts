/**
 * Browser end-to-end: the real studio (createStudio on a random port, temp data folder) driven in
 * Debian's Chromium through playwright-core. Screenshots of each stage go to test-artifacts/e2e/.
 * This file: building a graph (typed connections, live validation, undo, save, restore) and the
 * keyboard; e2e-run.test.ts runs the templates.
 *
 * Needs /usr/bin/chromium and a built client (dist/client, `npm run build`); skips with a message
 * otherwise.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import type { Catalog, CatalogNode } from '../server/protocol/catalog.ts';
import { e2eSkipReason, launchChromium, projectRoot, screenshot, startStudio, type RunningStudio } from './support/e2e-browser.ts';
import { canvasNodeIds, clickEmptyCanvas, drag, openStudio, readTemplate, realErrors, socketCenter, type TemplateFile } from './support/e2e-helpers.ts';

const skipReason = e2eSkipReason();
if (skipReason) console.warn(`[e2e] ${skipReason}`);
const TEMPLATE = 'epsilon-merge';
const hasTemplate = fs.existsSync(path.join(projectRoot, 'graphs', `${TEMPLATE}.json`));
if (!skipReason && !hasTemplate) console.warn(`[e2e] graphs/${TEMPLATE}.json is missing: the template tests are skipped`);

describe.skipIf(skipReason !== null)('browser end-to-end', () => {
  let studio: RunningStudio;
  let browser: Browser;
  let catalog: Catalog;

  beforeAll(async () => {
    [studio, browser] = await Promise.all([startStudio(), launchChromium()]);
    catalog = (await (await fetch(new URL('/api/catalog', studio.url))).json()) as Catalog;
  });

  afterAll(async () => {
    await browser?.close();
    await studio?.close();
  });

  /** Double-clicks the canvas at (x, y) (relative to the canvas) and adds `spec` from the palette. */
  async function addNodeAt(page: Page, spec: CatalogNode, x: number, y: number): Promise<string> {
    const canvas = (await page.locator('[data-testid="canvas"]').boundingBox())!;
    const before = await page.locator(`[data-testid="node"][data-node-type="${spec.type}"]`).count();
    await page.mouse.dblclick(canvas.x + x, canvas.y + y);
    await page.waitForSelector('[data-testid="palette"]');
    await page.fill('[data-testid="palette-search"]', spec.title);
    await page.click(`[data-testid="palette-item-${spec.type}"]`);
    const nodes = page.locator(`[data-testid="node"][data-node-type="${spec.type}"]`);
    await expect.poll(() => nodes.count()).toBe(before + 1);
    return (await nodes.nth(before).getAttribute('data-node-id'))!;
  }
  it('renders the catalog, refuses type errors, validates live, undoes a parameter edit, saves and restores', async () => {
    // Pick nodes from the catalog itself: a consumer with two required inputs, a producer that fits
    // its first input, one that does not, and a node with a number parameter.
    const byOutput = (type: string) => catalog.nodes.find((n) => n.outputs.some((o) => o.type === type));
    const consumer = catalog.nodes.find((n) => n.inputs.filter((i) => !i.optional).length >= 2 && byOutput(n.inputs[0].type))!;
    expect(consumer, 'catalog has a node with two required inputs').toBeTruthy();
    const input = consumer.inputs[0];
    const fits = byOutput(input.type)!;
    const misfit = catalog.nodes.find(
      (n) =>
        n !== consumer &&
        n.outputs.length > 0 &&
        n.outputs.every((o) => o.type !== input.type) &&
        n.params.some((p) => p.kind === 'integer' || p.kind === 'number'),
    )!;
    expect(misfit, 'catalog has a producer of another type with a number parameter').toBeTruthy();

    const { context, page, errors } = await openStudio(browser, studio);
    await expect.poll(() => page.locator('[data-testid="health"]').textContent()).toContain('Server OK');
    // A first visit (nothing autosaved) opens the epsilon-merge template, unchanged; New empties it.
    if (hasTemplate) {
      const template = JSON.parse(fs.readFileSync(path.join(projectRoot, 'graphs', `${TEMPLATE}.json`), 'utf8')) as { nodes: unknown[] };
      await expect.poll(() => page.locator('[data-testid="node"]').count()).toBe(template.nodes.length);
      expect(await page.locator('[data-testid="doc-label"]').textContent()).toContain(TEMPLATE);
      expect(await page.locator('[data-testid="dirty"]').count()).toBe(0);
    }
    await page.click('[data-testid="btn-new"]');
    await expect.poll(() => page.locator('[data-testid="node"]').count()).toBe(0);
    expect(await page.locator('[data-testid="doc-label"]').textContent()).toContain('Untitled graph');

    const fitsId = await addNodeAt(page, fits, 200, 120);
    const misfitId = await addNodeAt(page, misfit, 200, 480);
    const consumerId = await addNodeAt(page, consumer, 720, 300);
    // Rendered from the catalog: title, sockets, a control per parameter.
    const consumerNode = page.locator(`[data-testid="node"][data-node-id="${consumerId}"]`);
    await expect.poll(() => consumerNode.locator('[data-testid="title"]').textContent()).toBe(consumer.title);
    for (const i of consumer.inputs) expect(await consumerNode.locator(`[data-testid="input-${i.name}"]`).count()).toBe(1);
    for (const p of misfit.params)
      expect(await page.locator(`[data-testid="node"][data-node-id="${misfitId}"] [data-testid="control-${p.name}"]`).count()).toBe(1);
    await screenshot(page, '01-nodes-added');

    // A type-incompatible connection cannot be drawn, and the user is told why.
    const wrong = misfit.outputs[0];
    await drag(page, await socketCenter(page, misfitId, 'output', wrong.name), await socketCenter(page, consumerId, 'input', input.name));
    await expect
      .poll(() => page.locator('[data-testid="toast"]').allTextContents())
      .toEqual(expect.arrayContaining([expect.stringContaining(`Cannot connect ${wrong.type} to ${input.type}`)]));
    expect(await page.locator('[data-testid="connection"]').count()).toBe(0);
    // The matching one can.
    const right = fits.outputs.find((o) => o.type === input.type)!;
    await drag(page, await socketCenter(page, fitsId, 'output', right.name), await socketCenter(page, consumerId, 'input', input.name));
    await expect.poll(() => page.locator('[data-testid="connection"]').count()).toBe(1);
    await screenshot(page, '02-connections');

    // Live validation: the consumer still misses a required input; the node and the panel say so.
    const missing = consumer.inputs.filter((i) => !i.optional)[1];
    await expect.poll(() => consumerNode.getAttribute('class')).toContain('has-issues');
    await expect.poll(() => consumerNode.locator('[data-testid="node-issues"]').textContent()).toBeTruthy();
    // The Problems panel opens from its button (closed, it leaves the canvas the room).
    await page.click('[data-testid="btn-problems"]');
    const problem = page.locator(`[data-testid="problem"][data-node-id="${consumerId}"]`).first();
    await expect.poll(() => problem.count()).toBeGreaterThan(0);
    expect((await consumerNode.locator(`[data-testid="input-${missing.name}"]`).getAttribute('class')) ?? '').toContain('invalid');
    await clickEmptyCanvas(page); // deselect all
    await problem.click();
    await expect.poll(() => consumerNode.getAttribute('class')).toContain('selected');
    await screenshot(page, '03-validation-problem-focused');
    await page.click('[data-testid="btn-fit"]');

    // Undo of a parameter edit (and redo).
    const numberParam = misfit.params.find((p) => p.kind === 'integer' || p.kind === 'number')!;
    const field = page.locator(`[data-testid="node"][data-node-id="${misfitId}"] [data-testid="param-${numberParam.name}"]`);
    const original = await field.inputValue();
    const edited = String(Math.max(Number(numberParam.min ?? 0), Number(original) === 64 ? 128 : 64));
    await field.fill(edited);
    await expect.poll(() => field.inputValue()).toBe(edited);
    await clickEmptyCanvas(page);
    await page.keyboard.press('Control+z');
    await expect.poll(() => field.inputValue()).toBe(original);
    await page.keyboard.press('Control+Shift+z');
    await expect.poll(() => field.inputValue()).toBe(edited);
    await screenshot(page, '04-param-undo-redo');

    // Save via the UI; the graph appears in GET /api/graphs.
    const name = 'e2e saved graph';
    expect(await page.locator('[data-testid="dirty"]').count()).toBe(1);
    await page.click('[data-testid="btn-save"]');
    await page.fill('[data-testid="prompt-input"]', name);
    await page.click('[data-testid="prompt-ok"]');
    await expect.poll(() => page.locator('[data-testid="dirty"]').count()).toBe(0);
    const list = (await (await fetch(new URL('/api/graphs', studio.url))).json()) as { name: string; source: string }[];
    expect(list).toEqual(expect.arrayContaining([expect.objectContaining({ name, source: 'user' })]));
    const saved = (await (await fetch(new URL(`/api/graphs/${encodeURIComponent(name)}`, studio.url))).json()) as {
      nodes: { id: string; params: Record<string, unknown> }[];
      edges: unknown[];
    };
    expect(saved.nodes.map((n) => n.id).sort()).toEqual([consumerId, fitsId, misfitId].sort());
    expect(saved.edges).toHaveLength(1);
    expect(saved.nodes.find((n) => n.id === misfitId)!.params[numberParam.name]).toBe(Number(edited));

    // Saving over a shipped template is refused with a clear message.
    if (list.some((g) => g.source === 'template')) {
      const template = list.find((g) => g.source === 'template')!.name;
      await page.click('[data-testid="btn-more"]');
      await page.click('[data-testid="btn-save-as"]');
      await page.fill('[data-testid="prompt-input"]', template);
      await page.click('[data-testid="prompt-ok"]');
      await expect.poll(() => page.locator('[data-testid="prompt-error"]').textContent()).toContain('template');
      await screenshot(page, '05-template-save-refused');
      await page.keyboard.press('Escape');
    }

    // Never lose work: an unsaved edit survives a reload.
    await page.locator(`[data-testid="node"][data-node-id="${misfitId}"] [data-testid="param-${numberParam.name}"]`).fill(original);
    await expect.poll(() => page.locator('[data-testid="dirty"]').count()).toBe(1);
    await page.reload();
    await page.waitForSelector('[data-testid="canvas"][data-ready="true"]');
    await expect.poll(() => page.locator('[data-testid="node"]').count()).toBe(3);
    expect(await page.locator(`[data-testid="node"][data-node-id="${misfitId}"] [data-testid="param-${numberParam.name}"]`).inputValue()).toBe(original);
    expect(await page.locator('[data-testid="doc-label"]').textContent()).toContain(name);
    expect(await page.locator('[data-testid="dirty"]').count()).toBe(1);
    await screenshot(page, '06-restored-after-reload');

    expect(realErrors(errors)).toEqual([]);
    await context.close();
  });
  it.skipIf(!hasTemplate)('keyboard: Delete removes the selection, Ctrl+Z / Ctrl+Shift+Z undo and redo it, Ctrl+S saves', async () => {
    const { context, page, errors } = await openStudio(browser, studio);
    const template = readTemplate(TEMPLATE);
    const nodes = page.locator('[data-testid="node"]');
    const connections = page.locator('[data-testid="connection"]');
    await expect.poll(() => nodes.count()).toBe(template.nodes.length);
    await expect.poll(() => connections.count()).toBe(template.edges.length);
    const allIds = template.nodes.map((n) => n.id).sort();
    /** Clicks a node's title and waits until it is the one selected node. */
    const selectOnly = async (id: string) => {
      await page.locator(`[data-testid="node"][data-node-id="${id}"] [data-testid="title"]`).click();
      await expect.poll(() => page.locator('[data-testid="node"].selected').evaluateAll((els) => els.map((e) => e.getAttribute('data-node-id')))).toEqual([id]);
    };

    // Two nodes selected (click, Ctrl+click), Delete: they go, and so do their connections.
    const [a, b] = [template.nodes.find((n) => n.type === 'Mask')!, template.nodes.find((n) => n.type === 'TextPrompt')!];
    const touching = template.edges.filter((e) => [a.id, b.id].includes(e.from.node) || [a.id, b.id].includes(e.to.node)).length;
    await page.locator(`[data-testid="node"][data-node-id="${a.id}"] [data-testid="title"]`).click();
    await page.locator(`[data-testid="node"][data-node-id="${b.id}"] [data-testid="title"]`).click({ modifiers: ['Control'] });
    await expect.poll(() => page.locator('[data-testid="node"].selected').count()).toBe(2);
    await page.keyboard.press('Delete');
    await expect.poll(() => canvasNodeIds(page)).toEqual(allIds.filter((id) => id !== a.id && id !== b.id));
    await expect.poll(() => connections.count()).toBe(template.edges.length - touching);
    await expect.poll(() => page.locator('[data-testid="dirty"]').count()).toBe(1);
    await screenshot(page, '20-deleted-selection');

    // Ctrl+Z brings both back with their connections, in one step and where they were (the graph
    // is clean again); Ctrl+Shift+Z removes them again.
    await page.keyboard.press('Control+z');
    await expect.poll(() => canvasNodeIds(page)).toEqual(allIds);
    await expect.poll(() => connections.count()).toBe(template.edges.length);
    await expect.poll(() => page.locator('[data-testid="dirty"]').count()).toBe(0);
    await page.keyboard.press('Control+Shift+z');
    await expect.poll(() => nodes.count()).toBe(template.nodes.length - 2);
    await expect.poll(() => connections.count()).toBe(template.edges.length - touching);
    await page.keyboard.press('Control+z');
    await expect.poll(() => nodes.count()).toBe(template.nodes.length);

    // Backspace and Delete in a selected node's own text field edit the text, not the graph.
    const field = page.locator(`[data-testid="node"][data-node-id="${b.id}"] [data-testid="param-text"]`);
    await page.locator(`[data-testid="node"][data-node-id="${b.id}"] [data-testid="title"]`).click();
    await expect.poll(() => page.locator(`[data-testid="node"][data-node-id="${b.id}"]`).getAttribute('class')).toContain('selected');
    const text = await field.inputValue();
    await field.click();
    await page.keyboard.press('End');
    await page.keyboard.press('Backspace');
    await page.keyboard.press('Delete');
    await expect.poll(() => field.inputValue()).toBe(text.slice(0, -1));
    expect(await nodes.count()).toBe(template.nodes.length);
    await page.keyboard.press('Control+z');
    await expect.poll(() => field.inputValue()).toBe(text);
    await clickEmptyCanvas(page);

    // Ctrl+S on a template asks for a name (templates are read-only), then saves. Delete acts on the
    // selection, so it is pressed once the click has selected the node (not while the pick is on its way).
    await selectOnly(a.id);
    await page.keyboard.press('Delete');
    await expect.poll(() => canvasNodeIds(page)).not.toContain(a.id);
    await expect.poll(() => page.locator('[data-testid="dirty"]').count()).toBe(1);
    await page.keyboard.press('Control+s');
    await page.locator('[data-testid="prompt-dialog"]').waitFor();
    expect(await page.locator('[data-testid="prompt-input"]').inputValue()).toBe(`my-${TEMPLATE}`);
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('[data-testid="dirty"]').count()).toBe(0);
    expect(await page.locator('[data-testid="doc-label"]').textContent()).toContain(`my-${TEMPLATE}`);
    // Once it has a name, Ctrl+S saves straight away.
    await selectOnly(b.id);
    await page.keyboard.press('Delete');
    await expect.poll(() => canvasNodeIds(page)).not.toContain(b.id);
    await expect.poll(() => page.locator('[data-testid="dirty"]').count()).toBe(1);
    await page.keyboard.press('Control+s');
    await expect.poll(() => page.locator('[data-testid="dirty"]').count()).toBe(0);
    expect(await page.locator('[data-testid="prompt-dialog"]').count()).toBe(0);
    const saved = (await (await fetch(new URL(`/api/graphs/my-${TEMPLATE}`, studio.url))).json()) as TemplateFile;
    expect(saved.nodes.map((n) => n.id).sort()).toEqual(allIds.filter((id) => id !== a.id && id !== b.id));
    await screenshot(page, '21-saved-with-ctrl-s');

    expect(realErrors(errors)).toEqual([]);
    await context.close();
  });
});

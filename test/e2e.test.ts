/**
 * Browser end-to-end: the real studio (createStudio on a random port, temp data folder) driven in
 * Debian's Chromium through playwright-core. Screenshots of each stage go to test-artifacts/e2e/.
 *
 * Needs /usr/bin/chromium and a built client (dist/client, `npm run build`); skips with a message
 * otherwise.
 */
import fs from 'node:fs';
import path from 'node:path';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { Catalog, CatalogNode } from '../server/protocol/catalog.ts';
import { GRAPH_KEYWORD, PARAMETERS_KEYWORD, readChunks, readPngText } from '../client/src/png-graph.ts';
import {
  artifactsDir,
  dropFile,
  e2eSkipReason,
  launchChromium,
  projectRoot,
  recordNodeStatuses,
  screenshot,
  startStudio,
  watchErrors,
  type RunningStudio,
} from './support/e2e-browser.ts';
import { clickEmptyCanvas } from './support/e2e-helpers.ts';

const skipReason = e2eSkipReason();
if (skipReason) console.warn(`[e2e] ${skipReason}`);
const TEMPLATE = 'epsilon-merge';
const hasTemplate = fs.existsSync(path.join(projectRoot, 'graphs', `${TEMPLATE}.json`));
if (!skipReason && !hasTemplate) console.warn(`[e2e] graphs/${TEMPLATE}.json is missing: the template run test is skipped`);
const COMPARISON = 'comparison';
const hasComparison = fs.existsSync(path.join(projectRoot, 'graphs', `${COMPARISON}.json`));

interface TemplateFile {
  nodes: { id: string; type: string; params: Record<string, unknown> }[];
  edges: { from: { node: string; output: string }; to: { node: string; input: string } }[];
}

function readTemplate(name: string): TemplateFile {
  return JSON.parse(fs.readFileSync(path.join(projectRoot, 'graphs', `${name}.json`), 'utf8')) as TemplateFile;
}

/** Node ids upstream of `id` (its ancestors), from the graph's edges. */
function ancestors(graph: TemplateFile, id: string): Set<string> {
  const seen = new Set<string>();
  const walk = (n: string) => {
    for (const e of graph.edges) if (e.to.node === n && !seen.has(e.from.node)) walk((seen.add(e.from.node), e.from.node));
  };
  walk(id);
  return seen;
}

/** Stored CRC of every chunk against zlib's CRC-32: the names of the chunks that do not match. */
function badCrcChunks(png: Uint8Array): string[] {
  const buf = Buffer.from(png);
  return readChunks(png)
    .filter((c) => zlibCrc32(buf.subarray(c.offset + 4, c.offset + 8 + c.data.length)) !== c.crc)
    .map((c) => c.type);
}

/** Node ids on the canvas, sorted. */
async function canvasNodeIds(page: Page): Promise<string[]> {
  return (await page.locator('[data-testid="node"]').evaluateAll((els) => els.map((e) => e.getAttribute('data-node-id') ?? ''))).sort();
}

/** Clicks a control that downloads a file and returns the file's name and bytes. */
async function downloadFile(page: Page, selector: string): Promise<{ name: string; bytes: Uint8Array }> {
  const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 15_000 }), page.locator(selector).first().click()]);
  const file = await dl.path();
  return { name: dl.suggestedFilename(), bytes: new Uint8Array(fs.readFileSync(file)) };
}

/** Errors that are not the UI's fault: none expected, but keep the filter in one place. */
function realErrors(errors: string[]): string[] {
  return errors.filter((e) => !/Failed to load resource: the server responded with a status of 4\d\d/.test(e));
}

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

  async function openStudio(): Promise<{ context: BrowserContext; page: Page; errors: string[] }> {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    const page = await context.newPage();
    const errors = watchErrors(page);
    await page.goto(studio.url);
    await page.waitForSelector('[data-testid="canvas"][data-ready="true"]', { timeout: 15_000 });
    return { context, page, errors };
  }

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

  async function socketCenter(page: Page, nodeId: string, side: 'input' | 'output', key: string) {
    const box = await page.locator(`[data-testid="node"][data-node-id="${nodeId}"] [data-testid="${side}-${key}"] .sd-socket`).boundingBox();
    if (!box) throw new Error(`socket ${nodeId}.${key} not visible`);
    return { x: box.x + box.width / 2, y: box.y + box.height / 2 };
  }

  async function drag(page: Page, from: { x: number; y: number }, to: { x: number; y: number }) {
    await page.mouse.move(from.x, from.y);
    await page.mouse.down();
    await page.mouse.move((from.x + to.x) / 2, (from.y + to.y) / 2, { steps: 5 });
    await page.mouse.move(to.x, to.y, { steps: 5 });
    await page.mouse.up();
  }

  it('renders the catalog, refuses type errors, validates live, undoes a parameter edit, saves and restores', async () => {
    // Pick nodes from the catalog itself: a consumer with two required inputs, a producer that fits
    // its first input, one that does not, and a node with a number parameter.
    const byOutput = (type: string) => catalog.nodes.find((n) => n.outputs.some((o) => o.type === type));
    const consumer = catalog.nodes.find((n) => n.inputs.filter((i) => !i.optional).length >= 2 && byOutput(n.inputs[0].type))!;
    expect(consumer, 'catalog has a node with two required inputs').toBeTruthy();
    const input = consumer.inputs[0];
    const fits = byOutput(input.type)!;
    const misfit = catalog.nodes.find((n) => n !== consumer && n.outputs.length > 0 && n.outputs.every((o) => o.type !== input.type) && n.params.some((p) => p.kind === 'integer' || p.kind === 'number'))!;
    expect(misfit, 'catalog has a producer of another type with a number parameter').toBeTruthy();

    const { context, page, errors } = await openStudio();
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
    for (const p of misfit.params) expect(await page.locator(`[data-testid="node"][data-node-id="${misfitId}"] [data-testid="control-${p.name}"]`).count()).toBe(1);
    await screenshot(page, '01-nodes-added');

    // A type-incompatible connection cannot be drawn, and the user is told why.
    const wrong = misfit.outputs[0];
    await drag(page, await socketCenter(page, misfitId, 'output', wrong.name), await socketCenter(page, consumerId, 'input', input.name));
    await expect.poll(() => page.locator('[data-testid="toast"]').allTextContents()).toEqual(
      expect.arrayContaining([expect.stringContaining(`Cannot connect ${wrong.type} to ${input.type}`)]),
    );
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
    const saved = (await (await fetch(new URL(`/api/graphs/${encodeURIComponent(name)}`, studio.url))).json()) as { nodes: { id: string; params: Record<string, unknown> }[]; edges: unknown[] };
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
    const { context, page, errors } = await openStudio();
    const template = readTemplate(TEMPLATE);
    const nodes = page.locator('[data-testid="node"]');
    const connections = page.locator('[data-testid="connection"]');
    await expect.poll(() => nodes.count()).toBe(template.nodes.length);
    await expect.poll(() => connections.count()).toBe(template.edges.length);
    const allIds = template.nodes.map((n) => n.id).sort();

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

    // Ctrl+S on a template asks for a name (templates are read-only), then saves.
    await page.locator(`[data-testid="node"][data-node-id="${a.id}"] [data-testid="title"]`).click();
    await page.keyboard.press('Delete');
    await expect.poll(() => page.locator('[data-testid="dirty"]').count()).toBe(1);
    await page.keyboard.press('Control+s');
    await page.locator('[data-testid="prompt-dialog"]').waitFor();
    expect(await page.locator('[data-testid="prompt-input"]').inputValue()).toBe(`my-${TEMPLATE}`);
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('[data-testid="dirty"]').count()).toBe(0);
    expect(await page.locator('[data-testid="doc-label"]').textContent()).toContain(`my-${TEMPLATE}`);
    // Once it has a name, Ctrl+S saves straight away.
    await page.locator(`[data-testid="node"][data-node-id="${b.id}"] [data-testid="title"]`).click();
    await page.keyboard.press('Delete');
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

  it.skipIf(!hasTemplate)(`opens the ${TEMPLATE} template and runs it: progress, live preview, final image`, async () => {
    const { context, page, errors } = await openStudio();
    await page.click('[data-testid="btn-open"]');
    await page.waitForSelector('[data-testid="open-dialog"]');
    await expect.poll(() => page.locator(`[data-testid="open-${TEMPLATE}"]`).textContent()).toContain('template');
    await screenshot(page, '10-open-dialog');
    await page.click(`[data-testid="open-${TEMPLATE}"]`);
    const template = readTemplate(TEMPLATE);
    await expect.poll(() => page.locator('[data-testid="node"]').count()).toBe(template.nodes.length);
    await expect.poll(() => page.locator('[data-testid="connection"]').count()).toBe(template.edges.length);
    expect(await page.locator('[data-testid="doc-label"]').textContent()).toContain(TEMPLATE);
    expect(await page.locator('[data-testid="demo-note"]').count()).toBeGreaterThan(0);
    await expect.poll(() => page.locator('[data-testid="btn-problems"]').textContent()).toContain('No problems');
    await screenshot(page, '11-template-open');

    // Replacing the connection of an occupied input is one undoable action and touches nothing else.
    const edgesNow = async () =>
      page.evaluate(() => {
        const saved = JSON.parse(localStorage.getItem('dualstyle.autosave.v1') ?? '{}') as { graph?: { edges: { from: { node: string; output: string }; to: { node: string; input: string } }[] } };
        return (saved.graph?.edges ?? []).map((e) => `${e.from.node}.${e.from.output}>${e.to.node}.${e.to.input}`).sort();
      });
    const original = await edgesNow();
    expect(original).toHaveLength(template.edges.length);
    const replaceable = findReplaceable(template as TemplateGraph, catalog);
    if (replaceable) {
      const { edge, other } = replaceable;
      await drag(page, await socketCenter(page, other.node, 'output', other.output), await socketCenter(page, edge.to.node, 'input', edge.to.input));
      const oldKey = `${edge.from.node}.${edge.from.output}>${edge.to.node}.${edge.to.input}`;
      const newKey = `${other.node}.${other.output}>${edge.to.node}.${edge.to.input}`;
      await expect.poll(edgesNow).toEqual([...original.filter((e) => e !== oldKey), newKey].sort());
      await page.keyboard.press('Control+z');
      await expect.poll(edgesNow).toEqual(original);
      await expect.poll(() => page.locator('[data-testid="dirty"]').count()).toBe(0);
    } else {
      console.warn('[e2e] template has no input that another output of the same type could feed: replacement not exercised');
    }

    const outputTypes = new Set(catalog.nodes.filter((n) => n.output).map((n) => n.type));
    const outputIds = template.nodes.filter((n) => outputTypes.has(n.type)).map((n) => n.id);
    expect(outputIds.length).toBeGreaterThan(0);

    await page.keyboard.press('Control+Enter');
    await page.waitForSelector('[data-testid="node-progress"]', { timeout: 30_000 });
    expect(await page.locator('[data-testid="node-progress"]').first().textContent()).toMatch(/step \d+ of \d+/);
    await screenshot(page, '12-running-progress');
    const preview = page.locator('[data-testid="node-preview"]').first();
    await preview.waitFor({ timeout: 30_000 });
    await expect.poll(() => preview.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0)).toBe(true);
    await screenshot(page, '13-live-preview');

    const result = page.locator(`[data-testid="node"][data-node-id="${outputIds[0]}"] [data-testid="node-result"] img`).first();
    await result.waitFor({ timeout: 45_000 });
    await expect.poll(() => result.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0)).toBe(true);
    await expect.poll(() => page.locator('[data-testid="queue-indicator"]').getAttribute('data-state')).toBe('done');
    const href = await page.locator(`[data-testid="node"][data-node-id="${outputIds[0]}"] [data-testid="download"]`).first().getAttribute('href');
    const download = await fetch(new URL(href!, studio.url));
    expect(download.status).toBe(200);
    expect(download.headers.get('content-type')).toMatch(/^image\//);
    await screenshot(page, '14-final-image');

    // Download as PNG: a valid PNG of the result that carries the run's graph in a text chunk.
    const png = await downloadFile(page, `[data-testid="node"][data-node-id="${outputIds[0]}"] [data-testid="download"]`);
    fs.writeFileSync(path.join(artifactsDir, 'result-with-graph.png'), png.bytes);
    expect(png.name).toBe(`${TEMPLATE}-${outputIds[0]}.png`);
    expect(badCrcChunks(png.bytes)).toEqual([]);
    const decoded = PNG.sync.read(Buffer.from(png.bytes));
    expect([decoded.width, decoded.height]).toEqual(await result.evaluate((img: HTMLImageElement) => [img.naturalWidth, img.naturalHeight]));
    const pngText = await readPngText(png.bytes);
    const embedded = JSON.parse(pngText.get(GRAPH_KEYWORD) ?? '{}') as TemplateFile;
    expect(embedded.nodes.map((n) => n.id).sort()).toEqual(template.nodes.map((n) => n.id).sort());
    expect(embedded.edges).toHaveLength(template.edges.length);
    expect(pngText.get(PARAMETERS_KEYWORD)).toContain('Dual Style Studio graph');

    // Change only the decoder prompt (a style prompt, not the inversion's source prompt) and run
    // again: the inversion comes from the cache, the sampler computes a new picture.
    const invertId = template.nodes.find((n) => n.type === 'Invert')!.id;
    const upstreamOfInversion = ancestors(template, invertId);
    const decoderPrompt = template.nodes.find((n) => n.type === 'TextPrompt' && !upstreamOfInversion.has(n.id) && ancestors(template, outputIds[0]).has(n.id))!;
    expect(decoderPrompt, 'the template has a decoder prompt').toBeTruthy();
    const samplerId = template.edges.find((e) => e.from.node === invertId)!.to.node;
    const firstResult = await result.getAttribute('src');
    const statuses = await recordNodeStatuses(page);
    const promptField = page.locator(`[data-testid="node"][data-node-id="${decoderPrompt.id}"] [data-testid="param-text"]`);
    // Short: CLIP reads 77 tokens, so words added at the end of a long prompt change nothing.
    await promptField.fill('A watercolor painting of [prompt] at night');
    await page.keyboard.press('Control+Enter');
    await page.locator(`[data-testid="node"][data-node-id="${invertId}"] [data-testid="badge-cached"]`).waitFor({ timeout: 15_000 });
    await screenshot(page, '14a-decoder-prompt-rerun');
    await expect.poll(() => page.locator('[data-testid="queue-indicator"]').getAttribute('data-state'), { timeout: 45_000 }).toBe('done');
    await expect.poll(() => result.getAttribute('src')).not.toBe(firstResult);
    const seen = await statuses();
    expect(seen[invertId]).toContain('cached');
    expect(seen[invertId]).not.toContain('running');
    expect(seen[samplerId]).toContain('running');

    // Both results are in the gallery; two chosen ones are compared side by side at the same size.
    await page.click('[data-testid="btn-results"]');
    const items = page.locator('[data-testid="gallery-item"]');
    await expect.poll(() => items.count()).toBe(2);
    expect(await page.locator('[data-testid="gallery-run"]').count()).toBe(2);
    expect(await items.first().textContent()).toContain(labelOfNode(template, outputIds[0], catalog));
    await items.nth(0).locator('[data-testid="gallery-select"]').check();
    await items.nth(1).locator('[data-testid="gallery-select"]').check();
    await page.click('[data-testid="gallery-compare"]');
    const compared = page.locator('[data-testid="compare-view"] [data-testid="compare-item"] img');
    await expect.poll(() => compared.count()).toBe(2);
    await expect.poll(() => compared.evaluateAll((imgs) => imgs.every((i) => (i as HTMLImageElement).complete && (i as HTMLImageElement).naturalWidth > 0))).toBe(true);
    const sizes = await compared.evaluateAll((imgs) => imgs.map((i) => [Math.round(i.getBoundingClientRect().width), Math.round(i.getBoundingClientRect().height)]));
    expect(sizes[0]).toEqual(sizes[1]);
    expect(sizes[0][0]).toBeGreaterThan(150);
    expect(new Set(await compared.evaluateAll((imgs) => imgs.map((i) => (i as HTMLImageElement).src))).size).toBe(2);
    await screenshot(page, '14b-compare-side-by-side');
    await page.click('[data-testid="compare-mode-slider"]');
    await page.locator('[data-testid="compare-slider"]').waitFor();
    await screenshot(page, '14c-compare-slider');
    await page.keyboard.press('Escape');
    await expect.poll(() => page.locator('[data-testid="compare-view"]').count()).toBe(0);
    await page.click('[data-testid="btn-results"]');

    // Run again: nothing changed, so every node comes from the cache.
    await page.click('[data-testid="btn-run"]');
    await page.locator('[data-testid="badge-cached"]').first().waitFor({ timeout: 15_000 });
    await screenshot(page, '15-cached-rerun');

    // Cancel (Esc) stops a long run mid-way.
    const longest = catalog.nodes
      .flatMap((n) => n.params.filter((p) => p.name === 'steps' && p.kind === 'integer').map((p) => ({ type: n.type, p })))
      .map(({ type, p }) => ({ id: template.nodes.find((n) => n.type === type)?.id, p }))
      .find((x) => x.id);
    if (longest) {
      const steps = String(Math.min(Number(longest.p.max ?? 1000), 1000));
      await page.locator(`[data-testid="node"][data-node-id="${longest.id}"] [data-testid="param-steps"]`).fill(steps);
      await page.click('[data-testid="btn-run"]');
      await expect.poll(() => page.locator('[data-testid="node-progress"]').count(), { timeout: 20_000 }).toBeGreaterThan(0);
      await clickEmptyCanvas(page);
      await page.keyboard.press('Escape');
      await expect.poll(() => page.locator('[data-testid="queue-indicator"]').getAttribute('data-state'), { timeout: 15_000 }).toBe('cancelled');
      expect(await page.locator('[data-testid="node-progress"]').count()).toBe(0);
      await screenshot(page, '16-cancelled');
    }

    // A node that fails at run time is highlighted with the server's message.
    const modelNode = template.nodes.find((n) => catalog.nodes.find((s) => s.type === n.type)?.params.some((p) => p.kind === 'model'));
    if (modelNode) {
      const param = catalog.nodes.find((s) => s.type === modelNode.type)!.params.find((p) => p.kind === 'model')!;
      await page.locator(`[data-testid="node"][data-node-id="${modelNode.id}"] [data-testid="param-${param.name}"]`).fill('/no/such/model-folder');
      await page.keyboard.press('Control+Enter');
      await expect.poll(() => page.locator('[data-testid="queue-indicator"]').getAttribute('data-state'), { timeout: 15_000 }).toBe('failed');
      const failed = page.locator(`[data-testid="node"][data-node-id="${modelNode.id}"]`);
      expect(await failed.getAttribute('class')).toContain('failed');
      expect(await failed.locator('[data-testid="node-error"]').textContent()).toBeTruthy();
      await screenshot(page, '17-node-failed');
    }

    // PNG round trip: on an emptied canvas, dropping the downloaded PNG restores the graph of the
    // run that made it (the decoder prompt as it was then, not as edited since).
    await page.click('[data-testid="btn-new"]');
    await page.click('[data-testid="confirm-ok"]');
    await expect.poll(() => page.locator('[data-testid="node"]').count()).toBe(0);
    await dropFile(page, '[data-testid="canvas"]', { name: png.name, mimeType: 'image/png', bytes: png.bytes });
    const templateIds = template.nodes.map((n) => n.id).sort();
    await expect.poll(() => canvasNodeIds(page)).toEqual(templateIds);
    await expect.poll(() => page.locator('[data-testid="connection"]').count()).toBe(template.edges.length);
    expect(await promptField.inputValue()).toBe(decoderPrompt.params.text);
    await screenshot(page, '18-png-dropped-graph-restored');

    // The Import… file picker takes the PNG too.
    await page.click('[data-testid="btn-new"]');
    await expect.poll(() => page.locator('[data-testid="node"]').count()).toBe(0);
    await page.setInputFiles('[data-testid="import-input"]', { name: png.name, mimeType: 'image/png', buffer: Buffer.from(png.bytes) });
    await expect.poll(() => canvasNodeIds(page)).toEqual(templateIds);

    // A PNG without a graph is a picture: it arrives in a new Load Image node; the graph stays.
    await dropFile(page, '[data-testid="canvas"]', { name: 'holiday.png', mimeType: 'image/png', bytes: PNG.sync.write(new PNG({ width: 64, height: 64 })) });
    await expect.poll(() => page.locator('[data-testid="toast"]').allTextContents()).toEqual(
      expect.arrayContaining([expect.stringContaining('holiday.png is in a new Load Image node')]),
    );
    await expect.poll(() => canvasNodeIds(page)).toEqual([...templateIds, 'LoadImage-1'].sort());
    expect(await page.locator('[data-testid="node"][data-node-id="LoadImage-1"] [data-testid="image-name"]').textContent()).toContain('holiday.png');
    await screenshot(page, '19-png-without-graph-is-a-picture');

    expect(realErrors(errors)).toEqual([]);
    await context.close();
  });

  // After the template run: that test must see the server's cache empty (it expects progress and
  // previews), and this graph shares its inversion and epsilon-merge chain.
  it.skipIf(!hasComparison)(`runs the ${COMPARISON} template and compares its methods side by side`, async () => {
    const { context, page, errors } = await openStudio();
    await page.click('[data-testid="btn-open"]');
    await page.click(`[data-testid="open-${COMPARISON}"]`);
    const template = readTemplate(COMPARISON);
    await expect.poll(() => page.locator('[data-testid="node"]').count()).toBe(template.nodes.length);
    const outputTypes = new Set(catalog.nodes.filter((n) => n.output).map((n) => n.type));
    const outputs = template.nodes.filter((n) => outputTypes.has(n.type));
    expect(outputs.length).toBeGreaterThanOrEqual(2);
    await page.click('[data-testid="btn-run"]');
    await expect.poll(() => page.locator('[data-testid="queue-indicator"]').getAttribute('data-state'), { timeout: 90_000 }).toBe('done');

    // One run, one group in the gallery, one item per output node, titled like the node.
    await page.click('[data-testid="btn-results"]');
    const run = page.locator('[data-testid="gallery-run"]');
    await expect.poll(() => run.count()).toBe(1);
    await expect.poll(() => run.locator('[data-testid="gallery-item"]').count()).toBe(outputs.length);
    const titles = await run.locator('[data-testid="gallery-item"] .sd-gallery-title').allTextContents();
    expect(titles.sort()).toEqual(outputs.map((o) => labelOfNode(template, o.id, catalog)).sort());
    await screenshot(page, '30-comparison-gallery');

    // "Compare all": every method next to the others, all at the same size.
    await run.locator('[data-testid="gallery-compare-run"]').click();
    const compared = page.locator('[data-testid="compare-view"] [data-testid="compare-item"]');
    await expect.poll(() => compared.count()).toBe(outputs.length);
    expect((await compared.evaluateAll((els) => els.map((e) => e.getAttribute('data-node-id')))).sort()).toEqual(outputs.map((o) => o.id).sort());
    const imgs = compared.locator('img');
    await expect.poll(() => imgs.evaluateAll((list) => list.every((i) => (i as HTMLImageElement).complete && (i as HTMLImageElement).naturalWidth > 0))).toBe(true);
    const sizes = await imgs.evaluateAll((list) => list.map((i) => `${Math.round(i.getBoundingClientRect().width)}x${Math.round(i.getBoundingClientRect().height)}`));
    expect(new Set(sizes).size).toBe(1);
    await screenshot(page, '31-comparison-side-by-side');

    // A gallery item downloads as a PNG that carries the comparison graph.
    await page.keyboard.press('Escape');
    const png = await downloadFile(page, '[data-testid="gallery-download"]');
    expect(png.name).toMatch(new RegExp(`^${COMPARISON}-.+\\.png$`));
    const embedded = JSON.parse((await readPngText(png.bytes)).get(GRAPH_KEYWORD) ?? '{}') as TemplateFile;
    expect(embedded.nodes.map((n) => n.id).sort()).toEqual(template.nodes.map((n) => n.id).sort());

    expect(realErrors(errors)).toEqual([]);
    await context.close();
  });
});

type TemplateGraph = TemplateFile;

/** The title a node shows: its own, else its type's. */
function labelOfNode(graph: TemplateFile, id: string, catalog: Catalog): string {
  const node = graph.nodes.find((n) => n.id === id) as { type: string; title?: string } | undefined;
  return node?.title ?? catalog.nodes.find((s) => s.type === node?.type)?.title ?? id;
}

/** An edge whose input another output of the same type (not already feeding it) could feed instead. */
function findReplaceable(graph: TemplateGraph, catalog: Catalog) {
  const typeOf = (nodeId: string, side: 'inputs' | 'outputs', name: string) => {
    const spec = catalog.nodes.find((n) => n.type === graph.nodes.find((x) => x.id === nodeId)?.type);
    return spec?.[side].find((s) => s.name === name)?.type;
  };
  for (const edge of graph.edges) {
    const type = typeOf(edge.to.node, 'inputs', edge.to.input);
    for (const n of graph.nodes) {
      if (n.id === edge.to.node || n.id === edge.from.node) continue;
      const spec = catalog.nodes.find((s) => s.type === n.type);
      const out = spec?.outputs.find((o) => o.type === type);
      if (out) return { edge, other: { node: n.id, output: out.name } };
    }
  }
  return null;
}

describe.skipIf(skipReason !== null || !hasTemplate)('browser end-to-end with an access token', () => {
  const TOKEN = 'e2e-secret-token';
  let studio: RunningStudio;
  let browser: Browser;

  beforeAll(async () => {
    [studio, browser] = await Promise.all([startStudio({ token: TOKEN }), launchChromium()]);
  });

  afterAll(async () => {
    await browser?.close();
    await studio?.close();
  });

  it('opens with ?token=…, keeps it for reloads, and sends it on API calls, images and socket.io', async () => {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    const page = await context.newPage();
    const errors = watchErrors(page);

    // The page itself loads without a token; the API refuses, and the splash says what to do.
    await page.goto(studio.url);
    await expect.poll(() => page.locator('.sd-splash .sd-error').textContent()).toContain('protected by an access token');
    expect(await page.locator('.sd-splash .sd-error').textContent()).toContain('?token=');
    await screenshot(page, '40-token-missing');

    await page.goto(`${studio.url}?token=${TOKEN}`);
    await page.waitForSelector('[data-testid="canvas"][data-ready="true"]', { timeout: 15_000 });
    const template = readTemplate(TEMPLATE);
    await expect.poll(() => page.locator('[data-testid="node"]').count()).toBe(template.nodes.length);
    await expect.poll(() => page.locator('[data-testid="health"]').textContent()).toContain('Server OK');
    await expect.poll(() => page.locator('[data-testid="status-bar"]').textContent()).toContain('Live updates on');
    // Out of the address bar (screenshots, bookmarks), kept for this tab.
    expect(new URL(page.url()).searchParams.has('token')).toBe(false);
    await page.reload();
    await page.waitForSelector('[data-testid="canvas"][data-ready="true"]', { timeout: 15_000 });
    await expect.poll(() => page.locator('[data-testid="status-bar"]').textContent()).toContain('Live updates on');

    // A run: job events arrive over the authenticated socket, the result <img> loads with ?token=,
    // and the PNG download (fetched with the bearer token) carries the graph.
    await page.keyboard.press('Control+Enter');
    const outputId = template.nodes.find((n) => n.type === 'SaveImage')!.id;
    const result = page.locator(`[data-testid="node"][data-node-id="${outputId}"] [data-testid="node-result"] img`).first();
    await result.waitFor({ timeout: 45_000 });
    await expect.poll(() => result.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0)).toBe(true);
    const src = (await result.getAttribute('src'))!;
    expect(new URL(src, studio.url).searchParams.get('token')).toBe(TOKEN);
    expect((await fetch(new URL(new URL(src, studio.url).pathname, studio.url))).status).toBe(401);
    const png = await downloadFile(page, `[data-testid="node"][data-node-id="${outputId}"] [data-testid="download"]`);
    expect((await readPngText(png.bytes)).has(GRAPH_KEYWORD)).toBe(true);
    await screenshot(page, '41-token-run');

    expect(realErrors(errors)).toEqual([]);
    await context.close();
  });
});

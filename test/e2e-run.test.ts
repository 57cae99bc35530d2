/**
 * Browser end-to-end: the templates run in the real studio (progress, previews, results, cache,
 * cancel, failure, PNG round trip, gallery comparison), and a studio protected by an access token.
 * Screenshots of each stage go to test-artifacts/e2e/.
 */
import fs from 'node:fs';
import path from 'node:path';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { ancestorsOf } from '../server/graph/topo.ts';
import type { Catalog } from '../server/protocol/catalog.ts';
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
import {
  autosavedGraph,
  canvasNodeIds,
  clickEmptyCanvas,
  downloadFile,
  drag,
  openStudio,
  readTemplate,
  realErrors,
  runAndWait,
  socketCenter,
  type TemplateFile,
} from './support/e2e-helpers.ts';

const skipReason = e2eSkipReason();
const TEMPLATE = 'epsilon-merge';
const hasTemplate = fs.existsSync(path.join(projectRoot, 'graphs', `${TEMPLATE}.json`));
const COMPARISON = 'comparison';
const hasComparison = fs.existsSync(path.join(projectRoot, 'graphs', `${COMPARISON}.json`));

/** Stored CRC of every chunk against zlib's CRC-32: the names of the chunks that do not match. */
function badCrcChunks(png: Uint8Array): string[] {
  const buf = Buffer.from(png);
  return readChunks(png)
    .filter((c) => zlibCrc32(buf.subarray(c.offset + 4, c.offset + 8 + c.data.length)) !== c.crc)
    .map((c) => c.type);
}

describe.skipIf(skipReason !== null)('browser end-to-end: template runs', () => {
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

  it.skipIf(!hasTemplate)(`opens the ${TEMPLATE} template and runs it: progress, live preview, final image`, { timeout: 600_000 }, async () => {
    const { context, page, errors } = await openStudio(browser, studio);
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
    const edgesNow = async () => ((await autosavedGraph(page))?.edges ?? []).map((e) => `${e.from.node}.${e.from.output}>${e.to.node}.${e.to.input}`).sort();
    const original = await edgesNow();
    expect(original).toHaveLength(template.edges.length);
    const replaceable = findReplaceable(template as TemplateGraph, catalog);
    if (replaceable) {
      const { edge, other } = replaceable;
      // The first view shows the graph's start at a readable scale; Fit brings both ends of the drag into view.
      await page.click('[data-testid="btn-fit"]');
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
    await page.waitForSelector('[data-testid="node-progress"]', { timeout: 120_000 });
    expect(await page.locator('[data-testid="node-progress"]').first().textContent()).toMatch(/step \d+ of \d+/);
    await screenshot(page, '12-running-progress');
    const preview = page.locator('[data-testid="node-preview"]').first();
    await preview.waitFor({ timeout: 120_000 });
    await expect.poll(() => preview.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0)).toBe(true);
    await screenshot(page, '13-live-preview');

    const result = page.locator(`[data-testid="node"][data-node-id="${outputIds[0]}"] [data-testid="node-result"] img`).first();
    await result.waitFor({ timeout: 120_000 });
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
    const upstreamOfInversion = ancestorsOf(template, [invertId]);
    const decoderPrompt = template.nodes.find(
      (n) => n.type === 'TextPrompt' && !upstreamOfInversion.has(n.id) && ancestorsOf(template, [outputIds[0]!]).has(n.id),
    )!;
    expect(decoderPrompt, 'the template has a decoder prompt').toBeTruthy();
    const samplerId = template.edges.find((e) => e.from.node === invertId)!.to.node;
    const firstResult = await result.getAttribute('src');
    const statuses = await recordNodeStatuses(page);
    const promptField = page.locator(`[data-testid="node"][data-node-id="${decoderPrompt.id}"] [data-testid="param-text"]`);
    // Short: CLIP reads 77 tokens, so words added at the end of a long prompt change nothing.
    await promptField.fill('A watercolor painting of [prompt] at night');
    await page.keyboard.press('Control+Enter');
    await page.locator(`[data-testid="node"][data-node-id="${invertId}"] [data-testid="badge-cached"]`).waitFor({ timeout: 120_000 });
    await screenshot(page, '14a-decoder-prompt-rerun');
    await expect.poll(() => page.locator('[data-testid="queue-indicator"]').getAttribute('data-state'), { timeout: 120_000 }).toBe('done');
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
    await expect
      .poll(() => compared.evaluateAll((imgs) => imgs.every((i) => (i as HTMLImageElement).complete && (i as HTMLImageElement).naturalWidth > 0)))
      .toBe(true);
    const sizes = await compared.evaluateAll((imgs) =>
      imgs.map((i) => [Math.round(i.getBoundingClientRect().width), Math.round(i.getBoundingClientRect().height)]),
    );
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
    await runAndWait(page, 'done', 90_000, () => page.click('[data-testid="btn-run"]'));
    await page.locator('[data-testid="badge-cached"]').first().waitFor({ timeout: 120_000 });
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
      await expect.poll(() => page.locator('[data-testid="node-progress"]').count(), { timeout: 120_000 }).toBeGreaterThan(0);
      await clickEmptyCanvas(page);
      await page.keyboard.press('Escape');
      await expect.poll(() => page.locator('[data-testid="queue-indicator"]').getAttribute('data-state'), { timeout: 120_000 }).toBe('cancelled');
      expect(await page.locator('[data-testid="node-progress"]').count()).toBe(0);
      await screenshot(page, '16-cancelled');
    }

    // A node that fails at run time is highlighted with the server's message.
    const modelNode = template.nodes.find((n) => catalog.nodes.find((s) => s.type === n.type)?.params.some((p) => p.kind === 'model'));
    if (modelNode) {
      const param = catalog.nodes.find((s) => s.type === modelNode.type)!.params.find((p) => p.kind === 'model')!;
      await page.locator(`[data-testid="node"][data-node-id="${modelNode.id}"] [data-testid="param-${param.name}"]`).fill('/no/such/model-folder');
      await page.keyboard.press('Control+Enter');
      await expect.poll(() => page.locator('[data-testid="queue-indicator"]').getAttribute('data-state'), { timeout: 120_000 }).toBe('failed');
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
    await expect
      .poll(() => page.locator('[data-testid="toast"]').allTextContents())
      .toEqual(expect.arrayContaining([expect.stringContaining('holiday.png is in a new Load Image node')]));
    await expect.poll(() => canvasNodeIds(page)).toEqual([...templateIds, 'LoadImage-1'].sort());
    expect(await page.locator('[data-testid="node"][data-node-id="LoadImage-1"] [data-testid="image-name"]').textContent()).toContain('holiday.png');
    await screenshot(page, '19-png-without-graph-is-a-picture');

    expect(realErrors(errors)).toEqual([]);
    await context.close();
  });

  // After the template run: that test must see the server's cache empty (it expects progress and
  // previews), and this graph shares its inversion and epsilon-merge chain.
  it.skipIf(!hasComparison)(`runs the ${COMPARISON} template and compares its methods side by side`, { timeout: 600_000 }, async () => {
    const { context, page, errors } = await openStudio(browser, studio);
    await page.click('[data-testid="btn-open"]');
    await page.click(`[data-testid="open-${COMPARISON}"]`);
    const template = readTemplate(COMPARISON);
    await expect.poll(() => page.locator('[data-testid="node"]').count()).toBe(template.nodes.length);
    // The gallery holds pictures: one item per output node that saves one (the Metrics Table shows a table).
    const outputTypes = new Set(catalog.nodes.filter((n) => n.output && n.type !== 'MetricsTable').map((n) => n.type));
    const outputs = template.nodes.filter((n) => outputTypes.has(n.type));
    expect(outputs.length).toBeGreaterThanOrEqual(2);
    await runAndWait(page, 'done', 90_000, () => page.click('[data-testid="btn-run"]'));

    // The Metrics Table shows the seed's layout on its node: a column per method, a row per metric.
    const metricsTable = page.locator('[data-testid="node"][data-node-id="metrics_table"] [data-testid="node-result-table"]');
    await expect.poll(() => metricsTable.count()).toBe(1);
    expect(await metricsTable.locator('thead th').allTextContents()).toEqual(['', 'attention', 'epsilon', 'pixel', 'single', 'style1', 'style2']);
    expect(await metricsTable.locator('tbody th').allTextContents()).toEqual([
      'L2 ↓',
      'PSNR ↑',
      'SSIM ↑',
      'Smooth. ↓',
      'Seam TV ↓',
      'Border TV ↓',
      'Border TV 1 ↓',
      'Border TV 2 ↓',
    ]);
    await page.locator('[data-testid="node"][data-node-id="metrics_table"]').screenshot({ path: path.join(artifactsDir, '32-comparison-metrics-table.png') });

    // The gallery lists the server's history (earlier tests' runs too): this run is the newest group,
    // one item per output node, titled like the node.
    await page.click('[data-testid="btn-results"]');
    const run = page.locator('[data-testid="gallery-run"]').first();
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
    await expect
      .poll(() => imgs.evaluateAll((list) => list.every((i) => (i as HTMLImageElement).complete && (i as HTMLImageElement).naturalWidth > 0)))
      .toBe(true);
    const sizes = await imgs.evaluateAll((list) =>
      list.map((i) => `${Math.round(i.getBoundingClientRect().width)}x${Math.round(i.getBoundingClientRect().height)}`),
    );
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
    await page.waitForSelector('[data-testid="canvas"][data-ready="true"]', { timeout: 120_000 });
    const template = readTemplate(TEMPLATE);
    await expect.poll(() => page.locator('[data-testid="node"]').count()).toBe(template.nodes.length);
    await expect.poll(() => page.locator('[data-testid="health"]').textContent()).toContain('Server OK');
    await expect.poll(() => page.locator('[data-testid="status-bar"]').textContent()).toContain('Live updates on');
    // Out of the address bar (screenshots, bookmarks), kept for this tab.
    expect(new URL(page.url()).searchParams.has('token')).toBe(false);
    await page.reload();
    await page.waitForSelector('[data-testid="canvas"][data-ready="true"]', { timeout: 120_000 });
    await expect.poll(() => page.locator('[data-testid="status-bar"]').textContent()).toContain('Live updates on');

    // A run: job events arrive over the authenticated socket, the result <img> loads with ?token=,
    // and the PNG download (fetched with the bearer token) carries the graph.
    await runAndWait(page);
    const outputId = template.nodes.find((n) => n.type === 'SaveImage')!.id;
    const result = page.locator(`[data-testid="node"][data-node-id="${outputId}"] [data-testid="node-result"] img`).first();
    await result.waitFor();
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

/**
 * Browser end-to-end, issue 26 (the canvas): a connection let go on empty canvas opens the node search
 * filtered to what takes it and connects the node picked; a run's graph opens from Results and from the
 * Queue; Load Model picks from what the models folders hold; a frame's title bar is above its nodes;
 * the first view is readable.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import type { Catalog } from '../server/protocol/catalog.ts';
import type { QueueState } from '../server/protocol/events.ts';
import { encodeSafetensors } from '../server/models/convert/safetensors.ts';
import { e2eSkipReason, launchChromium, startStudio, type RunningStudio } from './support/e2e-browser.ts';
import {
  apiJson,
  autosavedGraph,
  canvasNodeIds,
  drag,
  emptyCanvasPoint,
  openStudio,
  openTemplate,
  realErrors,
  runAndWait,
  socketCenter,
  visualCheck,
} from './support/e2e-helpers.ts';

const skipReason = e2eSkipReason();

/** A point of empty canvas, on the screen. */
async function emptyScreenPoint(page: Page) {
  const canvas = (await page.locator('[data-testid="canvas"]').boundingBox())!;
  const spot = await emptyCanvasPoint(page);
  return { x: canvas.x + spot.x, y: canvas.y + spot.y };
}
const node = (page: Page, id: string) => page.locator(`[data-testid="node"][data-node-id="${id}"]`);
/** Screenshots at 1440×900 and 1280×720 (test-artifacts/<name>-<size>.png), back to 1440×900 after. */
async function lightCheck(page: Page, name: string) {
  await visualCheck(page, `${name}-1440x900`);
  await page.setViewportSize({ width: 1280, height: 720 });
  await visualCheck(page, `${name}-1280x720`);
  await page.setViewportSize({ width: 1440, height: 900 });
}
const docLabel = (page: Page) => () => page.locator('[data-testid="doc-label"]').textContent();
const offered = (page: Page) =>
  page.locator('[data-testid="menu"] [data-testid="menu-node"]').evaluateAll((els) => els.map((e) => e.getAttribute('data-node-type') ?? ''));

describe.skipIf(skipReason !== null)('browser end-to-end: the canvas', () => {
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

  it('a connection let go on empty canvas offers the nodes that take it, and connects the one picked there', { timeout: 300_000 }, async () => {
    const { context, page, errors } = await openStudio(browser, studio);
    await openTemplate(page, 'epsilon-merge');
    const before = await canvasNodeIds(page);
    const spec = (type: string) => catalog.nodes.find((n) => n.type === type)!;
    const imageType = spec('LoadImage').outputs.find((s) => s.name === 'image')!.type;
    const latentType = spec('VAEDecode').inputs.find((s) => s.name === 'latent')!.type;
    const takesImage = catalog.nodes.filter((n) => n.inputs.some((s) => s.type === imageType)).map((n) => n.type);

    // An image output dragged onto nothing: the search opens there, with only the nodes that take an image.
    const drop = await emptyScreenPoint(page);
    await drag(page, await socketCenter(page, 'image', 'output', 'image'), drop);
    await expect.poll(() => page.locator('[data-testid="menu"][data-purpose="connect"]').count()).toBe(1);
    expect(await page.locator('[data-testid="menu-heading"]').textContent()).toContain(imageType);
    expect((await offered(page)).sort()).toEqual([...takesImage].sort());
    expect(await offered(page)).not.toContain('TextPrompt');
    await lightCheck(page, 'canvas-wire-search');

    // Typing narrows it; Enter places the node where the wire was let go, connected.
    await page.keyboard.type('save');
    await expect.poll(async () => (await offered(page))[0]).toBe('SaveImage');
    await page.keyboard.press('Enter');
    await expect.poll(async () => (await canvasNodeIds(page)).length).toBe(before.length + 1);
    const added = (await canvasNodeIds(page)).find((id) => !before.includes(id))!;
    const box = (await node(page, added).boundingBox())!;
    expect(box.x).toBeLessThan(drop.x);
    expect(box.x + box.width).toBeGreaterThan(drop.x);
    await expect
      .poll(async () => (await autosavedGraph(page)).edges.some((e) => e.from.node === 'image' && e.from.output === 'image' && e.to.node === added))
      .toBe(true);

    // From an input: the nodes whose output feeds it. Escape: nothing added, nothing connected.
    const edges = (await autosavedGraph(page)).edges.length;
    const feedsLatent = catalog.nodes.filter((n) => n.outputs.some((s) => s.type === latentType)).map((n) => n.type);
    const spot = await emptyScreenPoint(page);
    await page.mouse.click(spot.x, spot.y, { button: 'right' });
    await page.fill('[data-testid="menu-search"]', 'VAE Decode');
    await page.keyboard.press('Enter');
    await expect.poll(async () => (await canvasNodeIds(page)).length).toBe(before.length + 2);
    const decoder = (await canvasNodeIds(page)).find((id) => !before.includes(id) && id !== added)!;
    // Everything in view (a node added near the bottom edge reaches below it).
    await page.keyboard.press('f');
    await drag(page, await socketCenter(page, decoder, 'input', 'latent'), await emptyScreenPoint(page));
    await expect.poll(() => page.locator('[data-testid="menu"][data-purpose="connect"]').count()).toBe(1);
    expect((await offered(page)).sort()).toEqual([...feedsLatent].sort());
    await page.keyboard.press('Escape');
    await expect.poll(() => page.locator('[data-testid="menu"]').count()).toBe(0);
    expect((await canvasNodeIds(page)).length).toBe(before.length + 2);
    expect((await autosavedGraph(page)).edges.length).toBe(edges);

    expect(realErrors(errors)).toEqual([]);
    await context.close();
  });
  it('opens a run’s graph from Results and from the Queue as a new graph, and a result on a node large', { timeout: 300_000 }, async () => {
    const { context, page, errors } = await openStudio(browser, studio);
    await openTemplate(page, 'epsilon-merge');
    const steps = node(page, 'invert').locator('[data-testid="param-steps"]');
    await steps.fill('20');
    const jobId = await runAndWait(page, 'done');

    // The result on the node opens large; Esc closes it, and so does a click outside the picture.
    await node(page, 'save_eps').locator('[data-testid="node-result-img"]').click();
    await expect.poll(() => page.locator('[data-testid="lightbox"] img').count()).toBe(1);
    await lightCheck(page, 'canvas-lightbox');
    await page.keyboard.press('Escape');
    await expect.poll(() => page.locator('[data-testid="lightbox"]').count()).toBe(0);
    expect(await canvasNodeIds(page)).toContain('save_eps');
    await node(page, 'save_eps').locator('[data-testid="node-result-img"]').click();
    await expect.poll(() => page.locator('[data-testid="lightbox"]').count()).toBe(1);
    await page.mouse.click(5, 450);
    await expect.poll(() => page.locator('[data-testid="lightbox"]').count()).toBe(0);

    // Results: the run's graph opens, with the run's own settings, titled after the run.
    await openTemplate(page, 'single-prompt');
    await page.click('[data-testid="btn-results"]');
    await page.locator(`[data-testid="gallery-run"][data-job-id="${jobId}"] [data-testid="gallery-open-graph"]`).click();
    await expect.poll(docLabel(page)).toContain(`epsilon-merge (from run #${jobId.slice(0, 6)})`);
    expect(await steps.inputValue()).toBe('20');

    // Queue: a waiting job's graph opens the same way, and a finished one's.
    await page.click('[data-testid="btn-queue"]');
    await page.click('[data-testid="queue-pause"]');
    await expect.poll(() => page.locator('[data-testid="queue-paused"]').count()).toBe(1);
    const waiting = page.locator('[data-testid="queue-panel"] [data-testid="queue-item"]');
    for (const [i, n] of ['23', '24'].entries()) {
      await steps.fill(n);
      await page.keyboard.press('Control+Enter');
      await expect.poll(() => waiting.count(), { timeout: 60_000 }).toBe(i + 1);
    }
    // Reordered with its arrow: the 24-step run first.
    const order = async () => (await apiJson<QueueState>(studio, '/api/queue')).pending.map((j) => j.id);
    const [first, second] = await order();
    await waiting.nth(1).locator('[data-testid="queue-up"]').click();
    await expect.poll(order).toEqual([second, first]);
    await expect.poll(() => waiting.first().getAttribute('data-job-id')).toBe(second);
    await lightCheck(page, 'canvas-queue-reordered');
    await openTemplate(page, 'single-prompt');
    await waiting.first().locator('[data-testid="queue-open-graph"]').click();
    await expect.poll(docLabel(page)).toContain('(from run #');
    expect(await steps.inputValue()).toBe('24');
    for (const id of [first, second]) await page.locator(`[data-testid="queue-item"][data-job-id="${id}"] [data-testid="queue-cancel"]`).click();
    await expect.poll(() => waiting.count()).toBe(0);
    await page.click('[data-testid="queue-pause"]');
    await openTemplate(page, 'single-prompt');
    await page.locator(`[data-testid="queue-finished"][data-job-id="${jobId}"] [data-testid="queue-open-graph"]`).click();
    await expect.poll(docLabel(page)).toContain(`epsilon-merge (from run #${jobId.slice(0, 6)})`);
    expect(await steps.inputValue()).toBe('20');

    expect(realErrors(errors)).toEqual([]);
    await context.close();
  });
  it(
    'Load Model, its VAE field and Load LoRA pick from what the models folders hold, by kind; a typed path not there is warned about',
    { timeout: 300_000 },
    async () => {
      // What the models folders hold: a checkpoint, a LoRA, a VAE (read by their tensor names).
      const root = path.join(studio.dataDir, 'models');
      const tensor = (name: string) => ({ name, shape: [2], data: new Float32Array(2) });
      await mkdir(path.join(root, 'loras'), { recursive: true });
      await mkdir(path.join(root, 'vae'), { recursive: true });
      await writeFile(path.join(root, 'one-file.safetensors'), encodeSafetensors([tensor('model.diffusion_model.out.2.bias')]));
      await writeFile(path.join(root, 'loras', 'ink.safetensors'), encodeSafetensors([tensor('lora_unet_down_blocks_0_attn.lora_down.weight')]));
      await writeFile(path.join(root, 'vae', 'ft-mse.safetensors'), encodeSafetensors([tensor('decoder.conv_in.bias')]));

      const { context, page, errors } = await openStudio(browser, studio);
      await openTemplate(page, 'epsilon-merge');
      const picker = (nodeId: string, param: string) => node(page, nodeId).locator(`[data-testid="model-picker-${param}"]`);
      const options = (nodeId: string, param: string) =>
        picker(nodeId, param)
          .locator('[data-testid="model-option"]')
          .evaluateAll((els) => els.map((e) => `${e.getAttribute('data-kind')}:${e.getAttribute('data-model')}`));

      // Load Model: the models (the demo, the checkpoint), not the LoRA or the VAE.
      await picker('model', 'model').locator('[data-testid="model-list-model"]').click();
      await expect.poll(() => options('model', 'model')).toEqual(['demo:demo', 'checkpoint:one-file.safetensors']);
      await lightCheck(page, 'canvas-model-picker');
      await picker('model', 'model').locator('[data-model="one-file.safetensors"]').click();
      await expect.poll(() => picker('model', 'model').locator('[data-testid="param-model"]').inputValue()).toBe('one-file.safetensors');
      // Its vae field: the VAE files only.
      await picker('model', 'vae').locator('[data-testid="model-list-vae"]').click();
      await expect.poll(() => options('model', 'vae')).toEqual(['vae:vae/ft-mse.safetensors']);

      // Typed by hand: kept, and a path the list does not hold is said before any run.
      const field = picker('model', 'model').locator('[data-testid="param-model"]');
      await field.fill('models/nowhere');
      await expect.poll(() => picker('model', 'model').locator('[data-testid="model-unknown"]').count()).toBe(1);
      await field.fill('demo');
      await expect.poll(() => picker('model', 'model').locator('[data-testid="model-unknown"]').count()).toBe(0);

      // Load LoRA: the LoRA files only.
      const before = await canvasNodeIds(page);
      const spot = await emptyScreenPoint(page);
      await page.mouse.click(spot.x, spot.y, { button: 'right' });
      await page.fill('[data-testid="menu-search"]', 'Load LoRA');
      await page.keyboard.press('Enter');
      await expect.poll(async () => (await canvasNodeIds(page)).length).toBe(before.length + 1);
      const lora = (await canvasNodeIds(page)).find((id) => !before.includes(id))!;
      await page.keyboard.press('f');
      await picker(lora, 'lora').locator('[data-testid="model-list-lora"]').click();
      await expect.poll(() => options(lora, 'lora')).toEqual(['lora:loras/ink.safetensors']);

      expect(realErrors(errors)).toEqual([]);
      await context.close();
    },
  );
  it(
    'a frame’s title bar is above the nodes: a click on it picks the frame, not the node beneath, and Delete removes the frame only',
    { timeout: 300_000 },
    async () => {
      const { context, page, errors } = await openStudio(browser, studio);
      await openTemplate(page, 'epsilon-merge');
      await page.click('[data-testid="btn-fit"]');
      await node(page, 'style1').locator('[data-testid="title"]').click();
      await page.keyboard.press('Control+g');
      await page.keyboard.press('Enter');
      await expect.poll(() => page.locator('[data-testid="frame"]').count()).toBe(1);
      const ids = await canvasNodeIds(page);

      // Another node dragged onto the title bar: the bar stays on top.
      const header = (await page.locator('[data-testid="frame-header"]').boundingBox())!;
      const bar = { x: header.x + Math.min(60, header.width / 2), y: header.y + header.height / 2 };
      const title = (await node(page, 'source').locator('[data-testid="title"]').boundingBox())!;
      await drag(page, { x: title.x + 20, y: title.y + title.height / 2 }, { x: bar.x, y: bar.y + 4 });
      await expect
        .poll(async () => {
          const b = (await node(page, 'source').boundingBox())!;
          return b.y <= bar.y && b.y + b.height > bar.y && b.x <= bar.x && b.x + b.width > bar.x;
        })
        .toBe(true);
      expect(await page.evaluate(({ x, y }) => document.elementFromPoint(x, y)?.closest('[data-testid="frame-header"]') !== null, bar)).toBe(true);
      await visualCheck(page, 'canvas-frame-title-above-1440x900');

      // A click on it picks the frame; Delete removes the frame and keeps every node.
      await page.mouse.click(bar.x, bar.y);
      await expect.poll(() => page.locator('[data-testid="frame"].selected').count()).toBe(1);
      expect(await page.locator('[data-testid="node"].selected').count()).toBe(0);
      await page.keyboard.press('Delete');
      await expect.poll(() => page.locator('[data-testid="frame"]').count()).toBe(0);
      expect(await canvasNodeIds(page)).toEqual(ids);

      expect(realErrors(errors)).toEqual([]);
      await context.close();
    },
  );
  it(
    'opens readable (labels of 11 px or more) at the graph’s start, and a long CUDA reason alone gives way in the status bar',
    { timeout: 300_000 },
    async () => {
      const { context, page, errors } = await openStudio(browser, studio, { width: 1280, height: 720 });
      // The health as a server without CUDA words it at length (only the words are made up here).
      const reason = `cuda: CUDA unavailable: ${'libcublasLt.so.12 not found in the loader search path; '.repeat(4)}install it with npm run install:cuda`;
      await page.route('**/api/health', async (route) => {
        const health = (await (await route.fetch()).json()) as Record<string, unknown>;
        await route.fulfill({ json: { ...health, executionProvider: 'auto', executionProviderUsed: 'cpu', executionProviderNote: reason } });
      });
      await page.reload();
      await page.waitForSelector('[data-testid="canvas"][data-ready="true"]');
      await openTemplate(page, 'painted-mask');

      // Labels: 12 px in the node, times the view's scale.
      const scale = await page
        .locator('[data-testid="node"]')
        .first()
        .evaluate((el) => el.getBoundingClientRect().width / (el as HTMLElement).offsetWidth);
      const label = await page
        .locator('.sd-param-label')
        .first()
        .evaluate((el) => parseFloat(getComputedStyle(el).fontSize));
      expect(Math.round(label * scale * 100) / 100).toBeGreaterThanOrEqual(11);
      // From the graph's start: its top-left node is in view.
      const canvas = (await page.locator('[data-testid="canvas"]').boundingBox())!;
      const boxes = (await page.locator('[data-testid="node"]').evaluateAll((els) => els.map((e) => e.getBoundingClientRect().toJSON() as DOMRect))).sort(
        (a, b) => a.x + a.y - (b.x + b.y),
      );
      expect(boxes[0].x).toBeGreaterThanOrEqual(canvas.x);
      expect(boxes[0].y).toBeGreaterThanOrEqual(canvas.y);
      await lightCheck(page, 'canvas-first-view');

      // The status bar: the long reason is cut with an ellipsis (all of it in the tooltip); the rest keep their width.
      const provider = page.locator('[data-testid="execution-provider"]');
      await expect.poll(() => provider.textContent()).toContain('CUDA unavailable');
      expect(await provider.evaluate((el) => el.scrollWidth > el.clientWidth)).toBe(true);
      expect(await provider.getAttribute('title')).toContain('install:cuda');
      for (const id of ['health', 'status-queue', 'btn-minimap'])
        expect(await page.locator(`[data-testid="${id}"]`).evaluate((el) => el.scrollWidth <= el.clientWidth), id).toBe(true);

      expect(realErrors(errors)).toEqual([]);
      await context.close();
    },
  );
});

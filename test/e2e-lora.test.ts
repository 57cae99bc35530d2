/**
 * Browser end-to-end, a LoRA per region (issue 22): a user's diffusers PyTorch folder (the tiny-sd-diffusers
 * fixture, copied into the studio's models folder) and its LoRA, through Load Model, Load LoRA and a Region
 * with the LoRA model, in the epsilon-merge graph opened in the editor: it converts, runs to the saved
 * picture, and the nodes say which weights each region ran on.
 */
import { existsSync } from 'node:fs';
import { cp, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import type { Graph } from '../server/protocol/graph.ts';
import { withParams } from '../server/graph/with-params.ts';
import { e2eSkipReason, launchChromium, startStudio, type RunningStudio } from './support/e2e-browser.ts';
import { openStudio, openTemplate, readTemplate, realErrors, runAndWait, visualCheck } from './support/e2e-helpers.ts';
import { projectRoot } from './support/pipeline-harness.ts';

const fixture = path.resolve(projectRoot, '../shared/fixtures/tiny-sd-diffusers');
const skipReason = e2eSkipReason() ?? (existsSync(path.join(fixture, 'lora/manifest.json')) ? null : `${fixture} is missing`);
if (skipReason) console.warn(`e2e-lora skipped: ${skipReason}`);

/** The epsilon-merge template on the user's model, region 2 through a Region that runs on the model with the LoRA. */
function loraPerRegionGraph(): Graph {
  const g = withParams(readTemplate('epsilon-merge') as unknown as Graph, {
    LoadModel: { model: 'tiny' },
    LoadImage: { max_side: 64 },
    Invert: { steps: 6, skip: 2 },
  });
  const at = (id: string) => g.nodes.find((n) => n.id === id)!.position ?? { x: 0, y: 0 };
  const nodes = [
    ...g.nodes,
    {
      id: 'lora',
      type: 'LoadLora',
      params: { lora: 'tiny/lora/tiny-style.safetensors', strength_unet: 0.8, strength_text: 0.8 },
      position: { x: at('model').x, y: at('model').y + 260 },
    },
    { id: 'region2', type: 'Region', params: {}, position: { x: at('encode_style2').x + 260, y: at('encode_style2').y } },
  ];
  const edges = [
    ...g.edges.filter((e) => !(e.to.node === 'eps_merge' && e.to.input === 'style2') && !(e.to.node === 'encode_style2' && e.to.input === 'model')),
    { from: { node: 'model', output: 'model' }, to: { node: 'lora', input: 'model' } },
    { from: { node: 'lora', output: 'model' }, to: { node: 'encode_style2', input: 'model' } },
    { from: { node: 'encode_style2', output: 'conditioning' }, to: { node: 'region2', input: 'prompt' } },
    { from: { node: 'lora', output: 'model' }, to: { node: 'region2', input: 'model' } },
    { from: { node: 'region2', output: 'conditioning' }, to: { node: 'eps_merge', input: 'style2' } },
  ];
  return { ...g, nodes, edges } as Graph;
}

describe.skipIf(skipReason !== null)('browser end-to-end: a LoRA per region on a converted model', () => {
  let studio: RunningStudio;
  let browser: Browser;

  beforeAll(async () => {
    [studio, browser] = await Promise.all([startStudio(), launchChromium()]);
    // The user's model folder, in the studio's models folder (without the fixture's references).
    const dir = path.join(studio.dataDir, 'models', 'tiny');
    await mkdir(dir, { recursive: true });
    for (const sub of ['model_index.json', 'unet', 'vae', 'text_encoder', 'tokenizer', 'scheduler', 'lora'])
      await cp(path.join(fixture, sub), path.join(dir, sub), { recursive: true });
    const res = await fetch(new URL('/api/graphs/lora-per-region', studio.url), {
      method: 'PUT',
      headers: { 'Content-Type': 'application/json', 'X-Requested-With': 'test' },
      body: JSON.stringify({ graph: loraPerRegionGraph() }),
    });
    expect(res.ok, `saving the graph: ${res.status} ${await res.text()}`).toBe(true);
  });

  afterAll(async () => {
    await browser?.close();
    await studio?.close();
  });

  it('converts the model, merges the LoRA, runs, and shows which weights each region ran on', { timeout: 600_000 }, async () => {
    const { context, page, errors } = await openStudio(browser, studio);
    await openTemplate(page, 'lora-per-region');
    await runAndWait(page, 'done', 540_000);
    const text = (id: string) => page.locator(`[data-testid="node"][data-node-id="${id}"] [data-testid="node-result-text"]`).textContent();
    await expect.poll(() => text('lora')).toBe('tiny + tiny-style (UNet 0.8, text encoder 0.8)');
    await expect.poll(() => text('region2')).toBe('on tiny + tiny-style.safetensors @0.8');
    await expect.poll(() => text('eps_merge')).toBe('region 1: tiny · region 2: tiny + tiny-style.safetensors @0.8');
    await expect.poll(() => page.locator('[data-testid="node"][data-node-id="save_eps"] [data-testid="node-result-img"]').count()).toBeGreaterThan(0);
    await visualCheck(page, 'e2e-lora-per-region');
    expect(realErrors(errors)).toEqual([]);
    await context.close();
  });
});

/**
 * Browser end-to-end: custom nodes. The real studio (server/main.ts) starts with
 * `--nodes examples/dualstyle-image-adjust` and a broken package; the editor shows which package it
 * left out and why, the example's Adjust Image node is found in the node search, and a small graph
 * (Load Image → Adjust Image → Save Image) runs through it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { PNG } from 'pngjs';
import { e2eSkipReason, launchChromium, projectRoot, screenshot, type RunningStudio } from './support/e2e-browser.ts';
import { drag, openStudio, realErrors, runAndWait, socketCenter } from './support/e2e-helpers.ts';

const skipReason = e2eSkipReason();
const EXAMPLE = path.join('examples', 'dualstyle-image-adjust');

/** The studio as a user starts it, in a process of its own; resolves once it listens. */
async function startCli(args: string[]): Promise<RunningStudio & { output(): string }> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dualstyle-e2e-nodes-'));
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DUALSTYLE_') && k !== 'PORT' && k !== 'HOST'));
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts', '--port', '0', '--ep', 'cpu', '--data', dataDir, ...args], {
    cwd: projectRoot,
    env,
  });
  let text = '';
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (d: Buffer) => {
      text += d.toString();
      const m = /Dual Style Studio running at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(text);
      if (m) resolve(m[1]!);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`the studio exited (${code}) before it listened:\n${text}`)));
  });
  return {
    url,
    dataDir,
    output: () => text,
    async close() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Draws a connection socket to socket, as a hand does, until the editor has `count` connections: a node just
 * added may still be moving out of another's way when its socket is measured (on a busy machine a drag then
 * missed, and the run it needed was never sent).
 */
async function connect(page: Page, from: [node: string, output: string], to: [node: string, input: string], count: number): Promise<void> {
  const connections = page.locator('[data-testid="connection"]');
  for (let attempt = 1; ; attempt++) {
    await drag(page, await socketCenter(page, from[0], 'output', from[1]), await socketCenter(page, to[0], 'input', to[1]));
    try {
      await expect.poll(() => connections.count(), { timeout: 15_000 }).toBe(count);
      return;
    } catch (e) {
      if (attempt === 3) throw e;
    }
  }
}

/** Adds a node by searching for `query` in the node search (double-click on the canvas) and picking `type`. */
async function addFromSearch(page: Page, query: string, type: string, x: number, y: number): Promise<string> {
  const canvas = (await page.locator('[data-testid="canvas"]').boundingBox())!;
  await page.mouse.dblclick(canvas.x + x, canvas.y + y);
  await page.waitForSelector('[data-testid="palette"]');
  await page.fill('[data-testid="palette-search"]', query);
  await page.click(`[data-testid="palette-item-${type}"]`);
  const node = page.locator(`[data-testid="node"][data-node-type="${type}"]`);
  await expect.poll(() => node.count()).toBe(1);
  return (await node.getAttribute('data-node-id'))!;
}

describe.skipIf(skipReason !== null)('browser end-to-end: custom nodes', () => {
  let studio: RunningStudio & { output(): string };
  let browser: Browser;
  let broken: string;

  beforeAll(async () => {
    broken = fs.mkdtempSync(path.join(os.tmpdir(), 'dualstyle-broken-package-'));
    fs.writeFileSync(path.join(broken, 'package.json'), JSON.stringify({ name: 'broken-package', dualstyle: { entry: './index.mjs', api: 99 } }));
    [studio, browser] = await Promise.all([startCli(['--nodes', EXAMPLE, '--nodes', broken]), launchChromium()]);
  });

  afterAll(async () => {
    await browser?.close();
    await studio?.close();
    if (broken) fs.rmSync(broken, { recursive: true, force: true });
  });

  it('says which package it left out, finds Adjust Image in the node search, and runs a graph through it', { timeout: 600_000 }, async () => {
    // The log names both packages: one loaded, one not.
    expect(studio.output()).toMatch(/node package dualstyle-image-adjust 1\.0\.0 loaded/);
    expect(studio.output()).toMatch(/node package broken-package .* not loaded: it was written for node API 99/);

    const { context, page, errors } = await openStudio(browser, studio);
    const notice = page.locator('[data-testid="package-notice"]');
    await expect.poll(() => notice.textContent()).toMatch(/broken-package.*written for node API 99/);
    await screenshot(page, 'custom-nodes-notice');
    await page.click('[data-testid="package-notice"] button');
    await expect.poll(() => notice.count()).toBe(0);

    await page.click('[data-testid="btn-new"]');
    await expect.poll(() => page.locator('[data-testid="node"]').count()).toBe(0);
    const adjust = await addFromSearch(page, 'adjust', 'AdjustImage', 560, 260);
    const load = await addFromSearch(page, 'Load Image', 'LoadImage', 140, 200);
    const save = await addFromSearch(page, 'Save Image', 'SaveImage', 960, 260);
    await connect(page, [load, 'image'], [adjust, 'image'], 1);
    await connect(page, [adjust, 'image'], [save, 'image'], 2);

    // Saturation 0: the saved picture must come out grey.
    const saturation = page.locator(`[data-testid="node"][data-node-id="${adjust}"] [data-testid="param-saturation"]`);
    await saturation.fill('0');
    await saturation.press('Tab');

    const jobId = await runAndWait(page, 'done');
    await expect.poll(() => page.locator(`[data-testid="node"][data-node-id="${save}"] [data-testid="node-result-img"]`).count()).toBe(1);
    await screenshot(page, 'custom-nodes-run');
    // The job ran the package's node, and saved what it made.
    const detail = (await (await fetch(new URL(`/api/jobs/${jobId}`, studio.url))).json()) as {
      computed?: string[];
      results?: Record<string, { images?: unknown[] }>;
    };
    expect(detail.computed).toEqual(expect.arrayContaining([load, adjust, save]));
    const image = detail.results?.[save]?.images?.[0] as { url: string } | undefined;
    expect(image).toBeDefined();
    const png = PNG.sync.read(Buffer.from(await (await fetch(new URL(image!.url, studio.url))).arrayBuffer()));
    let colourful = 0;
    for (let i = 0; i < png.data.length; i += 4)
      if (Math.max(png.data[i]!, png.data[i + 1]!, png.data[i + 2]!) - Math.min(png.data[i]!, png.data[i + 1]!, png.data[i + 2]!) > 1) colourful++;
    expect(colourful).toBe(0);
    expect(realErrors(errors)).toEqual([]);
    await context.close();
  });
});

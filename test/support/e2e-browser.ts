/**
 * Browser end-to-end support: the real studio on a random loopback port with a temporary data
 * folder, and Debian's Chromium driven by playwright-core.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CHROMIUM = '/usr/bin/chromium';
export const clientDir = path.join(projectRoot, 'dist/client');
export const artifactsDir = path.join(projectRoot, 'test-artifacts/e2e');

/** Why the browser test cannot run here, or null when it can. */
export function e2eSkipReason(): string | null {
  if (!fs.existsSync(CHROMIUM)) return `${CHROMIUM} is missing (apt-get install -y chromium): browser end-to-end test skipped`;
  if (!fs.existsSync(path.join(clientDir, 'index.html'))) return 'dist/client is missing (run `npm run build` first): browser end-to-end test skipped';
  return null;
}

export interface RunningStudio {
  url: string;
  dataDir: string;
  close(): Promise<void>;
}

export async function startStudio(): Promise<RunningStudio> {
  const { createStudio } = await import('../../server/app.ts');
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dualstyle-e2e-'));
  const quiet = { debug() {}, info() {}, warn() {}, error: (m: string, e?: unknown) => console.error(m, e ?? '') };
  const studio = await createStudio({ dataDir, port: 0, logger: quiet, executionProvider: 'cpu' });
  return {
    url: studio.url,
    dataDir,
    async close() {
      await studio.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

export async function screenshot(page: Page, name: string): Promise<string> {
  fs.mkdirSync(artifactsDir, { recursive: true });
  const file = path.join(artifactsDir, `${name}.png`);
  await page.screenshot({ path: file });
  return file;
}

/** Collects page errors and console errors, so a test can assert the UI did not throw. */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`console: ${msg.text()}`);
  });
  return errors;
}

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

/**
 * `token`: the access token the server then requires on /api and socket.io (as beyond loopback);
 * `executionProvider`: as `--ep` (default cpu).
 */
export async function startStudio(options: { token?: string; executionProvider?: 'auto' | 'cpu' } = {}): Promise<RunningStudio> {
  const { createStudio } = await import('../../server/app.ts');
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dualstyle-e2e-'));
  const quiet = { debug() {}, info() {}, warn() {}, error: (m: string, e?: unknown) => console.error(m, e ?? '') };
  const studio = await createStudio({ dataDir, port: 0, logger: quiet, executionProvider: options.executionProvider ?? 'cpu', token: options.token });
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
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
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

/** Drops a file on an element the way a user's drag from the desktop does (dragenter, dragover, drop). */
export async function dropFile(page: Page, selector: string, file: { name: string; mimeType: string; bytes: Uint8Array }): Promise<void> {
  await page.evaluate(
    ({ selector, name, mimeType, b64 }) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const data = new DataTransfer();
      data.items.add(new File([bytes], name, { type: mimeType }));
      const target = document.querySelector(selector);
      if (!target) throw new Error(`nothing matches ${selector}`);
      for (const type of ['dragenter', 'dragover', 'drop']) {
        target.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: data }));
      }
    },
    { selector, name: file.name, mimeType: file.mimeType, b64: Buffer.from(file.bytes).toString('base64') },
  );
}

/**
 * Starts logging every `data-status` a node shows (running, cached, done, ...) in the page, so a
 * test can tell afterwards whether a node computed or came from the cache, however fast it went.
 */
export async function recordNodeStatuses(page: Page): Promise<() => Promise<Record<string, string[]>>> {
  await page.evaluate(() => {
    const w = window as unknown as { __statusLog?: Record<string, string[]>; __statusObserver?: MutationObserver };
    w.__statusObserver?.disconnect();
    const log: Record<string, string[]> = {};
    w.__statusLog = log;
    const note = (el: Element) => {
      const id = el.getAttribute('data-node-id');
      const status = el.getAttribute('data-status');
      if (!id || !status) return;
      const seen = (log[id] ??= []);
      if (seen[seen.length - 1] !== status) seen.push(status);
    };
    w.__statusObserver = new MutationObserver((records) => {
      for (const r of records) if (r.target instanceof Element && r.target.matches('[data-testid="node"]')) note(r.target);
    });
    w.__statusObserver.observe(document.body, { subtree: true, attributes: true, attributeFilter: ['data-status'] });
  });
  return () => page.evaluate(() => (window as unknown as { __statusLog: Record<string, string[]> }).__statusLog);
}

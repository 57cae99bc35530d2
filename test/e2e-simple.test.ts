/**
 * Browser end-to-end, issue 26 items 13 and 14: simple mode (a template's exposed fields on one page,
 * a prompt changed there, Run, the result beside its picture; a parameter exposed from the canvas shows
 * up), the live token count under each prompt, and a long prompt read in chunks. Screenshots of simple
 * mode at 1440×900 and 1280×720 go to test-artifacts/.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { e2eSkipReason, launchChromium, startStudio, type RunningStudio } from './support/e2e-browser.ts';
import { openStudio, openTemplate, readTemplate, realErrors, runAndWait, visualCheck } from './support/e2e-helpers.ts';

const skipReason = e2eSkipReason();

const node = (page: Page, id: string) => page.locator(`[data-testid="node"][data-node-id="${id}"]`);
const simple = (page: Page) => page.locator('[data-testid="simple-view"]');
const section = (page: Page, id: string) => simple(page).locator(`[data-testid="simple-section"][data-node-id="${id}"]`);
const sectionIds = (page: Page) =>
  simple(page)
    .locator('[data-testid="simple-section"]')
    .evaluateAll((els) => els.map((e) => e.getAttribute('data-node-id')));
const fieldsOf = (page: Page, id: string) =>
  section(page, id)
    .locator('[data-testid^="control-"]')
    .evaluateAll((els) => els.map((e) => e.getAttribute('data-testid')!.slice('control-'.length)));

/** The template made quick on the demo model: a small picture, few steps (set on the canvas). */
async function quickRun(page: Page) {
  await node(page, 'invert').locator('[data-testid="param-steps"]').fill('8');
  await node(page, 'invert').locator('[data-testid="param-skip"]').fill('2');
  await node(page, 'image').locator('[data-testid="param-max_side"]').fill('128');
}

/** A prompt over 75 tokens on the demo model's byte vocabulary (one token per byte). */
const LONG = `a watercolor painting of [prompt], ${'soft washes of blue and gold, '.repeat(4)}paper texture`;

describe.skipIf(skipReason !== null)('browser end-to-end: simple mode and long prompts', () => {
  let studio: RunningStudio;
  let browser: Browser;

  beforeAll(async () => {
    [studio, browser] = await Promise.all([startStudio(), launchChromium()]);
  });

  /** The demo model's count of a prompt, asked of the server (the count the editor shows). */
  const tokensOf = async (text: string): Promise<number> => {
    const res = await fetch(new URL('/api/tokens', studio.url), {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-requested-with': 'test' },
      body: JSON.stringify({ texts: [text], model: 'demo' }),
    });
    return ((await res.json()) as { counts: { tokens: number }[] }).counts[0]!.tokens;
  };

  afterAll(async () => {
    await browser?.close();
    await studio?.close();
  });

  it('shows only the exposed fields, runs a changed prompt from there, and shows the result beside the picture', { timeout: 300_000 }, async () => {
    const { context, page, errors } = await openStudio(browser, studio);
    await openTemplate(page, 'attention-merge');
    await quickRun(page);
    await page.click('[data-testid="view-simple"]');
    await expect.poll(() => simple(page).isVisible()).toBe(true);
    // Before the run, the output's place says what to do.
    expect(await simple(page).locator('[data-testid="simple-result"][data-node-id="save_attn"]').textContent()).toContain('Run to see it');
    const template = readTemplate('attention-merge');
    const exposed = template.nodes.filter((n) => (n as { exposed?: string[] }).exposed?.length);
    expect(await sectionIds(page)).toEqual(exposed.map((n) => n.id));
    for (const n of exposed) expect(await fieldsOf(page, n.id)).toEqual((n as { exposed?: string[] }).exposed);
    // Not the graph's other parameters: no steps, no seed, no model.
    expect(await simple(page).locator('[data-testid="control-steps"], [data-testid="control-seed"], [data-testid="control-model"]').count()).toBe(0);

    const style2 = section(page, 'style2').locator('[data-testid="param-text"]');
    await style2.fill('[prompt] as a pencil sketch');
    const sketch = await tokensOf('a house as a pencil sketch');
    expect(sketch).toBeGreaterThan(3);
    await expect.poll(() => section(page, 'style2').locator('[data-testid="token-count"]').textContent()).toBe(`${sketch} / 75`);
    await runAndWait(page, 'done', 240_000, () => simple(page).locator('[data-testid="simple-run"]').click());
    await expect.poll(() => simple(page).locator('[data-testid="before-after"] img').count()).toBe(2);
    expect(await simple(page).locator('[data-testid="before-after"]').getAttribute('data-node-id')).toBe('save_attn');
    // The prompt changed in the form is the graph's: the canvas has it.
    await page.click('[data-testid="view-graph"]');
    expect(await node(page, 'style2').locator('[data-testid="param-text"]').inputValue()).toBe('[prompt] as a pencil sketch');
    expect(realErrors(errors)).toEqual([]);
    await context.close();
  });

  it('shows a parameter exposed from the canvas, and hides it again', { timeout: 120_000 }, async () => {
    const { context, page, errors } = await openStudio(browser, studio);
    await openTemplate(page, 'epsilon-merge');
    await page.click('[data-testid="view-graph"]');
    await node(page, 'invert').locator('[data-testid="expose-seed"]').click();
    await expect.poll(() => node(page, 'invert').locator('[data-testid="expose-seed"]').getAttribute('aria-pressed')).toBe('true');
    // The node stays selected on the canvas out of sight: Delete in simple mode leaves it alone.
    await node(page, 'invert').click({ position: { x: 30, y: 12 } });
    await page.click('[data-testid="view-simple"]');
    await expect.poll(() => fieldsOf(page, 'invert')).toEqual(['seed']);
    await simple(page).locator('.sd-simple-title').click();
    await page.keyboard.press('Delete');
    expect(await node(page, 'invert').count()).toBe(1);
    await page.click('[data-testid="view-graph"]');
    await page.keyboard.press('Control+z');
    await page.click('[data-testid="view-simple"]');
    await expect.poll(() => section(page, 'invert').count()).toBe(0);
    expect(realErrors(errors)).toEqual([]);
    await context.close();
  });

  it('counts tokens while typing, and runs a long prompt in chunks without cutting it', { timeout: 300_000 }, async () => {
    const { context, page, errors } = await openStudio(browser, studio);
    await openTemplate(page, 'attention-merge');
    await quickRun(page);
    const count = node(page, 'style1').locator('[data-testid="token-count"]');
    const text = node(page, 'style1').locator('[data-testid="param-text"]');
    await text.fill('');
    await text.pressSequentially('[prompt] at dusk', { delay: 5 });
    await expect.poll(() => count.textContent()).toBe(`${await tokensOf('a house at dusk')} / 75`);
    await text.fill(LONG);
    const tokens = await tokensOf(LONG.replace('[prompt]', 'a house'));
    expect(tokens).toBeGreaterThan(75);
    expect(tokens).toBeLessThanOrEqual(150);
    await expect.poll(() => count.textContent()).toBe(`${tokens} / 75 — cut at 75`);
    await node(page, 'encode_style1').locator('[data-testid="param-longPrompt"]').selectOption('chunks');
    await expect.poll(() => count.textContent()).toBe(`${tokens} tokens, 2 chunks`);
    await runAndWait(page, 'done', 240_000);
    await expect
      .poll(() => node(page, 'encode_style1').locator('[data-testid="node-result-text"]').textContent())
      .toContain('in 2 chunks (154 tokens of context)');
    expect(await node(page, 'encode_style1').locator('[data-testid="node-warning"]').count()).toBe(0);
    await node(page, 'style1').scrollIntoViewIfNeeded();
    await visualCheck(page, 'token-count-graph');
    // In simple mode the same count is under the prompt.
    await page.click('[data-testid="view-simple"]');
    await expect.poll(() => section(page, 'style1').locator('[data-testid="token-count"]').textContent()).toBe(`${tokens} tokens, 2 chunks`);
    expect(realErrors(errors)).toEqual([]);
    await context.close();
  });

  it.each([
    [1440, 900],
    [1280, 720],
  ])('lays simple mode out at %i×%i (screenshots of the painted-mask template)', { timeout: 300_000 }, async (width, height) => {
    const { context, page, errors } = await openStudio(browser, studio, { width, height });
    await openTemplate(page, 'painted-mask');
    await quickRun(page);
    await page.click('[data-testid="view-simple"]');
    await runAndWait(page, 'done', 240_000, () => simple(page).locator('[data-testid="simple-run"]').click());
    await expect.poll(() => simple(page).locator('[data-testid="before-after"] img').count()).toBe(2);
    await expect.poll(() => simple(page).locator('[data-testid="mask-painter"]').count()).toBe(1);
    // Nothing of the form is cut off sideways: the page scrolls down only.
    const overflow = await simple(page).evaluate((el) => el.scrollWidth - el.clientWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await visualCheck(page, `simple-mode-${width}x${height}`);
    await simple(page).locator('[data-testid="mask-painter"]').scrollIntoViewIfNeeded();
    await visualCheck(page, `simple-mode-${width}x${height}-painter`);
    expect(realErrors(errors)).toEqual([]);
    await context.close();
  });
});

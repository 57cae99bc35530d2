/**
 * The metrics nodes in the comparison template: a Metrics node per method into a Metrics Table
 * (the seed's layout), CLIP once Load CLIP has a folder, the original embedded once for all methods,
 * and metrics cheap next to sampling.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ClipValue, MetricsValue } from '../nodes/values.ts';
import { loadTemplate, projectRoot, Runner, shrink, withParams } from './support/pipeline-harness.ts';

const clip = path.resolve(projectRoot, '../shared/fixtures/metrics/clip');
const METHODS = ['attention', 'epsilon', 'pixel', 'single', 'style1', 'style2'];

describe('metrics in the comparison template', () => {
  it('runs without a CLIP folder: pixel metrics for every method, CLIP left out with a warning', async () => {
    const r = await Runner.create();
    const s = await r.run(shrink(await loadTemplate('comparison')));
    const table = s.results['metrics_table']!.table!;
    expect(table.columns).toEqual(METHODS);
    // With the mask connected, the seam TV along the borders of the regions, all and each.
    expect(table.rows.map((row) => row.label)).toEqual(['L2 ↓', 'PSNR ↑', 'SSIM ↑', 'Smooth. ↓', 'Seam TV ↓', 'Border TV ↓', 'Border TV 1 ↓', 'Border TV 2 ↓']);
    for (const row of table.rows) for (const cell of row.cells) expect(cell).toMatch(/^-?\d+\.\d+$/);
    expect(s.warnings['clip']!.join()).toMatch(/no CLIP model set/);
  });

  it.skipIf(!existsSync(clip))('with a CLIP folder: every CLIP score, the original embedded once, metrics cheap next to sampling', async () => {
    const r = await Runner.create();
    const s = await r.run(withParams(shrink(await loadTemplate('comparison')), { clip: { clip } }));
    const table = s.results['metrics_table']!.table!;
    expect(table.rows.map((row) => row.label)).toEqual([
      'L2 ↓',
      'PSNR ↑',
      'SSIM ↑',
      'Smooth. ↓',
      'Seam TV ↓',
      'Border TV ↓',
      'Border TV 1 ↓',
      'Border TV 2 ↓',
      'CLIP ↑',
      'CLIP l. ↑',
      'CLIP r. ↑',
      'DCLIP ↑',
      'DCLIP l. ↑',
      'DCLIP r. ↑',
      'CLIP reg. ↑',
      'CLIP reg. 1 ↑',
      'CLIP reg. 2 ↑',
      'Bleed ↓',
      'Bleed 1 ↓',
      'Bleed 2 ↓',
    ]);
    // Each Metrics node shows its own one-column table and a one-line summary.
    expect(s.results['metrics_epsilon']?.table?.columns ?? r.eventsOf('node:done', 'metrics_epsilon').length).toBeTruthy();
    const eps = r.cache.get(s.keys['metrics_epsilon']!)!;
    expect((eps.outputs['metrics'] as MetricsValue).samples[0]!.label).toBe('epsilon');
    expect(eps.result!.text).toMatch(/^PSNR \d+\.\d+ · SSIM \d\.\d+ · Seam TV \d\.\d+ · CLIP -?\d\.\d+ · CLIP reg\. -?\d\.\d+ · DCLIP -?\d\.\d+$/);
    // Six generated pictures and one original: seven image calls (picture + halves in one batch), and one call for
    // the two region crops of each generated picture; three prompts.
    const model = await (r.cache.get(s.keys['clip']!)!.outputs['clip'] as ClipValue).handle!.acquire();
    expect(model.stats).toEqual({ imageCalls: 7 + 6, textCalls: 3 });
    // Speed: the metrics nodes together against one sampler.
    const ms = (id: string) => (r.eventsOf('node:done', id)[0] as { ms: number }).ms;
    const metricsMs = METHODS.reduce((sum, m) => sum + ms(`metrics_${m}`), 0);
    console.log(
      `metrics: six Metrics nodes ${metricsMs} ms (${METHODS.map((m) => ms(`metrics_${m}`)).join(', ')}); epsilon-merge sampler ${ms('eps_merge')} ms; inversion ${ms('invert')} ms (64 px, 6 steps)`,
    );
  });
});

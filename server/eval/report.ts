/**
 * What `npm run eval` leaves behind: results.csv (one row per item), report.html (the seed's tables,
 * mean ± std per method for each mask, best in bold, then a grid per image, style pair and mask with
 * the mask drawn) and the same tables as text for the terminal.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { METRIC_NAMES, METRICS, REGION_METRICS, type MetricName } from '../engine/metrics/names.ts';
import { bestLabel, formatStat, summarize, summaryRows, type MetricsSummary } from '../engine/metrics/summary.ts';
import type { EvalResults, ItemResult } from './run.ts';

/** Seed column names. */
const METHOD_TITLES: Record<string, string> = { attention: 'Cross Attn', epsilon: 'Epsilon', pixel: 'Pixel', single: '2 prompts (one)' };
const title = (m: string) => METHOD_TITLES[m] ?? m;

function itemsOf(r: EvalResults): ItemResult[] {
  return Object.values(r.items);
}

/** One summary per mask, columns in --methods order. */
export function summariesByMask(r: EvalResults): { mask: string; summary: MetricsSummary }[] {
  return r.config.masks.map((mask) => {
    const items = itemsOf(r).filter((i) => i.mask === mask);
    const order = r.config.methods.filter((m) => items.some((i) => i.method === m));
    const summary = summarize(order.flatMap((m) => items.filter((i) => i.method === m).map((i) => ({ label: m, values: i.metrics }))));
    return { mask, summary };
  });
}

const csvCell = (v: string | number | undefined) =>
  v === undefined ? '' : typeof v === 'number' ? String(v) : /[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;

export function resultsCsv(r: EvalResults): string {
  // Every metric a run can make, and the region metrics where some item has them.
  const metrics = METRIC_NAMES.filter((m) => !REGION_METRICS.has(m) || itemsOf(r).some((i) => i.metrics[m] !== undefined));
  const head = ['image', 'style_pair', 'mask', 'method', 'width', 'height', ...metrics, 'file', 'ms'];
  const rows = itemsOf(r).map((i) =>
    [i.image, i.pair, i.mask, i.method, i.width, i.height, ...metrics.map((m) => i.metrics[m]), i.file, i.ms].map(csvCell).join(','),
  );
  return [head.join(','), ...rows].join('\n') + '\n';
}

/** The tables as aligned text, one per mask. */
export function textTables(r: EvalResults): string {
  const out: string[] = [];
  for (const { mask, summary } of summariesByMask(r)) {
    const n = new Set(
      itemsOf(r)
        .filter((i) => i.mask === mask)
        .map((i) => `${i.image}|${i.pair}`),
    ).size;
    out.push(`Mask ${mask} (mean ± std over ${n} image × style pair${n === 1 ? '' : 's'})`);
    const rows = [['Metric', ...summary.labels.map(title)], ...summaryRows(summary).map((row) => [row.label, ...row.cells])];
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
    for (const row of rows) out.push(row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '));
    out.push('');
  }
  return out.join('\n');
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function htmlTable(summary: MetricsSummary): string {
  let group = '';
  const body = summary.metrics.map((m: MetricName) => {
    const info = METRICS[m];
    const best = bestLabel(summary, m);
    const head = info.group !== group ? `<tr class="group"><th colspan="${summary.labels.length + 1}">${(group = info.group)}</th></tr>` : '';
    const cells = summary.labels.map((l) => `<td${l === best ? ' class="best"' : ''}>${esc(formatStat(m, summary.stats.get(l)?.[m]))}</td>`).join('');
    return `${head}<tr><th title="${esc(info.description)}">${esc(info.label)} ${info.better === 'higher' ? '↑' : '↓'}</th>${cells}</tr>`;
  });
  return `<table class="metrics"><thead><tr><th>Metric</th>${summary.labels.map((l) => `<th>${esc(title(l))}</th>`).join('')}</tr></thead><tbody>${body.join('')}</tbody></table>`;
}

function grid(r: EvalResults): string {
  const items = itemsOf(r);
  const sections: string[] = [];
  for (const [name, image] of Object.entries(r.images)) {
    for (const pair of [...new Set(items.filter((i) => i.image === name).map((i) => i.pair))]) {
      for (const mask of r.config.masks) {
        const row = r.config.methods
          .map((m) => items.find((i) => i.image === name && i.pair === pair && i.mask === mask && i.method === m))
          .filter((i): i is ItemResult => !!i);
        if (row.length === 0) continue;
        const { width, height } = row[0]!;
        const maskFile = r.masks[`${mask}-${width}x${height}`];
        const fig = (src: string, caption: string) =>
          `<figure><img src="${esc(src)}" width="${width}" height="${height}" alt="${esc(caption)}"><figcaption>${caption}</figcaption></figure>`;
        const figures = [
          fig(image.original, 'original'),
          ...(maskFile ? [fig(maskFile, `mask: ${esc(mask)} (white = left style)`)] : []),
          ...row.map((i) => fig(i.file, `${esc(title(i.method))}<br><small>${metricsCaption(i.metrics)}</small>`)),
        ];
        sections.push(
          `<section class="item" data-image="${esc(name)}" data-pair="${esc(pair)}" data-mask="${esc(mask)}">` +
            `<h3>${esc(name)} · ${esc(pair)} · ${esc(mask)}</h3><p class="prompt">${esc(image.source)}</p><div class="row">${figures.join('')}</div></section>`,
        );
      }
    }
  }
  return sections.join('\n');
}

/** PSNR, seam TV and (when scored) CLIP of one picture, for its caption. */
function metricsCaption(m: ItemResult['metrics']): string {
  const clip = m.clip !== undefined ? ` · CLIP ${m.clip.toFixed(3)}` : '';
  return `PSNR ${m.psnr?.toFixed(2) ?? '–'} · seam TV ${m.tv_seam?.toFixed(3) ?? '–'}${clip}`;
}

export function reportHtml(r: EvalResults): string {
  const c = r.config;
  const n = Object.keys(r.items).length;
  const tables = summariesByMask(r)
    .map(({ mask, summary }) => `<h2>Mask: ${esc(mask)}</h2>${htmlTable(summary)}`)
    .join('\n');
  const demo = c.model === 'demo' ? '<p class="warn">Built-in demo model (random weights): the pictures and numbers only show that the pipeline runs.</p>' : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Dual Style Studio evaluation</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
table.metrics { border-collapse: collapse; margin: 8px 0 24px; font-variant-numeric: tabular-nums; }
table.metrics th, table.metrics td { padding: 3px 10px; border-bottom: 1px solid #ddd; text-align: right; }
table.metrics th:first-child { text-align: left; }
table.metrics tr.group th { text-align: left; background: #f3f3f3; font-style: italic; }
td.best { font-weight: bold; background: #fff6c2; }
.row { display: flex; flex-wrap: wrap; gap: 8px; }
figure { margin: 0; text-align: center; font-size: 12px; }
figure img { display: block; image-rendering: pixelated; width: 160px; height: auto; border: 1px solid #ccc; }
.prompt { color: #555; margin: 2px 0 6px; }
.warn { background: #fff3cd; padding: 6px 10px; }
</style></head><body>
<h1>Evaluation</h1>
${demo}
<p>${n} items: ${Object.keys(r.images).length} images × ${new Set(Object.values(r.items).map((i) => i.pair)).size} style pairs × ${c.masks.length} masks × ${c.methods.length} methods.
Model <code>${esc(c.model)}</code>, ${c.steps} steps, skip ${c.skip}, decoder guidance ${c.guidance ?? "the graph's"}, images ≤ ${c.size} px, sharpness ${c.sharpness}, seed ${c.seed};
CLIP ${c.clip ? `<code>${esc(c.clip)}</code>` : 'none (CLIP scores left out)'}; LPIPS ${c.lpips ? `<code>${esc(c.lpips)}</code>` : 'none'}. Graph <code>${esc(c.template)}</code>.
Cells: mean ± std (population) over images and style pairs; ↑/↓: which way is better; best in bold.</p>
${tables}
<h2>Images</h2>
${grid(r)}
</body></html>
`;
}

export async function writeReports(outDir: string, r: EvalResults): Promise<void> {
  await writeFile(path.join(outDir, 'results.csv'), resultsCsv(r));
  await writeFile(path.join(outDir, 'report.html'), reportHtml(r));
}

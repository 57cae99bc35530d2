/**
 * The seed's table: metrics as rows, one column per method (label), each cell mean ± std over the
 * samples of that label (population std, NumPy's default; 0 for a single sample). Shared by the
 * Metrics Table node and the eval report so both read the same.
 */
import { formatMetric, METRIC_NAMES, METRICS, type MetricName, type MetricValues } from './names.ts';

export interface Stat {
  mean: number;
  std: number;
  n: number;
}

export interface MetricsSummary {
  /** Labels in first-seen order. */
  labels: string[];
  /** Metrics that at least one sample has, in table order. */
  metrics: MetricName[];
  stats: Map<string, Partial<Record<MetricName, Stat>>>;
}

export function summarize(samples: { label: string; values: MetricValues }[]): MetricsSummary {
  const groups = new Map<string, MetricValues[]>();
  for (const s of samples) {
    const g = groups.get(s.label) ?? [];
    g.push(s.values);
    groups.set(s.label, g);
  }
  const present = new Set<MetricName>();
  const stats = new Map<string, Partial<Record<MetricName, Stat>>>();
  for (const [label, list] of groups) {
    const row: Partial<Record<MetricName, Stat>> = {};
    for (const m of METRIC_NAMES) {
      const xs = list.map((v) => v[m]).filter((x): x is number => typeof x === 'number');
      if (xs.length === 0) continue;
      present.add(m);
      const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
      const std = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length);
      row[m] = { mean, std, n: xs.length };
    }
    stats.set(label, row);
  }
  return { labels: [...groups.keys()], metrics: METRIC_NAMES.filter((m) => present.has(m)), stats };
}

/** "0.48 ± 0.04" (or the value alone for one sample); "–" where the metric is missing. */
export function formatStat(metric: MetricName, stat: Stat | undefined): string {
  if (!stat) return '–';
  return stat.n > 1 ? `${formatMetric(metric, stat.mean)} ± ${formatMetric(metric, stat.std)}` : formatMetric(metric, stat.mean);
}

/** The label of the best column of a metric row (higher or lower mean, as the metric reads), or null. */
export function bestLabel(summary: MetricsSummary, metric: MetricName): string | null {
  let best: string | null = null;
  let value = 0;
  const sign = METRICS[metric].better === 'higher' ? 1 : -1;
  for (const label of summary.labels) {
    const s = summary.stats.get(label)?.[metric];
    if (!s || Number.isNaN(s.mean)) continue;
    if (best === null || sign * s.mean > sign * value) {
      best = label;
      value = s.mean;
    }
  }
  return summary.labels.length > 1 ? best : null;
}

/** The summary as rows of text cells: one row per metric ("PSNR ↑"), one cell per label. */
export function summaryRows(summary: MetricsSummary): { label: string; cells: string[] }[] {
  return summary.metrics.map((m) => ({
    label: `${METRICS[m].label} ${METRICS[m].better === 'higher' ? '↑' : '↓'}`,
    cells: summary.labels.map((l) => formatStat(m, summary.stats.get(l)?.[m])),
  }));
}

import { z } from 'zod';
import { defineNode, type NodeRunResult } from './types.ts';
import { evaluateImage, type StylePrompts } from '../server/engine/metrics/evaluate.ts';
import { formatMetric, METRICS, type MetricName } from '../server/engine/metrics/names.ts';
import { summarize, summaryRows } from '../server/engine/metrics/summary.ts';
import { fingerprintFolder } from '../server/engine/sd/model-folder.ts';
import { resolveModelPath } from './lib/model.ts';
import { PER_STYLE, requireStyles, stylesParam } from './lib/styles.ts';
import type { MetricsValue } from './values.ts';

/** The metrics a one-line summary shows. */
const HEADLINE: MetricName[] = ['psnr', 'ssim', 'tv_seam', 'clip', 'clip_region', 'dclip'];

export const metricsNode = defineNode({
  type: 'Metrics',
  title: 'Metrics',
  category: 'Metrics',
  description:
    "The seed paper's metrics of a generated image against the original: L2, PSNR, SSIM, smoothness (TV) and the seam TV of the central 20%; " +
    'with a CLIP model and the prompts, CLIP (whole picture, mean over the styles; with two styles also left half vs style 1 and right half ' +
    "vs style 2) and directional CLIP; with the mask too, CLIP of each style's own region (where the mask weighs it most) against that style " +
    'and against the other styles (bleed, lower is better), and the seam TV along the borders of every region (not only the centre band); ' +
    "with an LPIPS folder, LPIPS. Metrics are cheap next to sampling; the original's CLIP embeddings are computed once.",
  inputs: {
    image: { type: 'Image', label: 'generated' },
    original: { type: 'Image', label: 'original' },
    clip: { type: 'Clip', label: 'clip', optional: true },
    source: { type: 'Text', label: 'source prompt', optional: true },
    style: { type: 'Text', label: 'style', optional: true, description: "one prompt per style, in the mask's order", variadic: PER_STYLE },
    mask: { type: 'Mask', label: 'mask', optional: true, description: 'for the metrics per region: CLIP, bleed, border TV', countParam: 'styles' },
  },
  outputs: { metrics: { type: 'Metrics', label: 'metrics' } },
  params: z.object({
    styles: stylesParam('How many style prompts (and mask regions) the image is scored against.'),
    label: z.string().max(60).default('').describe('Name of this row in a Metrics Table (the method, e.g. "epsilon"); empty: the node id.'),
    lpips: z.string().max(1000).default('').describe('LPIPS ONNX folder (features.onnx + lpips.json, see docs/lpips-onnx.md); empty: no LPIPS.'),
  }),
  async identity(params, services) {
    if (!params.lpips.trim()) return 'no-lpips';
    return fingerprintFolder(await resolveModelPath(params.lpips.trim(), services)).catch(() => 'unreadable');
  },
  async run({ inputs, params, ctx }) {
    const { image, original, clip, source, style, mask } = inputs;
    const styles = style.filter((s): s is string => s !== undefined);
    const prompts: StylePrompts | undefined = source !== undefined && styles.length === style.length ? { source, styles } : undefined;
    if (clip?.handle && !prompts) ctx.warn(`CLIP scores need the source prompt and all ${style.length} style prompts connected; they are left out`);
    if (mask) requireStyles(mask, style.length);
    const lpips = params.lpips.trim()
      ? await (
          await ctx.services.models.lpips.open(await resolveModelPath(params.lpips.trim(), ctx.services), ctx.services.executionProvider, {
            deviceId: ctx.services.gpu ?? 0,
          })
        ).acquire()
      : undefined;
    const values = await evaluateImage(image, original, prompts, { clip: clip?.handle ? await clip.handle.acquire() : undefined, lpips }, mask);
    const metrics: MetricsValue = { samples: [{ label: params.label.trim() || ctx.nodeId, values, width: image.width, height: image.height }] };
    return { outputs: { metrics }, result: metricsResult(metrics) };
  },
});

/** A table (metrics × labels) and a one-line summary for clients that show text only. */
function metricsResult(metrics: MetricsValue): NodeRunResult {
  const summary = summarize(metrics.samples);
  const first = summary.stats.get(summary.labels[0]!) ?? {};
  const text = HEADLINE.filter((m) => first[m])
    .map((m) => `${METRICS[m].label} ${formatMetric(m, first[m]!.mean)}`)
    .join(' · ');
  return { text, table: { columns: summary.labels, rows: summaryRows(summary) } };
}

const SLOTS = 8;
const slotInputs = Object.fromEntries(
  Array.from({ length: SLOTS }, (_, i) => [`metrics${i + 1}`, { type: 'Metrics' as const, label: `metrics ${i + 1}`, optional: true as const }]),
) as Record<`metrics${1 | 2 | 3 | 4 | 5 | 6 | 7 | 8}`, { type: 'Metrics'; label: string; optional: true }>;

export const metricsTable = defineNode({
  type: 'MetricsTable',
  title: 'Metrics Table',
  category: 'Metrics',
  description:
    "Collects the metrics of many runs into the seed's table: one column per label (method), one row per metric, mean ± std over the " +
    'samples that share a label (e.g. the same method on several images); ↑/↓ say which way is better.',
  inputs: slotInputs,
  outputs: {},
  output: true,
  params: z.object({}),
  async run({ inputs, ctx }) {
    const samples = Object.values(inputs).flatMap((m) => m?.samples ?? []);
    if (samples.length === 0) ctx.warn('no Metrics connected');
    return { outputs: {}, result: metricsResult({ samples }) };
  },
});

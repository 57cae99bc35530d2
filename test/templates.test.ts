/**
 * The shipped templates, end to end through the real catalog, executor and onnxruntime: on the
 * built-in demo model (always) and on the reference tiny-sd model (where ../shared is present).
 */
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { validateGraph, formatIssue } from '../server/graph/validate.ts';
import { resultsDir } from '../server/store/paths.ts';
import { NodeFailedError } from '../server/executor/executor.ts';
import { CancelledError } from '../server/engine/errors.ts';
import { STYLE_PRESETS } from '../nodes/lib/presets.ts';
import { catalog, loadTemplate, projectRoot, Runner, shrink, tinySd, withParams } from './support/pipeline-harness.ts';

const templates = readdirSync(path.join(projectRoot, 'graphs'))
  .filter((f) => f.endsWith('.json'))
  .map((f) => f.slice(0, -5));

async function resultImage(runner: Runner, url: string) {
  const file = path.join(resultsDir(runner.services.dataDir), path.basename(url));
  const { data, info } = await sharp(await readFile(file))
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data, info };
}

describe('templates', () => {
  it('ships the methods of the paper, and a comparison of all of them on one inversion', async () => {
    expect(templates.sort()).toEqual([
      'attention-merge',
      'comparison',
      'comparison-three-styles',
      'epsilon-merge',
      'painted-mask',
      'pixel-merge',
      'regional-controls',
      'single-prompt',
      'three-styles',
      'words-mask',
    ]);
    for (const name of ['comparison', 'comparison-three-styles']) {
      const comparison = await loadTemplate(name);
      const types = comparison.nodes.map((n) => n.type);
      for (const t of ['EpsilonMergeSampler', 'AttentionMergeSampler', 'SinglePromptSampler', 'PixelMerge', 'Metrics', 'MetricsTable'])
        expect(types).toContain(t);
      expect(types.filter((t) => t === 'Invert')).toHaveLength(1);
    }
  });

  it('ships three styles left / centre / right, a painted mask, and the comparison for three styles', async () => {
    const inputsOf = (g: Awaited<ReturnType<typeof loadTemplate>>, id: string) =>
      g.edges
        .filter((e) => e.to.node === id)
        .map((e) => e.to.input)
        .sort();
    for (const name of ['three-styles', 'painted-mask', 'comparison-three-styles']) {
      const v = validateGraph(await loadTemplate(name), catalog);
      const g = v.graph!;
      const mask = g.nodes.find((n) => n.type === 'Mask')!;
      expect(mask.params.styles, name).toBe(3);
      for (const sampler of g.nodes.filter((n) => n.type.endsWith('MergeSampler'))) {
        expect(sampler.params.styles, name).toBe(3);
        expect(inputsOf(g, sampler.id)).toEqual(['inversion', 'mask', 'model', 'style1', 'style2', 'style3']);
      }
    }
    const painted = validateGraph(await loadTemplate('painted-mask'), catalog).graph!.nodes.find((n) => n.type === 'Mask')!;
    expect(painted.params).toMatchObject({ shape: 'painted', fill: 1 });
    expect((painted.params.strokes as { style: number }[]).map((s) => s.style)).toEqual([2, 3, 3]);
    const comparison = validateGraph(await loadTemplate('comparison-three-styles'), catalog).graph!;
    expect(inputsOf(comparison, 'pixel_merge')).toEqual(['image1', 'image2', 'image3', 'mask']);
    for (const m of comparison.nodes.filter((n) => n.type === 'Metrics'))
      expect(inputsOf(comparison, m.id)).toEqual(expect.arrayContaining(['mask', 'style1', 'style2', 'style3']));
  });

  it.each(templates)('%s validates with the paper defaults', async (name) => {
    const g = await loadTemplate(name);
    const v = validateGraph(g, catalog);
    expect(v.issues.map(formatIssue)).toEqual([]);
    // The attention-merge template uses the paper's stronger setting for that method (mask 70, guidance 30).
    const tuned = name === 'attention-merge';
    for (const n of v.graph!.nodes) {
      if (n.type === 'Invert') expect(n.params).toMatchObject({ steps: 100, skip: 10, eta: 0.1, guidance: 1 });
      if (n.type.endsWith('Sampler')) expect(n.params).toMatchObject({ guidance: tuned ? 30 : 20 });
      if (n.type === 'Mask') expect(n.params).toMatchObject({ sharpness: tuned ? 70 : 20 });
    }
  });
});

describe('templates on the built-in demo model', () => {
  let runner: Runner;
  beforeAll(async () => {
    runner = await Runner.create();
  });

  it.each(templates)('%s runs end to end and saves images', async (name) => {
    const summary = await runner.run(shrink(await loadTemplate(name)));
    // No prompt of a template is cut at the text encoder's length (a first run once warned of that).
    expect(
      Object.values(summary.warnings)
        .flat()
        .filter((w) => /tokens; the text encoder reads/.test(w)),
    ).toEqual([]);
    const images = Object.values(summary.results).flatMap((r) => r.images ?? []);
    expect(images.length).toBeGreaterThan(0);
    for (const img of images) {
      const { data, info } = await resultImage(runner, img.url);
      expect(info.width * info.height).toBeGreaterThan(0);
      // Not a blank picture.
      expect(Math.max(...data) - Math.min(...data)).toBeGreaterThan(10);
    }
  });

  it('streams progress for every sampler step and previews of x̂0', async () => {
    const r = await Runner.create();
    await r.run(shrink(await loadTemplate('epsilon-merge'), 'demo', 8, 2), { previewIntervalMs: 0 });
    const progress = r.eventsOf('node:progress', 'eps_merge') as { step: number; total: number }[];
    expect(progress.map((p) => p.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(progress.every((p) => p.total === 6)).toBe(true);
    const previews = r.eventsOf('node:preview', 'eps_merge') as { source: { kind: string; data: Float32Array; width: number } }[];
    expect(previews.length).toBe(6);
    expect(previews[0]!.source.kind).toBe('latent');
    // The 4:3 sample at max side 64 is 64×48 (the demo's UNet takes any latent size): an 8×6 latent.
    expect(previews[0]!.source.data.length).toBe(4 * 8 * 6);
    // Frames are copies, not the sampler's reused buffer.
    expect(previews[0]!.source.data).not.toBe(previews[1]!.source.data);
  });

  it('changing a decoder prompt re-runs only the decoders, never the inversion', async () => {
    const r = await Runner.create();
    const base = shrink(await loadTemplate('comparison'));
    await r.run(base);
    const summary = await r.run(withParams(base, { style1: { text: STYLE_PRESETS[2].value } }));
    expect(summary.cached).toEqual(
      expect.arrayContaining(['model', 'image', 'vae_encode', 'encode_source', 'invert', 'single_style2', 'decode_style2', 'mask']),
    );
    expect(summary.computed).toEqual(
      expect.arrayContaining(['style1', 'encode_style1', 'eps_merge', 'attn_merge', 'single_style1', 'decode_style1', 'pixel_merge']),
    );
    expect(summary.computed).not.toContain('invert');
  });

  it('the same seed gives the same picture; another seed another one', async () => {
    const g = shrink(await loadTemplate('epsilon-merge'));
    const a = await (await Runner.create()).run(g);
    const b = await (await Runner.create()).run(g);
    const c = await (await Runner.create()).run(withParams(g, { invert: { seed: 1 } }));
    const url = (s: typeof a) => s.results['save_eps']!.images![0]!.url;
    expect(url(a)).toBe(url(b)); // content-named files: identical bytes
    expect(url(c)).not.toBe(url(a));
  });

  it('cancels mid-sampler between steps', async () => {
    const r = await Runner.create();
    const ctl = new AbortController();
    const g = shrink(await loadTemplate('epsilon-merge'), 'demo', 40, 2);
    const onEvent = (e: { type: string; nodeId: string }) => {
      if (e.type === 'node:progress' && e.nodeId === 'eps_merge') ctl.abort();
    };
    await expect(r.run(g, { signal: ctl.signal, onEvent })).rejects.toBeInstanceOf(CancelledError);
    // Stopped between steps, long before the 38 steps of the run.
    expect(r.eventsOf('node:progress', 'eps_merge').length).toBeLessThanOrEqual(2);
    expect(r.eventsOf('node:done', 'eps_merge')).toEqual([]);
  });

  it('warns when a prompt is longer than the text encoder reads', async () => {
    const r = await Runner.create();
    const long = 'a very long prompt '.repeat(20);
    await r.run(withParams(shrink(await loadTemplate('epsilon-merge')), { style2: { text: long } }));
    const warnings = r.eventsOf('node:warning', 'encode_style2') as { message: string }[];
    expect(warnings.map((w) => w.message).join()).toMatch(/cut|truncat/);
  });

  it('fails the job with a clear message for a missing model folder', async () => {
    const r = await Runner.create();
    const g = withParams(shrink(await loadTemplate('epsilon-merge')), { model: { model: '/nonexistent/sd-model' } });
    const err = await r.run(g).catch((e) => e);
    expect(err).toBeInstanceOf(NodeFailedError);
    expect(err.nodeId).toBe('model');
    expect(err.message).toMatch(/nonexistent\/sd-model/);
  });

  it('says a folder that exists but is not an SD export is not one (not "not found")', async () => {
    const r = await Runner.create();
    // Inside a models folder (outside them every path gets one message: see model-roots.test.ts).
    await mkdir(path.join(r.services.dataDir, 'models', 'not-a-model'), { recursive: true });
    const g = withParams(shrink(await loadTemplate('epsilon-merge')), { model: { model: 'not-a-model' } });
    const err = await r.run(g).catch((e) => e);
    expect(err).toBeInstanceOf(NodeFailedError);
    expect(err.nodeId).toBe('model');
    expect(err.message).toMatch(/not a Stable Diffusion ONNX folder: missing model_index\.json/);
  });

  it('refuses steps ≤ skip before running', async () => {
    const g = withParams(await loadTemplate('epsilon-merge'), { invert: { steps: 10, skip: 10 } });
    const v = validateGraph(g, catalog);
    expect(v.ok).toBe(false);
    expect(v.issues).toContainEqual(expect.objectContaining({ nodeId: 'invert', field: 'skip', code: 'custom' }));
  });
});

describe.skipIf(!existsSync(tinySd))('templates on the reference tiny-sd model', () => {
  it('epsilon merge and comparison run on a real SD1.x export', async () => {
    const r = await Runner.create();
    const s1 = await r.run(shrink(await loadTemplate('epsilon-merge'), tinySd, 20, 4));
    expect(s1.results['save_eps']!.images![0]!.width).toBe(64);
    const s2 = await r.run(shrink(await loadTemplate('comparison'), tinySd, 20, 4));
    // The inversion of the first run is reused: same model, image, prompt and settings.
    expect(s2.cached).toContain('invert');
  });
});
if (!existsSync(tinySd)) console.warn(`tiny-sd fixture not found at ${tinySd}: reference-model template test skipped`);

describe('Load Image', () => {
  it('fits the built-in sample to max side and to the sizes the connected model takes (any multiple of 8 for the demo)', async () => {
    const r = await Runner.create();
    const g = withParams(await loadTemplate('epsilon-merge'), { image: { max_side: 512 }, invert: { steps: 3, skip: 1 } });
    const s = await r.run(g);
    expect(s.results['save_eps']!.images![0]).toMatchObject({ width: 512, height: 384 });
  });
});

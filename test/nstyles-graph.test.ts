/**
 * N styles in graphs: variadic style sockets in the catalog and in validation (missing members, members
 * beyond the count, a mask of another count, paintings that name styles the mask lacks), graph files
 * written before N existed (they load and mean the same), whole runs (a mask of all one style is the
 * single-prompt sampler, pixel merge of N pictures, CLIP per region), and a painting that survives
 * saving, reloading, export and a PNG round trip.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { catalogJson } from '../server/catalog.ts';
import { pixelMerge } from '../server/engine/diffusion/pixel-merge.ts';
import { makeMask } from '../server/engine/diffusion/mask.ts';
import { crop, clipPixelValues, halves } from '../server/engine/metrics/clip-preprocess.ts';
import { cosine, normalize } from '../server/engine/metrics/clip-score.ts';
import { ClipModel } from '../server/engine/evaluation-models/clip-model.ts';
import { formatIssue, validateGraph } from '../server/graph/validate.ts';
import { resultsDir } from '../server/store/paths.ts';
import type { Graph, GraphEdge } from '../server/protocol/graph.ts';
import { expandSockets } from '../server/protocol/catalog.ts';
import { encodePoints, MAX_POINTS, MAX_STROKES, MAX_STYLES, NO_STYLE_COLOR, STYLE_COLORS, styleColor } from '../server/protocol/painting.ts';
import type { MetricsValue } from '../nodes/values.ts';
import { nodeDefinitions } from '../nodes/index.ts';
import { graphJsonFromPng, GRAPH_KEYWORD, writePngText } from '../client/src/png-graph.ts';
import { parseGraphJson } from '../client/src/graph-io.ts';
import { api, startTestStudio, tempDir } from './support/api-harness.ts';
import { catalog, loadTemplate, projectRoot, Runner, shrink, withParams } from './support/pipeline-harness.ts';
import type { Studio } from '../server/app.ts';

const clipDir = path.resolve(projectRoot, '../shared/fixtures/metrics/clip');
const e = (a: string, o: string, b: string, i: string): GraphEdge => ({ from: { node: a, output: o }, to: { node: b, input: i } });
const issuesOf = (g: unknown) => validateGraph(g, catalog).issues;

describe('variadic style sockets', () => {
  it('the catalog describes a family of style sockets counted by the "styles" parameter', () => {
    const json = catalogJson(catalog);
    for (const type of ['EpsilonMergeSampler', 'AttentionMergeSampler', 'PixelMerge', 'Metrics']) {
      const node = json.nodes.find((n) => n.type === type)!;
      const family = node.inputs.find((i) => i.variadic)!;
      expect(family.variadic, type).toEqual({ param: 'styles', min: 2, max: 8 });
      expect(
        node.params.find((p) => p.name === 'styles'),
        type,
      ).toMatchObject({ kind: 'integer', min: 2, max: 8, default: 2 });
    }
    const sampler = json.nodes.find((n) => n.type === 'EpsilonMergeSampler')!;
    // What a client draws for styles = 3, and for a file that does not say (the default, 2).
    expect(expandSockets(sampler.inputs, { styles: 3 }).map((s) => s.name)).toEqual(['model', 'inversion', 'style1', 'style2', 'style3', 'mask', 'base']);
    expect(expandSockets(sampler.inputs, {}).map((s) => s.label)).toEqual(['model', 'inversion', 'style 1', 'style 2', 'mask', 'base']);
    expect(json.nodes.find((n) => n.type === 'Mask')!.params.find((p) => p.name === 'strokes')).toMatchObject({ kind: 'painting', default: [] });
  });

  it('styleColor: style k its own colour, grey for a style the node (or the studio) does not have', () => {
    expect(Array.from({ length: MAX_STYLES }, (_, i) => styleColor(i + 1))).toEqual([...STYLE_COLORS]);
    expect(STYLE_COLORS).not.toContain(NO_STYLE_COLOR);
    // A fill of 3 on a two-style mask (which the engine refuses) is drawn grey, not as style 3.
    expect([styleColor(2, 2), styleColor(3, 2), styleColor(0), styleColor(MAX_STYLES + 1), styleColor(1.5)]).toEqual([
      STYLE_COLORS[1],
      NO_STYLE_COLOR,
      NO_STYLE_COLOR,
      NO_STYLE_COLOR,
      NO_STYLE_COLOR,
    ]);
  });

  it('validation: a missing style, a style beyond the count, a mask of another count, strokes of a style the mask lacks', async () => {
    const g = await loadTemplate('three-styles');
    expect(issuesOf(g).map(formatIssue)).toEqual([]);

    const missing = structuredClone(g);
    missing.edges = missing.edges.filter((x) => !(x.to.node === 'eps_merge' && x.to.input === 'style3'));
    expect(issuesOf(missing)).toEqual([
      expect.objectContaining({
        code: 'missing_input',
        nodeId: 'eps_merge',
        field: 'style3',
        message: 'Epsilon Merge Sampler → style3 is not connected; it needs a Conditioning input.',
      }),
    ]);

    const beyond = structuredClone(g);
    beyond.edges.push(e('encode_style1', 'conditioning', 'eps_merge', 'style5'));
    expect(issuesOf(beyond)).toEqual([
      expect.objectContaining({
        code: 'unknown_input',
        field: 'style5',
        message: 'Epsilon Merge Sampler has 3 style inputs (style1 … style3), but style5 is connected; set Styles to 5 or more, or remove the connection.',
      }),
    ]);
    beyond.edges[beyond.edges.length - 1]!.to.input = 'style9';
    expect(issuesOf(beyond)[0]!.message).toBe(
      'Epsilon Merge Sampler has 3 style inputs (style1 … style3), but style9 is connected; a node takes at most 8; remove the connection.',
    );
    // Raising the count is the fix the message names.
    const raised = withParams(beyond, { eps_merge: { styles: 9 } });
    expect(issuesOf(raised).map((i) => i.code)).toContain('param_out_of_range');

    const otherCount = withParams(g, { mask: { styles: 2 } });
    expect(issuesOf(otherCount)).toEqual([
      expect.objectContaining({
        code: 'type_mismatch',
        nodeId: 'eps_merge',
        field: 'mask',
        message: 'Epsilon Merge Sampler merges 3 styles, but its mask comes from Mask, which has 2; set Styles on Mask to 3, or Styles here to 2.',
      }),
    ]);

    const painted = withParams(g, { mask: { shape: 'painted', fill: 4, strokes: [{ style: 5, radius: 0.1, points: encodePoints([0.5, 0.5]) }] } });
    expect(issuesOf(painted).map((i) => `${i.field}: ${i.message}`)).toEqual([
      'fill: Mask → fill must be a style of the mask (1..3), got 4',
      'strokes: Mask → strokes stroke 1 paints style 5, but the mask has 3 styles; raise Styles or erase it',
    ]);
    const tooMany = withParams(g, { mask: { shape: 'painted', strokes: Array.from({ length: 201 }, () => ({ style: 1, radius: 0.1, points: 'AAAA' })) } });
    expect(issuesOf(tooMany).map((i) => i.message)).toEqual(['Mask → strokes must have at most 200 items, got 201']);
  });

  it('a graph file from before N styles (two fixed sockets, no "styles") loads and makes the same pictures', async () => {
    const now = shrink(await loadTemplate('comparison'));
    // The file as it was written before: no picture under the mask, nothing about styles anywhere.
    const before = structuredClone(now);
    before.edges = before.edges.filter((x) => x.to.input !== 'picture');
    expect(JSON.stringify(before)).not.toMatch(/"styles"|style3|image3/);
    const v = validateGraph(before, catalog);
    expect(v.issues.map(formatIssue)).toEqual([]);
    expect(v.graph!.nodes.find((n) => n.id === 'eps_merge')!.params).toEqual({ styles: 2, guidance: 20, baseRatio: 0.2 });
    const [a, b] = [
      await (await Runner.create()).run(before),
      await (
        await Runner.create()
      ).run(withParams(now, { EpsilonMergeSampler: { styles: 2 }, AttentionMergeSampler: { styles: 2 }, PixelMerge: { styles: 2 } })),
    ];
    for (const id of ['save_eps', 'save_attn', 'save_pixel', 'save_style1']) expect(a.results[id]!.images![0]!.url, id).toBe(b.results[id]!.images![0]!.url);
  });
});

describe('N styles, whole runs on the demo model', () => {
  it("a mask of all one style: the three-style samplers make the single-prompt sampler's picture", async () => {
    const g = shrink(await loadTemplate('three-styles'));
    // Nothing painted, everything style 2: the N-style sampler is the single-prompt sampler of style 2.
    const all2 = withParams(g, { mask: { shape: 'painted', strokes: [], fill: 2 } });
    all2.nodes.push(
      { id: 'single2', type: 'SinglePromptSampler', params: { guidance: 20 }, position: { x: 0, y: 0 } },
      { id: 'decode_single2', type: 'VAEDecode', params: {}, position: { x: 0, y: 0 } },
      { id: 'save_single2', type: 'SaveImage', params: { prefix: 'single2' }, position: { x: 0, y: 0 } },
    );
    all2.edges.push(
      e('model', 'model', 'single2', 'model'),
      e('invert', 'inversion', 'single2', 'inversion'),
      e('encode_style2', 'conditioning', 'single2', 'prompt'),
      e('model', 'model', 'decode_single2', 'model'),
      e('single2', 'latent', 'decode_single2', 'latent'),
      e('decode_single2', 'image', 'save_single2', 'image'),
    );
    const r = await Runner.create();
    const s = await r.run(all2);
    expect(s.warnings['mask']).toEqual(['nothing is painted yet: the whole picture is style 2']);
    // Result files are named <prefix>-<content hash>: the same hash is the same bytes.
    const hash = (summary: typeof s, id: string) => summary.results[id]!.images![0]!.url.split('-').at(-1);
    expect(hash(s, 'save_eps')).toBe(hash(s, 'save_single2'));
    // The logistic thirds make another picture: the equality is not an accident of the styles.
    const thirds = await r.run(g);
    expect(hash(thirds, 'save_eps')).not.toBe(hash(s, 'save_single2'));
  });

  it("pixel merge of N pictures: in a one-hot region, exactly that region's picture", () => {
    const [w, h] = [30, 10];
    const images = [0.2, 0.5, 0.9].map((v, k) => ({ width: w, height: h, data: Float32Array.from({ length: 3 * w * h }, (_, i) => v + 0.01 * ((i + k) % 7)) }));
    const strokes = [
      { style: 2, radius: 0.45, points: encodePoints([0.5, 0.5]) },
      { style: 3, radius: 0.45, points: encodePoints([0.95, 0.5]) },
    ];
    const mask = makeMask({ styles: 3, shape: 'painted', direction: 'left-right', sharpness: 20, painting: { strokes, fill: 1, feather: 0 } });
    const out = pixelMerge(images, mask);
    const planes = mask.weights(w, h);
    let checked = 0;
    for (let p = 0; p < w * h; p++) {
      const k = planes.findIndex((m) => m[p] === 1);
      if (k < 0) continue;
      for (let c = 0; c < 3; c++) expect(out.data[c * w * h + p]).toBe(images[k]!.data[c * w * h + p]);
      checked++;
    }
    expect(checked).toBeGreaterThan((w * h) / 2);
    expect(() => pixelMerge(images.slice(0, 2), mask)).toThrow(/the mask has 3 styles, 2 are merged/);
  });

  it('the comparison for three styles runs every method and scores each one', async () => {
    const r = await Runner.create();
    const s = await r.run(shrink(await loadTemplate('comparison-three-styles')));
    const table = s.results['metrics_table']!.table!;
    expect(table.columns).toEqual(['attention', 'epsilon', 'pixel', 'single', 'style1', 'style2', 'style3']);
    // The Mask's preview: each region in its style's colour (red, blue, green: left to right), at the picture's shape.
    const [preview] = s.results['mask']!.images!;
    expect([preview!.width, preview!.height]).toEqual([128, 96]);
    const { data, info } = await sharp(await readFile(path.join(resultsDir(r.services.dataDir), path.basename(preview!.url))))
      .raw()
      .toBuffer({ resolveWithObject: true });
    const at = (x: number) => {
      const i = (48 * info.width + x) * info.channels;
      return [data[i]!, data[i + 1]!, data[i + 2]!];
    };
    const dominant = (rgb: number[]) => rgb.indexOf(Math.max(...rgb));
    expect([at(10), at(64), at(118)].map(dominant)).toEqual([0, 2, 1]);
    // Its caption is the picture's true size (what the samplers draw the mask at), not the thumbnail's.
    const picture = s.results['save_eps']!.images![0]!;
    expect(s.results['mask']!.text).toBe(`${picture.width}×${picture.height}`);
    expect(picture.width).not.toBe(preview!.width);
  });
});

describe.skipIf(!existsSync(clipDir))('CLIP per region', () => {
  let clip: ClipModel;
  beforeAll(async () => {
    clip = await ClipModel.load(clipDir, 'cpu');
  });
  afterAll(async () => {
    await clip?.release();
  });

  it("each style's region against its own style; two styles left and right: the halves' CLIP exactly", async () => {
    const r = await Runner.create();
    const g = withParams(shrink(await loadTemplate('comparison-three-styles')), { clip: { clip: clipDir } });
    const s = await r.run(g);
    const value = (id: string) => (r.cache.get(s.keys[id]!)!.outputs['metrics'] as MetricsValue).samples[0]!.values;
    const eps = value('metrics_epsilon');
    for (const m of ['clip', 'dclip', 'clip_region', 'clip_region1', 'clip_region2', 'clip_region3'] as const) expect(Number.isFinite(eps[m]), m).toBe(true);
    // Halves are for a left and a right style; three styles have regions instead.
    expect(eps.clip_left).toBeUndefined();
    expect(eps.clip_region).toBeCloseTo((eps.clip_region1! + eps.clip_region2! + eps.clip_region3!) / 3, 12);
    const rows = s.results['metrics_table']!.table!.rows.map((row) => row.label);
    expect(rows).toEqual(expect.arrayContaining(['CLIP reg. ↑', 'CLIP reg. 1 ↑', 'CLIP reg. 2 ↑', 'CLIP reg. 3 ↑']));
    // Region 2 is the middle third of the picture (64 px wide: columns 21..42, where style 2 weighs most), scored against style 2.
    const picture = r.cache.get(s.keys['decode_eps']!)!.outputs['image'] as { width: number; height: number; data: Float32Array };
    const style2 = g.nodes.find((n) => n.id === 'style2')!.params.text as string;
    const [embedded] = await clip.embedPixels([clipPixelValues(crop(picture, { x0: 21, y0: 0, x1: 43, y1: picture.height }), clip.preprocessor)]);
    expect(eps.clip_region2).toBeCloseTo(cosine(normalize(embedded!), normalize(await clip.textEmbedding(style2.replaceAll('[prompt]', 'a house')))), 6);

    // Two styles with a left-right mask: the regions are the halves, and the scores are clip_left and clip_right, exactly.
    // (The comparison template connects its mask to every Metrics node.)
    const two = withParams(shrink(await loadTemplate('comparison')), { clip: { clip: clipDir } });
    expect(two.edges.filter((x) => x.from.node === 'mask' && x.to.input === 'mask' && x.to.node.startsWith('metrics_'))).toHaveLength(6);
    const s2 = await r.run(two);
    const v2 = (r.cache.get(s2.keys['metrics_epsilon']!)!.outputs['metrics'] as MetricsValue).samples[0]!.values;
    expect(v2.clip_region1).toBe(v2.clip_left);
    expect(v2.clip_region2).toBe(v2.clip_right);
    const { left } = halves(r.cache.get(s2.keys['decode_eps']!)!.outputs['image'] as never);
    expect(left.width).toBe(32);
  });
});

describe('a painting survives save, reload, export and a PNG round trip', () => {
  let studio: Studio;
  beforeAll(async () => {
    studio = await startTestStudio(await tempDir('nstyles'), { catalog: nodeDefinitions });
  });
  afterAll(async () => {
    await studio?.close();
  });

  it('the strokes come back as they were, and so do the weights they paint', async () => {
    const graph = await loadTemplate('painted-mask');
    const strokesOf = (g: Graph) => g.nodes.find((n) => n.type === 'Mask')!.params.strokes;
    const weightsOf = (g: Graph) => {
      const p = validateGraph(g, catalog).graph!.nodes.find((n) => n.type === 'Mask')!.params as { strokes: never; fill: number; feather: number };
      return makeMask({ styles: 3, shape: 'painted', direction: 'left-right', sharpness: 20, painting: p }).weights(40, 30);
    };
    const expected = weightsOf(graph);

    // Saved on the server and read back.
    expect((await api(studio, 'PUT', '/api/graphs/my-painting', { graph })).status).toBe(200);
    const reloaded = (await api(studio, 'GET', '/api/graphs/my-painting')).body as Graph;
    expect(strokesOf(reloaded)).toEqual(strokesOf(graph));

    // Exported as a file and imported by the editor.
    const imported = parseGraphJson(JSON.stringify(reloaded));
    expect(imported.ok).toBe(true);
    const fromFile = (imported as { graph: Graph }).graph;
    expect(strokesOf(fromFile)).toEqual(strokesOf(graph));

    // Embedded in a downloaded PNG and dropped back on the editor.
    const png = new Uint8Array(
      await sharp({ create: { width: 8, height: 6, channels: 3, background: '#336699' } })
        .png()
        .toBuffer(),
    );
    const read = await graphJsonFromPng(writePngText(png, { [GRAPH_KEYWORD]: JSON.stringify(fromFile) }));
    expect(read.ok).toBe(true);
    const fromPng = (parseGraphJson((read as { json: string }).json) as { graph: Graph }).graph;
    expect(strokesOf(fromPng)).toEqual(strokesOf(graph));
    expect(validateGraph(fromPng, catalog).issues.map(formatIssue)).toEqual([]);
    expect(weightsOf(fromPng)).toEqual(expected);
  });

  it("a full painting (the most strokes and points the editor keeps) fits the graph's parameter size cap and saves; one point more is refused by name", async () => {
    const graph = await loadTemplate('painted-mask');
    const mask = graph.nodes.find((n) => n.type === 'Mask')!;
    const perStroke = MAX_POINTS / MAX_STROKES;
    const stroke = (k: number) => ({
      style: 1 + (k % 3),
      radius: 0.25,
      points: encodePoints(Array.from({ length: 2 * perStroke }, (_, i) => ((i * 7919 + k) % 4096) / 4095)),
    });
    mask.params.strokes = Array.from({ length: MAX_STROKES }, (_, k) => stroke(k));
    expect(validateGraph(graph, catalog).issues.map(formatIssue)).toEqual([]);
    expect((await api(studio, 'PUT', '/api/graphs/full-painting', { graph })).status).toBe(200);
    const reloaded = (await api(studio, 'GET', '/api/graphs/full-painting')).body as Graph;
    expect(reloaded.nodes.find((n) => n.type === 'Mask')!.params.strokes).toEqual(mask.params.strokes);
    (mask.params.strokes as { points: string }[])[0]!.points += 'AAAA';
    expect(validateGraph(graph, catalog).issues.map(formatIssue).join('\n')).toMatch(
      /strokes is not valid: a painting may have at most 8000 points in all, got 8001/,
    );
  });
});

/**
 * The example package: its arithmetic (checked pixel by pixel against the formulas in adjust.ts), and the
 * package as the studio loads it — found through its package.json, in the catalog with its parameter
 * hints, and run in a graph between Load Image and Save Image.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeDefinitions } from '../../../nodes/index.ts';
import { catalogJson, createCatalog } from '../../../server/catalog.ts';
import { GraphRunner } from '../../../server/executor/graph-runner.ts';
import { loadNodePackages } from '../../../server/node-packages/load.ts';
import type { ImageValue } from '../../../nodes/api.ts';
import { adjustImage } from '../adjust.ts';

const PACKAGE = path.resolve(import.meta.dirname, '..');
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

/** A 2×1 image (planes R, G, B): an orange (0.9, 0.5, 0.3) and a dark blue (0.2, 0.1, 0.4). */
const two: ImageValue = { width: 2, height: 1, data: new Float32Array([0.9, 0.2, 0.5, 0.1, 0.3, 0.4]) };
/** A matcher for a number equal to `v` to 6 decimals. */
const near = (v: number): unknown => expect.closeTo(v, 6);
const pixel = (img: ImageValue, p: number) => [0, 1, 2].map((c) => img.data[c * img.width * img.height + p]!);

describe('Adjust Image arithmetic', () => {
  it('leaves an image as it is at brightness 0, contrast 1, saturation 1', () => {
    expect([...adjustImage(two, { brightness: 0, contrast: 1, saturation: 1 }).data]).toEqual([...two.data]);
  });

  it('adds brightness, clamped to [0, 1]', () => {
    const out = adjustImage(two, { brightness: 0.2, contrast: 1, saturation: 1 });
    expect(pixel(out, 0)).toEqual([1, 0.7, 0.5].map(near));
    expect(pixel(out, 1)).toEqual([0.4, 0.3, 0.6].map(near));
  });

  it('contrast 0 is flat grey, contrast 2 doubles the distance from mid-grey', () => {
    expect([...adjustImage(two, { brightness: 0, contrast: 0, saturation: 1 }).data]).toEqual(Array(6).fill(0.5));
    const out = adjustImage(two, { brightness: 0, contrast: 2, saturation: 1 });
    expect(pixel(out, 0)).toEqual([1, 0.5, 0.1].map(near));
    expect(pixel(out, 1)).toEqual([0, 0, 0.3].map(near));
  });

  it('saturation 0 gives every channel the pixel’s Rec. 601 luma', () => {
    const out = adjustImage(two, { brightness: 0, contrast: 1, saturation: 0 });
    const luma0 = 0.299 * 0.9 + 0.587 * 0.5 + 0.114 * 0.3;
    const luma1 = 0.299 * 0.2 + 0.587 * 0.1 + 0.114 * 0.4;
    expect(pixel(out, 0)).toEqual(Array(3).fill(expect.closeTo(luma0, 6)));
    expect(pixel(out, 1)).toEqual(Array(3).fill(expect.closeTo(luma1, 6)));
  });
});

describe('the package in the studio', () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'dualstyle-adjust-'));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('loads from its folder, with its parameters and their hints in the catalog', async () => {
    const found = await loadNodePackages([PACKAGE], nodeDefinitions, quiet);
    expect(found.packages).toEqual([{ name: 'dualstyle-image-adjust', version: '1.0.0', nodes: ['AdjustImage'], socketTypes: [] }]);
    const json = catalogJson(createCatalog([...nodeDefinitions, ...found.nodes], found));
    const node = json.nodes.find((n) => n.type === 'AdjustImage')!;
    expect(node.title).toBe('Adjust Image');
    expect(node.params.map((p) => [p.name, p.min, p.max, p.default, p.ui?.slider])).toEqual([
      ['brightness', -1, 1, 0, true],
      ['contrast', 0, 3, 1, true],
      ['saturation', 0, 3, 1, true],
    ]);
  });

  it('runs between Load Image and Save Image: the saved picture is the adjusted one', async () => {
    const found = await loadNodePackages([PACKAGE], nodeDefinitions, quiet);
    const runner = new GraphRunner({ catalog: createCatalog([...nodeDefinitions, ...found.nodes], found), dataDir, executionProvider: 'cpu' });
    const graph = {
      format: 'dualstyle-graph',
      version: 1,
      nodes: [
        { id: 'load', type: 'LoadImage', params: { max_side: 64 }, position: { x: 0, y: 0 } },
        { id: 'adjust', type: 'AdjustImage', params: { saturation: 0, brightness: 0.1 }, position: { x: 200, y: 0 } },
        { id: 'save', type: 'SaveImage', params: {}, position: { x: 400, y: 0 } },
      ],
      edges: [
        { from: { node: 'load', output: 'image' }, to: { node: 'adjust', input: 'image' } },
        { from: { node: 'adjust', output: 'image' }, to: { node: 'save', input: 'image' } },
      ],
    };
    const summary = await runner.run(graph);
    const loaded = runner.cache.get(summary.keys['load']!)!.outputs['image'] as ImageValue;
    const adjusted = runner.cache.get(summary.keys['adjust']!)!.outputs['image'] as ImageValue;
    expect([...adjusted.data]).toEqual([...adjustImage(loaded, { brightness: 0.1, contrast: 1, saturation: 0 }).data]);
    expect(summary.results['save']?.images?.length).toBe(1);
    runner.close();
  });
});

/** The result gallery's store and the PNG download's names and summary (no browser needed). */
import { describe, expect, it } from 'vitest';
import type { Graph } from '../server/protocol/graph.ts';
import { fileStem, graphSummary } from '../client/src/app/downloads.ts';
import { gallery } from '../client/src/app/gallery.ts';

const graph: Graph = {
  format: 'dualstyle-graph',
  version: 1,
  meta: {},
  nodes: [
    { id: 'style1', type: 'TextPrompt', title: 'Style 1', params: { text: 'a painting of [prompt]' }, position: { x: 0, y: 0 } },
    { id: 'mask', type: 'Mask', params: { sharpness: 20 }, position: { x: 0, y: 0 } },
    { id: 'save_a', type: 'SaveImage', params: {}, position: { x: 0, y: 0 } },
    { id: 'save_b', type: 'SaveImage', params: {}, position: { x: 0, y: 0 } },
  ],
  edges: [],
};

const image = (name: string) => ({ images: [{ url: `/api/results/${name}`, name, width: 64, height: 64 }] });

describe('gallery', () => {
  it('keeps the images of output nodes only, newest first, each with the graph of its run', () => {
    gallery.clear();
    gallery.recordJob('j1', { graph, graphLabel: 'comparison', outputs: { save_a: 'Epsilon merge', save_b: 'Pixel merge' } });
    gallery.addResult('j1', 'mask', image('mask-thumb.png'));
    gallery.addResult('j1', 'save_a', image('a.png'));
    gallery.addResult('j1', 'save_b', image('b.png'));
    // job:done repeats what node:done said.
    gallery.addResult('j1', 'save_a', image('a.png'));
    const list = gallery.images.get();
    expect(list.map((i) => [i.nodeId, i.title, i.graphLabel])).toEqual([
      ['save_b', 'Pixel merge', 'comparison'],
      ['save_a', 'Epsilon merge', 'comparison'],
    ]);
    expect(gallery.jobOfImage(list[0])?.graph).toBe(graph);
    expect(gallery.jobOf('/api/results/a.png')?.graphLabel).toBe('comparison');
  });

  it('ignores jobs it was not told about, and lets a later run of the same picture replace the older entry', () => {
    gallery.clear();
    gallery.addResult('unknown', 'save_a', image('a.png'));
    expect(gallery.images.get()).toEqual([]);
    gallery.recordJob('j1', { graph, graphLabel: 'first', outputs: { save_a: 'A' } });
    gallery.recordJob('j2', { graph, graphLabel: 'second', outputs: { save_a: 'A' } });
    gallery.addResult('j1', 'save_a', image('a.png'));
    gallery.addResult('j2', 'save_a', image('a.png'));
    expect(gallery.images.get().map((i) => i.graphLabel)).toEqual(['second']);
    gallery.remove(gallery.images.get().map((i) => i.key));
    expect(gallery.images.get()).toEqual([]);
  });
});

describe('result PNG download', () => {
  it('names files after the graph and node, safely', () => {
    expect(fileStem('epsilon-merge')).toBe('epsilon-merge');
    expect(fileStem('Epsilon merge: Van Gogh left, Minecraft right')).toBe('Epsilon-merge-Van-Gogh-left-Minecraft-right');
    expect(fileStem('../../etc/passwd')).toBe('etc-passwd');
    expect(fileStem('«»')).toBe('graph');
  });

  it('writes a readable summary with every node and its settings', () => {
    const text = graphSummary(graph, 'comparison');
    expect(text.split('\n')[0]).toContain('comparison');
    expect(text).toContain('Style 1 [style1] — text: a painting of [prompt]');
    expect(text).toContain('Mask [mask] — sharpness: 20');
    expect(text).toContain('SaveImage [save_a]');
  });
});

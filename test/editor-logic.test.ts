/** The editor's pure parts, in Node: layout geometry, titles that follow presets, copy/paste plans, the new graph fields. */
import { describe, expect, it } from 'vitest';
import { copyOf, parseClipboard, pastePlan } from '../client/src/clipboard.ts';
import { graphContent, graphFingerprint, parseGraphJson, snapshotToGraph, type EditorSnapshot } from '../client/src/graph-io.ts';
import { arrange, boundsOf, fitTransform, overlaps, placeClear } from '../client/src/layout.ts';
import { promptTag, retitle } from '../client/src/titles.ts';
import { GraphSchema } from '../server/protocol/graph.ts';

const box = (id: string, x: number, y: number, width = 100, height = 80) => ({ id, x, y, width, height });

describe('layout', () => {
  it('fitTransform shows the content clear of the minimap corner, left of it or above it, whichever is larger', () => {
    const content = box('c', 0, 0, 2000, 1000);
    const view = { width: 1200, height: 800 };
    const corner = { width: 220, height: 220 };
    const t = fitTransform(content, view, corner, { padding: 20 });
    // Content on screen: x from t.x to t.x + 1000k, y likewise; the corner is the bottom-right 220 px.
    const screen = { id: 's', x: t.x, y: t.y, width: 2000 * t.k, height: 1000 * t.k };
    expect(overlaps(screen, box('map', view.width - corner.width, view.height - corner.height, corner.width, corner.height))).toBe(false);
    expect(screen.x).toBeGreaterThanOrEqual(20);
    expect(screen.y).toBeGreaterThanOrEqual(20);
    // Without a corner it is larger.
    expect(fitTransform(content, view, null, { padding: 20 }).k).toBeGreaterThan(t.k);
    // Never above 1; and with minScale a big graph is shown from its top-left corner at that scale.
    expect(fitTransform(box('s', 0, 0, 10, 10), view, null).k).toBe(1);
    const big = fitTransform(box('b', 100, 50, 5000, 3000), view, corner, { padding: 20, minScale: 0.75 });
    expect(big).toEqual({ k: 0.75, x: 20 - 100 * 0.75, y: 20 - 50 * 0.75 });
  });

  it('placeClear moves pasted boxes down together until they overlap nothing', () => {
    const fixed = [box('a', 0, 0, 100, 100), box('b', 0, 130, 100, 100)];
    const placing = [box('p', 10, 10, 50, 50), box('q', 200, 10, 50, 50)];
    const dy = placeClear(placing, fixed, 20);
    expect(placing.map((p) => ({ ...p, y: p.y + dy })).some((p) => fixed.some((f) => overlaps(p, f, 20)))).toBe(false);
    expect(placeClear([box('p', 500, 0)], fixed)).toBe(0);
  });

  it('arrange lays a chain out left to right without overlaps, from the graph’s top-left corner', () => {
    const nodes = [box('c', 0, 0), box('a', 500, 500), box('b', 40, 300)];
    const moves = arrange(nodes, [
      { source: 'a', target: 'b' },
      { source: 'b', target: 'c' },
    ]);
    const placed = nodes.map((n) => ({ ...n, ...moves.get(n.id)! }));
    const x = Object.fromEntries(placed.map((n) => [n.id, n.x]));
    expect(x.a).toBeLessThan(x.b);
    expect(x.b).toBeLessThan(x.c);
    for (const p of placed) for (const q of placed) if (p !== q) expect(overlaps(p, q)).toBe(false);
    const b = boundsOf(placed);
    expect([b.x, b.y]).toEqual([0, 0]);
  });
});

describe('titles follow the prompt', () => {
  const presets = [
    { label: 'Van Gogh', value: 'A Van Gogh-style painting of [prompt]' },
    { label: 'Mosaic', value: 'A mosaic of [prompt]' },
  ];
  it('a preset renames the part of the title that named the old one, and back', () => {
    const t1 = retitle('Style 1: Van Gogh (left)', presets[0].value, presets[1].value, presets);
    expect(t1).toBe('Style 1: Mosaic (left)');
    expect(retitle(t1, presets[1].value, presets[0].value, presets)).toBe('Style 1: Van Gogh (left)');
    // A template's shorter prompt that names the preset counts as it.
    expect(retitle('Style 1: Van Gogh (left)', 'A Van Gogh painting of [prompt], vivid', presets[1].value, presets)).toBe('Style 1: Mosaic (left)');
    expect(retitle('Style 1: Mosaic (left)', presets[1].value, 'A Van Gogh painting of [prompt], vivid', presets)).toBe('Style 1: Van Gogh (left)');
  });
  it('typed text is named by its first words; a title that named nothing stays', () => {
    expect(promptTag('an ink drawing of a lighthouse at dawn, with fog', presets)).toBe('an ink drawing of a…');
    expect(promptTag('', presets)).toBe('empty prompt');
    expect(retitle('Style 1: Van Gogh (left)', presets[0].value, 'ink', presets)).toBe('Style 1: ink (left)');
    expect(retitle('Style 1: ink (left)', 'ink', presets[0].value, presets)).toBe('Style 1: Van Gogh (left)');
    expect(retitle('My prompt', presets[0].value, presets[1].value, presets)).toBe('My prompt');
    expect(retitle(undefined, presets[0].value, presets[1].value, presets)).toBeUndefined();
  });
});

describe('copy and paste', () => {
  const snapshot: EditorSnapshot = {
    nodes: [
      { id: 'model', type: 'LoadModel', params: {}, position: { x: 0, y: 0 } },
      { id: 'p', type: 'TextPrompt', params: { text: 'a' }, position: { x: 0, y: 200 }, title: 'Source' },
      { id: 'e', type: 'EncodeText', params: {}, position: { x: 300, y: 200 }, mode: 'bypass' },
    ],
    connections: [
      { source: 'p', sourceOutput: 'text', target: 'e', targetInput: 'text', points: [{ x: 200, y: 250 }] },
      { source: 'model', sourceOutput: 'model', target: 'e', targetInput: 'model' },
    ],
  };
  it('copies the nodes with the connections into them; pastes under new ids, with or without the outside inputs', () => {
    const data = copyOf(snapshot, ['p', 'e'])!;
    expect(parseClipboard(JSON.stringify(data))).toEqual(data);
    const plain = pastePlan(data, new Set(['model', 'p', 'e']), { at: { x: 1000, y: 1000 } });
    expect(plain.nodes.map((n) => [n.id, n.position, n.title ?? null, n.mode ?? null])).toEqual([
      ['TextPrompt-1', { x: 1000, y: 1000 }, 'Source', null],
      ['EncodeText-1', { x: 1300, y: 1000 }, null, 'bypass'],
    ]);
    // The reroute point moved with both ends.
    expect(plain.connections).toEqual([
      { source: 'TextPrompt-1', sourceOutput: 'text', target: 'EncodeText-1', targetInput: 'text', points: [{ x: 1200, y: 1050 }] },
    ]);
    const keep = pastePlan(data, new Set(['model', 'p', 'e']), { offset: { x: 40, y: 40 } }, true);
    expect(keep.connections.map((c) => `${c.source}>${c.target}`)).toEqual(['TextPrompt-1>EncodeText-1', 'model>EncodeText-1']);
    // In a graph without that model node, there is nothing to keep.
    expect(pastePlan(data, new Set(), { offset: { x: 0, y: 0 } }, true).connections).toHaveLength(1);
    expect(parseClipboard('{"format":"other"}')).toBeNull();
    expect(copyOf(snapshot, [])).toBeNull();
  });
});

describe('graph fields for the editor: modes, reroute points, frames', () => {
  const snapshot: EditorSnapshot = {
    nodes: [
      { id: 'a', type: 'T', params: {}, position: { x: 0.4, y: 0 }, mode: 'mute' },
      { id: 'b', type: 'T', params: {}, position: { x: 300, y: 0 } },
    ],
    connections: [{ source: 'a', sourceOutput: 'o', target: 'b', targetInput: 'i', points: [{ x: 150.4, y: 80 }] }],
    groups: [{ id: 'g', title: 'Inputs', x: -20, y: -40, width: 200.2, height: 150, color: '#334455' }],
  };
  it('round-trip through the file format, are in the fingerprint, and not in the content', () => {
    const graph = snapshotToGraph(snapshot);
    expect(GraphSchema.safeParse(graph).success).toBe(true);
    expect(graph.nodes[0].mode).toBe('mute');
    expect(graph.edges[0].points).toEqual([{ x: 150, y: 80 }]);
    expect(graph.groups).toEqual([{ id: 'g', title: 'Inputs', x: -20, y: -40, width: 200, height: 150, color: '#334455' }]);
    const parsed = parseGraphJson(JSON.stringify(graph));
    expect(parsed.ok && parsed.graph).toEqual(graph);
    const moved = snapshotToGraph({ ...snapshot, groups: [{ ...snapshot.groups![0], x: 0 }] });
    expect(graphFingerprint(moved)).not.toBe(graphFingerprint(graph));
    expect(graphContent(moved)).toBe(graphContent(graph));
    const unmuted = snapshotToGraph({ ...snapshot, nodes: snapshot.nodes.map((n) => ({ ...n, mode: undefined })) });
    expect(graphContent(unmuted)).not.toBe(graphContent(graph));
    // A broken frame or point is dropped, not the graph.
    const odd = parseGraphJson({ ...graph, groups: [{ title: 'no size' }], edges: [{ ...graph.edges[0], points: [{ x: 'a' }] }] });
    expect(odd.ok && [odd.graph.groups, odd.graph.edges[0].points]).toEqual([undefined, undefined]);
  });
});

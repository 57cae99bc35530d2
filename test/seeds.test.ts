/**
 * Seed control after each run and batch count (issue 26 item 8): the seeds of each queued run of a
 * batch, and what the seed fields hold afterwards, for each control.
 */
import { describe, expect, it } from 'vitest';
import { nextSeed, planSeeds } from '../client/src/app/seeds.ts';
import type { Catalog } from '../server/protocol/catalog.ts';
import type { Graph } from '../server/protocol/graph.ts';

const catalog = {
  nodes: [
    { type: 'Invert', title: 'Invert', params: [{ name: 'seed', kind: 'integer', default: 0, min: 0, max: 9 }] },
    { type: 'Other', title: 'Other', params: [{ name: 'steps', kind: 'integer', default: 5 }] },
  ],
} as unknown as Catalog;

const graph: Graph = {
  format: 'dualstyle-graph',
  version: 1,
  nodes: [
    { id: 'inv', type: 'Invert', params: { seed: 8 }, position: { x: 0, y: 0 } },
    { id: 'muted', type: 'Invert', params: { seed: 3 }, position: { x: 0, y: 0 }, mode: 'mute' },
    { id: 'o', type: 'Other', params: { steps: 5 }, position: { x: 0, y: 0 } },
  ],
  edges: [],
  meta: {},
} as Graph;

const seedsOf = (g: Graph) => g.nodes.map((n) => n.params.seed ?? '-');

describe('seed control and batch count', () => {
  it('moves each seed by the control, wrapping at its bounds', () => {
    expect(nextSeed('increment', 4, 0, 9)).toBe(5);
    expect(nextSeed('increment', 9, 0, 9)).toBe(0);
    expect(nextSeed('decrement', 0, 0, 9)).toBe(9);
    expect(nextSeed('randomize', 4, 0, 9, () => 0.75)).toBe(7);
  });

  it('a batch runs successive seeds; the fields then follow the control (fixed keeps them)', () => {
    const inc = planSeeds(graph, catalog, 'increment', 3);
    expect(inc.runs.map(seedsOf)).toEqual([
      [8, 3, '-'],
      [9, 3, '-'],
      [0, 3, '-'],
    ]);
    expect(inc.seeds).toEqual([{ 'inv.seed': 8 }, { 'inv.seed': 9 }, { 'inv.seed': 0 }]);
    expect(inc.after.map((f) => f.value)).toEqual([1]);
    const fixed = planSeeds(graph, catalog, 'fixed', 2);
    expect(fixed.runs.map(seedsOf)).toEqual([
      [8, 3, '-'],
      [9, 3, '-'],
    ]);
    expect(fixed.after.map((f) => f.value)).toEqual([8]);
    const dec = planSeeds(graph, catalog, 'decrement', 1);
    expect(dec.runs.map(seedsOf)).toEqual([[8, 3, '-']]);
    expect(dec.after.map((f) => f.value)).toEqual([7]);
    // The graph itself is not changed.
    expect(seedsOf(graph)).toEqual([8, 3, '-']);
  });
});

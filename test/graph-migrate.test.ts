import { describe, expect, it } from 'vitest';
import { createCatalog } from '../server/catalog.ts';
import { validateGraph } from '../server/graph/validate.ts';
import { migrateGraph, type MigrationTable } from '../server/protocol/graph-migrate.ts';
import { GRAPH_FORMAT } from '../server/protocol/graph.ts';
import { numberChain, testNodes } from './support/test-nodes.ts';

const catalog = createCatalog(testNodes);

describe('migrateGraph', () => {
  it('refuses a file from a newer version with a clear message', () => {
    const r = validateGraph({ ...numberChain(), version: 3 }, catalog);
    expect(r.ok).toBe(false);
    expect(r.issues).toEqual([
      {
        code: 'unsupported_version',
        field: 'version',
        message: 'This graph was saved by a newer version of Dual Style Studio (format version 3); this version reads up to version 1.',
      },
    ]);
  });

  it('refuses a missing or wrong format tag and a bad version', () => {
    const { format: _f, ...noFormat } = numberChain();
    expect(migrateGraph(noFormat).issues[0]).toMatchObject({ code: 'invalid_format', field: 'format' });
    expect(migrateGraph(noFormat).issues[0].message).toBe(
      `This is not a Dual Style Studio graph (expected format "${GRAPH_FORMAT}", found no "format" field).`,
    );
    expect(migrateGraph({ ...numberChain(), format: 'comfy' }).issues[0].message).toMatch(/found format "comfy"/);
    expect(migrateGraph({ ...numberChain(), version: '1' }).issues[0]).toMatchObject({ code: 'invalid_format', field: 'version' });
    expect(migrateGraph([1, 2]).issues[0]).toMatchObject({ code: 'invalid_format', message: 'A graph file must be a JSON object, got a list.' });
  });

  it('passes a current file through unchanged', () => {
    const g = numberChain();
    const r = migrateGraph(g);
    expect(r.issues).toEqual([]);
    expect(r.graph).toEqual(g);
    expect(r.fromVersion).toBe(1);
  });

  it('lifts an old file step by step through an injected migration table', () => {
    // Pretend the current format is 3: v1 called node params "settings", v2 called edges "links".
    const table: MigrationTable = {
      1: (g) => ({
        ...g,
        version: 2,
        nodes: (g.nodes as Record<string, unknown>[]).map(({ settings, ...n }) => ({ ...n, params: settings })),
      }),
      2: ({ links, ...g }) => ({ ...g, version: 3, edges: links }),
    };
    const v1 = {
      format: GRAPH_FORMAT,
      version: 1,
      nodes: [{ id: 'a', type: 'Constant', settings: { value: 5 } }],
      links: [],
    };
    const r = migrateGraph(v1, table, 3);
    expect(r.issues).toEqual([]);
    expect(r.fromVersion).toBe(1);
    expect(r.graph).toEqual({ format: GRAPH_FORMAT, version: 3, nodes: [{ id: 'a', type: 'Constant', params: { value: 5 } }], edges: [] });
    // The input object is not modified.
    expect(v1.nodes[0]).toHaveProperty('settings');
    // A v2 file takes only the second step.
    expect(migrateGraph({ format: GRAPH_FORMAT, version: 2, nodes: [], links: [1] }, table, 3).graph).toEqual({
      format: GRAPH_FORMAT,
      version: 3,
      nodes: [],
      edges: [1],
    });
  });

  it('reports a missing or broken migration step', () => {
    const missing = migrateGraph({ format: GRAPH_FORMAT, version: 1 }, {}, 2);
    expect(missing.issues[0]).toMatchObject({ code: 'unsupported_version' });
    expect(missing.issues[0].message).toMatch(/no migration from version 1 to 2/);
    const broken = migrateGraph(
      { format: GRAPH_FORMAT, version: 1 },
      {
        1: () => {
          throw new Error('boom');
        },
      },
      2,
    );
    expect(broken.issues[0].message).toBe('Could not upgrade the graph from format version 1 to 2: boom');
    const noBump = migrateGraph({ format: GRAPH_FORMAT, version: 1 }, { 1: (g) => g }, 2);
    expect(noBump.issues[0].message).toMatch(/did not produce version 2/);
  });
});

/** The editor's pure graph JSON mapping (client/src/graph-io.ts): no browser, no Rete. */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GraphSchema, type Graph } from '../server/protocol/graph.ts';
import type { Catalog, CatalogNode } from '../server/protocol/catalog.ts';
import { catalogJson, createCatalog } from '../server/catalog.ts';
import { nodeDefinitions } from '../nodes/index.ts';
import { validateGraph } from '../server/graph/validate.ts';
import { groupByCategory, searchCatalog } from '../client/src/catalog-search.ts';
import { resolveOverlaps } from '../client/src/layout.ts';
import { paramVisible } from '../client/src/editor/param-visibility.ts';
import {
  defaultParams,
  graphFingerprint,
  graphNameProblem,
  parseGraphJson,
  planImport,
  snapshotToGraph,
  socketsCompatible,
  socketsFor,
  countParams,
  uniqueNodeId,
  wouldCreateCycle,
  UNKNOWN_SOCKET,
  type EditorSnapshot,
  type ImportPlan,
} from '../client/src/graph-io.ts';

/** What the editor holds right after opening a graph: the plan's nodes and connections. */
function opened(plan: ImportPlan): EditorSnapshot {
  return { nodes: plan.nodes.map((n) => n.dto), connections: plan.connections };
}

function node(type: string, extra: Partial<CatalogNode> = {}): CatalogNode {
  return { type, title: type, category: 'Test', description: '', inputs: [], outputs: [], params: [], output: false, ...extra };
}

const catalog: Catalog = {
  socketTypes: [
    { type: 'Image', color: '#64b5f6' },
    { type: 'Mask', color: '#a1887f' },
  ],
  nodes: [
    node('LoadImage', {
      title: 'Load Image',
      category: 'Image',
      outputs: [{ name: 'image', type: 'Image', label: 'image' }],
      params: [
        { name: 'image', label: 'Image', kind: 'image', schema: {} },
        { name: 'max_side', label: 'Max side', kind: 'integer', default: 512, min: 64, max: 2048, schema: {} },
      ],
    }),
    node('Mask', {
      title: 'Mask',
      category: 'Conditioning',
      description: 'linear or logistic blend mask',
      inputs: [{ name: 'image', type: 'Image', label: 'image', optional: true }],
      outputs: [{ name: 'mask', type: 'Mask', label: 'mask' }],
      params: [
        { name: 'shape', label: 'Shape', kind: 'enum', options: ['linear', 'logistic'], default: 'logistic', schema: {} },
        { name: 'sharpness', label: 'Sharpness', kind: 'number', default: 20, schema: {} },
        { name: 'axes', label: 'Axes', kind: 'string', default: ['x'], schema: {} },
      ],
    }),
    node('PixelMerge', {
      title: 'Pixel Merge',
      category: 'Image',
      inputs: [
        { name: 'image1', type: 'Image', label: 'image 1' },
        { name: 'image2', type: 'Image', label: 'image 2' },
        { name: 'mask', type: 'Mask', label: 'mask' },
      ],
      outputs: [{ name: 'image', type: 'Image', label: 'image' }],
    }),
    node('SaveImage', { title: 'Save Image', category: 'Image', inputs: [{ name: 'image', type: 'Image', label: 'image' }], output: true }),
  ],
};

const snapshot: EditorSnapshot = {
  nodes: [
    { id: 'img', type: 'LoadImage', params: { image: 'a.png', max_side: 256 }, position: { x: 10.4, y: -20.6 } },
    { id: 'mask', type: 'Mask', params: { shape: 'linear' }, position: { x: 300, y: 0 }, title: 'Left/right' },
    { id: 'merge', type: 'PixelMerge', params: {}, position: { x: 600, y: 0 } },
  ],
  connections: [
    { source: 'img', sourceOutput: 'image', target: 'merge', targetInput: 'image1' },
    { source: 'mask', sourceOutput: 'mask', target: 'merge', targetInput: 'mask' },
  ],
};

describe('snapshot ⇄ graph JSON v1', () => {
  it('exports a graph the shared schema accepts, with edges as from/to and rounded positions', () => {
    const graph = snapshotToGraph(snapshot, { title: 'demo' });
    expect(GraphSchema.safeParse(graph).success).toBe(true);
    expect(graph.format).toBe('dualstyle-graph');
    expect(graph.version).toBe(1);
    expect(graph.nodes[0]).toEqual({ id: 'img', type: 'LoadImage', params: { image: 'a.png', max_side: 256 }, position: { x: 10, y: -21 } });
    expect(graph.nodes[1].title).toBe('Left/right');
    expect(graph.edges).toEqual([
      { from: { node: 'img', output: 'image' }, to: { node: 'merge', input: 'image1' } },
      { from: { node: 'mask', output: 'mask' }, to: { node: 'merge', input: 'mask' } },
    ]);
    expect(graph.meta).toEqual({ title: 'demo' });
  });

  it('copies params, so later edits in the editor do not change an exported graph', () => {
    const params = { nested: { a: 1 } };
    const graph = snapshotToGraph({ nodes: [{ id: 'n', type: 'Mask', params, position: { x: 0, y: 0 } }], connections: [] });
    params.nested.a = 2;
    expect(graph.nodes[0].params).toEqual({ nested: { a: 1 } });
  });

  it('round-trips: graph → open in the editor → graph is the same graph, defaults filled in', () => {
    const graph = snapshotToGraph(snapshot, { title: 't' });
    const plan = planImport(graph, catalog);
    expect(plan.problems).toEqual([]);
    const again = snapshotToGraph(opened(plan), graph.meta);
    const mask = catalog.nodes.find((n) => n.type === 'Mask')!;
    const expected = structuredClone(graph);
    expected.nodes[1].params = { ...defaultParams(mask), shape: 'linear' };
    expect(again).toEqual(expected);
  });

  it('round-trips every shipped template through parse, plan (with the shipped catalog) and export', () => {
    const shipped = catalogJson(createCatalog(nodeDefinitions));
    const dir = path.resolve(import.meta.dirname, '../graphs');
    const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.json')) : [];
    if (files.length === 0) console.warn('[graph-io] no templates in graphs/: template round trip not exercised');
    for (const f of files) {
      const parsed = parseGraphJson(fs.readFileSync(path.join(dir, f), 'utf8'));
      expect(parsed.ok, f).toBe(true);
      if (!parsed.ok) continue;
      const plan = planImport(parsed.graph, shipped);
      expect(plan.problems, f).toEqual([]);
      expect(plan.connections, f).toHaveLength(parsed.graph.edges.length);
      const again = snapshotToGraph(opened(plan), parsed.graph.meta);
      expect(GraphSchema.safeParse(again).success, f).toBe(true);
      // Opening keeps every node, position, parameter and edge; it only adds missing defaults.
      const withoutDefaults = { ...again, nodes: again.nodes.map((n, i) => ({ ...n, params: { ...parsed.graph.nodes[i].params } })) };
      expect(graphFingerprint(withoutDefaults), f).toBe(graphFingerprint(parsed.graph));
      for (const [i, n] of again.nodes.entries()) expect(n.params, `${f} ${n.id}`).toMatchObject(parsed.graph.nodes[i].params);
    }
  });

  it('fingerprints ignore meta (saving stamps it) but see params, edges and positions', () => {
    const a = snapshotToGraph(snapshot, { title: 'a' });
    const b = snapshotToGraph(snapshot, { title: 'b', savedAt: 1 });
    expect(graphFingerprint(a)).toBe(graphFingerprint(b));
    const moved = structuredClone(snapshot);
    moved.nodes[0].position.x += 5;
    expect(graphFingerprint(snapshotToGraph(moved))).not.toBe(graphFingerprint(a));
    const edited = structuredClone(snapshot);
    edited.nodes[1].params.shape = 'logistic';
    expect(graphFingerprint(snapshotToGraph(edited))).not.toBe(graphFingerprint(a));
  });
});

describe('parseGraphJson', () => {
  it('reads a valid file and fills defaults for params, position and meta', () => {
    const r = parseGraphJson(JSON.stringify({ format: 'dualstyle-graph', version: 1, nodes: [{ id: 'a', type: 'Mask' }], edges: [] }));
    expect(r).toEqual({
      ok: true,
      graph: { format: 'dualstyle-graph', version: 1, nodes: [{ id: 'a', type: 'Mask', params: {}, position: { x: 0, y: 0 } }], edges: [], meta: {} },
    });
  });

  it.each([
    ['{ not json', /not valid JSON/],
    ['[]', /must be a JSON object, got a list/],
    ['{"format":"other","version":1,"nodes":[]}', /not a Dual Style Studio graph.*found format "other"/],
    ['{"nodes":[],"links":[]}', /ComfyUI workflow/],
    ['{"format":"dualstyle-graph","version":2,"nodes":[],"edges":[]}', /newer version.*format version 2/],
    ['{"format":"dualstyle-graph","nodes":[]}', /"version" must be a whole number/],
    ['{"format":"dualstyle-graph","version":1,"edges":[]}', /^nodes is required/],
    ['{"format":"dualstyle-graph","version":1,"nodes":[{"id":"a","type":"X"},{"id":"a","type":"Y"}],"edges":[]}', /share the id "a"/],
    ['{"format":"dualstyle-graph","version":1,"nodes":[{"type":"X"}],"edges":[]}', /nodes\[0\]\.id is required/],
    ['{"format":"dualstyle-graph","version":1,"nodes":[{"id":"a b","type":"X"}],"edges":[]}', /id is not valid: node id may use letters/],
    [
      '{"format":"dualstyle-graph","version":1,"nodes":[],"edges":[{"from":{"node":"a"},"to":{"node":"b","input":"x"}}]}',
      /edges\[0\]\.from\.output is required/,
    ],
    ['{"format":"dualstyle-graph","version":1,"nodes":[{"id":"a","type":"X","params":{"p":1}}],"edges":[],"meta":{"t":"' + 'x'.repeat(70_000) + '"}}', /meta/],
  ])('refuses %s with the message the server would give', (text, message) => {
    const r = parseGraphJson(text);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toMatch(message);
  });

  it('says what the server says about the same broken file (one schema, one wording)', () => {
    const files = [
      { format: 'other', version: 1, nodes: [], edges: [] },
      { format: 'dualstyle-graph', version: 3, nodes: [], edges: [] },
      { format: 'dualstyle-graph', version: 1, nodes: [{ id: 'x'.repeat(65), type: 'Mask' }], edges: [] },
      { format: 'dualstyle-graph', version: 1, nodes: [{ id: 'a', type: 'Mask', title: 't'.repeat(201) }], edges: [] },
      { format: 'dualstyle-graph', version: 1, nodes: [], edges: [{ from: { node: 'a', output: 'o' }, to: { node: 'b' } }] },
    ];
    for (const file of files) {
      const client = parseGraphJson(JSON.stringify(file));
      const server = validateGraph(file, createCatalog(nodeDefinitions));
      expect(client.ok).toBe(false);
      expect(server.ok).toBe(false);
      if (!client.ok) expect(client.message.startsWith(server.issues[0].message)).toBe(true);
    }
  });
});

describe('planImport', () => {
  it('fills defaults under the file params and gives each node the sockets of its type', () => {
    const graph = snapshotToGraph(snapshot);
    const plan = planImport(graph, catalog);
    expect(plan.problems).toEqual([]);
    const mask = plan.nodes.find((n) => n.dto.id === 'mask')!;
    expect(mask.dto.params).toEqual({ shape: 'linear', sharpness: 20, axes: ['x'] });
    expect(mask.dto.title).toBe('Left/right');
    expect(mask.outputs.map((o) => [o.name, o.type])).toEqual([['mask', 'Mask']]);
    expect(mask.inputs[0].optional).toBe(true);
    expect(plan.connections).toHaveLength(2);
  });

  it('keeps an unknown node type as a placeholder with the sockets its edges use', () => {
    const graph: Graph = {
      ...snapshotToGraph(snapshot),
      nodes: [...snapshotToGraph(snapshot).nodes, { id: 'fx', type: 'FancyFilter', params: { k: 3 }, position: { x: 0, y: 0 } }],
      edges: [
        { from: { node: 'img', output: 'image' }, to: { node: 'fx', input: 'src' } },
        { from: { node: 'fx', output: 'out' }, to: { node: 'merge', input: 'image2' } },
      ],
    };
    const plan = planImport(graph, catalog);
    const fx = plan.nodes.find((n) => n.dto.id === 'fx')!;
    expect(fx.spec).toBeNull();
    expect(fx.dto.params).toEqual({ k: 3 });
    expect(fx.inputs).toEqual([{ name: 'src', type: UNKNOWN_SOCKET, label: 'src' }]);
    expect(fx.outputs.map((o) => o.name)).toEqual(['out']);
    expect(plan.connections).toHaveLength(2);
    expect(plan.problems).toEqual([expect.stringContaining('"FancyFilter"')]);
  });

  it('drops and reports edges to missing nodes or sockets, second edges into one input, and type errors', () => {
    const base = snapshotToGraph(snapshot);
    const graph: Graph = {
      ...base,
      edges: [
        ...base.edges,
        { from: { node: 'ghost', output: 'image' }, to: { node: 'merge', input: 'image2' } },
        { from: { node: 'img', output: 'nope' }, to: { node: 'merge', input: 'image2' } },
        { from: { node: 'img', output: 'image' }, to: { node: 'merge', input: 'image1' } },
        { from: { node: 'img', output: 'image' }, to: { node: 'merge', input: 'mask' } },
      ],
    };
    const plan = planImport(graph, catalog);
    expect(plan.connections).toHaveLength(2);
    expect(plan.problems).toHaveLength(4);
    expect(plan.problems.join('\n')).toMatch(/not in the graph[\s\S]*socket the node does not have[\s\S]*more than one edge[\s\S]*connects Image to Mask/);
  });
});

describe('editor helpers', () => {
  it('defaultParams takes every declared default (copied)', () => {
    const spec = catalog.nodes[1];
    const params = defaultParams(spec);
    expect(params).toEqual({ shape: 'logistic', sharpness: 20, axes: ['x'] });
    (params.axes as string[]).push('y');
    expect(spec.params[2].default).toEqual(['x']);
  });

  it('socket types connect only to themselves; placeholders to nothing', () => {
    expect(socketsCompatible('Image', 'Image')).toBe(true);
    expect(socketsCompatible('Image', 'Mask')).toBe(false);
    expect(socketsCompatible(UNKNOWN_SOCKET, UNKNOWN_SOCKET)).toBe(false);
  });

  it('uniqueNodeId gives readable ids the graph schema accepts', () => {
    expect(uniqueNodeId('Mask', [])).toBe('Mask-1');
    expect(uniqueNodeId('Mask', ['Mask-1', 'Mask-2'])).toBe('Mask-3');
    const odd = uniqueNodeId('Fancy Filter/v2!', []);
    expect(odd).toMatch(/^[A-Za-z0-9_.-]+$/);
    expect(uniqueNodeId('///', [])).toBe('node-1');
  });

  it('wouldCreateCycle sees loops through existing edges', () => {
    const edges = [
      { source: 'a', target: 'b' },
      { source: 'b', target: 'c' },
    ];
    expect(wouldCreateCycle(edges, 'c', 'a')).toBe(true);
    expect(wouldCreateCycle(edges, 'a', 'c')).toBe(false);
    expect(wouldCreateCycle(edges, 'x', 'x')).toBe(true);
  });

  it('groups the catalog by category and searches it, title matches first', () => {
    expect(groupByCategory(catalog.nodes).map(([c, ns]) => [c, ns.map((n) => n.type)])).toEqual([
      ['Conditioning', ['Mask']],
      ['Image', ['LoadImage', 'PixelMerge', 'SaveImage']],
    ]);
    expect(searchCatalog(catalog.nodes, 'image').map((n) => n.type)).toEqual(['LoadImage', 'SaveImage', 'PixelMerge']);
    expect(searchCatalog(catalog.nodes, 'logistic').map((n) => n.type)).toEqual(['Mask']);
    expect(searchCatalog(catalog.nodes, 'merge pixel').map((n) => n.type)).toEqual(['PixelMerge']);
    expect(searchCatalog(catalog.nodes, 'zzz')).toEqual([]);
  });

  it('graph names follow the server rule', () => {
    expect(graphNameProblem('my graph-1.v2')).toBeNull();
    expect(graphNameProblem('')).toMatch(/name/);
    expect(graphNameProblem('../etc')).toMatch(/"\."/);
    expect(graphNameProblem('a/b')).toMatch(/letters/);
    expect(graphNameProblem(' padded')).toMatch(/space/);
    expect(graphNameProblem('x'.repeat(65))).toMatch(/64/);
  });

  it('resolveOverlaps pushes overlapping nodes down within a column and leaves others alone', () => {
    const moved = resolveOverlaps(
      [
        { id: 'a', x: 0, y: 0, width: 200, height: 150 },
        { id: 'b', x: 0, y: 100, width: 200, height: 100 },
        { id: 'c', x: 0, y: 200, width: 200, height: 100 },
        { id: 'side', x: 300, y: 50, width: 200, height: 100 },
      ],
      10,
    );
    expect(moved.get('b')).toEqual({ x: 0, y: 160 });
    expect(moved.get('c')).toEqual({ x: 0, y: 270 });
    expect(moved.has('a')).toBe(false);
    expect(moved.has('side')).toBe(false);
  });
});

describe('graphFingerprint', () => {
  it('does not depend on the order of nodes, edges or parameter keys', () => {
    const a = snapshotToGraph(snapshot);
    const b: Graph = {
      ...a,
      nodes: [...a.nodes].reverse().map((n) => ({ ...n, params: Object.fromEntries(Object.entries(n.params).reverse()) })),
      edges: [...a.edges].reverse(),
    };
    expect(graphFingerprint(b)).toBe(graphFingerprint(a));
    const c = structuredClone(a);
    (c.nodes[0].params as Record<string, unknown>).max_side = 300;
    expect(graphFingerprint(c)).not.toBe(graphFingerprint(a));
  });
});

describe('N styles in the editor', () => {
  const shipped = catalogJson(createCatalog(nodeDefinitions));
  const spec = (type: string) => shipped.nodes.find((n) => n.type === type)!;

  it('a sampler has as many style sockets as its "styles" says, each a numbered member of the family', () => {
    const eps = spec('EpsilonMergeSampler');
    expect([...countParams(eps)]).toEqual(['styles']);
    const styleSockets = (styles: number) => socketsFor(eps, { ...defaultParams(eps), styles }).inputs.filter((s) => s.family === 'style');
    expect(styleSockets(3).map((s) => [s.name, s.index])).toEqual([
      ['style1', 1],
      ['style2', 2],
      ['style3', 3],
    ]);
    expect(styleSockets(5).map((s) => s.name)).toEqual(['style1', 'style2', 'style3', 'style4', 'style5']);
    // The other inputs are there whatever the count, in the catalog's order.
    const others = socketsFor(eps, { ...defaultParams(eps), styles: 4 })
      .inputs.filter((s) => s.family === undefined)
      .map((s) => s.name);
    expect(others).toEqual(eps.inputs.filter((s) => !s.variadic).map((s) => s.name));
    expect(countParams(spec('VAEDecode')).size).toBe(0);
  });

  it('opening a graph gives each sampler the sockets its count says', () => {
    const parsed = parseGraphJson(fs.readFileSync(path.resolve(import.meta.dirname, '../graphs/three-styles.json'), 'utf8'));
    if (!parsed.ok) throw new Error(parsed.message);
    const plan = planImport(parsed.graph, shipped);
    const sampler = plan.nodes.find((n) => n.dto.id === 'eps_merge')!;
    expect(sampler.inputs.filter((s) => s.family === 'style').map((s) => s.name)).toEqual(['style1', 'style2', 'style3']);
    expect(plan.problems).toEqual([]);
  });

  it('a mask shows the settings of its shape only (painting tools for painted, angle for direction "angle")', () => {
    const mask = spec('Mask');
    const visible = (values: Record<string, unknown>) =>
      mask.params.filter((p) => paramVisible(p, { ...defaultParams(mask), ...values }, mask.params)).map((p) => p.name);
    const painted = visible({ shape: 'painted' });
    expect(painted).toEqual(expect.arrayContaining(['strokes', 'fill', 'feather']));
    expect(painted).not.toContain('angle');
    expect(painted).not.toContain('direction');
    const angled = visible({ shape: 'logistic', direction: 'angle' });
    expect(angled).toEqual(expect.arrayContaining(['direction', 'angle', 'sharpness']));
    expect(angled).not.toContain('strokes');
    expect(visible({ shape: 'linear', direction: 'left-right' })).not.toContain('angle');
    expect(visible({ shape: 'linear', direction: 'radial' })).toEqual(expect.arrayContaining(['centerX', 'centerY']));
  });

  it("Load Model hides the conversion's settings (dtype, config, VAE file) for the demo model, and shows them for any other", () => {
    const load = spec('LoadModel');
    const visible = (values: Record<string, unknown>) =>
      load.params.filter((p) => paramVisible(p, { ...defaultParams(load), ...values }, load.params)).map((p) => p.name);
    expect(visible({ model: 'demo' })).toEqual(['model']);
    expect(visible({ model: 'my-model.safetensors' })).toEqual(['model', 'dtype', 'config', 'vae']);
  });
});

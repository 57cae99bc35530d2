/**
 * Custom nodes: node packages load at start from <data>/custom_nodes/ and --nodes folders, may add socket
 * types, and a package that cannot be loaded is reported (log and catalog) while the studio starts
 * without it. The packages are written to a temporary folder as plain ES modules.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NODE_API_VERSION } from '../nodes/api.ts';
import { nodeDefinitions } from '../nodes/index.ts';
import { catalogJson, createCatalog } from '../server/catalog.ts';
import { GraphRunner } from '../server/executor/graph-runner.ts';
import { validateGraph } from '../server/graph/validate.ts';
import { loadNodePackages, nodePackageFolders } from '../server/node-packages/load.ts';
import { parseCli } from '../server/main.ts';
import { PROJECT_ROOT } from '../server/util/project.ts';
import { api, startTestStudio } from './support/api-harness.ts';
import { graphJson, testNodes } from './support/test-nodes.ts';

let root: string;
const lines: string[] = [];
const log = { debug() {}, info: (m: string) => void lines.push(`info ${m}`), warn() {}, error: (m: string) => void lines.push(`error ${m}`) };

/** Writes a package folder: its package.json (`manifest`, or text as it is) and files. */
async function pkg(name: string, manifest: object | string | null, files: Record<string, string> = {}): Promise<string> {
  const dir = path.join(root, name);
  await mkdir(dir, { recursive: true });
  if (manifest !== null) await writeFile(path.join(dir, 'package.json'), typeof manifest === 'string' ? manifest : JSON.stringify(manifest));
  for (const [file, text] of Object.entries(files)) await writeFile(path.join(dir, file), text);
  return dir;
}

const manifest = (name: string, api = NODE_API_VERSION) => ({ name, version: '0.1.0', dualstyle: { entry: './index.mjs', api } });

/** A package with a socket type of its own ("Palette") and two nodes that make and read one. */
const PALETTE = `export default function register(api) {
  const { z, defineNode, defineSocketType } = api;
  const palette = defineSocketType({ type: 'Palette', color: '#ff8800', description: 'a list of colours' });
  const make = defineNode({
    type: 'MakePalette', title: 'Make Palette', category: 'Colour', description: 'n grey levels.',
    inputs: {}, outputs: { palette: { type: 'Palette' } },
    params: z.object({ n: z.number().int().min(1).max(16).default(3) }),
    async run({ params }) { return { outputs: { palette: Array.from({ length: params.n }, (_, i) => i / params.n) } }; },
  });
  const show = defineNode({
    type: 'ShowPalette', title: 'Show Palette', category: 'Colour', description: 'Its size.', output: true,
    inputs: { palette: { type: 'Palette' } }, outputs: {}, params: z.object({}),
    async run({ inputs }) { return { outputs: {}, result: { text: 'colours: ' + inputs.palette.length } }; },
  });
  return { nodes: [make, show], socketTypes: [palette] };
}
`;

const oneNode = (type: string, socket = 'Number') => `export default (api) => ({ nodes: [api.defineNode({
  type: '${type}', title: '${type}', category: 'x', description: 'x', inputs: {}, outputs: { v: { type: '${socket}' } },
  params: api.z.object({}), async run() { return { outputs: { v: 1 } }; } })] });
`;

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'dualstyle-packages-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('node packages', () => {
  it('a package adds its nodes and socket types; its values flow between its nodes, and only into sockets of their type', async () => {
    const dir = await pkg('palette', manifest('palette'), { 'index.mjs': PALETTE });
    const found = await loadNodePackages([dir], testNodes, log);
    expect(found.packages).toEqual([{ name: 'palette', version: '0.1.0', nodes: ['MakePalette', 'ShowPalette'], socketTypes: ['Palette'] }]);
    const catalog = createCatalog([...testNodes, ...found.nodes], found);
    const json = catalogJson(catalog);
    expect(json.socketTypes.at(-1)).toEqual({ type: 'Palette', color: '#ff8800', description: 'a list of colours', package: 'palette' });
    expect(json.nodes.find((n) => n.type === 'MakePalette')!.params[0]).toMatchObject({ name: 'n', kind: 'integer', min: 1, max: 16, default: 3 });

    const runner = new GraphRunner({ catalog, dataDir: root, executionProvider: 'cpu' });
    const summary = await runner.run(
      graphJson(
        [
          { id: 'make', type: 'MakePalette', params: { n: 5 } },
          { id: 'show', type: 'ShowPalette' },
        ],
        [['make', 'palette', 'show', 'palette']],
      ),
    );
    expect(summary.results['show']?.text).toBe('colours: 5');
    runner.close();

    const wrong = validateGraph(
      graphJson(
        [
          { id: 'make', type: 'MakePalette' },
          { id: 'show', type: 'Show' },
        ],
        [['make', 'palette', 'show', 'value']],
      ),
      catalog,
    );
    expect(wrong.ok).toBe(false);
    expect(wrong.issues.map((i) => i.message).join('\n')).toMatch(/Palette/);
  });

  it('reports each package that cannot be loaded, says why, and loads the others', async () => {
    const dirs = [
      await pkg('no-manifest', null),
      await pkg('no-entry-field', { name: 'no-entry-field' }),
      await pkg('future', manifest('future', NODE_API_VERSION + 1), { 'index.mjs': oneNode('Future') }),
      await pkg('missing-entry', manifest('missing-entry')),
      await pkg('throws', manifest('throws'), { 'index.mjs': "throw new Error('boom at import');\n" }),
      await pkg('no-default', manifest('no-default'), { 'index.mjs': 'export const nodes = [];\n' }),
      await pkg('clash-node', manifest('clash-node'), { 'index.mjs': oneNode('Constant') }),
      await pkg('clash-socket', manifest('clash-socket'), {
        'index.mjs': "export default (api) => ({ nodes: [], socketTypes: [api.defineSocketType({ type: 'Image', color: '#000000' })] });\n",
      }),
      await pkg('bad-socket', manifest('bad-socket'), { 'index.mjs': oneNode('Odd', 'NoSuchType') }),
      await pkg('good', manifest('good'), { 'index.mjs': oneNode('GoodNode') }),
      await pkg('clash-package', manifest('clash-package'), { 'index.mjs': oneNode('GoodNode') }),
      path.join(root, 'not-there'),
    ];
    lines.length = 0;
    const found = await loadNodePackages(dirs, testNodes, log);
    expect(found.nodes.map((d) => d.type)).toEqual(['GoodNode']);
    const errors = Object.fromEntries(found.packages.map((p) => [p.name, p.error]));
    expect(errors).toEqual({
      'no-manifest': expect.stringMatching(/no package\.json/),
      'no-entry-field': expect.stringMatching(/no "dualstyle" entry/),
      future: `it was written for node API ${NODE_API_VERSION + 1}, and this studio offers node API ${NODE_API_VERSION}`,
      'missing-entry': 'its entry "./index.mjs" is not there',
      throws: expect.stringMatching(/threw while loading: boom at import/),
      'no-default': expect.stringMatching(/no default export function/),
      'clash-node': 'its node type "Constant" clashes with a built-in node',
      'clash-socket': 'its socket type "Image" clashes with a built-in socket type',
      'bad-socket': expect.stringMatching(/unknown socket type "NoSuchType"/),
      good: undefined,
      'clash-package': 'its node type "GoodNode" clashes with node package good',
      'not-there': expect.stringMatching(/no package\.json/),
    });
    // Every failure is in the log too, with the folder; no message a client sees carries the absolute path.
    expect(lines.filter((l) => l.startsWith('error')).length).toBe(11);
    for (const p of found.packages) expect(p.error ?? '').not.toContain(root);
  });

  it('finds the packages in <data>/custom_nodes/, then the --nodes folders', async () => {
    const data = path.join(root, 'data');
    await mkdir(path.join(data, 'custom_nodes', 'b'), { recursive: true });
    await mkdir(path.join(data, 'custom_nodes', 'a'), { recursive: true });
    await mkdir(path.join(data, 'custom_nodes', '.hidden'), { recursive: true });
    expect(await nodePackageFolders(data, ['extra'])).toEqual([
      path.join(data, 'custom_nodes', 'a'),
      path.join(data, 'custom_nodes', 'b'),
      path.resolve('extra'),
    ]);
    expect(await nodePackageFolders(path.join(root, 'no-data'), [])).toEqual([]);
  });

  it('reads --nodes and --no-custom-nodes', () => {
    const on = parseCli(['--nodes', 'a', '--nodes', 'b'], {});
    expect(on !== 'help' && on.customNodes).toEqual({ extra: [path.resolve('a'), path.resolve('b')] });
    const off = parseCli(['--no-custom-nodes'], {});
    expect(off !== 'help' && off.customNodes).toBe(false);
    const plain = parseCli([], {});
    expect(plain !== 'help' && plain.customNodes).toEqual({ extra: [] });
    expect(() => parseCli(['--nodes', 'a', '--no-custom-nodes'], {})).toThrow(/contradict/);
  });

  it('a studio starts without a package that fails, and its catalog says which and why', async () => {
    const data = path.join(root, 'studio-data');
    await mkdir(path.join(data, 'custom_nodes'), { recursive: true });
    await pkg('studio-data/custom_nodes/palette', manifest('palette'), { 'index.mjs': PALETTE });
    const broken = await pkg('broken', manifest('broken'), { 'index.mjs': "throw new Error('cannot start');\n" });
    lines.length = 0;
    const studio = await startTestStudio(data, { customNodes: { extra: [broken] }, logger: log });
    try {
      const { body } = await api(studio, 'GET', '/api/catalog');
      expect(body.nodes.map((n: { type: string }) => n.type)).toEqual(expect.arrayContaining(['MakePalette', 'ShowPalette', 'Constant']));
      expect(body.packages).toEqual([
        { name: 'palette', version: '0.1.0', nodes: ['MakePalette', 'ShowPalette'], socketTypes: ['Palette'] },
        { name: 'broken', version: '0.1.0', nodes: [], socketTypes: [], error: expect.stringMatching(/threw while loading: cannot start/) },
      ]);
      expect(lines.some((l) => l.startsWith('error node package broken') && l.includes('cannot start'))).toBe(true);
    } finally {
      await studio.close();
    }
    // --no-custom-nodes: nothing loaded, nothing reported.
    const plain = await startTestStudio(data, { customNodes: false });
    try {
      const { body } = await api(plain, 'GET', '/api/catalog');
      expect(body.nodes.some((n: { type: string }) => n.type === 'MakePalette')).toBe(false);
      expect(body.packages).toBeUndefined();
    } finally {
      await plain.close();
    }
  });
});

describe('the example packages', () => {
  it('take nothing of the studio at run time but what the API hands them: their imports of it are type-only, of nodes/api.ts', async () => {
    const { readdirSync, readFileSync } = await import('node:fs');
    const examples = path.join(PROJECT_ROOT, 'examples');
    const bad: string[] = [];
    for (const entry of readdirSync(examples, { recursive: true, encoding: 'utf8' })) {
      if (!/\.(ts|js|mjs)$/.test(entry) || entry.includes('node_modules') || /(^|\/)test\//.test(entry)) continue;
      const source = readFileSync(path.join(examples, entry), 'utf8');
      for (const m of source.matchAll(/(?:^|\n)\s*(import|export)\s+(type\s+)?[^;'"]*?from\s*['"]([^'"]+)['"]/g)) {
        const target = path.resolve(path.dirname(path.join(examples, entry)), m[3]!);
        if (target.startsWith(examples)) continue;
        if (!m[2] || target !== path.join(PROJECT_ROOT, 'nodes', 'api.ts')) bad.push(`${entry} → ${m[3]}`);
      }
    }
    expect(bad).toEqual([]);
  });
});

describe('the built-in catalog', () => {
  it('still loads with no packages', () => {
    expect(createCatalog(nodeDefinitions).size).toBe(nodeDefinitions.length);
  });
});

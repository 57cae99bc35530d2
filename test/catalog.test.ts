import { describe, expect, it } from 'vitest';
import { catalogJson, createCatalog, humanize } from '../server/catalog.ts';
import { SOCKET_COLORS, SOCKET_TYPES } from '../server/protocol/graph.ts';
import type { CatalogNode } from '../server/protocol/catalog.ts';
import { Constant, testNodes } from './support/test-nodes.ts';
import { nodeDefinitions } from '../nodes/index.ts';

const json = catalogJson(createCatalog(testNodes));
const node = (type: string): CatalogNode => json.nodes.find((n) => n.type === type)!;
const param = (type: string, name: string) => node(type).params.find((p) => p.name === name)!;

describe('catalog', () => {
  it('refuses duplicate node types', () => {
    expect(() => createCatalog([Constant, Constant])).toThrow('Duplicate node type "Constant" in the catalog.');
    expect(createCatalog(testNodes).size).toBe(testNodes.length);
  });

  it('lists every socket type with its colour', () => {
    expect(json.socketTypes.map((s) => s.type)).toEqual([...SOCKET_TYPES]);
    expect(json.socketTypes.find((s) => s.type === 'Latent')!.color).toBe(SOCKET_COLORS.Latent);
  });

  it('describes nodes, sockets (humanized labels) and output flags', () => {
    const inv = node('Invert');
    expect(inv).toMatchObject({ title: 'Invert', category: 'diffusion', output: false });
    expect(inv.inputs).toEqual([
      { name: 'latent', type: 'Latent', label: 'Latent' },
      { name: 'model', type: 'Model', label: 'Model' },
    ]);
    expect(node('Add').inputs[1]).toEqual({ name: 'b', type: 'Number', label: 'B', optional: true });
    expect(node('Show').output).toBe(true);
    expect(node('LoadImage').outputs).toEqual([{ name: 'image', type: 'Image', label: 'Image' }]);
  });

  it('derives kinds, defaults, ranges, steps, labels and descriptions from zod', () => {
    expect(param('Invert', 'steps')).toMatchObject({ kind: 'integer', default: 100, min: 1, max: 1000, step: 1, label: 'Steps', ui: { slider: true } });
    expect(param('Invert', 'skip')).toMatchObject({ kind: 'integer', default: 20, min: 0 });
    expect(param('Invert', 'skip').max).toBeUndefined();
    expect(param('Invert', 'eta')).toMatchObject({ kind: 'number', default: 0.1, min: 0, max: 1, step: 0.05, label: 'Eta' });
    expect(param('Invert', 'sourcePrompt')).toMatchObject({
      kind: 'text',
      default: '',
      label: 'Source prompt',
      description: 'Prompt describing the input image',
      ui: { multiline: true },
    });
    expect(param('Mask', 'sharpness')).toMatchObject({ kind: 'number', min: 0, max: 200, default: 20, label: 'Sharpness (k)' });
    expect(param('Mask', 'shape')).toMatchObject({ kind: 'enum', options: ['linear', 'logistic'], default: 'logistic' });
    expect(param('Mask', 'invert')).toMatchObject({ kind: 'boolean', default: false });
    expect(param('Constant', 'value')).toMatchObject({ kind: 'number', default: 1, description: 'The number to output' });
    expect(param('SaveImage', 'name')).toMatchObject({ kind: 'string', default: 'out' });
  });

  it('optional parameters and ui.kind overrides', () => {
    const seed = param('Mask', 'seed');
    expect(seed).toMatchObject({ kind: 'integer', optional: true });
    expect(seed.default).toBeUndefined();
    // int() carries ±2^53 bounds internally; they are not a range to show.
    expect(seed.min).toBeUndefined();
    expect(seed.max).toBeUndefined();
    expect(param('Mask', 'sharpness').optional).toBeUndefined();
    expect(param('LoadImage', 'file')).toMatchObject({ kind: 'image', description: 'Uploaded file name' });
    expect(param('LoadImage', 'file').default).toBeUndefined();
    expect(param('LoadModel', 'folder')).toMatchObject({ kind: 'model', default: 'demo' });
  });

  it('carries the JSON Schema of each parameter', () => {
    expect(param('Mask', 'sharpness').schema).toMatchObject({ type: 'number', minimum: 0, maximum: 200, default: 20 });
    expect(param('LoadImage', 'width').schema).toMatchObject({ type: 'integer', multipleOf: 64 });
    expect(JSON.parse(JSON.stringify(json))).toEqual(json); // plain JSON, servable as is
  });

  it('humanizes names', () => {
    expect(humanize('sourcePrompt')).toBe('Source prompt');
    expect(humanize('source_prompt')).toBe('Source prompt');
    expect(humanize('cfgScale2')).toBe('Cfg scale2');
  });

  it('the shipped node catalog builds and every parameter is renderable', () => {
    const shipped = catalogJson(createCatalog(nodeDefinitions));
    expect(JSON.parse(JSON.stringify(shipped))).toEqual(shipped);
    const kinds = ['number', 'integer', 'string', 'text', 'enum', 'boolean', 'image', 'model', 'painting'];
    for (const def of nodeDefinitions) {
      const n = shipped.nodes.find((x) => x.type === def.type)!;
      for (const p of n.params) {
        expect(kinds, `${def.type}.${p.name}`).toContain(p.kind);
        // A default the schema itself rejects would make every new node invalid.
        if ('default' in p) expect(def.params.shape[p.name].safeParse(p.default).success, `${def.type}.${p.name} default`).toBe(true);
        if (p.kind === 'enum') expect(p.options?.length, `${def.type}.${p.name} options`).toBeGreaterThan(0);
      }
    }
  });
});

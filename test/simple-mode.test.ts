/**
 * Simple mode (issue 26, item 13): a graph marks parameters as exposed (`exposed` on a node, checked by
 * validation), the editor keeps them through its own model of the graph, and the one-page form shows just
 * those; the templates expose what an artist changes.
 */
import { describe, expect, it } from 'vitest';
import { catalogJson } from '../server/catalog.ts';
import { validateGraph, formatIssue } from '../server/graph/validate.ts';
import { GraphSchema, type Graph } from '../server/protocol/graph.ts';
import { planImport, snapshotToGraph } from '../client/src/graph-io.ts';
import { toggledExposure } from '../client/src/editor/exposure-edits.ts';
import { simpleForm } from '../client/src/app/simple-form.ts';
import { catalog, loadTemplate } from './support/pipeline-harness.ts';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from './support/pipeline-harness.ts';

const catalogBody = catalogJson(catalog);
const templates = readdirSync(path.join(projectRoot, 'graphs'))
  .filter((f) => f.endsWith('.json'))
  .map((f) => f.slice(0, -5));

const withExposed = (g: Graph, id: string, exposed: string[]): Graph => ({ ...g, nodes: g.nodes.map((n) => (n.id === id ? { ...n, exposed } : n)) });

describe('exposure in the graph JSON', () => {
  it('is optional: a graph without it is valid as before, and it is kept by the schema', async () => {
    const g = await loadTemplate('attention-merge');
    const plain: Graph = { ...g, nodes: g.nodes.map(({ exposed: _drop, ...n }) => n) };
    expect(validateGraph(plain, catalog).issues).toEqual([]);
    const parsed = GraphSchema.parse(withExposed(plain, 'style1', ['text']));
    expect(parsed.nodes.find((n) => n.id === 'style1')!.exposed).toEqual(['text']);
  });

  it('names a parameter the node does not have, or one exposed twice', async () => {
    const g = withExposed(await loadTemplate('attention-merge'), 'style1', ['text', 'colour', 'text']);
    const issues = validateGraph(g, catalog).issues.map(formatIssue);
    expect(issues).toEqual([
      expect.stringMatching(/shows "colour" in simple mode, but it has no such parameter/),
      expect.stringMatching(/shows "text" in simple mode twice/),
    ]);
    expect(GraphSchema.safeParse(withExposed(g, 'style1', [''])).success).toBe(false);
  });

  it.each(templates)('template %s exposes the picture, every prompt and the samplers’ guidance', async (name) => {
    const g = await loadTemplate(name);
    expect(validateGraph(g, catalog).issues.map(formatIssue)).toEqual([]);
    const exposedOf = (type: string) => g.nodes.filter((n) => n.type === type).map((n) => n.exposed ?? []);
    expect(exposedOf('LoadImage')).toEqual([['image']]);
    for (const e of exposedOf('TextPrompt')) expect(e).toContain('text');
    for (const n of g.nodes.filter((n) => n.type.endsWith('Sampler'))) expect(n.exposed).toEqual(['guidance']);
  });

  it('exposes the mask painter of the painted-mask template and the words of the words mask', async () => {
    expect((await loadTemplate('painted-mask')).nodes.find((n) => n.type === 'Mask')!.exposed).toEqual(['strokes']);
    expect((await loadTemplate('words-mask')).nodes.find((n) => n.type === 'Mask')!.exposed).toEqual(['words']);
  });
});

describe('exposure in the editor', () => {
  it('toggles a parameter: shown at the end of the list, hidden out of it', () => {
    expect(toggledExposure(undefined, 'text', true)).toEqual(['text']);
    expect(toggledExposure(['text'], 'subject', true)).toEqual(['text', 'subject']);
    expect(toggledExposure(['text', 'subject'], 'text', false)).toEqual(['subject']);
    expect(toggledExposure(['text'], 'text', true)).toEqual(['text']);
  });

  it('keeps exposure through opening a graph and saving it again', async () => {
    const g = await loadTemplate('painted-mask');
    const plan = planImport(g, catalogBody);
    const saved = snapshotToGraph({ nodes: plan.nodes.map((p) => p.dto), connections: plan.connections }, g.meta);
    expect(saved.nodes.map((n) => [n.id, n.exposed])).toEqual(g.nodes.map((n) => [n.id, n.exposed]));
  });
});

describe('the simple form', () => {
  it('shows one section per node with exposed parameters, the outputs and the source picture', async () => {
    const g = await loadTemplate('painted-mask');
    const form = simpleForm(g, catalogBody);
    expect(form.sections.map((s) => [s.nodeId, s.fields.map((f) => f.name)])).toEqual([
      ['image', ['image']],
      ['source', ['subject', 'text']],
      ['style1', ['text']],
      ['style2', ['text']],
      ['style3', ['text']],
      ['mask', ['strokes']],
      ['eps_merge', ['guidance']],
    ]);
    expect(form.sections.find((s) => s.nodeId === 'mask')!.fields[0]!.kind).toBe('painting');
    expect(form.sections.find((s) => s.nodeId === 'source')!.title).toBe('Source prompt');
    expect(form.outputs.map((o) => o.nodeId)).toEqual(g.nodes.filter((n) => n.type === 'SaveImage').map((n) => n.id));
    expect(form.source).toEqual({ nodeId: 'image', image: 'builtin:sample' });
  });

  it('leaves out a muted node and a name its type lacks', async () => {
    const g = await loadTemplate('attention-merge');
    const edited: Graph = {
      ...g,
      nodes: g.nodes.map((n) => (n.id === 'style2' ? { ...n, mode: 'mute' as const } : n.id === 'style1' ? { ...n, exposed: ['colour', 'text'] } : n)),
    };
    const form = simpleForm(edited, catalogBody);
    expect(form.sections.find((s) => s.nodeId === 'style2')).toBeUndefined();
    expect(form.sections.find((s) => s.nodeId === 'style1')!.fields.map((f) => f.name)).toEqual(['text']);
  });
});

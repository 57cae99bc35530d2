/**
 * A count of sockets (a sampler's styles) as one undo step, in client/src/editor/node-edits.ts: the
 * step is recorded once the change is made (an undo pressed meanwhile finds no half-made step), and a
 * change that fails is reported, not dropped. The editor around it is a small stand-in; the code under
 * test is the real createNodeEdits.
 */
import { describe, expect, it } from 'vitest';
import type { CatalogNode } from '../server/protocol/catalog.ts';
import { createNodeEdits } from '../client/src/editor/node-edits.ts';
import { NodeRuntimeStore } from '../client/src/runtime.ts';

const spec = {
  type: 'Sampler',
  title: 'Sampler',
  inputs: [{ name: 'style', type: 'STYLE', label: 'style', variadic: { param: 'styles', min: 2, max: 8 } }],
  outputs: [],
  params: [{ name: 'styles', kind: 'integer', default: 2 }],
} as unknown as CatalogNode;

function setup(take: () => Promise<void>) {
  const node = {
    id: 'sampler',
    type: 'Sampler',
    spec,
    params: { styles: 3 } as Record<string, unknown>,
    label: 'Sampler',
    customTitle: undefined,
    setInputs() {},
  };
  const recorded: unknown[] = [];
  const errors: string[] = [];
  const edits = createNodeEdits({
    editor: {
      getNode: (id: string) => (id === node.id ? node : undefined),
      getConnections: () => [{ id: 'c', source: 'enc', sourceOutput: 'out', target: 'sampler', targetInput: 'style3' }],
    } as never,
    area: { update: async () => undefined } as never,
    history: { add: (a: unknown) => recorded.push(a), separate() {} } as never,
    changed() {},
    colorOf: () => '#777',
    pieces: { take, put: async () => undefined },
    pins: { pinsOf: () => [] } as never,
    selectedIds: () => [],
    onError: (m) => errors.push(m),
    runtime: new NodeRuntimeStore(),
  });
  return { node, recorded, errors, edits };
}

const settle = () => new Promise((r) => setTimeout(r, 0));

describe('node edits: a count of sockets', () => {
  it('is recorded as an undo step only after its connections went and the count changed', async () => {
    let release!: () => void;
    const { node, recorded, errors, edits } = setup(() => new Promise<void>((r) => (release = r)));
    edits.setParam('sampler', 'styles', 2, false);
    await settle();
    // The connection into style3 is still being taken away: nothing to undo yet.
    expect(recorded).toHaveLength(0);
    expect(node.params.styles).toBe(3);
    release();
    await settle();
    expect(node.params.styles).toBe(2);
    expect(recorded).toHaveLength(1);
    expect(errors).toEqual([]);
  });

  it('a change that fails is reported and leaves no undo step', async () => {
    const { node, recorded, errors, edits } = setup(() => Promise.reject(new Error('the connection is gone')));
    edits.setParam('sampler', 'styles', 2, false);
    await settle();
    expect(errors).toEqual(['Could not change styles: the connection is gone']);
    expect(recorded).toHaveLength(0);
    expect(node.params.styles).toBe(3);
  });
});

/**
 * Load Model reads models only from the allowed models folders (issue: hardening, hole 5): absolute
 * paths, ".." and names that are not there all get one message, so a graph cannot probe the server's
 * disk, and no message shows the server's folders.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCatalog } from '../server/catalog.ts';
import { GraphRunner } from '../server/executor/graph-runner.ts';
import { PROJECT_ROOT } from '../server/util/project.ts';
import { writeDemoModel } from '../server/models/demo/index.ts';
import { nodeDefinitions } from '../nodes/index.ts';
import { loadModel } from '../nodes/load-model.ts';
import { listModels } from '../server/models/model-list.ts';
import { isInside, refusedModelMessage, resolveModelDir } from '../server/models/model-roots.ts';
import type { Services } from '../nodes/types.ts';
import { nodeContext } from './support/node-context.ts';

let dataDir: string;
let extraRoot: string;
let outside: string;
let services: Services;

beforeAll(async () => {
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'dualstyle-roots-'));
  extraRoot = await fs.mkdtemp(path.join(os.tmpdir(), 'dualstyle-roots-extra-'));
  outside = await fs.mkdtemp(path.join(os.tmpdir(), 'dualstyle-roots-outside-'));
  await writeDemoModel(path.join(outside, 'sd'));
  await writeDemoModel(path.join(extraRoot, 'allowed-sd'));
  await fs.mkdir(path.join(dataDir, 'models', 'broken', 'unet'), { recursive: true });
  services = new GraphRunner({ catalog: createCatalog(nodeDefinitions), dataDir, executionProvider: 'cpu', modelRoots: [extraRoot] }).services;
});

afterAll(async () => {
  for (const dir of [dataDir, extraRoot, outside]) await fs.rm(dir, { recursive: true, force: true });
});

const context = () => nodeContext(services, { nodeId: 'model' });

async function failure(model: string): Promise<string> {
  try {
    await loadModel.run({ inputs: {}, params: { model, dtype: 'auto', config: '', vae: '' }, ctx: context() });
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error(`Load Model accepted ${model}`);
}

describe('Load Model paths', () => {
  it('answers every path outside the models folders, or not there, with the same message', async () => {
    const probes = [
      '/etc', // exists, not a model
      '/no/such/folder', // does not exist
      path.join(outside, 'sd'), // a complete SD folder, outside
      '../../../../etc',
      `models/../../${path.basename(outside)}/sd`,
      'no-such-model',
      path.join(dataDir, 'uploads'),
    ];
    for (const model of probes) {
      const message = await failure(model);
      expect(message, model).toBe(refusedModelMessage(model));
    }
  });

  it("never shows the server's folders in a message", async () => {
    const messages = [await failure('/etc'), await failure('nope'), await failure('broken')];
    for (const message of messages) {
      for (const secret of [dataDir, PROJECT_ROOT, process.cwd(), os.tmpdir()]) expect(message).not.toContain(secret);
    }
    // A folder inside a root may say what is wrong with it, in the user's words.
    expect(messages[2]).toMatch(/not a Stable Diffusion ONNX folder: missing .* in broken$/);
  });

  it("finds names under <data>/models, the studio's models/ and --models-root folders", async () => {
    expect(await resolveModelDir('allowed-sd', services.modelRoots)).toBe(path.join(extraRoot, 'allowed-sd'));
    expect(await resolveModelDir(path.join(extraRoot, 'allowed-sd'), services.modelRoots)).toBe(path.join(extraRoot, 'allowed-sd'));
    expect(await resolveModelDir('broken', services.modelRoots)).toBe(path.join(dataDir, 'models', 'broken'));
    expect(services.modelRoots).toContain(path.join(PROJECT_ROOT, 'models'));
    // The studio's own models/ may hold what this checkout fetched or generated (listed as models/NAME);
    // of this test's folders, the SD export is listed and the broken one is not.
    const listed = (await listModels(services.modelRoots)).map((m) => m.model);
    expect(listed.filter((m) => !m.startsWith('models/'))).toEqual(['demo', 'allowed-sd']);
  });

  it('loads a model from a --models-root folder', async () => {
    const out = await loadModel.run({ inputs: {}, params: { model: 'allowed-sd', dtype: 'auto', config: '', vae: '' }, ctx: context() });
    expect(out.outputs.model.label).toBe('allowed-sd');
  });

  it('isInside compares resolved paths, not prefixes', () => {
    expect(isInside('/a/models/x', '/a/models')).toBe(true);
    expect(isInside('/a/models', '/a/models')).toBe(true);
    expect(isInside('/a/models-evil/x', '/a/models')).toBe(false);
    expect(isInside('/a/models/../x', '/a/models')).toBe(false);
  });
});

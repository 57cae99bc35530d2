/**
 * POST /api/tokens: the count under each prompt field, with the tokenizer of the model the prompt goes to
 * (the demo's byte vocabulary, or a model folder's CLIP BPE), and clear 400s for what it cannot count.
 */
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Studio } from '../server/app.ts';
import { api, startTestStudio, tempDir } from './support/api-harness.ts';
import { tinySd } from './support/pipeline-harness.ts';

let dataDir: string;
let studio: Studio;

beforeAll(async () => {
  dataDir = await tempDir('api-tokens');
  studio = await startTestStudio(dataDir, { modelRoots: [path.dirname(tinySd)] });
});

afterAll(async () => {
  await studio?.close();
  await rm(dataDir, { recursive: true, force: true });
});

describe('POST /api/tokens', () => {
  it('counts with the demo model when no model is named: one token per byte, chunks of 75', async () => {
    const res = await api(studio, 'POST', '/api/tokens', { texts: ['abc', 'x'.repeat(80), ''] });
    expect(res.status).toBe(200);
    expect(res.body.counts).toEqual([
      { tokens: 3, window: 75, chunks: 1 },
      { tokens: 80, window: 75, chunks: 2 },
      { tokens: 0, window: 75, chunks: 1 },
    ]);
  });

  it.skipIf(!existsSync(tinySd))('counts with the CLIP tokenizer of a model folder', async () => {
    const text = Array.from({ length: 82 }, (_, i) => (i % 2 ? 'blue' : 'red')).join(' ');
    const res = await api(studio, 'POST', '/api/tokens', { texts: [text, 'a red house'], model: path.basename(tinySd) });
    expect(res.status).toBe(200);
    expect(res.body.counts).toEqual([
      { tokens: 82, window: 75, chunks: 2 },
      { tokens: 3, window: 75, chunks: 1 },
    ]);
  });

  it('refuses what it cannot count, saying why', async () => {
    const notList = await api(studio, 'POST', '/api/tokens', { texts: 'a house' });
    expect(notList.status).toBe(400);
    expect(notList.body.error.message).toMatch(/texts must be a list/);
    const unknown = await api(studio, 'POST', '/api/tokens', { texts: ['a'], model: 'no-such-model' });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error).toMatchObject({ code: 'bad_model', message: expect.stringContaining('no-such-model') });
  });
});

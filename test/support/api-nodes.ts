/**
 * A small catalog of test nodes for the API tests: cheap, deterministic, and covering what the server
 * must relay (progress, previews, warnings, results, failures, cancellation).
 */
import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { z } from 'zod';
import { defineNode, NodeError, type AnyNodeDefinition } from '../../nodes/types.ts';
import { writeFileAtomic } from '../../server/util/atomic.ts';
import { resolveInside, resultsDir } from '../../server/store/paths.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export const constantNode = defineNode({
  type: 'TestNumber',
  title: 'Number',
  category: 'Test',
  description: 'A constant number.',
  inputs: {},
  outputs: { value: { type: 'Number' } },
  params: z.object({ value: z.number().min(-1000).max(1000).default(1) }),
  async run({ params }) {
    return { outputs: { value: params.value } };
  },
});

export const addNode = defineNode({
  type: 'TestAdd',
  title: 'Add',
  category: 'Test',
  description: 'a + b',
  inputs: { a: { type: 'Number' }, b: { type: 'Number' } },
  outputs: { sum: { type: 'Number' } },
  params: z.object({}),
  async run({ inputs }) {
    return { outputs: { sum: inputs.a + inputs.b } };
  },
});

/** Loops `steps` times like a sampler: progress, a cancellation check and a latent preview per step. */
export const slowNode = defineNode({
  type: 'TestSlow',
  title: 'Slow',
  category: 'Test',
  description: 'Counts steps slowly, reporting progress and an 8×8 latent preview each step.',
  inputs: { x: { type: 'Number' } },
  outputs: { value: { type: 'Number' } },
  params: z.object({
    steps: z.number().int().min(1).max(10_000).default(5),
    delayMs: z.number().int().min(0).max(1000).default(5),
    warn: z.boolean().default(false),
  }),
  async run({ inputs, params, ctx }) {
    const latent = new Float32Array(4 * 8 * 8);
    if (params.warn) ctx.warn('slow node says hello');
    for (let step = 1; step <= params.steps; step++) {
      ctx.throwIfCancelled();
      if (params.delayMs > 0) await sleep(params.delayMs);
      else if (step % 100 === 0) await new Promise((resolve) => setImmediate(resolve)); // fast, but let I/O run
      // The same buffer every step, as a real sampler does: the server must copy what it needs.
      latent.fill(step / params.steps);
      ctx.progress(step, params.steps);
      if (step === 1 || step === params.steps || ctx.previewDue()) {
        ctx.preview(step, params.steps, { kind: 'latent', data: latent, width: 8, height: 8 });
      }
    }
    return { outputs: { value: inputs.x * 2 } };
  },
});

/** An output node: writes a small PNG whose colour depends on the value, and returns its URL. */
export const saveNode = defineNode({
  type: 'TestSave',
  title: 'Save',
  category: 'Test',
  description: 'Writes a 16×16 PNG to the results folder.',
  inputs: { value: { type: 'Number' } },
  outputs: {},
  output: true,
  params: z.object({}),
  async run({ inputs, ctx }) {
    const level = Math.max(0, Math.min(255, Math.round(inputs.value)));
    const png = await sharp({ create: { width: 16, height: 16, channels: 3, background: { r: level, g: 0, b: 255 - level } } })
      .png()
      .toBuffer();
    const name = `test-${createHash('sha256').update(png).digest('hex').slice(0, 16)}.png`;
    await writeFileAtomic(resolveInside(resultsDir(ctx.services.dataDir), name), png);
    return {
      outputs: {},
      result: { images: [{ url: `/api/results/${name}`, name, width: 16, height: 16 }], text: `value ${inputs.value}` },
    };
  },
});

export const failNode = defineNode({
  type: 'TestFail',
  title: 'Fail',
  category: 'Test',
  description: 'Always fails with a user-facing error.',
  inputs: { x: { type: 'Number' } },
  outputs: { value: { type: 'Number' } },
  params: z.object({ message: z.string().default('the test node failed on purpose') }),
  async run({ params }) {
    throw new NodeError(params.message);
  },
});

export const apiTestNodes: AnyNodeDefinition[] = [constantNode, addNode, slowNode, saveNode, failNode];

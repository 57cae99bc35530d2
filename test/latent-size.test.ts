/**
 * The latent-size rule read from UNet graphs (server/engine/sd/latent-size.ts, graph-sizes.ts): the
 * reference tiny-sd export (traced at 64×64), unet/config.json where the graph shows no structure, graphs
 * whose structure this analysis cannot follow, and onnxruntime refusals translated into the same message.
 * The export kinds of the demo generator are covered in export-kinds.test.ts.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../server/engine/errors.ts';
import { readGraphOutline } from '../server/engine/runtime/graph-outline.ts';
import { LatentSizeRule, readLatentSizeRule } from '../server/engine/sd/latent-size.ts';
import { SdPipeline } from '../server/engine/sd/pipeline.ts';
import { ort, type TensorInfo } from '../server/engine/runtime/runtime.ts';
import { writeDemoModel } from '../server/models/demo/index.ts';
import { GraphBuilder, WeightRandom } from '../server/models/demo/onnx-builder.ts';
import { tinySd } from './support/pipeline-harness.ts';

const SAMPLE: TensorInfo = { name: 'sample', type: 'float32', shape: ['batch', 4, 'height', 'width'], rankKnown: true };
const hasFixture = existsSync(path.join(tinySd, 'unet/model.onnx'));

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'dss-latent-size-'));
});
afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe.skipIf(!hasFixture)('the reference tiny-sd export', () => {
  it('is read as traced at 64×64: three halvings, constant ×2 back up, sides multiples of 8', async () => {
    const rule = await readLatentSizeRule(path.join(tinySd, 'unet/model.onnx'), SAMPLE, null);
    expect(rule).toMatchObject({ source: 'graph', upsampling: 'constant-scale', safeMultiple: 8 });
    expect(rule.describe(8)).toBe('sides that are multiples of 64');
    expect(rule.takes(8, 8) && rule.takes(16, 8) && rule.takes(8, 64)).toBe(true);
    expect(rule.takes(12, 8)).toBe(false);
    expect(rule.problem(12, 10, 8)).toBe(
      'this UNet does not take a 96×80 image (a 12×10 latent): it takes image sides that are multiples of 64 (latent sides that are ' +
        'multiples of 8): it halves the latent 3 times and its up path doubles it back by a fixed ×2, as exports traced at a size that ' +
        'divides evenly do. Nearest sizes it takes: 64×64, 128×64, 64×128 or 128×128',
    );
    // Fitting a side: the largest it takes, at least the smallest.
    expect([rule.fitSide(1, 63), rule.fitSide(1, 64), rule.fitSide(0, 5)]).toEqual([56, 64, 8]);
  });

  it('reads the graph without its weights', async () => {
    const outline = await readGraphOutline(path.join(tinySd, 'unet/model.onnx'));
    expect(outline.nodes.length).toBeGreaterThan(1000);
    expect(outline.inputs.map((i) => i.name)).toEqual(['sample', 'timestep', 'encoder_hidden_states']);
    const conv = outline.initializers.get('u.conv_in.weight')!;
    expect(conv.dims!.map(Number)).toHaveLength(4);
    expect(conv.rawData?.length ?? 0).toBe(0); // large tensors: name, type and shape only
  });
});

/** A graph with a UNet's inputs: `body` gets the sample and returns the output. */
async function graph(name: string, body: (b: GraphBuilder, sample: string) => string): Promise<string> {
  const b = new GraphBuilder(name, new WeightRandom(1));
  const sample = b.input('sample', 'float32', ['batch', 4, 'height', 'width']);
  b.input('timestep', 'float32', ['batch']);
  b.input('encoder_hidden_states', 'float32', ['batch', 77, 32]);
  b.node('Identity', [body(b, sample)], '/out', {}, { outputs: ['out_sample'] });
  b.output('out_sample', 'float32', ['batch', 4, 'height', 'width']);
  const file = path.join(tmp, `${name}.onnx`);
  await writeFile(file, b.model(name).model);
  return file;
}

describe('graphs the analysis cannot follow', () => {
  it("no strided structure: unet/config.json's levels stand in, else onnxruntime decides", async () => {
    const file = await graph('flat', (b, x) => b.op('Relu', [x], '/relu'));
    const none = await readLatentSizeRule(file, SAMPLE, null);
    expect(none).toMatchObject({ source: 'none', safeMultiple: 1 });
    expect(none.takes(7, 5)).toBe(true);
    const config = await readLatentSizeRule(file, SAMPLE, 4);
    expect(config).toMatchObject({ source: 'config', upsampling: 'constant-scale', safeMultiple: 8 });
    expect(config.problem(12, 8, 8)).toMatch(/multiples of 64 .*as unet\/config\.json's 4 levels imply\. Nearest sizes it takes: 64×64 or 128×64$/);
  });

  it('a size change it does not model (Tile) would refuse every side: the graph is not trusted', async () => {
    // x → AveragePool /2 → Tile ×2 → Concat with x: works for even sides; Tile is not a modelled op.
    const file = await graph('tiled', (b, x) => {
      const half = b.op('AveragePool', [x], '/down', { kernel_shape: [2, 2], strides: [2, 2] });
      const back = b.op('Tile', [half, b.constant('/up', 'int64', [4], [1, 1, 2, 2])], '/up');
      return b.op(
        'Slice',
        [
          b.op('Concat', [back, x], '/join', { axis: 1 }),
          b.constant('/s', 'int64', [1], [0]),
          b.constant('/s', 'int64', [1], [4]),
          b.constant('/s', 'int64', [1], [1]),
        ],
        '/s',
      );
    });
    const session = await ort.InferenceSession.create(file);
    const run = (h: number, w: number) =>
      session.run({
        sample: new ort.Tensor('float32', new Float32Array(4 * h * w), [1, 4, h, w]),
        timestep: new ort.Tensor('float32', new Float32Array(1), [1]),
        encoder_hidden_states: new ort.Tensor('float32', new Float32Array(77 * 32), [1, 77, 32]),
      });
    expect((await run(8, 6)).out_sample!.dims).toEqual([1, 4, 8, 6]);
    await session.release();
    expect(await readLatentSizeRule(file, SAMPLE, null)).toMatchObject({ source: 'none' });
  });
});

describe('onnxruntime refusals, translated', () => {
  let scaleDir: string;
  let refusal: unknown;
  beforeAll(async () => {
    scaleDir = path.join(tmp, 'scale');
    await writeDemoModel(scaleDir, { upsample: 'scale' });
    const session = await ort.InferenceSession.create(path.join(scaleDir, 'unet/model.onnx'), { logSeverityLevel: 4 });
    refusal = await session
      .run({
        sample: new ort.Tensor('float32', new Float32Array(4 * 60), [1, 4, 6, 10]),
        timestep: new ort.Tensor('float32', new Float32Array(1), [1]),
        encoder_hidden_states: new ort.Tensor('float32', new Float32Array(77 * 32), [1, 77, 32]),
      })
      .catch((e: unknown) => e);
    await session.release();
  });

  it('names the sizes that survive every halving; other errors and such sizes pass through', () => {
    expect(String(refusal)).toMatch(/Concat/);
    const rule = LatentSizeRule.of({ constraints: [], deepestFactor: 4, upsampling: 'shape-driven' }, [null, null], null);
    const e = rule.translateRuntimeError(refusal, 10, 6, 8)!;
    expect(e).toBeInstanceOf(UserError);
    expect(e.message).toMatch(
      /^this UNet does not take a 80×48 image \(a 10×6 latent\): onnxruntime refused it \(.*Non concat axis dimensions must match.*\)\. Image sides that are multiples of 32 survive its 2 halvings and always work; nearest: 64×32, 64×64, 96×32 or 96×64$/,
    );
    expect(rule.translateRuntimeError(new Error('out of memory'), 10, 6, 8)).toBeNull();
    expect(rule.translateRuntimeError(refusal, 12, 8, 8)).toBeNull();
    const none = LatentSizeRule.of(null, [null, null], null);
    expect(none.translateRuntimeError(refusal, 10, 6, 8)!.message).toMatch(/onnxruntime refused it .*Its graph does not show which sizes it takes/);
  });

  it('the pipeline translates a refusal its rule did not foresee', async () => {
    const pipe = await SdPipeline.load(scaleDir, { executionProvider: 'cpu' });
    try {
      const { latentChannels: C, textLength: L, textDim: D } = pipe.info;
      // A rule that (wrongly) takes any size: onnxruntime refuses, the user reads why and what to use.
      pipe.info.latentSizes = LatentSizeRule.of({ constraints: [], deepestFactor: 4, upsampling: 'shape-driven' }, [null, null], null);
      const err = await pipe.unet(new Float32Array(C * 60), 1, 6, 10, 500, new Float32Array(L * D)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UserError);
      expect((err as Error).message).toMatch(/^this UNet does not take a 80×48 image .*onnxruntime refused it .*nearest: 64×32/);
    } finally {
      await pipe.release();
    }
  });
});

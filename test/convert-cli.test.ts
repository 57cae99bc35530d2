/**
 * `npm run convert-model` (issue #22): --help, usage errors (exit 2), a bare pickle refused without being run
 * (exit 1, the message says how to get a safetensors file), and a float16 conversion of
 * tiny-sd-diffusers into --out that the engine loads, reproducing the reference UNet call within what
 * float16 weights and activations allow (1e-2·max(1, max|ref|)).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main, parseConvertCli } from '../server/cli/convert-model.ts';
import { readNpyFloat32 } from '../server/conformance/npy.ts';
import { SdPipeline } from '../server/engine/sd/pipeline.ts';
import { maxAbs, maxAbsDiff } from './support/numeric.ts';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fixture = path.resolve(projectRoot, '../shared/fixtures/tiny-sd-diffusers');
const hasFixture = existsSync(path.join(fixture, 'reference/manifest.json'));
if (!hasFixture) console.warn(`convert-cli: fixture ${fixture} not found; the conversion run is skipped`);

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'dualstyle-convert-cli-'));
});
afterAll(async () => {
  vi.restoreAllMocks();
  await rm(tmp, { recursive: true, force: true });
});

/** Runs the command in-process; its exit code and everything it printed. */
async function run(args: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void lines.push(a.join(' ')));
  const err = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void lines.push(a.join(' ')));
  try {
    return { code: await main(args), out: lines.join('\n') };
  } finally {
    log.mockRestore();
    err.mockRestore();
  }
}

describe('convert-model', () => {
  it('--help, and usage errors exit 2 with the usage', async () => {
    expect(await run(['--help'])).toMatchObject({ code: 0, out: expect.stringMatching(/^usage: npm run convert-model/) as unknown });
    const bad = await run(['--dtype', 'int8', 'x']);
    expect(bad.code).toBe(2);
    expect(bad.out).toMatch(/--dtype must be float32 or float16, got "int8"[\s\S]*usage:/);
    expect((await run([])).out).toMatch(/give the checkpoint file or folder/);
    expect((await run(['a', '--strength', '0.5'])).out).toMatch(/--strength and --strength-text apply to --lora/);
    expect(parseConvertCli(['m.safetensors', '--lora', 'l.safetensors', '--strength', '0.7'])).toMatchObject({
      options: { dtype: 'float32', loras: [{ file: path.resolve('l.safetensors'), unet: 0.7, text: 0.7 }] },
    });
  });

  it('refuses a bare pickle without running it, saying how to get a safetensors file', async () => {
    const ckpt = path.join(tmp, 'model.ckpt');
    // A pickle that would run a command when unpickled: not a torch zip, so never even parsed.
    await writeFile(ckpt, Buffer.from("cos\nsystem\n(S'touch /tmp/pwned'\ntR.", 'latin1'));
    const r = await run([ckpt, '--out', path.join(tmp, 'never')]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(
      /model\.ckpt: not a PyTorch zip checkpoint \(a bare pickle, as torch wrote before 1\.6, is never opened\)\. Download the \.safetensors version/,
    );
    expect(existsSync(path.join(tmp, 'never'))).toBe(false);
  });

  it.skipIf(!hasFixture)('converts tiny-sd-diffusers to float16 in --out with progress lines; the engine runs it', async () => {
    const out = path.join(tmp, 'tiny-fp16');
    const r = await run([fixture, '--dtype', 'float16', '--out', out]);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/weights 100%/);
    expect(r.out).toMatch(/unet: written/);
    const index = JSON.parse(await readFile(path.join(out, 'model_index.json'), 'utf8')) as Record<string, { dtype: string }>;
    expect(index.dualstyle_converted?.dtype).toBe('float16');
    const pipe = await SdPipeline.load(out, { executionProvider: 'cpu' });
    try {
      const ref = (name: string) => readNpyFloat32(path.join(fixture, 'reference', `${name}.npy`));
      const [sample, ehs, expected] = await Promise.all([ref('unet_in_sample'), ref('unet_in_ehs'), ref('unet_out_t500')]);
      const [batch, , h, w] = sample.shape as [number, number, number, number];
      const ours = await pipe.unet(sample.data, batch, h, w, 500, ehs.data);
      expect(maxAbsDiff(ours, expected.data)).toBeLessThanOrEqual(1e-2 * Math.max(1, maxAbs(expected.data)));
    } finally {
      await pipe.release();
    }
    // A second run into the same folder is refused: --out must be empty.
    expect((await run([fixture, '--out', out])).out).toMatch(/is not empty/);
  });
});

/**
 * npm run conformance -- <fixture-dir> [--ep auto|cuda|tensorrt|webgpu|cpu] [--gpu N] [--fp16|--fp32]
 * One line per case, a summary, and a non-zero exit on any failure (see server/conformance/).
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { runConformance } from '../conformance/harness.ts';
import { EXECUTION_PROVIDERS, type ExecutionProviderRequest } from '../engine/runtime/runtime.ts';

const USAGE =
  'usage: npm run conformance -- <fixture-dir> [--ep auto|cuda|tensorrt|webgpu|cpu] [--gpu N] [--fp16|--fp32]\n(e.g. ../shared/fixtures/tiny-sd, or the metrics fixture ../shared/fixtures/metrics)';

export async function main(argv: string[]): Promise<number> {
  let values;
  let positionals;
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: {
        ep: { type: 'string', default: 'auto' },
        gpu: { type: 'string', default: '0' },
        fp16: { type: 'boolean' },
        fp32: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
    }));
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const ep = values.ep as ExecutionProviderRequest;
  if (!EXECUTION_PROVIDERS.includes(ep)) {
    console.error(`--ep must be one of ${EXECUTION_PROVIDERS.join(', ')}, got ${values.ep}`);
    return 2;
  }
  if (!/^\d+$/.test(values.gpu!)) {
    console.error(`--gpu must be a device index, got ${values.gpu}`);
    return 2;
  }
  if (positionals.length !== 1) {
    console.error(positionals.length === 0 ? USAGE : `expected one fixture folder, got ${positionals.join(' ')}\n${USAGE}`);
    return 2;
  }
  try {
    // --fp16: the UNet converted at load, tolerances × FP16_TOLERANCE_FACTOR; --fp32: never converted (CUDA converts by default).
    const fp16 = values.fp16 ? true : values.fp32 ? false : undefined;
    const r = await runConformance(positionals[0]!, { executionProvider: ep, gpu: Number(values.gpu), ...(fp16 !== undefined ? { fp16 } : {}) });
    return r.failed === 0 && r.passed > 0 ? 0 : 1;
  } catch (e) {
    console.error(`conformance: ${(e as Error).message}`);
    return 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  process.exitCode = await main(process.argv.slice(2));
}

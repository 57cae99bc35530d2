/**
 * npm run doctor [-- --json]: can this machine run the studio on CUDA, and if not, what fixes it.
 * Checks the CUDA provider beside onnxruntime-node (and its sha256 against the registry build), every
 * shared library it needs as the loader resolves them, the NVIDIA driver and GPUs, and the CUDA
 * libraries of Python environments; then whether TensorRT (optional) could run. Exit code 0 when CUDA is ready, 1 when not (the studio then runs
 * on CPU with `--ep auto`).
 */
import { parseArgs } from 'node:util';
import { diagnoseCuda, formatDiagnosis } from '../engine/cuda/cuda-doctor.ts';
import { diagnoseTensorrt, formatTensorrtDiagnosis } from '../engine/cuda/tensorrt-doctor.ts';

const { values } = parseArgs({ options: { json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } } });
if (values.help) {
  console.log('usage: npm run doctor [-- --json]');
  process.exit(0);
}
const d = diagnoseCuda({ verify: true, fresh: true });
const trt = diagnoseTensorrt({ cuda: d });
if (values.json) console.log(JSON.stringify({ ...d, tensorrt: trt }, null, 2));
else for (const line of [...formatDiagnosis(d), ...formatTensorrtDiagnosis(trt)]) console.log(line);
process.exitCode = d.ready ? 0 : 1;

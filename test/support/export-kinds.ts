/**
 * Demo-model folders exported as each kind users have (see DemoExport), written once per test file into a
 * temporary folder, and the test-side adapter that lets onnxruntime's CPU provider run packed fused
 * attention (which only has CUDA kernels).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { writeDemoModel, type DemoModelOptions } from '../../server/models/demo/index.ts';

const { onnx } = onnxProto;

export interface ExportKind {
  name: string;
  options: DemoModelOptions;
  /** Whether onnxruntime's CPU provider runs it as is (packed QKV/KV MultiHeadAttention is CUDA-only). */
  cpu: boolean;
}

/** One of each way real SD 1.x exports differ, combined so every option appears at least once. */
export const EXPORT_KINDS: ExportKind[] = [
  { name: 'matmul', options: { attention: 'bmm', upsample: 'skip', unetConfig: false }, cpu: true },
  { name: 'einsum-traced-64', options: { attention: 'einsum', upsample: 'scale' }, cpu: true },
  {
    name: 'sdpa-int64',
    options: { attention: 'sdpa', upsample: 'skip', timestep: 'int64', inputIds: 'int64', vaeEncoder: 'mean-logvar', unetConfig: false },
    cpu: true,
  },
  { name: 'fused', options: { attention: 'fused', upsample: 'skip', unetConfig: false }, cpu: true },
  { name: 'fused-fp16', options: { attention: 'fused', upsample: 'scale', dtype: 'float16', unetConfig: false }, cpu: true },
  { name: 'matmul-fp16', options: { attention: 'bmm', upsample: 'skip', dtype: 'float16', timestep: 'float16', vaeEncoder: 'mean-logvar' }, cpu: true },
  { name: 'fused-packed', options: { attention: 'fused-packed', upsample: 'skip', unetConfig: false }, cpu: false },
];

export async function writeKind(root: string, kind: ExportKind): Promise<string> {
  const dir = path.join(root, kind.name);
  await mkdir(dir, { recursive: true });
  await writeDemoModel(dir, kind.options);
  return dir;
}

/**
 * Rewrites every packed MultiHeadAttention (one [B, S, N, 2|3, H] input) into the same attention on
 * separate inputs: Split on the packing axis, each part reshaped to [B, S, N·H]. The function is
 * unchanged; the CPU provider can run the result. Independent of the attention-merge rewrite.
 */
export function unpackFusedAttention(bytes: Uint8Array): Uint8Array {
  const model = onnx.ModelProto.decode(bytes);
  const g = model.graph!;
  const flat = `unpack/flat_shape`;
  g.initializer = [...(g.initializer ?? []), { name: flat, dataType: onnx.TensorProto.DataType.INT64, dims: [3], int64Data: [0, 0, -1] }];
  const nodes: onnxProto.onnx.INodeProto[] = [];
  let n = 0;
  for (const node of g.node ?? []) {
    const ins = (node.input ?? []).filter((x) => x !== '');
    const packedAt = node.opType === 'MultiHeadAttention' && ins.length === 1 ? 0 : node.opType === 'MultiHeadAttention' && ins.length === 2 ? 1 : -1;
    if (packedAt < 0) {
      nodes.push(node);
      continue;
    }
    const parts = packedAt === 0 ? 3 : 2;
    const id = `unpack/${n++}`;
    const split = Array.from({ length: parts }, (_, i) => `${id}/part_${i}`);
    nodes.push({
      name: `${id}/Split`,
      opType: 'Split',
      input: [ins[packedAt]!],
      output: split,
      attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 3 }],
    });
    const flatParts = split.map((p, i) => {
      nodes.push({ name: `${id}/Reshape_${i}`, opType: 'Reshape', input: [p, flat], output: [`${p}_flat`] });
      return `${p}_flat`;
    });
    nodes.push({ ...node, input: packedAt === 0 ? flatParts : [ins[0]!, ...flatParts] });
  }
  g.node = nodes;
  return onnx.ModelProto.encode(model).finish();
}

/** unpackFusedAttention applied to a file in place. */
export async function unpackFile(file: string): Promise<void> {
  await writeFile(file, unpackFusedAttention(await readFile(file)));
}

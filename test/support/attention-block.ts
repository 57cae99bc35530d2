/**
 * One cross-attention block as an ONNX graph with a UNet's inputs (sample, timestep,
 * encoder_hidden_states [b, 77, 8]): tokens of the sample attend to the text and are projected back,
 * nothing else. Every op works token by token, so what the attention-merge rewrite does to one token
 * shows in that token's output alone (a whole UNet mixes tokens through convolutions and self-attention).
 * In fp16 throughout, as fp16 exports are (weights, inputs, output), or fp32.
 */
import onnxProto from 'onnx-proto';
import { float32ToFloat16 } from '../../server/engine/runtime/runtime.ts';
import { seededValues } from './numeric.ts';

const { onnx } = onnxProto;

export function attentionBlockGraph(dtype: 'float16' | 'float32'): Uint8Array {
  const FT = dtype === 'float16' ? onnx.TensorProto.DataType.FLOAT16 : onnx.TensorProto.DataType.FLOAT;
  const T = onnx.AttributeProto.AttributeType;
  const weight = (name: string, dims: number[], seed: number) => {
    const data = seededValues(dims[0]! * dims[1]!, seed).map((v) => v * 0.25);
    return { name, dims, dataType: FT, rawData: new Uint8Array(dtype === 'float16' ? float32ToFloat16(data).buffer : data.buffer) };
  };
  const info = (name: string, elemType: number, dims: (number | string)[]) => ({
    name,
    type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  });
  const node = (opType: string, input: string[], output: string, attribute: onnxProto.onnx.IAttributeProto[] = []) => ({
    opType,
    name: `/attn2/${output}`,
    input,
    output: [output],
    attribute,
  });
  const perm = (p: number[]) => [{ name: 'perm', type: T.INTS, ints: p }];
  return onnx.ModelProto.encode({
    irVersion: 7,
    opsetImport: [{ version: 14 }],
    graph: {
      name: `${dtype}_attention`,
      input: [
        info('sample', FT, ['b', 4, 'h', 'w']),
        info('timestep', onnx.TensorProto.DataType.FLOAT, ['b']),
        info('encoder_hidden_states', FT, ['b', 77, 8]),
      ],
      output: [info('out_sample', FT, ['b', 4, 'h', 'w'])],
      initializer: [
        weight('to_q', [4, 8], 1),
        weight('to_k', [8, 8], 2),
        weight('to_v', [8, 8], 3),
        weight('to_out', [8, 4], 4),
        { name: 'tokens_shape', dims: [3], dataType: onnx.TensorProto.DataType.INT64, int64Data: [0, -1, 4] },
      ],
      node: [
        node('Transpose', ['sample'], 'nhwc', perm([0, 2, 3, 1])),
        node('Reshape', ['nhwc', 'tokens_shape'], 'tokens'),
        node('MatMul', ['tokens', 'to_q'], 'q'),
        node('MatMul', ['encoder_hidden_states', 'to_k'], 'k'),
        node('MatMul', ['encoder_hidden_states', 'to_v'], 'v'),
        node('Transpose', ['k'], 'kT', perm([0, 2, 1])),
        node('MatMul', ['q', 'kT'], 'scores'),
        node('Softmax', ['scores'], 'probs', [{ name: 'axis', type: T.INT, i: -1 }]),
        node('MatMul', ['probs', 'v'], 'attention'),
        node('MatMul', ['attention', 'to_out'], 'projected'),
        node('Shape', ['nhwc'], 'nhwc_shape'),
        node('Reshape', ['projected', 'nhwc_shape'], 'projected_nhwc'),
        node('Transpose', ['projected_nhwc'], 'out_sample', perm([0, 3, 1, 2])),
      ],
    },
  }).finish();
}

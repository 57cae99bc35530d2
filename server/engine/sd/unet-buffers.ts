/**
 * The buffers of UNet calls, reused so that a sampler step allocates nothing of its own: for fp16
 * UNets, the half-precision copies of the float feeds (one per caller buffer) and the float32
 * conversions of ε (one per binding and output size). float32 UNets pass straight through.
 */
import { float32ToFloat16, floatTensor, ort, tensorToFloat32, type OrtTensor, type TensorInfo } from '../runtime/runtime.ts';
import type { UnetBinding } from './unet-binding.ts';

/** Output sizes kept per binding (a run uses one or two); the oldest is dropped for a new one. */
const MAX_OUTPUT_SIZES = 4;

export class UnetBuffers {
  private readonly halfCopies = new WeakMap<Float32Array, Uint16Array<ArrayBuffer>>();
  private readonly outputs = new WeakMap<UnetBinding, Map<number, Float32Array>>();

  /**
   * A float input of the UNet in its declared dtype. float32 is passed through; for fp16 UNets the
   * samplers hand over the same buffers every step, so each gets one reused half buffer, and a
   * `constant` one (the conditioning, fixed for a whole run) is converted only once.
   */
  feed(info: TensorInfo, data: Float32Array, dims: number[], constant: boolean): OrtTensor {
    if (info.type !== 'float16') return floatTensor(info.type, data, dims);
    const cached = this.halfCopies.get(data);
    const half = cached?.length === data.length ? cached : new Uint16Array(data.length);
    if (half !== cached) this.halfCopies.set(data, half);
    if (half !== cached || !constant) float32ToFloat16(data, half);
    return new ort.Tensor('float16', half, dims);
  }

  /**
   * The UNet's output as float32: float32 as onnxruntime returned it; otherwise converted into this
   * binding's buffer for its size, valid until the next call (the Denoiser contract: read ε before then).
   */
  output(b: UnetBinding, t: OrtTensor): Float32Array {
    if (t.type === 'float32') return tensorToFloat32(t);
    let bySize = this.outputs.get(b);
    if (!bySize) this.outputs.set(b, (bySize = new Map<number, Float32Array>()));
    let out = bySize.get(t.size);
    if (!out) {
      if (bySize.size >= MAX_OUTPUT_SIZES) bySize.delete(bySize.keys().next().value!);
      bySize.set(t.size, (out = new Float32Array(t.size)));
    }
    return tensorToFloat32(t, out);
  }
}

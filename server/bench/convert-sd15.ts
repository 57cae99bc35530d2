/**
 * `npx tsx server/bench/convert-sd15.ts OUT_DIR [--dtype F16|F32]`: writes an SD 1.5-sized single-file
 * LDM checkpoint (the sd15 preset's architecture, every tensor the real file has, patterned values) into
 * OUT_DIR/sd15-ldm.safetensors, with a tokenizer/ beside it, so that the conversion's time and peak memory
 * can be measured at real scale without downloading 2–4 GB:
 *
 *   /usr/bin/time -v npm run convert-model -- OUT_DIR/sd15-ldm.safetensors --dtype float16 --out OUT_DIR/onnx
 *
 * Not part of the test suite (it writes gigabytes). The file is written tensor by tensor (header first).
 */
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { float32ToFloat16 } from '../engine/runtime/runtime.ts';
import { WeightRandom, type WeightSource } from '../models/demo/onnx-builder.ts';
import { SD15_PRESET } from '../models/demo/presets.ts';
import { textEncoderModel, tokenizerFiles } from '../models/demo/text-encoder.ts';
import { buildUnet } from '../models/demo/unet.ts';
import { fullVaeDecoder, fullVaeEncoder } from '../models/demo/vae.ts';
import { ldmUnetKey, ldmVaeKey, TEXT_PREFIX, UNET_PREFIX, VAE_PREFIX } from '../models/convert/ldm.ts';

/** Records the checkpoint shape of every parameter a shapes-only build asks for. */
class Recorder implements WeightSource {
  readonly shapes = new Map<string, number[]>();
  read(): Float32Array {
    throw new Error('shapes only');
  }
  check(key: string, dims: number[], transpose: boolean): void {
    this.shapes.set(key, transpose ? [dims[1]!, dims[0]!] : dims);
  }
}

function main(): void {
  const out = process.argv[2];
  if (!out) throw new Error('usage: npx tsx server/bench/convert-sd15.ts OUT_DIR [--dtype F16|F32]');
  const dtype = process.argv.includes('F32') ? 'F32' : 'F16';
  const p = SD15_PRESET;
  const random = new WeightRandom(0);
  const [unet, text, vae] = [new Recorder(), new Recorder(), new Recorder()];
  buildUnet(random, p.text.width, { arch: p.unet, shapesOnly: true, source: unet });
  textEncoderModel(random, p.text, { shapesOnly: true, source: text });
  fullVaeEncoder(random, p.vae, { shapesOnly: true, source: vae });
  fullVaeDecoder(random, p.vae, { shapesOnly: true, source: vae });
  const tensors: { name: string; shape: number[] }[] = [
    ...[...unet.shapes].map(([k, shape]) => ({ name: UNET_PREFIX + ldmUnetKey(k, p.unet), shape })),
    ...[...text.shapes].map(([k, shape]) => ({ name: `${TEXT_PREFIX}${k}`, shape })),
    ...[...vae.shapes].map(([k, shape]) => ({ name: VAE_PREFIX + ldmVaeKey(k, p.vae.channels.length), shape })),
  ];
  const size = dtype === 'F16' ? 2 : 4;
  const header: Record<string, unknown> = { __metadata__: { format: 'pt', note: 'dualstyle sd15-sized bench checkpoint, patterned weights' } };
  let offset = 0;
  for (const t of tensors) {
    const bytes = t.shape.reduce((a, b) => a * b, 1) * size;
    header[t.name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  mkdirSync(out, { recursive: true });
  const file = path.join(out, 'sd15-ldm.safetensors');
  const fd = openSync(file, 'w');
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  writeSync(fd, prefix);
  writeSync(fd, json);
  // One block of small normal values, repeated: the values do not matter for the cost of a conversion.
  const block = random.normal('bench', 1 << 20, 0.02);
  const blockBytes = dtype === 'F16' ? Buffer.from(float32ToFloat16(block).buffer) : Buffer.from(block.buffer);
  for (let left = offset; left > 0; left -= blockBytes.length) writeSync(fd, blockBytes, 0, Math.min(left, blockBytes.length));
  closeSync(fd);
  mkdirSync(path.join(out, 'tokenizer'), { recursive: true });
  for (const [name, content] of Object.entries(tokenizerFiles())) writeFileSync(path.join(out, 'tokenizer', name), content);
  console.log(`${file}: ${tensors.length} tensors, ${(offset / 1e9).toFixed(2)} GB of ${dtype}`);
}

main();

/**
 * PyTorch checkpoints (`.ckpt`, `.pt`, `.pth`, `.bin`) opened without running them: the zip's `data.pkl`
 * goes through the restricted pickle reader (pickle.ts), which only describes tensors, and each tensor
 * becomes a byte range of its storage member (`data/<key>`, stored uncompressed), so the converter reads
 * it by position exactly as it reads a safetensors file. The weights are the checkpoint's `state_dict`
 * (Lightning checkpoints) or its top-level dict. The legacy format of torch before 1.6 (a bare pickle
 * stream, not a zip) is refused with the way to a safetensors file.
 */
import { readSync } from 'node:fs';
import path from 'node:path';
import { PickleError, readPickle, TorchTensor, type PyValue } from './pickle.ts';
import { DTYPE_BYTES, SafetensorsFile, type TensorInfo } from './safetensors.ts';
import { looksLikeZip, readMember, readZipMembers, ZipError, type ZipMember } from './torch-zip.ts';
import { ConversionError } from './weights.ts';

export const PICKLE_EXTENSIONS = ['.ckpt', '.pt', '.pth', '.bin'];

export const isPickleFile = (file: string): boolean => PICKLE_EXTENSIONS.includes(path.extname(file).toLowerCase());

/** The pickle of a checkpoint with every tensor of SD 1.5 is a few MB; more is not a weights file. */
const MAX_PICKLE_BYTES = 256 << 20;

export function safetensorsAdvice(file: string): string {
  return (
    `Download the .safetensors version of ${path.basename(file)} (most model pages offer one), or convert it once on a machine you trust ` +
    '(`safetensors.torch.save_file(torch.load(f, weights_only=True)["state_dict"], out)`).'
  );
}

/** The tensors of a checkpoint file: a SafetensorsFile over the zip, or a ConversionError naming the file and the problem. */
export function openTorchFile(file: string): SafetensorsFile {
  const fail = (problem: string) => new ConversionError(`${path.basename(file)}: ${problem}. ${safetensorsAdvice(file)}`);
  try {
    return SafetensorsFile.openLaidOut(file, (fd, size) => locateTensors(fd, size));
  } catch (e) {
    if (e instanceof ZipError || e instanceof PickleError) throw fail(e.message);
    throw e;
  }
}

function locateTensors(fd: number, size: number): Map<string, TensorInfo> {
  const head = Buffer.alloc(4);
  readSync(fd, head, 0, 4, 0);
  if (!looksLikeZip(head)) throw new PickleError('not a PyTorch zip checkpoint (a bare pickle, as torch wrote before 1.6, is never opened)');
  const members = readZipMembers(fd, size);
  const pickleName = [...members.keys()].find((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (!pickleName) throw new ZipError('a zip without <name>/data.pkl: not a PyTorch checkpoint');
  const root = pickleName.slice(0, -'data.pkl'.length);
  const weights = stateDict(readPickle(readMember(fd, size, members.get(pickleName)!, MAX_PICKLE_BYTES)));
  const tensors = new Map<string, TensorInfo>();
  for (const [name, t] of weights) tensors.set(name, tensorInfo(name, t, members.get(`${root}data/${t.storage.key}`)));
  if (tensors.size === 0) throw new PickleError('holds no tensors');
  return tensors;
}

/** The weights: `state_dict` when the checkpoint has one (Lightning), else the top-level dict; tensors only. */
function stateDict(top: PyValue): Map<string, TorchTensor> {
  if (!(top instanceof Map)) throw new PickleError('does not hold a dict of tensors');
  const inner = top.get('state_dict');
  const dict = inner instanceof Map ? inner : top;
  const out = new Map<string, TorchTensor>();
  for (const [k, v] of dict) if (typeof k === 'string' && v instanceof TorchTensor) out.set(k, v);
  return out;
}

function tensorInfo(name: string, t: TorchTensor, member: ZipMember | undefined): TensorInfo {
  if (!member) throw new PickleError(`tensor "${name}" names storage ${t.storage.key}, which the zip does not hold`);
  const bytes = DTYPE_BYTES[t.storage.dtype]!;
  const numel = t.shape.reduce((a, b) => a * b, 1);
  let expected = 1;
  for (let i = t.shape.length - 1; i >= 0; i--) {
    if (t.shape[i]! !== 1 && t.stride[i]! !== expected) throw new PickleError(`tensor "${name}" is not contiguous (strides ${t.stride.join(', ')})`);
    expected *= t.shape[i]!;
  }
  if ((t.offset + numel) * bytes > member.size) throw new PickleError(`tensor "${name}" runs past the end of its storage`);
  return { name, dtype: t.storage.dtype, shape: t.shape, start: member.start + t.offset * bytes, byteLength: numel * bytes };
}

/** The tensors of a weights file: a PyTorch checkpoint by its extension (read through the restricted reader), else safetensors. */
export function openTensorFile(file: string): SafetensorsFile {
  return isPickleFile(file) ? openTorchFile(file) : SafetensorsFile.open(file);
}

/**
 * The member table of a PyTorch zip checkpoint (`torch.save` since 1.6: `<name>/data.pkl`, `<name>/data/0`,
 * …), read from the zip's central directory. torch writes every member STORED (uncompressed, aligned), so
 * a member is just a byte range of the file and a tensor is read by position, as in a safetensors file;
 * a compressed member (a zip re-packed by another tool) is refused. Zip64 (files over 4 GB) is read.
 * Hand-written rather than a zip library: no zip reader is a dependency, and reading only the directory
 * of stored members is ~100 lines, with every offset checked against the file's size.
 */
import { readSync } from 'node:fs';

/** A member's data: its absolute byte range in the file. */
export interface ZipMember {
  start: number;
  size: number;
}

/** Thrown for a file that is not a zip, or one whose directory does not add up; the caller names the file. */
export class ZipError extends Error {}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
/** The central directory of a checkpoint lists a few thousand members at most. */
const MAX_DIRECTORY_BYTES = 64 << 20;

function read(fd: number, size: number, at: number, length: number): Buffer {
  if (at < 0 || length < 0 || at + length > size) throw new ZipError(`a zip record at byte ${at} runs past the end of the file`);
  const out = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const got = readSync(fd, out, done, length - done, at + done);
    if (got === 0) throw new ZipError('the file ended while reading its zip directory');
    done += got;
  }
  return out;
}

const big = (v: bigint): number => {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ZipError('a zip64 field is too large');
  return Number(v);
};

/** Whether the first bytes are a zip's (a local file header). */
export function looksLikeZip(head: Buffer): boolean {
  return head.length >= 4 && head.readUInt32LE(0) === LOCAL;
}

/** Where the central directory is and how many members it lists (zip64 where the classic record overflows). */
function directory(fd: number, size: number): { at: number; length: number; count: number } {
  const tailLength = Math.min(size, 22 + 0xffff);
  const tail = read(fd, size, size - tailLength, tailLength);
  let eocd = -1;
  for (let i = tailLength - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new ZipError('no zip end-of-directory record');
  let count = tail.readUInt16LE(eocd + 10);
  let length = tail.readUInt32LE(eocd + 12);
  let at = tail.readUInt32LE(eocd + 16);
  if (count === 0xffff || length === 0xffffffff || at === 0xffffffff) {
    const locatorAt = size - tailLength + eocd - 20;
    const locator = read(fd, size, locatorAt, 20);
    if (locator.readUInt32LE(0) !== ZIP64_LOCATOR) throw new ZipError('a zip64 directory without its locator');
    const record = read(fd, size, big(locator.readBigUInt64LE(8)), 56);
    if (record.readUInt32LE(0) !== ZIP64_EOCD) throw new ZipError('the zip64 end-of-directory record is missing');
    count = big(record.readBigUInt64LE(32));
    length = big(record.readBigUInt64LE(40));
    at = big(record.readBigUInt64LE(48));
  }
  if (length > MAX_DIRECTORY_BYTES) throw new ZipError(`the zip directory claims ${length} bytes`);
  return { at, length, count };
}

/** Sizes and offset from a zip64 extra field, for the classic fields that overflowed (0xffffffff). */
function zip64Fields(extra: Buffer, fields: { size: number; compressed: number; offset: number }): void {
  for (let i = 0; i + 4 <= extra.length;) {
    const id = extra.readUInt16LE(i);
    const length = extra.readUInt16LE(i + 2);
    if (id === 0x0001) {
      let p = i + 4;
      const next = () => {
        if (p + 8 > i + 4 + length || p + 8 > extra.length) throw new ZipError('a truncated zip64 extra field');
        const v = big(extra.readBigUInt64LE(p));
        p += 8;
        return v;
      };
      if (fields.size === 0xffffffff) fields.size = next();
      if (fields.compressed === 0xffffffff) fields.compressed = next();
      if (fields.offset === 0xffffffff) fields.offset = next();
      return;
    }
    i += 4 + length;
  }
}

/** Every member of the zip open as `fd` (of `size` bytes), by name; throws a ZipError for anything that does not add up. */
export function readZipMembers(fd: number, size: number): Map<string, ZipMember> {
  const dir = directory(fd, size);
  const table = read(fd, size, dir.at, dir.length);
  const members = new Map<string, ZipMember>();
  let p = 0;
  for (let n = 0; n < dir.count; n++) {
    if (p + 46 > table.length || table.readUInt32LE(p) !== CENTRAL) throw new ZipError(`zip directory entry ${n} is damaged`);
    const method = table.readUInt16LE(p + 10);
    const nameLength = table.readUInt16LE(p + 28);
    const extraLength = table.readUInt16LE(p + 30);
    const commentLength = table.readUInt16LE(p + 32);
    if (p + 46 + nameLength + extraLength > table.length) throw new ZipError(`zip directory entry ${n} runs past the directory`);
    const name = table.toString('utf8', p + 46, p + 46 + nameLength);
    const fields = { compressed: table.readUInt32LE(p + 20), size: table.readUInt32LE(p + 24), offset: table.readUInt32LE(p + 42) };
    zip64Fields(table.subarray(p + 46 + nameLength, p + 46 + nameLength + extraLength), fields);
    if (method !== 0) throw new ZipError(`member ${name} is compressed (method ${method}); torch writes checkpoints uncompressed`);
    const local = read(fd, size, fields.offset, 30);
    if (local.readUInt32LE(0) !== LOCAL) throw new ZipError(`member ${name} has no local header where the directory says`);
    const start = fields.offset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
    if (start + fields.size > size) throw new ZipError(`member ${name} runs past the end of the file`);
    members.set(name, { start, size: fields.size });
    p += 46 + nameLength + extraLength + commentLength;
  }
  return members;
}

/** A member's bytes (the pickle); `limit` bounds what a damaged directory can make us allocate. */
export function readMember(fd: number, size: number, member: ZipMember, limit: number): Buffer {
  if (member.size > limit) throw new ZipError(`a ${member.size}-byte member where at most ${limit} are expected`);
  return read(fd, size, member.start, member.size);
}

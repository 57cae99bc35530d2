/**
 * The dynamic section of an ELF shared object: what the loader reads to link it (DT_NEEDED libraries,
 * DT_SONAME, DT_RPATH / DT_RUNPATH search paths, DT_FLAGS_1) and the header fields that decide whether a
 * file can be loaded into this process at all (class, byte order, machine).
 *
 * Read from the file with positional reads, never whole: a CUDA provider is 230 MB. The section is found
 * as the loader finds it, through the PT_DYNAMIC program header; its string table (DT_STRTAB) is a virtual
 * address, mapped to a file offset through the PT_LOAD segment that holds it.
 * ELF32 and ELF64 in either byte order are read (the resolver compares them with the running process).
 */
import { closeSync, openSync, readSync } from 'node:fs';

export interface ElfDynamic {
  /** 32 or 64. */
  bits: 32 | 64;
  littleEndian: boolean;
  /** e_machine: 62 x86-64, 183 AArch64, 3 i386, ... */
  machine: number;
  /** DT_NEEDED entries in order. */
  needed: string[];
  soname: string | null;
  /** DT_RPATH and DT_RUNPATH, split at ':' (still with $ORIGIN etc. unexpanded); null when absent. */
  rpath: string[] | null;
  runpath: string[] | null;
  /** DF_1_NODEFLIB: the loader skips ld.so.cache and the default folders for this object's dependencies. */
  noDefaultLib: boolean;
}

export class ElfError extends Error {
  constructor(file: string, why: string) {
    super(`${file}: ${why}`);
    this.name = 'ElfError';
  }
}

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const DT_NULL = 0;
const DT_NEEDED = 1;
const DT_STRTAB = 5;
const DT_STRSZ = 10;
const DT_SONAME = 14;
const DT_RPATH = 15;
const DT_RUNPATH = 29;
const DT_FLAGS_1 = 0x6ffffffb;
const DF_1_NODEFLIB = 0x800;

const EM_X86_64 = 62;
const EM_AARCH64 = 183;

/** The e_machine and class of the running process, for the resolver's compatibility check. */
export function processElfTarget(arch: string = process.arch): { bits: 32 | 64; machine: number } | null {
  switch (arch) {
    case 'x64':
      return { bits: 64, machine: EM_X86_64 };
    case 'arm64':
      return { bits: 64, machine: EM_AARCH64 };
    case 'ia32':
      return { bits: 32, machine: 3 };
    default:
      return null;
  }
}

class Reader {
  constructor(
    private readonly fd: number,
    private readonly file: string,
    readonly littleEndian: boolean,
    readonly bits: 32 | 64,
  ) {}

  bytes(offset: number, length: number): Buffer {
    const buf = Buffer.alloc(length);
    const got = readSync(this.fd, buf, 0, length, offset);
    if (got !== length) throw new ElfError(this.file, `truncated (wanted ${length} bytes at ${offset}, got ${got})`);
    return buf;
  }

  /** An address-sized unsigned field (32 or 64 bits) as a number (files and addresses here stay < 2^53). */
  static word(buf: Buffer, at: number, bits: 32 | 64, le: boolean): number {
    if (bits === 32) return le ? buf.readUInt32LE(at) : buf.readUInt32BE(at);
    return Number(le ? buf.readBigUInt64LE(at) : buf.readBigUInt64BE(at));
  }

  /** A signed d_tag (DT_FLAGS_1 and the other OS tags are large positive values; DT_NULL is 0). */
  static tag(buf: Buffer, at: number, bits: 32 | 64, le: boolean): number {
    if (bits === 32) return le ? buf.readInt32LE(at) : buf.readInt32BE(at);
    return Number(le ? buf.readBigInt64LE(at) : buf.readBigInt64BE(at));
  }
}

/** Reads the dynamic section of `file`. Throws ElfError for a file that is not ELF or has no dynamic section. */
export function readElfDynamic(file: string): ElfDynamic {
  const fd = openSync(file, 'r');
  try {
    const ident = Buffer.alloc(64);
    const n = readSync(fd, ident, 0, 64, 0);
    if (n < 52 || ident.readUInt32BE(0) !== 0x7f454c46) throw new ElfError(file, 'not an ELF file');
    const bits = ident[4] === 2 ? 64 : ident[4] === 1 ? 32 : null;
    const le = ident[5] === 1 ? true : ident[5] === 2 ? false : null;
    if (bits === null || le === null) throw new ElfError(file, `unknown ELF class ${ident[4]} or byte order ${ident[5]}`);
    const r = new Reader(fd, file, le, bits);
    const u16 = (at: number) => (le ? ident.readUInt16LE(at) : ident.readUInt16BE(at));
    const machine = u16(18);
    const phoff = Reader.word(ident, bits === 64 ? 32 : 28, bits, le);
    const phentsize = u16(bits === 64 ? 54 : 42);
    const phnum = u16(bits === 64 ? 56 : 44);
    if (phnum === 0 || phentsize === 0) throw new ElfError(file, 'no program headers (not a loadable object)');

    // Program headers: PT_LOAD segments (vaddr → offset) and PT_DYNAMIC.
    const table = r.bytes(phoff, phentsize * phnum);
    const loads: { vaddr: number; offset: number; filesz: number }[] = [];
    let dynamic: { offset: number; size: number } | null = null;
    for (let i = 0; i < phnum; i++) {
      const at = i * phentsize;
      const type = le ? table.readUInt32LE(at) : table.readUInt32BE(at);
      // ELF64: type, flags, offset, vaddr, paddr, filesz; ELF32: type, offset, vaddr, paddr, filesz.
      const offset = Reader.word(table, at + (bits === 64 ? 8 : 4), bits, le);
      const vaddr = Reader.word(table, at + (bits === 64 ? 16 : 8), bits, le);
      const filesz = Reader.word(table, at + (bits === 64 ? 32 : 16), bits, le);
      if (type === PT_LOAD) loads.push({ vaddr, offset, filesz });
      else if (type === PT_DYNAMIC) dynamic = { offset, size: filesz };
    }
    if (!dynamic) throw new ElfError(file, 'no dynamic section (a static executable or not a shared object)');

    const entrySize = bits === 64 ? 16 : 8;
    const dyn = r.bytes(dynamic.offset, dynamic.size - (dynamic.size % entrySize));
    const entries: { tag: number; val: number }[] = [];
    for (let at = 0; at + entrySize <= dyn.length; at += entrySize) {
      const tag = Reader.tag(dyn, at, bits, le);
      if (tag === DT_NULL) break;
      entries.push({ tag, val: Reader.word(dyn, at + entrySize / 2, bits, le) });
    }
    const strtabAddr = entries.find((e) => e.tag === DT_STRTAB)?.val;
    const strsz = entries.find((e) => e.tag === DT_STRSZ)?.val;
    if (strtabAddr === undefined || strsz === undefined) throw new ElfError(file, 'dynamic section without a string table');
    const seg = loads.find((l) => strtabAddr >= l.vaddr && strtabAddr < l.vaddr + l.filesz);
    if (!seg) throw new ElfError(file, 'the dynamic string table is outside every loadable segment');
    const strtab = r.bytes(strtabAddr - seg.vaddr + seg.offset, strsz);
    const str = (offset: number): string => {
      if (offset >= strtab.length) throw new ElfError(file, `string offset ${offset} beyond the string table (${strtab.length} bytes)`);
      const end = strtab.indexOf(0, offset);
      return strtab.toString('utf8', offset, end < 0 ? strtab.length : end);
    };
    const paths = (tag: number): string[] | null => {
      const e = entries.find((x) => x.tag === tag);
      return e
        ? str(e.val)
            .split(':')
            .filter((p) => p.length > 0)
        : null;
    };
    const soname = entries.find((e) => e.tag === DT_SONAME);
    const flags1 = entries.find((e) => e.tag === DT_FLAGS_1)?.val ?? 0;
    return {
      bits,
      littleEndian: le,
      machine,
      needed: entries.filter((e) => e.tag === DT_NEEDED).map((e) => str(e.val)),
      soname: soname ? str(soname.val) : null,
      rpath: paths(DT_RPATH),
      runpath: paths(DT_RUNPATH),
      noDefaultLib: (flags1 & DF_1_NODEFLIB) !== 0,
    };
  } finally {
    closeSync(fd);
  }
}

/** Class and machine of an ELF file from its first 20 bytes, or null when it is not ELF (or unreadable). */
export function readElfTarget(file: string): { bits: 32 | 64; machine: number } | null {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return null;
  }
  try {
    const b = Buffer.alloc(20);
    if (readSync(fd, b, 0, 20, 0) < 20 || b.readUInt32BE(0) !== 0x7f454c46) return null;
    const bits = b[4] === 2 ? 64 : b[4] === 1 ? 32 : null;
    if (bits === null) return null;
    return { bits, machine: b[5] === 2 ? b.readUInt16BE(18) : b.readUInt16LE(18) };
  } finally {
    closeSync(fd);
  }
}

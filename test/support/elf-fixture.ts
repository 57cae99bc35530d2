/**
 * Minimal ELF64 little-endian shared objects for loader tests: an ELF header, one PT_LOAD segment mapped
 * at a non-zero address (so DT_STRTAB must be translated to a file offset) and a PT_DYNAMIC with the
 * requested DT_NEEDED / DT_SONAME / DT_RPATH / DT_RUNPATH / DT_FLAGS_1 entries.
 */
export interface ElfSpec {
  needed?: string[];
  soname?: string;
  rpath?: string;
  runpath?: string;
  nodeflib?: boolean;
  machine?: number;
}

const BASE = 0x400000;

export function makeElf(spec: ElfSpec = {}): Buffer {
  const strings: string[] = [];
  const strtab: number[] = [0];
  const str = (s: string): number => {
    const at = strtab.length;
    for (const b of Buffer.from(s, 'utf8')) strtab.push(b);
    strtab.push(0);
    strings.push(s);
    return at;
  };
  const dyn: [number, number][] = [];
  for (const n of spec.needed ?? []) dyn.push([1, str(n)]);
  if (spec.soname) dyn.push([14, str(spec.soname)]);
  if (spec.rpath !== undefined) dyn.push([15, str(spec.rpath)]);
  if (spec.runpath !== undefined) dyn.push([29, str(spec.runpath)]);
  if (spec.nodeflib) dyn.push([0x6ffffffb, 0x800]);
  const strOff = 64 + 2 * 56;
  const dynOff = Math.ceil((strOff + strtab.length) / 8) * 8;
  const entries = [...dyn, [5, BASE + strOff], [10, strtab.length], [0, 0]] as [number, number][];
  const size = dynOff + entries.length * 16;
  const b = Buffer.alloc(size);
  b.writeUInt32BE(0x7f454c46, 0);
  b[4] = 2; // ELFCLASS64
  b[5] = 1; // little endian
  b[6] = 1;
  b.writeUInt16LE(3, 16); // ET_DYN
  b.writeUInt16LE(spec.machine ?? 62, 18);
  b.writeUInt32LE(1, 20);
  b.writeBigUInt64LE(64n, 32); // e_phoff
  b.writeUInt16LE(64, 52);
  b.writeUInt16LE(56, 54);
  b.writeUInt16LE(2, 56);
  const ph = (at: number, type: number, offset: number, filesz: number) => {
    b.writeUInt32LE(type, at);
    b.writeUInt32LE(4, at + 4);
    b.writeBigUInt64LE(BigInt(offset), at + 8);
    b.writeBigUInt64LE(BigInt(BASE + offset), at + 16);
    b.writeBigUInt64LE(BigInt(BASE + offset), at + 24);
    b.writeBigUInt64LE(BigInt(filesz), at + 32);
    b.writeBigUInt64LE(BigInt(filesz), at + 40);
    b.writeBigUInt64LE(0x1000n, at + 48);
  };
  ph(64, 1, 0, size); // PT_LOAD
  ph(64 + 56, 2, dynOff, entries.length * 16); // PT_DYNAMIC
  Buffer.from(strtab).copy(b, strOff);
  entries.forEach(([tag, val], i) => {
    b.writeBigInt64LE(BigInt(tag), dynOff + i * 16);
    b.writeBigUInt64LE(BigInt(val), dynOff + i * 16 + 8);
  });
  return b;
}

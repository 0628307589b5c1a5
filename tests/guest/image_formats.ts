/**
 * Cheap structural readers for the guest images scripts/guest/build.sh produces: ELF program
 * headers and notes, the bzImage setup header, newc cpio entries, the ext4 superblock. Enough
 * to check an image is what it claims to be without booting it.
 */

const text = new TextDecoder();

/** One ELF note: owner name, type, descriptor bytes. */
export interface ElfNote {
  name: string;
  type: number;
  desc: Uint8Array;
}

/** One ELF64 program header (the fields the checks use). */
export interface ElfSegment {
  type: number;
  offset: number;
  paddr: number;
  filesz: number;
}

export const PT_LOAD = 1;
export const PT_NOTE = 4;
/** Xen's note carrying the 32-bit PVH entry point, which direct-boot VMMs look for. */
export const XEN_ELFNOTE_PHYS32_ENTRY = 18;

/** Program headers of a little-endian ELF64 file; throws when it is not one. */
export function elfSegments(file: Uint8Array): ElfSegment[] {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  if (file.length < 64 || view.getUint32(0) !== 0x7f454c46) throw new Error("not an ELF file");
  if (file[4] !== 2 || file[5] !== 1) throw new Error("not a little-endian ELF64 file");
  const phoff = Number(view.getBigUint64(32, true));
  const phentsize = view.getUint16(54, true);
  const phnum = view.getUint16(56, true);
  if (phoff + phnum * phentsize > file.length) throw new Error("ELF program headers truncated");
  const segments: ElfSegment[] = [];
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    segments.push({
      type: view.getUint32(at, true),
      offset: Number(view.getBigUint64(at + 8, true)),
      paddr: Number(view.getBigUint64(at + 24, true)),
      filesz: Number(view.getBigUint64(at + 32, true)),
    });
  }
  return segments;
}

/** ELF machine number (62 is x86-64). */
export function elfMachine(file: Uint8Array): number {
  return new DataView(file.buffer, file.byteOffset).getUint16(18, true);
}

/** All notes of all PT_NOTE segments. */
export function elfNotes(file: Uint8Array): ElfNote[] {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const align4 = (n: number) => (n + 3) & ~3;
  const notes: ElfNote[] = [];
  for (const seg of elfSegments(file).filter((s) => s.type === PT_NOTE)) {
    let at = seg.offset;
    const end = seg.offset + seg.filesz;
    while (at + 12 <= end) {
      const namesz = view.getUint32(at, true);
      const descsz = view.getUint32(at + 4, true);
      const type = view.getUint32(at + 8, true);
      const nameAt = at + 12;
      const descAt = nameAt + align4(namesz);
      if (descAt + descsz > end) throw new Error(`ELF note at ${at} runs past its segment`);
      const name = text.decode(file.subarray(nameAt, nameAt + namesz)).replace(/\0+$/, "");
      notes.push({ name, type, desc: file.slice(descAt, descAt + descsz) });
      at = descAt + align4(descsz);
    }
  }
  return notes;
}

/** The fields of the x86 boot protocol's setup header that the checks use. */
export interface BzImageHeader {
  setupSects: number;
  bootFlag: number;
  version: number;
  loadFlags: number;
  payloadOffset: number;
  payloadLength: number;
}

/** Reads the setup header at 0x1f1; throws when the "HdrS" magic is missing. */
export function bzImageHeader(file: Uint8Array): BzImageHeader {
  if (file.length < 0x250) throw new Error("too short for a bzImage");
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  if (text.decode(file.subarray(0x202, 0x206)) !== "HdrS") throw new Error("no HdrS magic");
  return {
    setupSects: file[0x1f1],
    bootFlag: view.getUint16(0x1fe, true),
    version: view.getUint16(0x206, true),
    loadFlags: file[0x211],
    payloadOffset: view.getUint32(0x248, true),
    payloadLength: view.getUint32(0x24c, true),
  };
}

/** One newc cpio entry. */
export interface CpioEntry {
  name: string;
  mode: number;
  rdevMajor: number;
  rdevMinor: number;
  data: Uint8Array;
}

export const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
export const S_IFLNK = 0o120000;
export const S_IFCHR = 0o020000;

/** Entries of an uncompressed newc ("070701") archive, up to its TRAILER!!!. */
export function cpioEntries(archive: Uint8Array): CpioEntry[] {
  const entries: CpioEntry[] = [];
  const align4 = (n: number) => (n + 3) & ~3;
  let at = 0;
  for (;;) {
    if (at + 110 > archive.length) throw new Error("cpio archive ends without TRAILER!!!");
    const header = text.decode(archive.subarray(at, at + 110));
    if (!header.startsWith("070701")) throw new Error(`no newc magic at offset ${at}`);
    const field = (i: number) => parseInt(header.slice(6 + i * 8, 14 + i * 8), 16);
    const size = field(6);
    const namesize = field(11);
    const name = text.decode(archive.subarray(at + 110, at + 110 + namesize - 1));
    const dataAt = align4(at + 110 + namesize);
    if (name === "TRAILER!!!") return entries;
    if (dataAt + size > archive.length) throw new Error(`cpio entry ${name} is truncated`);
    entries.push({
      name,
      mode: field(1),
      rdevMajor: field(9),
      rdevMinor: field(10),
      data: archive.subarray(dataAt, dataAt + size),
    });
    at = align4(dataAt + size);
  }
}

/** The ext4 superblock fields the checks use (superblock at byte 1024). */
export interface Ext4Superblock {
  magic: number;
  blocksCount: number;
  blockSize: number;
  featureIncompat: number;
  label: string;
}

/** Feature flag of ext4 extents, which ext2/ext3 images lack. */
export const EXT4_FEATURE_INCOMPAT_EXTENTS = 0x40;

export function ext4Superblock(image: Uint8Array): Ext4Superblock {
  if (image.length < 2048) throw new Error("too short for an ext4 image");
  const sb = new DataView(image.buffer, image.byteOffset + 1024, 1024);
  return {
    magic: sb.getUint16(0x38, true),
    blocksCount: sb.getUint32(0x04, true),
    blockSize: 1024 << sb.getUint32(0x18, true),
    featureIncompat: sb.getUint32(0x60, true),
    label: text.decode(image.subarray(1024 + 0x78, 1024 + 0x88)).replace(/\0+$/, ""),
  };
}

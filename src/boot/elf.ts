/**
 * ELF64 vmlinux parsing for a PVH boot: the PT_LOAD segments (placed at their physical
 * addresses) and the XEN_ELFNOTE_PHYS32_ENTRY note (type 18, owner "Xen") that names the
 * 32-bit entry point.
 */
import { BootError, hex } from "./error.ts";

export const ELF_MAGIC = [0x7f, 0x45, 0x4c, 0x46];
const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;
const EM_X86_64 = 62;
const EHDR_SIZE = 64;
const PHDR_SIZE = 56;
const PT_LOAD = 1;
const PT_NOTE = 4;
export const XEN_ELFNOTE_PHYS32_ENTRY = 18;

export interface ElfSegment {
  /** Index in the program header table (for messages). */
  readonly index: number;
  readonly fileOffset: number;
  readonly paddr: number;
  readonly fileSize: number;
  readonly memSize: number;
}

export interface ElfKernel {
  readonly entry: number;
  readonly segments: readonly ElfSegment[];
  /** The PVH 32-bit entry point, or null when the image has no such note. */
  readonly pvhEntry: number | null;
}

export function looksLikeElf(image: Uint8Array): boolean {
  return image.length >= 4 && ELF_MAGIC.every((b, i) => image[i] === b);
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

/** Parses an ELF64 x86_64 executable; every malformation is a BootError naming the file. */
export function parseElfKernel(image: Uint8Array, name = "vmlinux"): ElfKernel {
  if (!looksLikeElf(image)) throw new BootError(`${name}: no ELF magic`);
  if (image.length < EHDR_SIZE) {
    throw new BootError(`${name}: truncated ELF header (${image.length} bytes)`);
  }
  if (image[4] !== ELFCLASS64) throw new BootError(`${name}: not a 64-bit (ELFCLASS64) kernel`);
  if (image[5] !== ELFDATA2LSB) throw new BootError(`${name}: not a little-endian ELF`);
  const v = new DataView(image.buffer, image.byteOffset, image.length);
  const u64 = (at: number, what: string): number => {
    const n = v.getBigUint64(at, true);
    if (n > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new BootError(`${name}: ${what} ${n.toString(16)} is out of range`);
    }
    return Number(n);
  };
  const machine = v.getUint16(18, true);
  if (machine !== EM_X86_64) {
    throw new BootError(`${name}: ELF machine ${machine} is not x86_64 (${EM_X86_64})`);
  }
  const phoff = u64(32, "e_phoff");
  const phentsize = v.getUint16(54, true);
  const phnum = v.getUint16(56, true);
  if (phnum === 0) throw new BootError(`${name}: ELF has no program headers`);
  if (phentsize < PHDR_SIZE) {
    throw new BootError(`${name}: ELF program header size ${phentsize} is below ${PHDR_SIZE}`);
  }
  if (phoff + phnum * phentsize > image.length) {
    throw new BootError(`${name}: truncated: program headers end past the file`);
  }

  const segments: ElfSegment[] = [];
  let pvhEntry: number | null = null;
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    const type = v.getUint32(ph, true);
    if (type !== PT_LOAD && type !== PT_NOTE) continue;
    const fileOffset = u64(ph + 8, `segment ${i} p_offset`);
    const paddr = u64(ph + 24, `segment ${i} p_paddr`);
    const fileSize = u64(ph + 32, `segment ${i} p_filesz`);
    const memSize = u64(ph + 40, `segment ${i} p_memsz`);
    if (fileOffset + fileSize > image.length) {
      throw new BootError(
        `${name}: truncated: segment ${i} needs file bytes up to ${hex(fileOffset + fileSize)}, ` +
          `the file has ${hex(image.length)}`,
      );
    }
    if (type === PT_LOAD) {
      if (fileSize > memSize) {
        throw new BootError(`${name}: segment ${i} has p_filesz larger than p_memsz`);
      }
      if (memSize > 0) segments.push({ index: i, fileOffset, paddr, fileSize, memSize });
    } else {
      pvhEntry ??= findPvhEntry(image.subarray(fileOffset, fileOffset + fileSize), name);
    }
  }
  if (segments.length === 0) throw new BootError(`${name}: ELF has no loadable segments`);
  return { entry: u64(24, "e_entry"), segments, pvhEntry };
}

/** Walks one PT_NOTE segment for the Xen PHYS32_ENTRY note. */
function findPvhEntry(notes: Uint8Array, name: string): number | null {
  const v = new DataView(notes.buffer, notes.byteOffset, notes.length);
  let at = 0;
  while (at + 12 <= notes.length) {
    const namesz = v.getUint32(at, true);
    const descsz = v.getUint32(at + 4, true);
    const type = v.getUint32(at + 8, true);
    const nameAt = at + 12;
    const descAt = nameAt + align4(namesz);
    const next = descAt + align4(descsz);
    if (next > notes.length) throw new BootError(`${name}: truncated ELF note`);
    const owner = new TextDecoder().decode(notes.subarray(nameAt, nameAt + namesz));
    if (owner.replace(/\0+$/, "") === "Xen" && type === XEN_ELFNOTE_PHYS32_ENTRY) {
      if (descsz !== 4 && descsz !== 8) {
        throw new BootError(`${name}: PVH entry note has a ${descsz}-byte value`);
      }
      const entry = descsz === 4 ? v.getUint32(descAt, true) : Number(v.getBigUint64(descAt, true));
      if (entry >= 2 ** 32) {
        throw new BootError(`${name}: PVH entry ${hex(entry)} is not a 32-bit address`);
      }
      return entry;
    }
    at = next;
  }
  return null;
}

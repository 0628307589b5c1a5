/**
 * Linux boot_params (the "zero page", Documentation/arch/x86/zero-page.rst) for the 64-bit entry
 * of a bzImage or a flat vmlinux.bin: the setup header, the command line, the initrd and the
 * e820 map.
 */
import type { GuestMemory } from "../memory/guest_memory.ts";
import { BootError } from "./error.ts";
import { BOOT_FLAG, HDR, HDRS_MAGIC, SETUP_HEADER_OFFSET } from "./bzimage.ts";
import type { E820Entry } from "./layout.ts";

export const ZERO_PAGE_SIZE = 0x1000;
export const BP_E820_ENTRIES = 0x1e8;
export const BP_E820_TABLE = 0x2d0;
export const E820_ENTRY_SIZE = 20;
export const E820_MAX_ENTRIES = 128;
/** type_of_loader 0xff: a boot loader without an assigned id. */
export const LOADER_TYPE_UNDEFINED = 0xff;
/** vid_mode 0xffff: "normal" text mode, no mode switch. */
export const VID_MODE_NORMAL = 0xffff;

export interface ZeroPageParams {
  /** The bzImage's setup header bytes (file offsets 0x1f1..end); absent for vmlinux.bin. */
  readonly setupHeader?: Uint8Array;
  readonly cmdlinePtr: number;
  /** Length of the command line without its NUL. */
  readonly cmdlineLength: number;
  readonly initrd: { gpa: number; size: number } | null;
  readonly e820: readonly E820Entry[];
}

/** Builds the 4 KiB boot_params. */
export function buildZeroPage(p: ZeroPageParams): Uint8Array {
  if (p.e820.length > E820_MAX_ENTRIES) {
    throw new BootError(`e820 table has ${p.e820.length} entries, boot_params holds 128`);
  }
  const page = new Uint8Array(ZERO_PAGE_SIZE);
  const v = new DataView(page.buffer);
  if (p.setupHeader) {
    page.set(p.setupHeader, SETUP_HEADER_OFFSET);
  } else {
    // A flat vmlinux.bin has no header of its own: write the minimum that marks it valid,
    // and cmdline_size as StratoVirt does.
    v.setUint16(HDR.bootFlag, BOOT_FLAG, true);
    v.setUint32(HDR.header, HDRS_MAGIC, true);
    v.setUint32(HDR.cmdlineSize, p.cmdlineLength, true);
  }
  v.setUint16(HDR.vidMode, VID_MODE_NORMAL, true);
  v.setUint8(HDR.typeOfLoader, LOADER_TYPE_UNDEFINED);
  v.setUint32(HDR.cmdLinePtr, p.cmdlinePtr, true);
  v.setUint32(HDR.ramdiskImage, p.initrd?.gpa ?? 0, true);
  v.setUint32(HDR.ramdiskSize, p.initrd?.size ?? 0, true);
  v.setUint8(BP_E820_ENTRIES, p.e820.length);
  p.e820.forEach((e, i) => {
    const at = BP_E820_TABLE + i * E820_ENTRY_SIZE;
    v.setBigUint64(at, BigInt(e.addr), true);
    v.setBigUint64(at + 8, BigInt(e.size), true);
    v.setUint32(at + 16, e.type, true);
  });
  return page;
}

export function writeZeroPage(mem: GuestMemory, gpa: number, p: ZeroPageParams): void {
  mem.write(gpa, buildZeroPage(p));
}

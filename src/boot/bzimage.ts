/**
 * The Linux x86 boot protocol setup header of a bzImage (Documentation/arch/x86/boot.rst):
 * parsed from file offset 0x1f1 and checked for everything a 64-bit direct boot depends on.
 */
import { BootError, hex } from "./error.ts";

export const SETUP_HEADER_OFFSET = 0x1f1;
/** "HdrS" at 0x202, read as a little-endian u32. */
export const HDRS_MAGIC = 0x5372_6448;
export const HDRS_OFFSET = 0x202;
export const BOOT_FLAG = 0xaa55;
/** End of the boot_params area the setup header may occupy (edd_mbr_sig_buffer starts here). */
export const SETUP_HEADER_LIMIT = 0x290;
/** The fields this loader reads end here (kernel_info_offset, protocol 2.15). */
const KNOWN_HEADER_END = 0x26c;

export const MIN_PROTOCOL = 0x206;
const PROTOCOL_WITH_INIT_SIZE = 0x20a;
const PROTOCOL_WITH_XLOADFLAGS = 0x20c;

export const LOADFLAG_LOADED_HIGH = 0x01;
export const XLF_KERNEL_64 = 0x01;
export const XLF_CAN_BE_LOADED_ABOVE_4G = 0x02;
/** The 64-bit entry point sits this far into the protected-mode kernel. */
export const STARTUP_64_OFFSET = 0x200;

/** Setup-header fields at their offsets within the bzImage file (= within boot_params). */
export const HDR = Object.freeze({
  setupSects: 0x1f1,
  syssize: 0x1f4,
  vidMode: 0x1fa,
  bootFlag: 0x1fe,
  jump: 0x200,
  header: 0x202,
  version: 0x206,
  typeOfLoader: 0x210,
  loadflags: 0x211,
  code32Start: 0x214,
  ramdiskImage: 0x218,
  ramdiskSize: 0x21c,
  cmdLinePtr: 0x228,
  initrdAddrMax: 0x22c,
  kernelAlignment: 0x230,
  relocatableKernel: 0x234,
  minAlignment: 0x235,
  xloadflags: 0x236,
  cmdlineSize: 0x238,
  prefAddress: 0x258,
  initSize: 0x260,
});

export interface SetupHeader {
  readonly setupSects: number;
  /** Bytes of real-mode setup code, including the boot sector: (setup_sects || 4) + 1 sectors. */
  readonly setupSize: number;
  /** Bytes of protected-mode kernel in the file (everything after the setup code). */
  readonly protectedModeSize: number;
  readonly syssize: number;
  readonly version: number;
  readonly loadflags: number;
  readonly code32Start: number;
  readonly initrdAddrMax: number;
  readonly kernelAlignment: number;
  readonly relocatable: boolean;
  readonly xloadflags: number;
  readonly cmdlineSize: number;
  readonly prefAddress: number;
  readonly initSize: number;
  /** Where the setup header ends in the file (0x202 + the byte at 0x201), capped at 0x290. */
  readonly headerEnd: number;
}

/** True when the image carries "HdrS" where a bzImage's setup header has it. */
export function looksLikeBzImage(image: Uint8Array): boolean {
  return image.length >= HDRS_OFFSET + 4 &&
    new DataView(image.buffer, image.byteOffset, image.length).getUint32(HDRS_OFFSET, true) ===
      HDRS_MAGIC;
}

function protocol(v: number): string {
  return `${v >> 8}.${(v & 0xff).toString().padStart(2, "0")}`;
}

/** Parses and validates the setup header; every problem is a BootError naming the file. */
export function parseSetupHeader(image: Uint8Array, name = "bzImage"): SetupHeader {
  if (image.length < KNOWN_HEADER_END) {
    throw new BootError(
      `${name}: truncated (${image.length} bytes), too short for a boot protocol setup header`,
    );
  }
  const v = new DataView(image.buffer, image.byteOffset, image.length);
  if (v.getUint32(HDR.header, true) !== HDRS_MAGIC) {
    throw new BootError(`${name}: no "HdrS" magic at ${hex(HDRS_OFFSET)}, not a bzImage`);
  }
  if (v.getUint16(HDR.bootFlag, true) !== BOOT_FLAG) {
    throw new BootError(`${name}: boot_flag at 0x1fe is not 0xaa55`);
  }
  const version = v.getUint16(HDR.version, true);
  if (version < MIN_PROTOCOL) {
    throw new BootError(
      `${name}: boot protocol ${protocol(version)} is too old (need ${protocol(MIN_PROTOCOL)}+)`,
    );
  }
  const loadflags = v.getUint8(HDR.loadflags);
  if ((loadflags & LOADFLAG_LOADED_HIGH) === 0) {
    throw new BootError(`${name}: loadflags lacks LOADED_HIGH: a zImage cannot be booted`);
  }
  // xloadflags exists from 2.12; older 64-bit kernels have the entry but cannot advertise it.
  const xloadflags = version >= PROTOCOL_WITH_XLOADFLAGS ? v.getUint16(HDR.xloadflags, true) : 0;
  if (version >= PROTOCOL_WITH_XLOADFLAGS && (xloadflags & XLF_KERNEL_64) === 0) {
    throw new BootError(`${name}: xloadflags lacks XLF_KERNEL_64: not a 64-bit kernel`);
  }
  const setupSects = v.getUint8(HDR.setupSects);
  const setupSize = ((setupSects === 0 ? 4 : setupSects) + 1) * 512;
  if (image.length <= setupSize) {
    throw new BootError(
      `${name}: truncated: ${image.length} bytes, no protected-mode kernel after ` +
        `${setupSize} bytes of setup code`,
    );
  }
  const syssize = v.getUint32(HDR.syssize, true);
  const protectedModeSize = image.length - setupSize;
  if (syssize * 16 > protectedModeSize) {
    throw new BootError(
      `${name}: truncated: header says ${syssize * 16} bytes of protected-mode kernel, ` +
        `the file has ${protectedModeSize}`,
    );
  }
  const code32Start = v.getUint32(HDR.code32Start, true);
  if (code32Start < 0x10_0000) {
    throw new BootError(`${name}: code32_start ${hex(code32Start)} is below 1 MiB`);
  }
  const relocatable = v.getUint8(HDR.relocatableKernel) !== 0;
  const kernelAlignment = v.getUint32(HDR.kernelAlignment, true);
  if (relocatable && (kernelAlignment === 0 || (kernelAlignment & (kernelAlignment - 1)) !== 0)) {
    throw new BootError(`${name}: kernel_alignment ${hex(kernelAlignment)} is not a power of two`);
  }
  const initrdAddrMax = v.getUint32(HDR.initrdAddrMax, true);
  if (initrdAddrMax < 0x10_0000) {
    throw new BootError(`${name}: initrd_addr_max ${hex(initrdAddrMax)} is below 1 MiB`);
  }
  // pref_address and init_size exist from 2.10; before that those bytes are setup code.
  const hasSizes = version >= PROTOCOL_WITH_INIT_SIZE;
  const prefAddress = hasSizes ? Number(v.getBigUint64(HDR.prefAddress, true)) : 0;
  if (!Number.isSafeInteger(prefAddress)) {
    throw new BootError(`${name}: pref_address is out of range`);
  }
  const headerEnd = Math.min(HDRS_OFFSET + v.getUint8(0x201), SETUP_HEADER_LIMIT);
  return {
    setupSects,
    setupSize,
    protectedModeSize,
    syssize,
    version,
    loadflags,
    code32Start,
    initrdAddrMax,
    kernelAlignment,
    relocatable,
    xloadflags,
    cmdlineSize: v.getUint32(HDR.cmdlineSize, true),
    prefAddress,
    initSize: hasSizes ? v.getUint32(HDR.initSize, true) : 0,
    headerEnd,
  };
}

/**
 * The range the kernel occupies once its decompressor has run: the decompressor moves to
 * max(align_up(load address, kernel_alignment), pref_address) when relocatable, to
 * pref_address when not, and needs init_size bytes there (protocols before 2.10 do not say;
 * their loaded size stands in).
 */
export function bzImageFootprint(hdr: SetupHeader): { start: number; end: number } {
  const load = hdr.code32Start;
  const loaded = load + hdr.protectedModeSize;
  const align = hdr.relocatable ? hdr.kernelAlignment : 1;
  const alignedLoad = Math.ceil(load / align) * align;
  const runAt = hdr.relocatable ? Math.max(alignedLoad, hdr.prefAddress) : hdr.prefAddress || load;
  const size = hdr.initSize || hdr.protectedModeSize;
  return { start: Math.min(load, runAt), end: Math.max(loaded, runAt + size) };
}

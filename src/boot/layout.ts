/**
 * The x86_64 guest physical map of a StratoVirt microvm: RAM from 0 up to the 32-bit hole at
 * 3 GiB, the rest above 4 GiB; the hole holds the virtio-mmio devices, the IOAPIC, the LAPIC and
 * KVM's identity-map/TSS pages. Below 1 MiB sit the fixed boot structures the loaders write.
 */
import { BootError, hex } from "./error.ts";

const MiB = 0x10_0000;

/** End of RAM below 4 GiB: the MMIO hole spans [3 GiB, 4 GiB). */
export const MEM_BELOW_4G_END = 0xC000_0000;
/** RAM beyond 3 GiB continues here. */
export const MEM_ABOVE_4G_START = 0x1_0000_0000;
/** First virtio-mmio device; each device takes MMIO_DEVICE_SIZE bytes after the previous one. */
export const MMIO_BASE = 0xF010_0000;
export const MMIO_DEVICE_SIZE = 0x200;
export const IOAPIC_BASE = 0xFEC0_0000;
export const IOAPIC_SIZE = 0x10_0000;
export const LAPIC_BASE = 0xFEE0_0000;
export const LAPIC_SIZE = 0x10_0000;
/** KVM_SET_IDENTITY_MAP_ADDR takes this page, KVM_SET_TSS_ADDR the three pages after it. */
export const IDENTITY_MAP_ADDR = 0xFEF0_C000;
export const TSS_ADDR = IDENTITY_MAP_ADDR + 0x1000;
export const IDENTITY_TSS_SIZE = 0x4000;

// Fixed low-memory addresses of the boot structures (StratoVirt's x86_64 boot_loader).
export const GDT_ADDR = 0x500;
export const IDT_ADDR = 0x520;
/** PVH hvm_start_info, its module list right after it, and its memory map. */
export const PVH_START_INFO_ADDR = 0x6000;
export const PVH_MODLIST_ADDR = 0x6040;
export const PVH_MEMMAP_ADDR = 0x7000;
/** Linux boot_params ("zero page"). */
export const ZERO_PAGE_ADDR = 0x7000;
/** Initial stack pointer (the loaders need none; it keeps early pushes inside RAM). */
export const BOOT_STACK_POINTER = 0x8ff0;
export const PML4_ADDR = 0x9000;
export const PDPT_ADDR = 0xa000;
export const PD_ADDR = 0xb000;
export const CMDLINE_ADDR = 0x2_0000;
/** Extended BIOS data area: the MP table lives here, reserved in e820. */
export const EBDA_START = 0x9_fc00;
export const VGA_RAM_START = 0xa_0000;
export const MB_BIOS_START = 0xf_0000;
/** First byte above the real-mode area: where high RAM in e820 starts. */
export const HIMEM_START = MiB;
/** StratoVirt's flat vmlinux.bin is loaded and entered here. */
export const VMLINUX_BIN_START = 0x100_0000;
/** The initrd ends at or below this address (StratoVirt's cap, below the usual 896 MiB lowmem). */
export const INITRD_ADDR_MAX = 0x37ff_ffff;

export const E820_RAM = 1;
export const E820_RESERVED = 2;

export interface E820Entry {
  readonly addr: number;
  readonly size: number;
  readonly type: number;
}

export interface RamRange {
  readonly gpa: number;
  readonly size: number;
}

export interface MemoryLayout {
  readonly ramSize: number;
  /** What the memory code allocates: [0, min(size, 3G)) and, past 3 GiB, the rest at 4 GiB. */
  readonly ramRegions: readonly RamRange[];
  /** First guest physical address after the last byte of RAM. */
  readonly memEnd: number;
  /** The e820 map handed to the guest, in StratoVirt's order. */
  readonly e820: readonly E820Entry[];
}

/** Smallest RAM the boot structures and a kernel at 1 MiB can live in. */
export const MIN_RAM_SIZE = 2 * MiB;

/**
 * The RAM regions and e820 table of a guest with `ramSize` bytes of RAM.
 * The e820 table matches StratoVirt's: low RAM up to the EBDA, the EBDA reserved (MP table),
 * a zero-length reserved entry at the BIOS area, and RAM from 1 MiB (split around the hole).
 */
export function x86MemoryLayout(ramSize: number): MemoryLayout {
  if (!Number.isSafeInteger(ramSize) || ramSize < MIN_RAM_SIZE) {
    throw new BootError(`memory size ${ramSize} is too small: x86 boot needs at least 2 MiB`);
  }
  if (ramSize % 0x1000 !== 0) {
    throw new BootError(`memory size ${hex(ramSize)} is not a multiple of 4 KiB`);
  }
  const ramRegions: RamRange[] = [{ gpa: 0, size: Math.min(ramSize, MEM_BELOW_4G_END) }];
  if (ramSize > MEM_BELOW_4G_END) {
    ramRegions.push({ gpa: MEM_ABOVE_4G_START, size: ramSize - MEM_BELOW_4G_END });
  }
  const last = ramRegions[ramRegions.length - 1];
  const memEnd = last.gpa + last.size;

  const e820: E820Entry[] = [
    { addr: 0, size: EBDA_START, type: E820_RAM },
    { addr: EBDA_START, size: VGA_RAM_START - EBDA_START, type: E820_RESERVED },
    // StratoVirt lists the BIOS area with size 0; Linux drops empty entries when it sanitizes.
    { addr: MB_BIOS_START, size: 0, type: E820_RESERVED },
  ];
  if (memEnd < MEM_ABOVE_4G_START) {
    e820.push({ addr: HIMEM_START, size: memEnd - HIMEM_START, type: E820_RAM });
  } else {
    e820.push({ addr: HIMEM_START, size: MEM_BELOW_4G_END - HIMEM_START, type: E820_RAM });
    e820.push({ addr: MEM_ABOVE_4G_START, size: memEnd - MEM_ABOVE_4G_START, type: E820_RAM });
  }
  return { ramSize, ramRegions, memEnd, e820 };
}

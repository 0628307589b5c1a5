/**
 * The PVH boot ABI's hvm_start_info (xen/include/public/arch-x86/hvm/start_info.h), version 1:
 * command line, module list (the initrd) and an e820-style memory map.
 */
import type { GuestMemory } from "../memory/guest_memory.ts";
import type { E820Entry } from "./layout.ts";

export const HVM_START_MAGIC = 0x336e_c578;
export const HVM_START_INFO_VERSION = 1;
export const HVM_START_INFO_SIZE = 56;
export const HVM_MODLIST_ENTRY_SIZE = 32;
export const HVM_MEMMAP_ENTRY_SIZE = 24;

export interface PvhStartInfoParams {
  readonly startInfoAddr: number;
  readonly modlistAddr: number;
  readonly memmapAddr: number;
  readonly cmdlinePtr: number;
  readonly initrd: { gpa: number; size: number } | null;
  readonly memmap: readonly E820Entry[];
}

/** Writes start_info, its module list and memory map; returns the areas written. */
export function writePvhStartInfo(
  mem: GuestMemory,
  p: PvhStartInfoParams,
): { name: string; gpa: number; size: number }[] {
  const info = new Uint8Array(HVM_START_INFO_SIZE);
  const iv = new DataView(info.buffer);
  iv.setUint32(0, HVM_START_MAGIC, true);
  iv.setUint32(4, HVM_START_INFO_VERSION, true);
  iv.setUint32(8, 0, true); // flags
  iv.setUint32(12, p.initrd ? 1 : 0, true); // nr_modules
  iv.setBigUint64(16, BigInt(p.initrd ? p.modlistAddr : 0), true);
  iv.setBigUint64(24, BigInt(p.cmdlinePtr), true);
  iv.setBigUint64(32, 0n, true); // rsdp_paddr: no ACPI
  iv.setBigUint64(40, BigInt(p.memmapAddr), true);
  iv.setUint32(48, p.memmap.length, true);
  mem.write(p.startInfoAddr, info);
  const areas = [{ name: "pvh-start-info", gpa: p.startInfoAddr, size: HVM_START_INFO_SIZE }];

  if (p.initrd) {
    const mod = new Uint8Array(HVM_MODLIST_ENTRY_SIZE);
    const mv = new DataView(mod.buffer);
    mv.setBigUint64(0, BigInt(p.initrd.gpa), true);
    mv.setBigUint64(8, BigInt(p.initrd.size), true);
    mem.write(p.modlistAddr, mod); // cmdline_paddr and reserved stay 0
    areas.push({ name: "pvh-modlist", gpa: p.modlistAddr, size: HVM_MODLIST_ENTRY_SIZE });
  }

  const map = new Uint8Array(p.memmap.length * HVM_MEMMAP_ENTRY_SIZE);
  const xv = new DataView(map.buffer);
  p.memmap.forEach((e, i) => {
    const at = i * HVM_MEMMAP_ENTRY_SIZE;
    xv.setBigUint64(at, BigInt(e.addr), true);
    xv.setBigUint64(at + 8, BigInt(e.size), true);
    xv.setUint32(at + 16, e.type, true);
  });
  mem.write(p.memmapAddr, map);
  areas.push({ name: "pvh-memmap", gpa: p.memmapAddr, size: map.length });
  return areas;
}

/**
 * Identity page tables for the 64-bit entry: one PML4 entry, one PDPT entry and 512 2 MiB pages
 * mapping virtual = physical over the first 1 GiB (StratoVirt's layout). The kernel, zero page,
 * command line and initrd (capped below INITRD_ADDR_MAX) all lie inside that gigabyte.
 */
import type { GuestMemory } from "../memory/guest_memory.ts";
import { PD_ADDR, PDPT_ADDR, PML4_ADDR } from "./layout.ts";

const PRESENT_WRITABLE = 0x3n;
const LARGE_PAGE = 0x80n;
export const IDENTITY_MAPPED_BYTES = 1 << 30;

/** Writes the tables; returns the CR3 value (the PML4 address). */
export function writeIdentityPageTables(mem: GuestMemory): number {
  mem.fill(PML4_ADDR, 0x3000);
  mem.writeU64(PML4_ADDR, BigInt(PDPT_ADDR) | PRESENT_WRITABLE);
  mem.writeU64(PDPT_ADDR, BigInt(PD_ADDR) | PRESENT_WRITABLE);
  for (let i = 0n; i < 512n; i++) {
    mem.writeU64(PD_ADDR + Number(i) * 8, (i << 21n) | LARGE_PAGE | PRESENT_WRITABLE);
  }
  return PML4_ADDR;
}

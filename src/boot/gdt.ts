/**
 * GDT descriptors for the two entry modes and their kvm_segment equivalents. The long-mode table
 * is StratoVirt's (NULL, NULL, code 0x10, data 0x18 — the selectors Linux's boot protocol
 * expects); the PVH table is flat 32-bit code 0x08, data 0x10 and a TSS 0x18.
 */
import type { DescriptorTable, KvmSegment } from "./boot_state.ts";
import { GDT_ADDR, IDT_ADDR } from "./layout.ts";
import type { GuestMemory } from "../memory/guest_memory.ts";

/** Packs a descriptor the way Linux's GDT_ENTRY(flags, base, limit) macro does. */
export function gdtEntry(flags: number, base: number, limit: number): bigint {
  const b = BigInt(base >>> 0);
  const lim = BigInt(limit >>> 0);
  const f = BigInt(flags);
  return ((b & 0xff00_0000n) << 32n) | ((f & 0xf0ffn) << 40n) | ((lim & 0xf_0000n) << 32n) |
    ((b & 0x00ff_ffffn) << 16n) | (lim & 0xffffn);
}

/** The segment register a descriptor loads; the limit is scaled to bytes when g is set. */
export function segmentFromGdtEntry(entry: bigint, selector: number): KvmSegment {
  const base = Number(((entry >> 16n) & 0xff_ffffn) | ((entry >> 32n) & 0xff00_0000n));
  const rawLimit = Number(((entry >> 32n) & 0xf_0000n) | (entry & 0xffffn));
  const flags = Number((entry >> 40n) & 0xf0ffn);
  const g = (flags >> 15) & 1;
  return {
    base,
    limit: g ? rawLimit * 0x1000 + 0xfff : rawLimit,
    selector,
    type: flags & 0xf,
    present: (flags >> 7) & 1,
    dpl: (flags >> 5) & 3,
    db: (flags >> 14) & 1,
    s: (flags >> 4) & 1,
    l: (flags >> 13) & 1,
    g,
    avl: (flags >> 12) & 1,
    unusable: 0,
  };
}

export const LONG_MODE_CODE_SELECTOR = 0x10;
export const LONG_MODE_DATA_SELECTOR = 0x18;
export const PVH_CODE_SELECTOR = 0x08;
export const PVH_DATA_SELECTOR = 0x10;
export const PVH_TSS_SELECTOR = 0x18;

export interface BootGdt {
  readonly entries: readonly bigint[];
  readonly code: KvmSegment;
  readonly data: KvmSegment;
  readonly tss: KvmSegment | null;
  readonly gdt: DescriptorTable;
  readonly idt: DescriptorTable;
}

function build(entries: bigint[], code: number, data: number, tss: number | null): BootGdt {
  return {
    entries,
    code: segmentFromGdtEntry(entries[code >> 3], code),
    data: segmentFromGdtEntry(entries[data >> 3], data),
    tss: tss === null ? null : segmentFromGdtEntry(entries[tss >> 3], tss),
    gdt: { base: GDT_ADDR, limit: entries.length * 8 - 1 },
    // An empty IDT (one zero descriptor): the kernel installs its own before enabling interrupts.
    idt: { base: IDT_ADDR, limit: 7 },
  };
}

/** 64-bit code (L=1) and flat data, StratoVirt's boot GDT. */
export function longModeGdt(): BootGdt {
  return build(
    [0n, 0n, gdtEntry(0xa09b, 0, 0xfffff), gdtEntry(0xc093, 0, 0xfffff)],
    LONG_MODE_CODE_SELECTOR,
    LONG_MODE_DATA_SELECTOR,
    null,
  );
}

/** Flat 32-bit code and data plus a 32-bit busy TSS, as the PVH boot ABI asks. */
export function pvhGdt(): BootGdt {
  return build(
    [0n, gdtEntry(0xc09b, 0, 0xfffff), gdtEntry(0xc093, 0, 0xfffff), gdtEntry(0x008b, 0, 0x67)],
    PVH_CODE_SELECTOR,
    PVH_DATA_SELECTOR,
    PVH_TSS_SELECTOR,
  );
}

/** Writes the descriptors at GDT_ADDR and a zero IDT descriptor at IDT_ADDR. */
export function writeGdt(mem: GuestMemory, table: BootGdt): void {
  table.entries.forEach((e, i) => mem.writeU64(GDT_ADDR + i * 8, e));
  mem.writeU64(IDT_ADDR, 0n);
}

/**
 * The Intel MultiProcessor Specification 1.4 table Linux reads to find the vCPUs, the ISA bus
 * and the IOAPIC when ACPI is absent: an MP floating pointer and, right after it, the
 * configuration table. StratoVirt writes it at the start of the EBDA (0x9fc00), an area e820
 * marks reserved and one Linux scans for "_MP_".
 */
import type { GuestMemory } from "../memory/guest_memory.ts";
import { BootError, hex } from "./error.ts";
import { EBDA_START, IOAPIC_BASE, LAPIC_BASE } from "./layout.ts";

/** APIC ids are 8 bits and 0xff is broadcast; one more id goes to the IOAPIC. */
export const MPTABLE_MAX_CPUS = 254;
const ISA_IRQS = 16;
const SPEC_REV_1_4 = 4;
const APIC_VERSION = 0x14;

const FLOATING_POINTER_SIZE = 16;
const CONFIG_HEADER_SIZE = 44;
const PROCESSOR_ENTRY_SIZE = 20;
const SMALL_ENTRY_SIZE = 8;

const ENTRY_PROCESSOR = 0;
const ENTRY_BUS = 1;
const ENTRY_IOAPIC = 2;
const ENTRY_IO_INTERRUPT = 3;
const ENTRY_LOCAL_INTERRUPT = 4;

const CPU_ENABLED = 0x1;
const CPU_BOOTSTRAP = 0x2;
const IOAPIC_ENABLED = 0x1;
export const INTERRUPT_TYPE_INT = 0;
export const INTERRUPT_TYPE_NMI = 1;
export const INTERRUPT_TYPE_EXTINT = 3;
const ALL_LOCAL_APICS = 0xff;
/** Family 6 signature; feature flags FPU (bit 0) and APIC (bit 9). */
const CPU_SIGNATURE = 0x600;
const CPU_FEATURES = 0x201;

export interface MpTableOptions {
  readonly gpa?: number;
  readonly ioapicAddr?: number;
  readonly lapicAddr?: number;
}

/** Bytes the floating pointer plus configuration table take for `cpus` processors. */
export function mpTableSize(cpus: number): number {
  const entries = cpus * PROCESSOR_ENTRY_SIZE + SMALL_ENTRY_SIZE * (1 + 1 + ISA_IRQS + 2);
  return FLOATING_POINTER_SIZE + CONFIG_HEADER_SIZE + entries;
}

/** The IOAPIC's id: the first one after the vCPUs' APIC ids 0..cpus-1. */
export function ioapicId(cpus: number): number {
  return cpus + 1;
}

function checksum(bytes: Uint8Array): number {
  let sum = 0;
  for (const b of bytes) sum = (sum + b) & 0xff;
  return (0x100 - sum) & 0xff;
}

function ascii(dst: Uint8Array, at: number, text: string): void {
  for (let i = 0; i < text.length; i++) dst[at + i] = text.charCodeAt(i);
}

/** Builds the table's bytes as they sit at `gpa`. */
export function buildMpTable(cpus: number, options: MpTableOptions = {}): Uint8Array {
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > MPTABLE_MAX_CPUS) {
    throw new BootError(`MP table: ${cpus} vCPUs is out of range 1..${MPTABLE_MAX_CPUS}`);
  }
  const gpa = options.gpa ?? EBDA_START;
  const ioapicAddr = options.ioapicAddr ?? IOAPIC_BASE;
  const lapicAddr = options.lapicAddr ?? LAPIC_BASE;
  const bytes = new Uint8Array(mpTableSize(cpus));
  const view = new DataView(bytes.buffer);
  const ioapic = ioapicId(cpus);

  const header = FLOATING_POINTER_SIZE;
  let at = header + CONFIG_HEADER_SIZE;
  let count = 0;
  const small = (type: number, b: number[]) => {
    bytes[at] = type;
    bytes.set(b, at + 1);
    at += SMALL_ENTRY_SIZE;
    count++;
  };

  for (let id = 0; id < cpus; id++) {
    bytes[at] = ENTRY_PROCESSOR;
    bytes[at + 1] = id;
    bytes[at + 2] = APIC_VERSION;
    bytes[at + 3] = CPU_ENABLED | (id === 0 ? CPU_BOOTSTRAP : 0);
    view.setUint32(at + 4, CPU_SIGNATURE, true);
    view.setUint32(at + 8, CPU_FEATURES, true);
    at += PROCESSOR_ENTRY_SIZE;
    count++;
  }
  const busId = 0;
  small(ENTRY_BUS, [busId, ..."ISA".split("").map((c) => c.charCodeAt(0)), 0, 0, 0]);
  small(ENTRY_IOAPIC, [ioapic, APIC_VERSION, IOAPIC_ENABLED, ...u32le(ioapicAddr)]);
  // Flags 0: polarity and trigger conform to the ISA bus (active high, edge).
  for (let irq = 0; irq < ISA_IRQS; irq++) {
    small(ENTRY_IO_INTERRUPT, [INTERRUPT_TYPE_INT, 0, 0, busId, irq, ioapic, irq]);
  }
  // The legacy PIC's output reaches the BSP's LINT0; NMI goes to LINT1 of every LAPIC.
  small(ENTRY_LOCAL_INTERRUPT, [INTERRUPT_TYPE_EXTINT, 0, 0, busId, 0, 0, 0]);
  small(ENTRY_LOCAL_INTERRUPT, [INTERRUPT_TYPE_NMI, 0, 0, busId, 0, ALL_LOCAL_APICS, 1]);

  ascii(bytes, header, "PCMP");
  view.setUint16(header + 4, at - header, true);
  bytes[header + 6] = SPEC_REV_1_4;
  ascii(bytes, header + 8, "STRATO");
  ascii(bytes, header + 16, "1.0");
  view.setUint16(header + 34, count, true);
  view.setUint32(header + 36, lapicAddr, true);
  bytes[header + 7] = checksum(bytes.subarray(header, at));

  ascii(bytes, 0, "_MP_");
  view.setUint32(4, gpa + header, true);
  bytes[8] = 1; // length in 16-byte units
  bytes[9] = SPEC_REV_1_4;
  bytes[10] = checksum(bytes.subarray(0, FLOATING_POINTER_SIZE));
  return bytes;
}

function u32le(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
}

/** Writes the MP table for `cpus` vCPUs into guest RAM; returns where it went. */
export function writeMpTable(
  mem: GuestMemory,
  cpus: number,
  options: MpTableOptions = {},
): { gpa: number; size: number } {
  const gpa = options.gpa ?? EBDA_START;
  const bytes = buildMpTable(cpus, { ...options, gpa });
  if (!mem.contains(gpa, bytes.length)) {
    throw new BootError(`MP table at ${hex(gpa)} (${bytes.length} bytes) is outside guest RAM`);
  }
  mem.write(gpa, bytes);
  return { gpa, size: bytes.length };
}

/**
 * Puts a freshly created vCPU into its starting state: CPUID for its place in the topology, the
 * boot MSRs, the LAPIC's LINT0/LINT1 wiring, and — for the boot vCPU only — the entry registers,
 * segments and FPU the kernel loader chose. Application processors keep KVM's reset state and wait
 * in KVM_MP_STATE_UNINITIALIZED for the INIT/SIPI the guest's BSP sends through the in-kernel LAPIC.
 */
import { flexibleView } from "../../ffi/struct.ts";
import {
  KVM_CPUID2,
  KVM_CPUID_ENTRY2,
  KVM_FLAGS,
  type KvmCpuid,
  type KvmSregs,
  type Vcpu,
} from "../../ffi/kvm.ts";
import type { BootState, KvmSegment } from "../boot/boot_state.ts";
import { buildCpuid, type CpuidEntry } from "./cpuid.ts";
import type { Topology } from "./topology.ts";

/** KVM's supported CPUID entries as plain objects. */
export function cpuidEntries(table: KvmCpuid): CpuidEntry[] {
  const n = table.header.nent;
  return table.entries.slice(0, n).map((e) => ({
    function: e.function,
    index: e.index,
    flags: e.flags,
    eax: e.eax,
    ebx: e.ebx,
    ecx: e.ecx,
    edx: e.edx,
  }));
}

/** A kvm_cpuid2 holding `entries`, for KVM_SET_CPUID2. */
export function cpuidTable(entries: readonly CpuidEntry[]): KvmCpuid {
  const t = flexibleView(KVM_CPUID2, "entries", KVM_CPUID_ENTRY2, entries.length);
  t.header.nent = entries.length;
  entries.forEach((e, i) => {
    const d = t.entries[i];
    d.function = e.function;
    d.index = e.index;
    d.flags = e.flags;
    d.eax = e.eax >>> 0;
    d.ebx = e.ebx >>> 0;
    d.ecx = e.ecx >>> 0;
    d.edx = e.edx >>> 0;
  });
  return t;
}

// LAPIC register offsets and LVT delivery modes (SDM vol. 3, 10.5.1).
export const APIC_LVT0 = 0x350;
export const APIC_LVT1 = 0x360;
const APIC_MODE_NMI = 0x4;
const APIC_MODE_EXTINT = 0x7;
const DELIVERY_MODE_MASK = 0x700;

function withDeliveryMode(reg: number, mode: number): number {
  return ((reg & ~DELIVERY_MODE_MASK) | (mode << 8)) >>> 0;
}

/** LINT0 = ExtINT (the PIC's output), LINT1 = NMI: what a PC wires and Linux expects. */
export function setupLapic(vcpu: Vcpu): void {
  const lapic = vcpu.getLapic();
  const dv = new DataView(lapic.bytes.buffer, lapic.bytes.byteOffset, lapic.bytes.byteLength);
  dv.setUint32(APIC_LVT0, withDeliveryMode(dv.getUint32(APIC_LVT0, true), APIC_MODE_EXTINT), true);
  dv.setUint32(APIC_LVT1, withDeliveryMode(dv.getUint32(APIC_LVT1, true), APIC_MODE_NMI), true);
  vcpu.setLapic(lapic);
}

function setSegment(dst: KvmSregs["cs"], s: KvmSegment): void {
  dst.base = BigInt(s.base);
  dst.limit = s.limit >>> 0;
  dst.selector = s.selector;
  dst.type = s.type;
  dst.present = s.present;
  dst.dpl = s.dpl;
  dst.db = s.db;
  dst.s = s.s;
  dst.l = s.l;
  dst.g = s.g;
  dst.avl = s.avl;
  dst.unusable = s.unusable;
}

/** The boot vCPU's entry state: registers, segments, control registers, FPU. */
export function applyBootState(vcpu: Vcpu, boot: BootState): void {
  const sregs = vcpu.getSregs();
  const b = boot.sregs;
  setSegment(sregs.cs, b.cs);
  setSegment(sregs.ds, b.ds);
  setSegment(sregs.es, b.es);
  setSegment(sregs.fs, b.fs);
  setSegment(sregs.gs, b.gs);
  setSegment(sregs.ss, b.ss);
  if (b.tr) setSegment(sregs.tr, b.tr);
  sregs.gdt.base = BigInt(b.gdt.base);
  sregs.gdt.limit = b.gdt.limit;
  sregs.idt.base = BigInt(b.idt.base);
  sregs.idt.limit = b.idt.limit;
  sregs.cr0 = BigInt(b.cr0);
  sregs.cr3 = BigInt(b.cr3);
  sregs.cr4 = BigInt(b.cr4);
  sregs.efer = BigInt(b.efer);
  vcpu.setSregs(sregs);

  const regs = vcpu.getRegs();
  regs.rip = BigInt(boot.regs.rip);
  regs.rsp = BigInt(boot.regs.rsp);
  regs.rbp = BigInt(boot.regs.rbp);
  regs.rsi = BigInt(boot.regs.rsi);
  regs.rbx = BigInt(boot.regs.rbx);
  regs.rflags = BigInt(boot.regs.rflags);
  vcpu.setRegs(regs);

  const fpu = vcpu.getFpu();
  fpu.fcw = boot.fpu.fcw;
  fpu.mxcsr = boot.fpu.mxcsr;
  vcpu.setFpu(fpu);
}

export interface VcpuSetup {
  /** KVM_GET_SUPPORTED_CPUID's entries. */
  readonly supportedCpuid: readonly CpuidEntry[];
  readonly topology: Topology;
  readonly pvm: boolean;
  /** The loader's result: its MSRs go to every vCPU, its entry state to the boot vCPU. */
  readonly boot: BootState;
}

/** Configures vCPU `vcpu.id` (id 0 is the boot vCPU). */
export function setupVcpu(vcpu: Vcpu, s: VcpuSetup): void {
  const cpuid = buildCpuid(s.supportedCpuid, { topology: s.topology, cpu: vcpu.id, pvm: s.pvm });
  vcpu.setCpuid2(cpuidTable(cpuid));
  vcpu.setMsrs(s.boot.msrs.map((m) => ({ index: m.index, data: BigInt(m.value) })));
  setupLapic(vcpu);
  if (vcpu.id === 0) {
    applyBootState(vcpu, s.boot);
    vcpu.setMpState(KVM_FLAGS.KVM_MP_STATE_RUNNABLE);
  } else {
    // With the in-kernel LAPIC an AP must wait for INIT/SIPI, not start at the reset vector.
    vcpu.setMpState(KVM_FLAGS.KVM_MP_STATE_UNINITIALIZED);
  }
}

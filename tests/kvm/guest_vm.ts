/**
 * A minimal VM for the KVM tests and the exit-latency benchmark: one RAM slot at guest physical 0,
 * one vCPU, a tiny guest binary (tests/guests/, built into helper/zig-out/guests/) loaded at
 * 0x1000, entered in 16-bit real mode or directly in 64-bit long mode.
 */
import { type Requirement } from "../lib/skip.ts";
import { helperAvailable } from "../../ffi/helper.ts";
import { hostBytes, mapAnonymousRam, unmapRam } from "../../ffi/guest_ram.ts";
import { Kvm, type KvmSregs, Vcpu, Vm } from "../../ffi/kvm.ts";

/** Where the guest code is loaded and where the vCPU starts. */
export const GUEST_ENTRY = 0x1000;
// 512 KiB: small enough that real-mode addresses above it (0xd0000) are MMIO.
const RAM_SIZE = 512 * 1024;

const GUEST_DIR = Deno.env.get("STRATOVIRT_TEST_GUESTS") ??
  new URL("../../helper/zig-out/guests/", import.meta.url).pathname;

export function guestPath(name: string): string {
  return `${GUEST_DIR.replace(/\/$/, "")}/${name}.bin`;
}

/** The helper and the named guest binaries are built. */
export function built(...guests: string[]): Requirement {
  return () => {
    const noHelper = helperAvailable();
    if (noHelper) return noHelper;
    for (const g of guests) {
      try {
        Deno.statSync(guestPath(g));
      } catch {
        return `test guest ${g} is not built (scripts/build-helper.sh)`;
      }
    }
    return null;
  };
}

export type CpuMode = "real" | "long";

export interface GuestVmOptions {
  /** Create the in-kernel irqchip (before the vCPU, as KVM requires). */
  readonly irqchip?: boolean;
}

export class GuestVm {
  readonly kvm: Kvm;
  readonly vm: Vm;
  readonly vcpu: Vcpu;
  readonly ramAddress: bigint;
  readonly ram: Uint8Array<ArrayBuffer>;

  constructor(guest: string, mode: CpuMode, options: GuestVmOptions = {}) {
    this.kvm = Kvm.open();
    this.vm = this.kvm.createVm();
    // Below 4 GiB and out of the way, where QEMU puts them.
    this.vm.setTssAddr(0xfffbd000);
    this.vm.setIdentityMapAddr(0xfffbc000);
    this.ramAddress = mapAnonymousRam(RAM_SIZE);
    this.ram = hostBytes(this.ramAddress, RAM_SIZE);
    this.vm.setUserMemoryRegion({
      slot: 0,
      guestPhysAddr: 0,
      memorySize: RAM_SIZE,
      userspaceAddr: this.ramAddress,
    });
    this.ram.set(Deno.readFileSync(guestPath(guest)), GUEST_ENTRY);
    if (options.irqchip) this.vm.createIrqchip();
    this.vcpu = this.vm.createVcpu(0);
    if (mode === "real") this.#enterRealMode();
    else this.#enterLongMode();
  }

  #enterRealMode(): void {
    const sregs = this.vcpu.getSregs();
    sregs.cs.base = 0n;
    sregs.cs.selector = 0;
    this.vcpu.setSregs(sregs);
    const regs = this.vcpu.getRegs();
    regs.rip = BigInt(GUEST_ENTRY);
    regs.rflags = 2n;
    this.vcpu.setRegs(regs);
  }

  #enterLongMode(): void {
    const dv = new DataView(this.ram.buffer);
    // GDT at 0x500: null, 64-bit code (0x08), data (0x10), TSS (0x18).
    const gdt = [0n, 0x00af9b000000ffffn, 0x00cf93000000ffffn, 0x008f8b000000ffffn];
    gdt.forEach((d, i) => dv.setBigUint64(0x500 + 8 * i, d, true));
    // Identity map of the first 1 GiB in 2 MiB pages: PML4 0x9000 -> PDPT 0xa000 -> PD 0xb000.
    dv.setBigUint64(0x9000, 0xa000n | 3n, true);
    dv.setBigUint64(0xa000, 0xb000n | 3n, true);
    for (let i = 0; i < 512; i++) dv.setBigUint64(0xb000 + 8 * i, (BigInt(i) << 21n) | 0x83n, true);

    const sregs = this.vcpu.getSregs();
    setSegment(sregs.cs, 0x08, 11, 0, 1);
    for (const seg of [sregs.ds, sregs.es, sregs.fs, sregs.gs, sregs.ss]) {
      setSegment(seg, 0x10, 3, 1, 0);
    }
    setSegment(sregs.tr, 0x18, 11, 0, 0);
    sregs.tr.s = 0;
    sregs.gdt.base = 0x500n;
    sregs.gdt.limit = 8 * gdt.length - 1;
    sregs.cr3 = 0x9000n;
    sregs.cr4 = 1n << 5n; // PAE
    sregs.cr0 = 0x80000001n | (1n << 4n); // PG | PE | ET
    sregs.efer = 0x500n; // LME | LMA
    this.vcpu.setSregs(sregs);
    const regs = this.vcpu.getRegs();
    regs.rip = BigInt(GUEST_ENTRY);
    regs.rsp = 0x8000n;
    regs.rflags = 2n;
    this.vcpu.setRegs(regs);
  }

  close(): void {
    this.vcpu.close();
    this.vm.close();
    this.kvm.close();
    unmapRam(this.ramAddress, RAM_SIZE);
  }
}

function setSegment(
  seg: KvmSregs["cs"],
  selector: number,
  type: number,
  db: number,
  l: number,
): void {
  seg.base = 0n;
  seg.limit = 0xffffffff;
  seg.selector = selector;
  seg.type = type;
  seg.present = 1;
  seg.dpl = 0;
  seg.db = db;
  seg.s = 1;
  seg.l = l;
  seg.g = 1;
}

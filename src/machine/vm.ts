/**
 * The KVM objects of an x86 VM, in the order KVM needs them: the VM fd, the identity-map and TSS
 * pages (in the MMIO hole), the in-kernel irqchip (PIC + IOAPIC + LAPICs) and PIT — both before
 * any vCPU exists — and guest RAM registered as memslots.
 */
import { Kvm, KVM_CAP, KVM_FLAGS, type Vcpu, type Vm } from "../../ffi/kvm.ts";
import { IDENTITY_MAP_ADDR, TSS_ADDR, x86MemoryLayout } from "../boot/layout.ts";
import { guestMemoryOf, GuestRam, type RamBacking } from "../memory/guest_ram.ts";
import type { GuestMemory } from "../memory/guest_memory.ts";

export class KvmVmError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KvmVmError";
  }
}

/** Whether /dev/kvm comes from kvm_pvm (software virtualization: see ARCHITECTURE.md). */
export function hostIsPvm(): boolean {
  try {
    return Deno.statSync("/sys/module/kvm_pvm").isDirectory;
  } catch {
    return false;
  }
}

export interface X86Vm {
  readonly kvm: Kvm;
  readonly vm: Vm;
  readonly ram: GuestRam;
  /** The main thread's view of guest RAM (kept for the VM's life). */
  readonly memory: GuestMemory;
  readonly vcpus: readonly Vcpu[];
}

export interface X86VmOptions {
  readonly memSize: number;
  readonly backing?: RamBacking;
  readonly cpus: number;
  readonly kvmPath?: string;
}

/** Creates the VM, its irqchip, PIT, RAM and vCPUs (vCPUs still unconfigured). */
export function createX86Vm(o: X86VmOptions): X86Vm {
  let kvm: Kvm;
  try {
    kvm = Kvm.open(o.kvmPath ?? "/dev/kvm");
  } catch (e) {
    throw new KvmVmError(`cannot open ${o.kvmPath ?? "/dev/kvm"}: ${(e as Error).message}`);
  }
  const maxVcpus = kvm.checkExtension(KVM_CAP.MAX_VCPUS) || kvm.checkExtension(KVM_CAP.NR_VCPUS);
  if (maxVcpus > 0 && o.cpus > maxVcpus) {
    throw new KvmVmError(`KVM supports at most ${maxVcpus} vCPUs, ${o.cpus} requested`);
  }
  for (const [cap, name] of [[KVM_CAP.IRQCHIP, "IRQCHIP"], [KVM_CAP.PIT2, "PIT2"]] as const) {
    if (kvm.checkExtension(cap) === 0) {
      throw new KvmVmError(`KVM lacks KVM_CAP_${name}, which the microvm needs`);
    }
  }
  const vm = kvm.createVm();
  vm.setIdentityMapAddr(IDENTITY_MAP_ADDR);
  vm.setTssAddr(TSS_ADDR);
  vm.createIrqchip();
  // Port 0x61 (speaker / PIT channel 2 gate) is emulated by KVM instead of exiting to us.
  vm.createPit2(KVM_FLAGS.KVM_PIT_SPEAKER_DUMMY);

  const layout = x86MemoryLayout(o.memSize);
  const ram = GuestRam.allocate(layout.ramRegions, o.backing);
  ram.registerWith(vm);
  const memory = guestMemoryOf(ram.regions);
  const vcpus = Array.from({ length: o.cpus }, (_, id) => vm.createVcpu(id));
  return { kvm, vm, ram, memory, vcpus };
}

/**
 * vCPU setup against real KVM: the boot vCPU gets the loader's entry state and is runnable, APs
 * wait for INIT/SIPI, every LAPIC has LINT0 = ExtINT and LINT1 = NMI, CPUID carries each vCPU's
 * APIC id, and guest RAM follows the x86 layout (memslots below the hole and above 4 GiB).
 */
import { assertEquals } from "../lib/assert.ts";
import { kvm, testWhen } from "../lib/skip.ts";
import { KVM_FLAGS } from "../../ffi/kvm.ts";
import { loadLinux } from "../../src/boot/loader.ts";
import { APIC_LVT0, APIC_LVT1, cpuidEntries, setupVcpu } from "../../src/cpu/vcpu_setup.ts";
import { createX86Vm, type X86Vm } from "../../src/machine/vm.ts";
import { CODE_BASE, tinyKernel } from "./tiny_guests.ts";
import { helperBuilt } from "./run_vm.ts";

function close(x: X86Vm): void {
  for (const v of x.vcpus) v.close();
  x.vm.close();
  x.kvm.close();
  x.ram.unmap();
}

testWhen([kvm, helperBuilt], "vcpu setup: BSP entry state, APs waiting, LAPIC LINT wiring", () => {
  const x = createX86Vm({ memSize: 64 << 20, cpus: 2 });
  try {
    const boot = loadLinux(x.memory, {
      kernel: tinyKernel("pvh", "x", "reset"),
      cmdline: "console=ttyS0",
      cpus: 2,
    });
    const supportedCpuid = cpuidEntries(x.kvm.getSupportedCpuid());
    const topology = { sockets: 1, dies: 1, clusters: 1, cores: 2, threads: 1 };
    for (const v of x.vcpus) setupVcpu(v, { supportedCpuid, topology, pvm: true, boot });

    const [bsp, ap] = x.vcpus;
    assertEquals(bsp.getMpState(), KVM_FLAGS.KVM_MP_STATE_RUNNABLE);
    assertEquals(ap.getMpState(), KVM_FLAGS.KVM_MP_STATE_UNINITIALIZED);
    const regs = bsp.getRegs();
    assertEquals({ rip: regs.rip, rbx: regs.rbx }, {
      rip: BigInt(CODE_BASE),
      rbx: BigInt(boot.regs.rbx),
    });
    const sregs = bsp.getSregs();
    assertEquals({ cr0: sregs.cr0 & 1n, efer: sregs.efer, csLimit: sregs.cs.limit }, {
      cr0: 1n,
      efer: 0n,
      csLimit: 0xffffffff,
    });
    for (const v of x.vcpus) {
      const l = v.getLapic();
      const dv = new DataView(l.bytes.buffer, l.bytes.byteOffset);
      assertEquals((dv.getUint32(APIC_LVT0, true) >> 8) & 7, 7, `vCPU ${v.id} LINT0 ExtINT`);
      assertEquals((dv.getUint32(APIC_LVT1, true) >> 8) & 7, 4, `vCPU ${v.id} LINT1 NMI`);
    }
    // The MSR the loader asks for (fast strings) reached every vCPU.
    for (const v of x.vcpus) assertEquals(v.getMsrs([0x1a0]).get(0x1a0)! & 1n, 1n);
  } finally {
    close(x);
  }
});

testWhen([kvm, helperBuilt], "guest RAM: 4 GiB + 64 MiB splits around the hole", () => {
  const size = 0x1_0400_0000;
  const x = createX86Vm({ memSize: size, cpus: 1 });
  try {
    assertEquals(
      x.ram.regions.map((r) => [r.slot, r.gpa, r.size]),
      [[0, 0, 0xc000_0000], [1, 0x1_0000_0000, size - 0xc000_0000]],
    );
    // The main thread's view reaches both regions (writes land in the one host mapping).
    x.memory.writeU32(0x1_0000_0000, 0xfeedbeef);
    x.memory.writeU32(0xbfff_fffc, 0x12345678);
    assertEquals(x.memory.readU32(0x1_0000_0000), 0xfeedbeef);
    assertEquals(x.memory.regions[1].bytes[0], 0xef);
    assertEquals(x.memory.readU32(0xbfff_fffc), 0x12345678);
  } finally {
    close(x);
  }
});

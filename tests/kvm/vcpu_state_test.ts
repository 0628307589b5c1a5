/**
 * Every typed VM and vCPU call of ffi/kvm.ts works on this host's KVM: what is written reads
 * back, and what KVM reports is plausible. These are the calls the machine code builds on.
 */
import { assert, assertEquals } from "../lib/assert.ts";
import { kvm, testWhen } from "../lib/skip.ts";
import { close } from "../../ffi/libc.ts";
import { eventfd, eventfdRead } from "../../ffi/events.ts";
import { KVM_API_VERSION, KVM_CAP, KVM_EXIT, KVM_FLAGS, KVM_RUN } from "../../ffi/kvm.ts";
import { built, GuestVm } from "./guest_vm.ts";

const MSR_IA32_SYSENTER_CS = 0x174;
const MSR_IA32_SYSENTER_ESP = 0x175;

testWhen(
  [kvm, built("real_mode_exits")],
  "kvm: /dev/kvm answers version, capabilities and the run area size",
  () => {
    const g = new GuestVm("real_mode_exits", "real");
    try {
      assertEquals(g.kvm.apiVersion(), KVM_API_VERSION);
      assertEquals(g.kvm.checkExtension(KVM_CAP.IMMEDIATE_EXIT), 1);
      assert(g.kvm.checkExtension(KVM_CAP.NR_VCPUS) >= 1);
      assert(g.vm.checkExtension(KVM_CAP.IRQFD) > 0);
      assert(g.kvm.vcpuMmapSize() >= KVM_RUN.size);
      assert(g.kvm.getMsrIndexList().includes(MSR_IA32_SYSENTER_CS));
    } finally {
      g.close();
    }
  },
);

testWhen([kvm, built("real_mode_exits")], "kvm: CPUID, MSRs, FPU and registers round-trip", () => {
  const g = new GuestVm("real_mode_exits", "real");
  try {
    const cpuid = g.kvm.getSupportedCpuid();
    const n = cpuid.header.nent;
    assert(n > 0 && n <= cpuid.entries.length, `nent ${n}`);
    assert(cpuid.entries.slice(0, n).some((e) => e.function === 0 && e.ebx !== 0), "no leaf 0");
    g.vcpu.setCpuid2(cpuid);

    g.vcpu.setMsrs([
      { index: MSR_IA32_SYSENTER_CS, data: 0x10n },
      { index: MSR_IA32_SYSENTER_ESP, data: 0xffff_8000_1234_5678n },
    ]);
    const msrs = g.vcpu.getMsrs([MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_ESP]);
    assertEquals(msrs.get(MSR_IA32_SYSENTER_CS), 0x10n);
    assertEquals(msrs.get(MSR_IA32_SYSENTER_ESP), 0xffff_8000_1234_5678n);

    const fpu = g.vcpu.getFpu();
    // (mxcsr is left out: kvm_pvm reports 0 whatever was set.)
    fpu.fcw = 0x27f;
    fpu.xmm[17] = 0x5a;
    g.vcpu.setFpu(fpu);
    const fpu2 = g.vcpu.getFpu();
    assertEquals([fpu2.fcw, fpu2.xmm[17]], [0x27f, 0x5a]);

    const regs = g.vcpu.getRegs();
    regs.r15 = 0xdead_beef_cafe_f00dn;
    regs.rdx = 42n;
    g.vcpu.setRegs(regs);
    const regs2 = g.vcpu.getRegs();
    assertEquals([regs2.r15, regs2.rdx, regs2.rip], [0xdead_beef_cafe_f00dn, 42n, 0x1000n]);

    const sregs = g.vcpu.getSregs();
    sregs.idt.base = 0x2000n;
    sregs.idt.limit = 0x3ff;
    g.vcpu.setSregs(sregs);
    const sregs2 = g.vcpu.getSregs();
    assertEquals([sregs2.idt.base, sregs2.idt.limit], [0x2000n, 0x3ff]);

    assertEquals(g.vcpu.getMpState(), KVM_FLAGS.KVM_MP_STATE_RUNNABLE);
    const events = g.vcpu.getVcpuEvents();
    assertEquals(events.exception.injected, 0);
    g.vcpu.setVcpuEvents(events);
    const xcrs = g.vcpu.getXcrs();
    assert(xcrs.nr_xcrs >= 1 && (xcrs.xcrs[0].value & 1n) === 1n, "XCR0 lacks x87");
    g.vcpu.setXcrs(xcrs);
    assert(g.vcpu.getTscKhz() > 0);
  } finally {
    g.close();
  }
});

testWhen(
  [kvm, built("real_mode_exits")],
  "kvm: irqchip, PIT, LAPIC, irqfd, ioeventfd, routing",
  () => {
    const g = new GuestVm("real_mode_exits", "real", { irqchip: true });
    const efd = eventfd();
    const iofd = eventfd();
    try {
      g.vm.createPit2(KVM_FLAGS.KVM_PIT_SPEAKER_DUMMY);
      const lapic = g.vcpu.getLapic();
      // LAPIC version register (offset 0x30): version 0x14 for KVM's xAPIC.
      assertEquals(lapic.regs[0x30], 0x14);
      g.vcpu.setLapic(lapic);
      g.vm.irqLine(4, 1);
      g.vm.irqLine(4, 0);
      g.vm.irqfd({ fd: efd, gsi: 5 });
      g.vm.irqfd({ fd: efd, gsi: 5, flags: KVM_FLAGS.KVM_IRQFD_FLAG_DEASSIGN });
      g.vm.ioeventfd({
        fd: iofd,
        addr: 0x10,
        len: 1,
        flags: KVM_FLAGS.KVM_IOEVENTFD_FLAG_PIO,
      });
      g.vm.setGsiRouting([
        { gsi: 0, kind: "irqchip", irqchip: KVM_FLAGS.KVM_IRQCHIP_IOAPIC, pin: 2 },
        { gsi: 24, kind: "msi", addressLo: 0xfee00000, addressHi: 0, data: 0x30 },
      ]);
      assert(g.vm.signalMsi({ addressLo: 0xfee00000, addressHi: 0, data: 0x31 }) >= 0);
      const clock = g.vm.getClock();
      g.vm.setClock(clock.clock);
      g.vm.registerCoalescedZone(0x3f8, 8, true);
    } finally {
      close(efd);
      close(iofd);
      g.close();
    }
  },
);

testWhen(
  [kvm, built("real_mode_exits")],
  "kvm: an ioeventfd port write signals the eventfd, not an exit",
  () => {
    const g = new GuestVm("real_mode_exits", "real");
    const iofd = eventfd();
    try {
      // The guest's first exit is OUT 0x42 -> port 0x10: with an ioeventfd there, KVM consumes it.
      g.vm.ioeventfd({ fd: iofd, addr: 0x10, len: 1, flags: KVM_FLAGS.KVM_IOEVENTFD_FLAG_PIO });
      assertEquals(g.vcpu.run(), KVM_EXIT.IO);
      assertEquals(g.vcpu.kvmRun.io.port, 0x11);
      assertEquals(eventfdRead(iofd), 1n);
    } finally {
      close(iofd);
      g.close();
    }
  },
);

/**
 * The tiny guests' exits come back through the FFI layer with the right contents: port I/O
 * (port, size, direction, data, and IN data reaching the guest), MMIO writes, and HLT, in 16-bit
 * real mode and in 64-bit long mode.
 */
import { assertEquals } from "../lib/assert.ts";
import { kvm, testWhen } from "../lib/skip.ts";
import { exitReasonName, KVM_EXIT, KVM_FLAGS } from "../../ffi/kvm.ts";
import { built, GuestVm } from "./guest_vm.ts";

const { KVM_EXIT_IO_IN: IN, KVM_EXIT_IO_OUT: OUT } = KVM_FLAGS;

/** Runs until the next exit and checks its reason, naming both when they differ. */
function expectExit(g: GuestVm, reason: number): void {
  assertEquals(exitReasonName(g.vcpu.run()), exitReasonName(reason));
}

function expectPio(g: GuestVm, direction: number, port: number, data: number[]): void {
  expectExit(g, KVM_EXIT.IO);
  const io = g.vcpu.kvmRun.io;
  assertEquals(
    { direction: io.direction, port: io.port, size: io.size, count: io.count },
    { direction, port, size: data.length, count: 1 },
  );
  if (direction === OUT) assertEquals([...g.vcpu.ioData()], data);
  else g.vcpu.ioData().set(data);
}

function expectMmioWrite(g: GuestVm, addr: bigint, data: number[]): void {
  expectExit(g, KVM_EXIT.MMIO);
  const mmio = g.vcpu.kvmRun.mmio;
  assertEquals(
    { addr: mmio.phys_addr, len: mmio.len, isWrite: mmio.is_write },
    { addr, len: data.length, isWrite: 1 },
  );
  assertEquals([...mmio.data.subarray(0, mmio.len)], data);
}

testWhen(
  [kvm, built("real_mode_exits")],
  "kvm: real-mode guest exits on OUT, IN, MMIO and HLT",
  () => {
    const g = new GuestVm("real_mode_exits", "real");
    try {
      expectPio(g, OUT, 0x10, [0x42]);
      expectPio(g, OUT, 0x11, [0x34, 0x12]);
      expectPio(g, IN, 0x12, [0x5a]);
      // The guest echoes the byte it read, so the IN data reached it.
      expectPio(g, OUT, 0x13, [0x5a]);
      expectMmioWrite(g, 0xd0010n, [0xef, 0xbe, 0xad, 0xde]);
      expectExit(g, KVM_EXIT.HLT);
      assertEquals(g.vcpu.getRegs().rip, 0x1000n + 0x1cn); // just past the hlt
    } finally {
      g.close();
    }
  },
);

testWhen([kvm, built("long_mode_exits")], "kvm: long-mode guest exits on OUT, MMIO and HLT", () => {
  const g = new GuestVm("long_mode_exits", "long");
  try {
    expectPio(g, OUT, 0x10, [0x42, 0x00, 0xfe, 0xca]);
    expectMmioWrite(g, 0x30000000n, [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]);
    expectExit(g, KVM_EXIT.HLT);
    const sregs = g.vcpu.getSregs();
    assertEquals({ efer: sregs.efer & 0x500n, l: sregs.cs.l }, { efer: 0x500n, l: 1 });
  } finally {
    g.close();
  }
});

/**
 * Kicking a vCPU out of KVM_RUN: a Worker runs a guest that spins (bounded by the TSC, so a kick
 * that never arrives fails the test instead of hanging it), and the main thread makes KVM_RUN
 * return EINTR with SIGRTMIN (the helper's handler, without SA_RESTART) and immediate_exit.
 */
import { assertEquals } from "../lib/assert.ts";
import { kvm, testWhen } from "../lib/skip.ts";
import { exitReasonName } from "../../ffi/kvm.ts";
import { Errno as E } from "../../ffi/libc.ts";
import { installKickHandler, kickSignal, kickThread } from "../../ffi/kick.ts";
import { built, GuestVm } from "./guest_vm.ts";
import { DONE, READY, RESULT, SPINNING, STATE, TID } from "./kick_protocol.ts";

/** Waits (without blocking the event loop) until shared[STATE] >= state or `ms` pass. */
async function waitState(shared: Int32Array, state: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    const now = Atomics.load(shared, STATE);
    if (now >= state) return true;
    const left = deadline - Date.now();
    if (left <= 0) return false;
    await Atomics.waitAsync(shared, STATE, now, left).value;
  }
}

function describe(result: number): string {
  return result < 0 ? `-errno ${-result}` : exitReasonName(result);
}

/**
 * Runs the spin guest in a Worker and calls `kick(tid)` every 50 ms once the guest is spinning,
 * until KVM_RUN returns; resolves with what it returned. Repeating the kick covers the moment
 * between the guest's announcement and its next KVM_RUN, when a signal alone would be lost.
 */
async function spinAndKick(g: GuestVm, kick: (tid: number) => void): Promise<number> {
  const shared = new Int32Array(new SharedArrayBuffer(16));
  const worker = new Worker(new URL("./kick_worker.ts", import.meta.url), { type: "module" });
  try {
    worker.postMessage({ handle: g.vcpu.handle(), shared: shared.buffer });
    // The spin guest gives up by itself after ~4 * 2^32 TSC cycles: these waits are bounded.
    if (!await waitState(shared, READY, 60_000)) throw new Error("vCPU worker never started");
    if (!await waitState(shared, SPINNING, 60_000)) throw new Error("guest never announced itself");
    const tid = Atomics.load(shared, TID);
    while (!await waitState(shared, DONE, 50)) kick(tid);
    return Atomics.load(shared, RESULT);
  } finally {
    worker.terminate();
  }
}

function spinGuest(): GuestVm {
  const g = new GuestVm("spin", "real");
  const regs = g.vcpu.getRegs();
  regs.rsi = 4n; // spin bound, in units of 2^32 TSC cycles
  g.vcpu.setRegs(regs);
  return g;
}

testWhen(
  [kvm, built("spin")],
  "kick: SIGRTMIN + immediate_exit makes a Worker's KVM_RUN return EINTR",
  async () => {
    assertEquals(installKickHandler(), kickSignal());
    const g = spinGuest();
    try {
      const result = await spinAndKick(g, (tid) => g.vcpu.kick(tid));
      assertEquals(describe(result), describe(-E.EINTR));
      // immediate_exit stays set until the vCPU thread clears it: the next run returns at once.
      assertEquals(g.vcpu.kvmRun.immediate_exit, 1);
      assertEquals(describe(g.vcpu.run()), describe(-E.EINTR));
    } finally {
      g.close();
    }
  },
);

testWhen(
  [kvm, built("spin")],
  "kick: the signal alone interrupts a guest that is running",
  async () => {
    installKickHandler();
    const g = spinGuest();
    try {
      const result = await spinAndKick(g, (tid) => kickThread(tid));
      assertEquals(describe(result), describe(-E.EINTR));
      assertEquals(g.vcpu.kvmRun.immediate_exit, 0);
    } finally {
      g.close();
    }
  },
);

testWhen(
  [kvm, built("spin")],
  "kick: immediate_exit alone returns EINTR before the guest runs",
  () => {
    const g = spinGuest();
    try {
      g.vcpu.kvmRun.immediate_exit = 1;
      assertEquals(describe(g.vcpu.run()), describe(-E.EINTR));
      assertEquals(g.vcpu.getRegs().rip, 0x1000n); // not one guest instruction ran
      g.vcpu.kvmRun.immediate_exit = 0;
      assertEquals(describe(g.vcpu.run()), "KVM_EXIT_IO"); // and it runs normally afterwards
    } finally {
      g.close();
    }
  },
);

/**
 * A vCPU thread for kick_test.ts: attaches to the vCPU it is sent, publishes its thread id, runs
 * the spin guest (which announces itself with an OUT to port 0x10), and reports what KVM_RUN
 * returned next. All synchronisation goes through the SharedArrayBuffer it is given.
 */
import { gettid } from "../../ffi/libc.ts";
import { KVM_EXIT, Vcpu, type VcpuHandle } from "../../ffi/kvm.ts";
import { DONE, READY, RESULT, SPINNING, STATE, TID } from "./kick_protocol.ts";

function publish(shared: Int32Array, state: number): void {
  Atomics.store(shared, STATE, state);
  Atomics.notify(shared, STATE);
}

globalThis.addEventListener("message", (event) => {
  const e = event as MessageEvent<{ handle: VcpuHandle; shared: SharedArrayBuffer }>;
  const shared = new Int32Array(e.data.shared);
  const vcpu = Vcpu.attach(e.data.handle);
  Atomics.store(shared, TID, gettid());
  publish(shared, READY);
  let result = vcpu.run();
  if (result === KVM_EXIT.IO && vcpu.kvmRun.io.port === 0x10) {
    publish(shared, SPINNING);
    result = vcpu.run();
  }
  Atomics.store(shared, RESULT, result);
  publish(shared, DONE);
});

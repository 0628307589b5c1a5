/**
 * The cost of one synchronous Deno FFI call into the helper, syscall included: the part of an
 * exit that the Deno run loop adds over C. Usage: deno run -A ffi_call_cost.ts [CALLS]
 */
import { helper } from "../../../ffi/helper.ts";

const calls = Number(Deno.args[0] ?? 1_000_000);
const h = helper();
for (let round = 0; round < 3; round++) {
  let t0 = performance.now();
  for (let i = 0; i < calls; i++) h.sv_getpid();
  const getpid = ((performance.now() - t0) * 1e6) / calls;
  t0 = performance.now();
  // A bad fd: the whole sv_kvm_run path (FFI, ioctl syscall, EBADF) without a guest.
  for (let i = 0; i < calls; i++) h.sv_kvm_run(-1, 0n);
  const run = ((performance.now() - t0) * 1e6) / calls;
  console.log(`sv_getpid ${getpid.toFixed(0)} ns/call, sv_kvm_run(-1) ${run.toFixed(0)} ns/call`);
}

/**
 * Exit-latency measurement through the Deno FFI layer: the VM of tests/kvm/guest_vm.ts running
 * tests/guests/out_loop.S, the run loop the vCPU worker will have (Vcpu.run(), exit reason,
 * port from the kvm_run view). Usage: deno run -A deno_loop.ts EXITS -> nanoseconds per exit.
 */
import { exitReasonName, KVM_EXIT } from "../../../ffi/kvm.ts";
import { GuestVm } from "../../../tests/kvm/guest_vm.ts";

const wanted = Number(Deno.args[0] ?? 1_000_000);
if (!Number.isInteger(wanted) || wanted < 1) {
  console.error(`bad exit count ${Deno.args[0]}`);
  Deno.exit(2);
}
const g = new GuestVm("out_loop", "real");
const regs = g.vcpu.getRegs();
regs.rcx = BigInt(wanted);
g.vcpu.setRegs(regs);

const vcpu = g.vcpu;
const io = vcpu.kvmRun.io;
let exits = 0;
const t0 = performance.now();
for (;;) {
  const reason = vcpu.run();
  if (reason === KVM_EXIT.IO && io.port === 0x80) {
    exits++;
    continue;
  }
  if (reason === KVM_EXIT.HLT) break;
  console.error(`unexpected ${reason < 0 ? `error ${-reason}` : exitReasonName(reason)}`);
  Deno.exit(1);
}
const elapsedMs = performance.now() - t0;
g.close();
if (exits !== wanted) {
  console.error(`counted ${exits} exits, wanted ${wanted}`);
  Deno.exit(1);
}
console.log(((elapsedMs * 1e6) / exits).toFixed(1));

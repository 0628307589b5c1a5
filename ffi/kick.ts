/**
 * Kicking a vCPU thread out of KVM_RUN: the helper's do-nothing SIGRTMIN handler (installed
 * without SA_RESTART) makes a blocked KVM_RUN return EINTR when the thread gets the signal.
 * Pair it with kvm_run.immediate_exit = 1 so a kick that lands between two KVM_RUN calls is not
 * lost (see Vcpu.kick in kvm.ts).
 */
import { helper } from "./helper.ts";
import { check } from "./libc.ts";

/** Installs the handler for the whole process (idempotent). Returns the kick signal number. */
export function installKickHandler(): number {
  return check(helper().sv_kick_init(), "sigaction(SIGRTMIN)");
}

/** The kick signal: glibc's SIGRTMIN (34). */
export function kickSignal(): number {
  return helper().sv_kick_signal();
}

/** Sends the kick signal to thread `tid` of this process. */
export function kickThread(tid: number): void {
  check(helper().sv_kick(tid), `tgkill(${tid}, SIGRTMIN)`);
}

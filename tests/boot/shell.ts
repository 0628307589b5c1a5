/**
 * What the boot tests ask the reference guest's busybox init and read back: its BOOT-OK line
 * (`BOOT-OK uptime=<s> cpus=<n> memkb=<kB>`) and the output of commands typed into its shell.
 */
import { assert } from "../lib/assert.ts";

export interface BootOk {
  readonly cpus: number;
  /** MemTotal in kB as the guest reports it. */
  readonly memKb: number;
}

/**
 * Up to the line end: output arrives in pieces, and `memkb=2` may be the first of them. A count
 * may be empty (the guest's grep or awk failed): that is for the assertions to report.
 */
export const BOOT_OK = /BOOT-OK uptime=\S+ cpus=(\d*) memkb=(\d*)\r?\n/;

/** The numbers of a BOOT-OK line; NaN for one the guest failed to print. */
export function parseBootOk(m: RegExpMatchArray): BootOk {
  const count = (s: string) => s === "" ? NaN : Number(s);
  return { cpus: count(m[1]), memKb: count(m[2]) };
}

/**
 * MemTotal is RAM minus what the kernel keeps for itself (its image, struct pages, reserved
 * firmware ranges): most of it, never more. `minShare` is the smallest plausible fraction.
 */
export function assertMemTotal(
  memKb: number,
  ramBytes: number,
  minShare: number,
  context = "",
): void {
  const ramKb = ramBytes / 1024;
  assert(
    memKb <= ramKb && memKb > ramKb * minShare,
    `MemTotal ${memKb} kB is not within ${minShare * 100}%..100% of the ${ramKb} kB of RAM\n` +
      context,
  );
}

/**
 * A shell line that proves it ran in the guest: the terminal echoes `MARK-$((6*7))` back as typed,
 * only the shell prints `MARK-42`.
 */
export function markedCommand(tag: string, command = "true"): { line: string; done: RegExp } {
  return {
    line: `${command}; echo ${tag}-$((6*7))\n`,
    done: new RegExp(`${tag}-42`),
  };
}

/**
 * Kernel switches for a guest with `cpus` vCPUs. With more than one, user processes stay on CPU 0
 * (`isolcpus`): on this kvm_pvm host the reference guest's user processes that run on an AP crash
 * reading thread-local data through %fs (a NULL pointer; seen under QEMU microvm too, so it is
 * the guest or kvm_pvm, not the VMM), which kills the busybox init. The APs still come up, and the
 * guest still counts them in /proc/cpuinfo.
 */
export function smpSwitches(cpus: number): string {
  return cpus > 1 ? ` isolcpus=1-${cpus - 1}` : "";
}

/**
 * Real Linux through the microvm: the project's guest build ($STRATOVIRT_GUEST_DIR) when present,
 * else the reference build in /work/shared/guest. The kernel boots through PVH, its init prints
 * BOOT-OK and restarts the machine (reboot=k: an i8042 reset), which ends the process with 0.
 * Boot times are printed for the report, never asserted.
 */
import { assert, assertEquals, assertMatch } from "../lib/assert.ts";
import { kvm, type Requirement, testWhen } from "../lib/skip.ts";
import { helperBuilt, runVm, type VmRun } from "./run_vm.ts";

function guestDir(): string {
  const built = Deno.env.get("STRATOVIRT_GUEST_DIR");
  try {
    if (built && Deno.statSync(`${built}/vmlinux`).isFile) return built;
  } catch { /* not built: use the reference guest */ }
  return "/work/shared/guest";
}

const DIR = guestDir();

/** The command line the reference guest's README gives for kvm_pvm hosts. */
const PVM_CMDLINE = "console=ttyS0 panic=-1 noxsave no_int3_selftest " +
  "clearcpuid=popcnt,fsgsbase,invpcid,pcid,erms,fsrm,cx16,bmi1,bmi2,smap,rep_good " +
  "pvm_syscall_fixup rodata=off percpu_alloc=page quiet";

function cmdline(): string {
  try {
    return Deno.readTextFileSync(`${DIR}/cmdline`).trim();
  } catch {
    return PVM_CMDLINE;
  }
}

function guestFile(name: string): Requirement {
  return () => {
    try {
      Deno.statSync(`${DIR}/${name}`);
      return null;
    } catch {
      return `guest ${name} not found in ${DIR}`;
    }
  };
}

function describe(r: VmRun): string {
  return `exit ${r.code}${r.killed ? " (killed: hung)" : ""}\n--- stdout\n${r.stdout}\n` +
    `--- stderr\n${r.stderr}`;
}

function report(what: string, r: VmRun): void {
  const toMarker = r.markerMs === null ? "never" : `${(r.markerMs / 1000).toFixed(1)} s`;
  console.log(
    `  ${what}: process start -> BOOT-OK ${toMarker}, -> exit ${(r.elapsedMs / 1000).toFixed(1)} s`,
  );
}

testWhen(
  [kvm, helperBuilt, guestFile("vmlinux"), guestFile("initramfs-tiny.cpio")],
  "linux: vmlinux + tiny initramfs boots to BOOT-OK and resets (status 0)",
  async () => {
    const r = await runVm({
      cpus: 1,
      memory: { size: 256 << 20 },
      kernel: `${DIR}/vmlinux`,
      initrd: `${DIR}/initramfs-tiny.cpio`,
      cmdline: `${cmdline()} reboot=k`,
      serial: { backend: "stdio" },
    }, { limitMs: 180_000, marker: "BOOT-OK tiny-init" });
    report("1 vCPU, 256 MiB, tiny initramfs", r);
    assert(!r.killed, describe(r));
    assertMatch(r.stdout, /BOOT-OK tiny-init/);
    assertEquals(r.code, 0, describe(r));
  },
);

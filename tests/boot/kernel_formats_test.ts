/**
 * The other two kernel formats through ./stratovirt (the ELF vmlinux, booted through its PVH
 * note, is what the other boot tests use): a bzImage (its decompressor runs emulated here, so one
 * boot with the tiny initramfs) and a flat vmlinux.bin. The tiny init prints BOOT-OK and resets
 * the machine: with `reboot=k`, status 0. The loader's log line names the format it picked.
 */
import { assert, assertEquals, assertMatch } from "../lib/assert.ts";
import { kvm, testWhen } from "../lib/skip.ts";
import { guestCmdline, guestFile, guestPath, vmlinuxBin, vmlinuxBinAvailable } from "./guest.ts";
import { describeResult, helperBuilt, report, startVm } from "./stratovirt.ts";

async function bootTiny(kernel: string, what: string, logFile: string): Promise<void> {
  const started = performance.now();
  const vm = await startVm([
    "-machine",
    "microvm",
    "-smp",
    "1",
    "-m",
    "256",
    "-kernel",
    kernel,
    "-initrd",
    guestPath("initramfs-tiny.cpio"),
    "-append",
    `${guestCmdline()} reboot=k`,
    "-serial",
    "stdio",
    "-D",
    logFile,
  ], { env: { STRATOVIRT_LOG_LEVEL: "info" } });
  const bootOk = await vm.stdout.waitFor(/BOOT-OK tiny-init/);
  const r = await vm.done;
  report(what, started, bootOk ? performance.now() : null);
  assert(bootOk, describeResult(r));
  assertEquals(r.code, 0, describeResult(r));
  const log = await Deno.readTextFile(logFile);
  // The reset ended the VM (not a KVM error that also exits). No boot-complete marker is
  // asserted: the tiny init's port 0x3ff write needs ioperm, which the reference kernel lacks.
  assertMatch(log, /VM ends: .*reset/);
  console.log(`  ${log.match(/kernel \S+ \(.*\) entry 0x[0-9a-f]+/)?.[0] ?? "(no kernel line)"}`);
}

testWhen(
  [kvm, helperBuilt, guestFile("bzImage"), guestFile("initramfs-tiny.cpio")],
  "boot: bzImage + tiny initramfs reaches init and resets (status 0)",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "sv-boot-bz-" });
    try {
      await bootTiny(guestPath("bzImage"), "bzImage", `${dir}/vm.log`);
      const log = await Deno.readTextFile(`${dir}/vm.log`);
      assertMatch(log, /\(bzimage, /);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

testWhen(
  [kvm, helperBuilt, guestFile("vmlinux"), vmlinuxBinAvailable, guestFile("initramfs-tiny.cpio")],
  "boot: flat vmlinux.bin + tiny initramfs reaches init and resets (status 0)",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "sv-boot-flat-" });
    try {
      await bootTiny(await vmlinuxBin(dir), "vmlinux.bin", `${dir}/vm.log`);
      const log = await Deno.readTextFile(`${dir}/vm.log`);
      assertMatch(log, /\(vmlinux-bin, /);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

/**
 * Linux through ./stratovirt with the serial console on a host program's end: a pty (the program
 * reads the `Pty path is: "..."` message and opens it) and a Unix socket chardev. The program
 * waits for the busybox init's BOOT-OK, types a command that only the guest shell can answer,
 * then `reboot -f`: with `reboot=k` an i8042 reset, which ends the VM with status 0.
 * Each boot also checks the vCPUs and RAM the guest counted.
 */
import { assert, assertEquals } from "../lib/assert.ts";
import { kvm, testWhen } from "../lib/skip.ts";
import { guestCmdline, guestFile, guestPath } from "./guest.ts";
import { assertMemTotal, BOOT_OK, markedCommand, parseBootOk, smpSwitches } from "./shell.ts";
import { describeResult, helperBuilt, report, startVm, type VmProcess } from "./stratovirt.ts";
import { TextLog } from "./text_log.ts";

const needs = [kvm, helperBuilt, guestFile("vmlinux"), guestFile("initramfs.cpio")];

function busyboxArgs(cpus: number, memory: string): string[] {
  return [
    "-machine",
    "microvm",
    "-smp",
    String(cpus),
    "-m",
    memory,
    "-kernel",
    guestPath("vmlinux"),
    "-initrd",
    guestPath("initramfs.cpio"),
    "-append",
    `${guestCmdline()} reboot=k${smpSwitches(cpus)}`,
  ];
}

/**
 * Drives the guest shell through `console`: waits for BOOT-OK, runs a marked command, then
 * `reboot -f`. Returns the BOOT-OK line's numbers.
 */
async function driveShell(
  vm: VmProcess,
  console: TextLog,
  send: (text: string) => Promise<void>,
  tag: string,
): Promise<{ cpus: number; memKb: number; bootOkMs: number | null }> {
  const bootOk = await console.waitFor(BOOT_OK);
  const bootOkMs = bootOk ? performance.now() : null;
  assert(bootOk, `no BOOT-OK on the ${tag} console:\n${console.text}\n${vm.describe()}`);
  const cmd = markedCommand(tag, "grep -c ^processor /proc/cpuinfo");
  await send(cmd.line);
  assert(
    await console.waitFor(cmd.done),
    `the typed command did not run:\n${console.text}\n${vm.describe()}`,
  );
  await send("reboot -f\n");
  return { ...parseBootOk(bootOk), bootOkMs };
}

testWhen(
  needs,
  "boot: ELF vmlinux, -smp 1 -m 256, -serial pty: a program on the pty runs a command, reboot -f exits 0",
  async () => {
    const started = performance.now();
    const vm = await startVm([...busyboxArgs(1, "256"), "-serial", "pty"]);
    try {
      const path = await vm.stderr.waitFor(/Pty path is: "([^"]+)"/);
      assert(path, `no pty path message:\n${vm.describe()}`);
      const pty = await Deno.open(path[1], { read: true, write: true });
      const console = new TextLog();
      const reading = console.pump((buf) => pty.read(buf));
      const seen = await driveShell(vm, console, async (t) => {
        await pty.write(new TextEncoder().encode(t));
      }, "PTY");
      const r = await vm.done;
      report("pty, 1 vCPU, 256 MiB", started, seen.bootOkMs);
      assertEquals(r.code, 0, describeResult(r));
      assertEquals(seen.cpus, 1, console.text);
      assertMemTotal(seen.memKb, 256 << 20, 0.8, console.text);
      // The VMM closed its end: our reads end (EIO) rather than hang.
      await reading;
      pty.close();
    } finally {
      vm.kill("SIGKILL");
      await vm.done;
    }
  },
);

testWhen(
  needs,
  "boot: ELF vmlinux, -smp 2 -m 1G, socket chardev serial: a typed command runs, reboot -f exits 0",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "sv-boot-sock-" });
    const path = `${dir}/serial.sock`;
    const started = performance.now();
    const vm = await startVm([
      ...busyboxArgs(2, "1G"),
      "-chardev",
      `socket,id=s,path=${path},server,nowait`,
      "-serial",
      "chardev:s",
    ]);
    try {
      let exited = false;
      vm.done.then(() => exited = true);
      let conn: Deno.UnixConn | null = null;
      while (!conn && !exited) {
        try {
          conn = await Deno.connect({ transport: "unix", path });
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
      assert(conn, `the VM exited before its serial socket accepted:\n${vm.describe()}`);
      const client = conn;
      const console = new TextLog();
      const reading = console.pump((buf) => client.read(buf));
      const seen = await driveShell(vm, console, async (t) => {
        await client.write(new TextEncoder().encode(t));
      }, "SOCK");
      const r = await vm.done;
      report("socket, 2 vCPUs, 1 GiB", started, seen.bootOkMs);
      assertEquals(r.code, 0, describeResult(r));
      assertEquals(seen.cpus, 2, console.text);
      assertMemTotal(seen.memKb, 1 << 30, 0.9, console.text);
      await reading;
      client.close();
    } finally {
      vm.kill("SIGKILL");
      await vm.done;
      await Deno.remove(dir, { recursive: true });
    }
  },
);

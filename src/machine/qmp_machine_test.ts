/**
 * MicrovmQmpMachine against a hand-made MicrovmHandle: what QMP sees before the VM exists, the
 * -smp topology in query-cpus, chardevs / drives / memory from the command line, and how stop,
 * cont, system_reset, system_powerdown and quit reach the VM.
 */
import { assertEquals, assertRejects, assertThrows } from "../../tests/lib/assert.ts";
import { parseCommandLine } from "../config/mod.ts";
import type { Chardev } from "../chardev/chardev.ts";
import type { GuestMemory } from "../memory/guest_memory.ts";
import { microvmSpecOf } from "./from_config.ts";
import { Lifecycle, LifecycleError } from "./lifecycle.ts";
import type { MicrovmHandle, ShutdownCause } from "./microvm.ts";
import { MicrovmQmpMachine } from "./qmp_machine.ts";

function machineOf(args: string): MicrovmQmpMachine {
  const config = parseCommandLine(
    ["-machine", "microvm", "-kernel", "/nonexistent/vmlinux.bin", ...args.split(" ")].filter((a) =>
      a !== ""
    ),
  );
  return new MicrovmQmpMachine(config, microvmSpecOf(config, { target: null, level: "error" }));
}

/** A VM handle that records what was asked of it. */
function fakeVm(serial: Partial<Chardev> & { path?: string } | null = null) {
  const lifecycle = new Lifecycle();
  lifecycle.transition("running", "test");
  const calls: string[] = [];
  const vm: MicrovmHandle = {
    lifecycle,
    memory: null as unknown as GuestMemory,
    pause: () => {
      lifecycle.transition("paused");
      calls.push("pause");
      return Promise.resolve();
    },
    resume: () => {
      lifecycle.transition("running");
      calls.push("resume");
    },
    shutdown: (status: number) => void calls.push(`shutdown:${status}`),
    powerOff: (cause: ShutdownCause, guest: boolean) =>
      void calls.push(`powerOff:${cause}:${guest}`),
    serial: serial as Chardev | null,
    vcpuThreadIds: () => [4001, 4002],
  };
  return { vm, calls, lifecycle };
}

Deno.test("qmp machine: before the VM exists it is 'created'; stop / cont wait for it", async () => {
  const m = machineOf("");
  assertEquals(m.status(), "created");
  assertEquals(m.cpus().map((c) => c.threadId), [0]);
  const { vm, calls, lifecycle } = fakeVm();
  lifecycle.transition("paused"); // as -S leaves it
  const cont = m.resume();
  await Promise.resolve();
  assertEquals(calls, []);
  m.attach(vm);
  await cont;
  assertEquals(calls, ["resume"]);
  assertEquals(m.status(), "running");
});

Deno.test("qmp machine: a quit before the VM exists ends it as soon as it is attached", async () => {
  const m = machineOf("");
  await m.quit();
  const { vm, calls } = fakeVm();
  m.attach(vm);
  assertEquals(calls, ["shutdown:0"]);
});

Deno.test("qmp machine: stop, cont, reset, powerdown and quit reach the VM", async () => {
  const m = machineOf("");
  const { vm, calls } = fakeVm();
  m.attach(vm);
  await m.pause();
  assertEquals(m.status(), "paused");
  // StratoVirt powers a microvm down only while it runs.
  await assertRejects(() => m.powerdown(), LifecycleError, "paused");
  await m.resume();
  await m.powerdown();
  await m.reset();
  await m.quit();
  assertEquals(calls, [
    "pause",
    "resume",
    "powerOff:host-qmp-quit:false",
    "powerOff:host-qmp-system-reset:false",
    "shutdown:0",
  ]);
});

Deno.test("qmp machine: query-cpus follows the -smp topology and the vCPU thread ids", () => {
  const m = machineOf("-smp 2,maxcpus=4,sockets=2,cores=2,threads=1");
  m.attach(fakeVm().vm);
  const cpus = m.cpus();
  assertEquals(
    cpus.map((c) => [c.index, c.present, c.threadId, c.socketId, c.coreId, c.threadIdInCore]),
    [
      [0, true, 4001, 0, 0, 0],
      [1, true, 4002, 0, 1, 0],
      [2, false, 0, 1, 0, 0],
      [3, false, 0, 1, 1, 0],
    ],
  );
});

Deno.test("qmp machine: query-chardev names the pty the serial port got", () => {
  const m = machineOf("-serial pty");
  assertEquals(m.chardevs(), [{ id: "serial0", filename: "pty", frontendOpen: false }]);
  m.attach(fakeVm({ path: "/dev/pts/9" }).vm);
  assertEquals(m.chardevs(), [{ id: "serial0", filename: "pty:/dev/pts/9", frontendOpen: true }]);
});

Deno.test("qmp machine: -mon chardevs are listed; file serials keep their path", () => {
  const m = machineOf(
    "-serial file,path=/tmp/console.log -chardev socket,id=mon0,path=/tmp/m.sock,server,nowait " +
      "-mon chardev=mon0,id=monitor0,mode=control",
  );
  assertEquals(m.chardevs(), [
    { id: "serial0", filename: "file:/tmp/console.log", frontendOpen: false },
    { id: "mon0", filename: "unix:/tmp/m.sock,server=on", frontendOpen: true },
  ]);
});

Deno.test("qmp machine: query-mem splits RAM around the 32-bit hole", () => {
  const small = machineOf("-m 256M").memory();
  assertEquals(small.size, 256 << 20);
  assertEquals(small.regions, [{ name: "ram-below-4g", base: 0, size: 256 << 20 }]);
  const big = machineOf("-m 4G").memory();
  assertEquals(big.regions.length, 2);
  assertEquals(big.regions[1].base, 2 ** 32);
  assertEquals(big.regions[0].size + big.regions[1].size, 2 ** 32);
});

Deno.test("qmp machine: hot-plug is refused with a clear error", () => {
  const m = machineOf("");
  assertThrows(() => m.addDevice(), Error, "hot-plug is not supported");
  assertThrows(() => m.delDevice("nope"), Error, "Device 'nope' not found");
});

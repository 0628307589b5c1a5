/**
 * MicrovmQmpMachine against a hand-made MicrovmHandle: what QMP sees before the VM exists, the
 * -smp topology in query-cpus, chardevs / drives / memory from the command line, and how stop,
 * cont, system_reset, system_powerdown and quit reach the VM.
 */
import { assertEquals, assertRejects } from "../../tests/lib/assert.ts";
import { parseCommandLine } from "../config/mod.ts";
import type { Chardev } from "../chardev/chardev.ts";
import type { GuestMemory } from "../memory/guest_memory.ts";
import { microvmSpecOf } from "./from_config.ts";
import { Lifecycle, LifecycleError } from "./lifecycle.ts";
import type { MicrovmHandle, ShutdownCause } from "./microvm.ts";
import { MicrovmQmpMachine } from "./qmp_machine.ts";
import type { QmpServer } from "../qmp/server.ts";
import type { DiskSpec } from "./spec.ts";

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
    iothreadIds: () => new Map([["io0", 4100]]),
    replaceDisk: (slot: number, disk: DiskSpec | null) => {
      calls.push(`replace:${slot}:${disk ? `${disk.id}=${disk.path}` : "empty"}`);
      return Promise.resolve();
    },
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

Deno.test("qmp machine: blockdev-add, device_add, device_del, blockdev-del reach the slots", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "sv-hotplug-" });
  try {
    const root = `${dir}/root.img`;
    const data = `${dir}/data.img`;
    Deno.writeFileSync(root, new Uint8Array(4096));
    Deno.writeFileSync(data, new Uint8Array(4096));
    const m = machineOf(
      `-qmp unix:${dir}/q.sock,server,nowait -drive id=root,file=${root} ` +
        "-device virtio-blk-device,drive=root,id=vda",
    );
    const events: string[] = [];
    m.attachServer({
      emitEvent: (name: string, data: unknown) => events.push(`${name}:${JSON.stringify(data)}`),
    } as unknown as QmpServer);
    const { vm, calls } = fakeVm();
    m.attach(vm);
    await m.addBlockdev({ "node-name": "d1", file: { driver: "file", filename: data } });
    // Slot 0 holds the command line's disk: the first free one is slot 1.
    await m.addDevice({ id: "hp1", driver: "virtio-blk-device", drive: "d1", serial: "S1" });
    assertEquals(m.blocks().map((b) => [b.id, b.attachedTo]), [["root", "vda"], ["d1", "hp1"]]);
    await assertRejects(() => m.delBlockdev("d1"), Error, "in use by device hp1");
    await assertRejects(() => m.delDevice("nope"), Error, "Device nope not found");
    await m.delDevice("hp1");
    assertEquals(events, [
      'DEVICE_DELETED:{"device":"hp1","path":"/machine/peripheral/hp1"}',
    ]);
    await m.delBlockdev("d1");
    await assertRejects(
      () => m.addDevice({ id: "hp2", driver: "virtio-blk-device", drive: "d1" }),
      Error,
      "no drive d1",
    );
    await assertRejects(
      () => m.addBlockdev({ "node-name": "gone", file: { driver: "file", filename: `${dir}/x` } }),
      Error,
      "cannot open",
    );
    assertEquals(calls, [`replace:1:hp1=${data}`, "replace:1:empty"]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("qmp machine: a failed image swap leaves the slot empty and the device unknown", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "sv-hotplug-" });
  try {
    Deno.writeFileSync(`${dir}/d.img`, new Uint8Array(512));
    const m = machineOf(`-qmp unix:${dir}/q.sock,server,nowait`);
    const { vm } = fakeVm();
    m.attach({ ...vm, replaceDisk: () => Promise.reject(new Error("cannot open it")) });
    await m.addBlockdev({ "node-name": "d", file: { driver: "file", filename: `${dir}/d.img` } });
    await assertRejects(
      () => m.addDevice({ id: "x", driver: "virtio-blk-device", drive: "d" }),
      Error,
      "device_add x: cannot open it",
    );
    assertEquals(m.blocks().map((b) => b.attachedTo), [undefined]);
    await assertRejects(() => m.delDevice("x"), Error, "Device x not found");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

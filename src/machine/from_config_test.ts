import { assertEquals, assertThrows } from "../../tests/lib/assert.ts";
import { parseCommandLine } from "../config/mod.ts";
import { microvmSpecOf, UnsupportedError } from "./from_config.ts";
import { diskCmdlineArgs } from "./iothreads.ts";

const LOG = { target: null, level: "info" } as const;
const BASE = ["-machine", "microvm", "-m", "256", "-kernel", "/boot/vmlinux"];

function specOf(args: string[]) {
  return microvmSpecOf(parseCommandLine([...BASE, ...args]), LOG);
}

Deno.test("from_config: -drive + -device virtio-blk-device become disks in command-line order", () => {
  const spec = specOf([
    "-object",
    "iothread,id=io0",
    "-drive",
    "id=root,file=/img/root.ext4",
    "-device",
    "virtio-blk-device,drive=root,id=vda",
    "-drive",
    "id=data,file=/img/data.raw,readonly=on,direct=off,throttling.iops-total=100",
    "-device",
    "virtio-blk-device,drive=data,id=vdb,iothread=io0,serial=abc,num-queues=2,queue-size=128",
  ]);
  assertEquals(spec.disks, [
    {
      id: "vda",
      drive: "root",
      path: "/img/root.ext4",
      readonly: false,
      direct: true,
      serial: null,
      numQueues: 1,
      queueSize: 256,
      iopsTotal: null,
      asyncIo: true,
      iothread: null,
    },
    {
      id: "vdb",
      drive: "data",
      path: "/img/data.raw",
      readonly: true,
      direct: false,
      serial: "abc",
      numQueues: 2,
      queueSize: 128,
      iopsTotal: 100,
      asyncIo: false,
      iothread: "io0",
    },
  ]);
  // StratoVirt's slots: 0xf0100000 + 0x200 * i; without -qmp only the disks' slots exist.
  assertEquals(spec.hotplug, false);
  assertEquals(diskCmdlineArgs(spec), [
    "virtio_mmio.device=512@0xf0100000:5",
    "virtio_mmio.device=512@0xf0100200:6",
  ]);
});

Deno.test("from_config: with -qmp all four block slots are announced, IRQ 8 skipped", () => {
  const spec = specOf([
    "-qmp",
    "unix:/tmp/sv-q.sock,server,nowait",
    "-drive",
    "id=root,file=/img/root.ext4",
    "-device",
    "virtio-blk-device,drive=root,id=vda",
  ]);
  assertEquals(spec.hotplug, true);
  assertEquals(diskCmdlineArgs(spec), [
    "virtio_mmio.device=512@0xf0100000:5",
    "virtio_mmio.device=512@0xf0100200:6",
    "virtio_mmio.device=512@0xf0100400:7",
    "virtio_mmio.device=512@0xf0100600:9",
  ]);
});

Deno.test("from_config: no -device gives no disks", () => {
  assertEquals(specOf([]).disks, []);
});

Deno.test("from_config: devices the KVM microvm cannot run are refused by name", () => {
  const five: string[] = [];
  for (let i = 0; i < 5; i++) {
    five.push(
      "-drive",
      `id=d${i},file=/img/${i}`,
      "-device",
      `virtio-blk-device,drive=d${i},id=b${i}`,
    );
  }
  assertThrows(() => specOf(five), UnsupportedError, "id=b4: a microvm takes at most 4");
  assertThrows(
    () =>
      specOf([
        "-object",
        "rng-random,id=r0,filename=/dev/urandom",
        "-device",
        "virtio-rng-device,rng=r0,id=rng0",
      ]),
    UnsupportedError,
    "-device virtio-rng-device,id=rng0: only virtio-blk-device is wired",
  );
});

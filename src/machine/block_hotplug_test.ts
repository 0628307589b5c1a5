/**
 * The hot-plug bookkeeping without a VM: which slot device_add picks, what it refuses (each with
 * a GenericError naming the problem, and nothing changed), and that device_del / blockdev-del
 * free what they should.
 */
import { assertEquals, assertThrows } from "../../tests/lib/assert.ts";
import { QmpError } from "../qmp/errors.ts";
import type { BlockdevAddArgs, DeviceAddArgs } from "../qmp/machine_api.ts";
import { BlockHotplug } from "./block_hotplug.ts";
import { blockSlotsOf, type DiskSpec, MAX_DISKS } from "./spec.ts";

function disk(id: string, drive: string, extra: Partial<DiskSpec> = {}): DiskSpec {
  return {
    id,
    drive,
    path: `/img/${drive}`,
    readonly: false,
    direct: true,
    serial: null,
    numQueues: 1,
    queueSize: 256,
    iopsTotal: null,
    asyncIo: true,
    iothread: null,
    ...extra,
  };
}

/** A microvm with `disks` on the command line, drives root + spare, and a balloon device id. */
function hotplug(disks: DiskSpec[] = [disk("vda", "root")], hotplugSlots = true): BlockHotplug {
  const drive = (id: string) => ({
    id,
    path: `/img/${id}`,
    readonly: false,
    direct: true,
    asyncIo: true,
    format: "raw",
  });
  return new BlockHotplug(
    [drive("root"), drive("spare")],
    blockSlotsOf({ disks, hotplug: hotplugSlots }),
    [...disks.map((d) => d.id), "balloon0"],
  );
}

function blockdev(name: string, extra: Partial<BlockdevAddArgs> = {}): BlockdevAddArgs {
  return { "node-name": name, file: { driver: "file", filename: `/img/${name}` }, ...extra };
}

function dev(id: string, drive?: string, extra: Record<string, unknown> = {}): DeviceAddArgs {
  return { id, driver: "virtio-blk-device", ...(drive ? { drive } : {}), ...extra };
}

function refused(fn: () => unknown, why: string): void {
  const e = assertThrows(fn, QmpError, why) as unknown as QmpError;
  assertEquals(e.errorClass, "GenericError");
}

Deno.test("block hotplug: with -qmp every slot exists; device_add takes the first free one", () => {
  const h = hotplug();
  assertEquals(h.occupancy(), ["vda", null, null, null]);
  const d1 = h.planDrive(blockdev("d1", { "read-only": true, cache: { direct: false } }));
  assertEquals(d1, {
    id: "d1",
    path: "/img/d1",
    readonly: true,
    direct: false,
    asyncIo: false,
    format: "raw",
  });
  h.commitDrive(d1);
  const plan = h.planAdd(dev("hp1", "d1", { serial: "SER" }));
  assertEquals(plan, {
    slot: 1,
    disk: disk("hp1", "d1", { readonly: true, direct: false, asyncIo: false, serial: "SER" }),
  });
  // Nothing recorded until the caller commits (the device thread may still fail).
  assertEquals(h.occupancy(), ["vda", null, null, null]);
  h.commitAdd(plan);
  assertEquals(h.occupancy(), ["vda", "hp1", null, null]);
  assertEquals(h.blocks().map((b) => [b.id, b.attachedTo ?? null]), [
    ["root", "vda"],
    ["spare", null],
    ["d1", "hp1"],
  ]);
});

Deno.test("block hotplug: blockdev-add defaults follow StratoVirt (O_DIRECT, read-write, raw)", () => {
  const h = hotplug();
  assertEquals(h.planDrive(blockdev("d")), {
    id: "d",
    path: "/img/d",
    readonly: false,
    direct: true,
    asyncIo: true,
    format: "raw",
  });
  refused(() => h.planDrive(blockdev("root")), "Drive root already exists");
  refused(() => h.planDrive(blockdev("")), "node-name must not be empty");
  refused(() => h.planDrive(blockdev("q", { driver: "qcow2" })), "only raw images");
  refused(
    () => h.planDrive({ "node-name": "n", file: { driver: "nbd", filename: "x" } }),
    "file.driver 'nbd' is not supported",
  );
  refused(
    () => h.planDrive(blockdev("t", { "throttling.iops-total": 100 })),
    "throttling.iops-total is not supported",
  );
});

Deno.test("block hotplug: device_add refusals name the problem and change nothing", () => {
  const h = hotplug();
  refused(() => h.planAdd(dev("hp", "missing")), "no drive missing (add it with blockdev-add");
  refused(() => h.planAdd(dev("vda", "spare")), "device id vda is already in use");
  refused(() => h.planAdd(dev("balloon0", "spare")), "device id balloon0 is already in use");
  refused(() => h.planAdd(dev("hp", "root")), "drive root is already used by device vda");
  refused(() => h.planAdd({ id: "n", driver: "virtio-net-device" }), "virtio-net hot-plug");
  refused(() => h.planAdd({ id: "p", driver: "virtio-blk-pci", drive: "spare" }), "q35");
  refused(() => h.planAdd({ id: "u", driver: "usb-kbd" }), "unsupported replaceable device");
  refused(
    () => h.planAdd(dev("hp", "spare", { serial: "x".repeat(21) })),
    "serial is longer than 20",
  );
  refused(
    () => h.planAdd(dev("hp", "spare", { "num-queues": 4 })),
    "num-queues=4, but slot 1 has 1",
  );
  refused(
    () => h.planAdd(dev("hp", "spare", { "queue-size": 128 })),
    "queue-size=128, but slot 1 has 256",
  );
  assertEquals(h.occupancy(), ["vda", null, null, null]);
});

Deno.test("block hotplug: addr and lun pick the slot; occupied and absent slots are refused", () => {
  const h = hotplug();
  for (const d of ["a", "b", "c", "e"]) h.commitDrive(h.planDrive(blockdev(d)));
  assertEquals(h.planAdd(dev("x", "a", { addr: "0x3" })).slot, 3);
  assertEquals(h.planAdd(dev("x", "a", { addr: "2" })).slot, 2);
  // lun n is slot n + 1, as StratoVirt's microvm counts it.
  assertEquals(h.planAdd(dev("x", "a", { lun: 1 })).slot, 2);
  refused(() => h.planAdd(dev("x", "a", { addr: "0" })), "the slot 0 is occupied already");
  refused(() => h.planAdd(dev("x", "a", { addr: "4" })), "slot 4 does not exist");
  refused(() => h.planAdd(dev("x", "a", { addr: "zz" })), "invalid addr zz");
  // StratoVirt finds the drive by the device id when `drive` is absent.
  assertEquals(h.planAdd(dev("b")).disk.drive, "b");
  h.commitAdd(h.planAdd(dev("hp1", "a")));
  h.commitAdd(h.planAdd(dev("hp2", "b")));
  h.commitAdd(h.planAdd(dev("hp3", "c")));
  assertEquals(h.occupancy(), ["vda", "hp1", "hp2", "hp3"]);
  refused(
    () => h.planAdd(dev("hp4", "e")),
    `no free virtio-blk slot (the microvm has ${MAX_DISKS}`,
  );
});

Deno.test("block hotplug: device_del frees the slot and the id; blockdev-del waits for it", () => {
  const h = hotplug();
  h.commitDrive(h.planDrive(blockdev("d1")));
  h.commitAdd(h.planAdd(dev("hp1", "d1")));
  refused(() => h.removeDrive("d1"), "Drive d1 is in use by device hp1: device_del it first");
  refused(() => h.planDel("nope"), "Device nope not found");
  assertEquals(h.planDel("hp1"), 1);
  h.commitDel("hp1");
  assertEquals(h.occupancy(), ["vda", null, null, null]);
  refused(() => h.planDel("hp1"), "Device hp1 not found");
  // The command line's disk can be unplugged as well, and its id reused afterwards.
  assertEquals(h.planDel("vda"), 0);
  h.commitDel("vda");
  h.removeDrive("d1");
  refused(() => h.removeDrive("d1"), "Drive d1 not found");
  h.commitAdd(h.planAdd(dev("vda", "spare")));
  assertEquals(h.occupancy(), ["vda", null, null, null]);
  assertEquals(h.blocks().find((b) => b.id === "spare")?.attachedTo, "vda");
});

Deno.test("block hotplug: without -qmp only the command line's slots exist", () => {
  const slots = blockSlotsOf({ disks: [disk("vda", "root", { numQueues: 2, iothread: "io0" })] });
  assertEquals(slots.length, 1);
  assertEquals(slots[0].numQueues, 2);
  assertEquals(slots[0].iothread, "io0");
  const h = hotplug([disk("vda", "root")], false);
  refused(() => h.planAdd(dev("hp", "spare")), "empty slots exist only with -qmp");
  // With hot-plug the empty slots are single-queue and served by the device thread.
  assertEquals(blockSlotsOf({ disks: [], hotplug: true }).map((s) => [s.numQueues, s.iothread]), [
    [1, null],
    [1, null],
    [1, null],
    [1, null],
  ]);
});

import { assert, assertEquals, assertThrows } from "../../tests/lib/assert.ts";
import { parseCommandLine } from "../config/mod.ts";
import { mmioBus } from "../devices/bus.ts";
import { GuestMemory } from "../memory/guest_memory.ts";
import { buildVirtioMmioDevices, type MmioSlot, VirtioDeviceError } from "./virtio_devices.ts";

async function images(n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const p = await Deno.makeTempFile({ suffix: ".img" });
    await Deno.writeFile(p, new Uint8Array(4096));
    out.push(p);
  }
  return out;
}

function blkLine(files: string[], extra: string[] = []) {
  const args = ["-accel", "test", "-mod-test", "/tmp/unused.sock", ...extra];
  files.forEach((f, i) => {
    args.push("-drive", `id=d${i},file=${f},direct=off`);
    args.push("-device", `virtio-blk-device,id=blk${i},drive=d${i}`);
  });
  return parseCommandLine(args);
}

Deno.test("virtio devices: blk devices take StratoVirt's slots in order, with cmdline words", async () => {
  const files = await images(2);
  const mmio = mmioBus();
  const slots: MmioSlot[] = [];
  const built = buildVirtioMmioDevices(blkLine(files), GuestMemory.anonymous(1 << 20), mmio, {
    interruptFor: (slot) => {
      slots.push(slot);
      return () => {};
    },
  });
  assertEquals(built.devices.map((d) => [d.id, d.slot.base, d.slot.irq]), [
    ["blk0", 0xf010_0000, 5],
    ["blk1", 0xf010_0200, 6],
  ]);
  assertEquals(slots.map((s) => s.index), [0, 1]);
  assertEquals(built.cmdlineArgs, [
    "virtio_mmio.device=512@0xf0100000:5",
    "virtio_mmio.device=512@0xf0100200:6",
  ]);
  assertEquals(mmio.ranges().map((r) => r.name), ["virtio-mmio blk0", "virtio-mmio blk1"]);
  assertEquals(built.notBuilt, []);
  built.close();
  assertEquals(mmio.ranges().length, 0);
  for (const f of files) await Deno.remove(f);
});

Deno.test("virtio devices: a fifth blk device is refused and the first four are released", async () => {
  const files = await images(5);
  const mmio = mmioBus();
  assertThrows(
    () =>
      buildVirtioMmioDevices(blkLine(files), GuestMemory.anonymous(1 << 20), mmio, {
        interruptFor: () => () => {},
      }),
    VirtioDeviceError,
    "-device virtio-blk-device,id=blk4: a microvm takes at most 4 virtio-blk devices",
  );
  assertEquals(mmio.ranges().length, 0);
  for (const f of files) await Deno.remove(f);
});

Deno.test("virtio devices: an image that cannot be opened names the device and drive", () => {
  const mmio = mmioBus();
  const e = assertThrows(
    () =>
      buildVirtioMmioDevices(
        blkLine(["/nonexistent/x.img"]),
        GuestMemory.anonymous(1 << 20),
        mmio,
        { interruptFor: () => () => {} },
      ),
    VirtioDeviceError,
  );
  assert(e.message.startsWith("-device virtio-blk-device,id=blk0: drive d0: "), e.message);
});

Deno.test("virtio devices: drivers not built yet come back in notBuilt", () => {
  const config = parseCommandLine([
    "-accel",
    "test",
    "-object",
    "rng-random,id=rng0,filename=/dev/urandom",
    "-device",
    "virtio-rng-device,rng=rng0,id=rng1",
  ]);
  const built = buildVirtioMmioDevices(config, GuestMemory.anonymous(1 << 20), mmioBus(), {
    interruptFor: () => () => {},
  });
  assertEquals(built.devices.length, 0);
  assertEquals(built.notBuilt.map((d) => d.driver), ["virtio-rng-device"]);
});

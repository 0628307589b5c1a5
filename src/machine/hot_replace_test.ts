/**
 * Hot-replace of a virtio-blk slot's image, as the device thread does it for device_add /
 * device_del, seen by a driver in an in-memory guest: the capacity in the configuration space
 * follows the new image, ConfigGeneration moves, InterruptStatus carries the configuration-change
 * bit and the interrupt line fires; requests then reach the new image (or fail on the empty
 * slot), and the old image got every acknowledged write.
 */
import { assert, assertEquals } from "../../tests/lib/assert.ts";
import { MemoryBackend } from "../devices/virtio/blk/backend.ts";
import { BlkConfig } from "../devices/virtio/blk/device.ts";
import { RequestType } from "../devices/virtio/blk/request.ts";
import { BlkHarness, IOERR, OK } from "../devices/virtio/blk/test_harness.ts";
import { INT_CONFIG, MMIO_CONFIG_OFFSET, MmioReg } from "../devices/virtio/mmio.ts";
import { EMPTY_BACKEND } from "./empty_backend.ts";
import { flushAndClose } from "./flush_close.ts";

function capacity(h: BlkHarness): bigint {
  const lo = h.driver.r32(MMIO_CONFIG_OFFSET + BlkConfig.CAPACITY);
  const hi = h.driver.r32(MMIO_CONFIG_OFFSET + BlkConfig.CAPACITY + 4);
  return (BigInt(hi) << 32n) | BigInt(lo);
}

function serialOf(h: BlkHarness): string {
  const r = h.request(RequestType.GET_ID, 0, { inLen: 20 });
  assertEquals(r.status, OK);
  return new TextDecoder().decode(r.data).replace(/\0+$/, "");
}

Deno.test("hot-replace: an empty slot fills, the driver hears of it and reads the new disk", () => {
  const h = new BlkHarness({ serial: "OLD" });
  try {
    const written = new Uint8Array(512).fill(0x5a);
    assertEquals(h.request(RequestType.OUT, 3, { out: written }).status, OK);
    h.driver.ackInterrupt();
    const irqs = h.irqs;
    const generation = h.driver.r32(MmioReg.CONFIG_GENERATION);

    // device_del: the slot empties.
    flushAndClose(h.device.replaceBackend(EMPTY_BACKEND), "test");
    h.transport.signalConfigChange();
    assertEquals(capacity(h), 0n);
    assertEquals(h.driver.r32(MmioReg.INTERRUPT_STATUS) & INT_CONFIG, INT_CONFIG);
    assertEquals(h.driver.r32(MmioReg.CONFIG_GENERATION), generation + 1);
    assertEquals(h.irqs, irqs + 1);
    // The write acknowledged before the swap is in the old image.
    assertEquals(h.disk().subarray(3 * 512, 4 * 512), written);
    h.driver.ackInterrupt();
    assertEquals(h.request(RequestType.IN, 0, { inLen: 512 }).status, IOERR);
    assertEquals(h.request(RequestType.OUT, 0, { out: written }).status, IOERR);
    assertEquals(h.request(RequestType.FLUSH, 0).status, OK);
    assertEquals(serialOf(h), "");

    // device_add: a new image in the same slot, with its own serial.
    const image = new Uint8Array(8192).map((_, i) => i & 0xff);
    h.device.replaceBackend(new MemoryBackend(image), { serial: "NEW-DISK" });
    h.transport.signalConfigChange();
    assertEquals(capacity(h), 16n);
    assertEquals(h.driver.r32(MmioReg.CONFIG_GENERATION), generation + 2);
    assertEquals(h.irqs, irqs + 2);
    const r = h.request(RequestType.IN, 15, { inLen: 512 });
    assertEquals(r.status, OK);
    assertEquals(r.data, image.subarray(15 * 512));
    assertEquals(serialOf(h), "NEW-DISK");
    assertEquals(h.request(RequestType.IN, 16, { inLen: 512 }).status, IOERR);
  } finally {
    h.close();
  }
});

Deno.test("hot-replace: a read-only image in a writable slot refuses writes on the host", () => {
  const h = new BlkHarness();
  try {
    const image = new Uint8Array(4096).fill(7);
    h.device.replaceBackend(new MemoryBackend(image, true)).close();
    // The driver negotiated a writable disk at probe time; the host still keeps the image intact.
    assert(!(h.negotiated! & (1n << 5n)), "RO was not offered for this slot");
    const r = h.request(RequestType.OUT, 0, { out: new Uint8Array(512) });
    assertEquals(r.status, IOERR);
    assert(image.every((b) => b === 7));
  } finally {
    h.close();
  }
});

Deno.test("hot-replace: with no driver on the device nothing is raised; the next one reads it", () => {
  const h = new BlkHarness();
  try {
    h.driver.w32(MmioReg.STATUS, 0);
    const irqs = h.irqs;
    h.device.replaceBackend(EMPTY_BACKEND).close();
    h.transport.signalConfigChange();
    assertEquals(h.irqs, irqs);
    assertEquals(h.driver.r32(MmioReg.INTERRUPT_STATUS), 0);
    assertEquals(capacity(h), 0n);
  } finally {
    h.close();
  }
});

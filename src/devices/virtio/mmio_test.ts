import { assert, assertEquals, assertThrows } from "../../../tests/lib/assert.ts";
import { GuestMemory } from "../../memory/guest_memory.ts";
import { mmioBus } from "../bus.ts";
import { feature, FeatureBit, Status } from "./constants.ts";
import { ActivationError, type VirtioDevice, type VirtioInterrupt } from "./device.ts";
import {
  INT_CONFIG,
  INT_VRING,
  kernelCmdlineArg,
  MICROVM_MMIO_BASE,
  microvmMmioSlot,
  MMIO_DEVICE_SIZE,
  MmioReg,
  MmioTransport,
} from "./mmio.ts";
import type { Queue } from "./queue.ts";
import { DriverRing, MmioDriver } from "./test_support.ts";

/** A device that records what the transport did to it. */
class FakeDevice implements VirtioDevice {
  readonly deviceType = 2;
  readonly queueMaxSizes = [16, 8];
  readonly deviceFeatures = feature(FeatureBit.VERSION_1) | feature(FeatureBit.EVENT_IDX) |
    (1n << 5n);
  acked: bigint | null = null;
  activations: Queue[][] = [];
  resets = 0;
  notified: number[] = [];
  interrupt: VirtioInterrupt | null = null;
  refuse = false;
  config = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
  ackFeatures(f: bigint) {
    this.acked = f;
  }
  readConfig(offset: number, data: Uint8Array) {
    for (let i = 0; i < data.length; i++) data[i] = this.config[offset + i] ?? 0;
  }
  writeConfig(offset: number, data: Uint8Array) {
    this.config.set(data.subarray(0, Math.max(0, this.config.length - offset)), offset);
  }
  activate(queues: Queue[], _m: GuestMemory, interrupt: VirtioInterrupt) {
    if (this.refuse) throw new ActivationError("refused");
    this.activations.push(queues);
    this.interrupt = interrupt;
  }
  reset() {
    this.resets++;
  }
  notify(i: number) {
    this.notified.push(i);
  }
}

function setup() {
  const memory = GuestMemory.anonymous(0x40000);
  const device = new FakeDevice();
  let irqs = 0;
  const transport = new MmioTransport(device, { memory, interrupt: () => irqs++ });
  const driver = new MmioDriver(transport);
  const rings = [DriverRing.at(memory, 16, 0x1000), DriverRing.at(memory, 8, 0x4000)];
  return { memory, device, transport, driver, rings, irqs: () => irqs };
}

function activate(s: ReturnType<typeof setup>) {
  assert(s.driver.negotiate() !== null);
  s.driver.setupQueue(0, s.rings[0]);
  s.driver.setupQueue(1, s.rings[1]);
  s.driver.driverOk();
}

Deno.test("mmio: identification registers", () => {
  const { driver } = setup();
  assertEquals(driver.r32(MmioReg.MAGIC_VALUE), 0x74726976);
  assertEquals(driver.r32(MmioReg.VERSION), 2);
  assertEquals(driver.r32(MmioReg.DEVICE_ID), 2);
  assertEquals(driver.r32(MmioReg.VENDOR_ID), 0);
  driver.w32(MmioReg.QUEUE_SEL, 1);
  assertEquals(driver.r32(MmioReg.QUEUE_NUM_MAX), 8);
  driver.w32(MmioReg.QUEUE_SEL, 7);
  assertEquals(driver.r32(MmioReg.QUEUE_NUM_MAX), 0);
  assertEquals(driver.r32(MmioReg.SHM_LEN_LOW), 0xffffffff);
});

Deno.test("mmio: feature negotiation, VERSION_1 required, unoffered bits refused", () => {
  const s = setup();
  const { driver, device, transport } = s;
  assertEquals(driver.deviceFeatures(), device.deviceFeatures);
  const f = driver.negotiate();
  assertEquals(f, device.deviceFeatures);
  assertEquals(device.acked, device.deviceFeatures);
  assertEquals(transport.status, Status.ACKNOWLEDGE | Status.DRIVER | Status.FEATURES_OK);

  // Without VERSION_1 (a legacy driver) FEATURES_OK does not stick.
  assertEquals(driver.negotiate(~feature(FeatureBit.VERSION_1)), null);
  assertEquals(driver.status & Status.FEATURES_OK, 0);
  // A feature the device never offered.
  driver.w32(MmioReg.STATUS, 0);
  driver.addStatus(Status.ACKNOWLEDGE);
  driver.addStatus(Status.DRIVER);
  driver.writeDriverFeatures(device.deviceFeatures | (1n << 7n));
  driver.addStatus(Status.FEATURES_OK);
  assertEquals(driver.status & Status.FEATURES_OK, 0);
  // Feature writes after FEATURES_OK are ignored.
  driver.negotiate(feature(FeatureBit.VERSION_1));
  driver.writeDriverFeatures(device.deviceFeatures);
  assertEquals(transport.driverFeatures, feature(FeatureBit.VERSION_1));
});

Deno.test("mmio: status steps out of order are ignored", () => {
  const { driver, transport, device } = setup();
  driver.w32(MmioReg.STATUS, Status.DRIVER);
  assertEquals(transport.status, 0);
  driver.w32(MmioReg.STATUS, Status.ACKNOWLEDGE | Status.DRIVER | Status.DRIVER_OK);
  assertEquals(transport.status, Status.ACKNOWLEDGE | Status.DRIVER);
  assertEquals(device.activations.length, 0);
  driver.w32(MmioReg.STATUS, Status.ACKNOWLEDGE); // clearing DRIVER without a reset
  assertEquals(transport.status, Status.ACKNOWLEDGE | Status.DRIVER);
  driver.w32(MmioReg.STATUS, transport.status | Status.FAILED);
  assert(transport.status & Status.FAILED);
});

Deno.test("mmio: queue setup, activation hands validated queues to the device", () => {
  const s = setup();
  activate(s);
  const { device, transport, rings, driver } = s;
  assert(transport.activated);
  assertEquals(device.activations.length, 1);
  const [q0, q1] = device.activations[0];
  assertEquals([q0.size, q0.descTable, q0.availRing, q0.usedRing, q0.eventIdx], [
    16,
    rings[0].desc,
    rings[0].avail,
    rings[0].used,
    true,
  ]);
  assertEquals(q1.size, 8);
  driver.w32(MmioReg.QUEUE_SEL, 0);
  assertEquals(driver.r32(MmioReg.QUEUE_READY), 1);
  // Queue registers are frozen once DRIVER_OK is set.
  driver.w32(MmioReg.QUEUE_NUM, 4);
  assertEquals(q0.size, 16);
  // Notifications reach the device.
  driver.notify(1);
  driver.notify(9); // no such queue
  assertEquals(device.notified, [1]);
});

Deno.test("mmio: queue addresses take the high words (64-bit)", () => {
  const { driver, transport } = setup();
  driver.negotiate();
  driver.w32(MmioReg.QUEUE_SEL, 0);
  driver.w32(MmioReg.QUEUE_DESC_LOW, 0x1000);
  driver.w32(MmioReg.QUEUE_DESC_HIGH, 0x2);
  driver.w32(MmioReg.QUEUE_DRIVER_HIGH, 0x1);
  driver.w32(MmioReg.QUEUE_DRIVER_LOW, 0x80);
  assertEquals(transport.queues[0].descTable, 0x2_0000_1000);
  assertEquals(transport.queues[0].availRing, 0x1_0000_0080);
});

Deno.test("mmio: a bad ring at DRIVER_OK sets DEVICE_NEEDS_RESET and a config interrupt", () => {
  const s = setup();
  s.driver.negotiate();
  s.driver.setupQueue(0, s.rings[0]);
  s.driver.w32(MmioReg.QUEUE_SEL, 1);
  s.driver.w32(MmioReg.QUEUE_NUM, 8);
  s.driver.w32(MmioReg.QUEUE_DESC_LOW, 0x4008); // not 16-aligned
  s.driver.w32(MmioReg.QUEUE_READY, 1);
  s.driver.driverOk();
  assert(s.transport.status & Status.DEVICE_NEEDS_RESET);
  assertEquals(s.driver.r32(MmioReg.INTERRUPT_STATUS), INT_CONFIG);
  assertEquals(s.irqs(), 1);
  assertEquals(s.device.activations.length, 0);
  assert(!s.transport.activated);
  // The driver's next status write keeps the device's bit; reset clears it.
  s.driver.addStatus(Status.FAILED);
  assert(s.transport.status & Status.DEVICE_NEEDS_RESET);
  s.driver.w32(MmioReg.STATUS, 0);
  assertEquals(s.transport.status, 0);
});

Deno.test("mmio: a device refusing activation ends in DEVICE_NEEDS_RESET", () => {
  const s = setup();
  s.device.refuse = true;
  activate(s);
  assert(s.transport.status & Status.DEVICE_NEEDS_RESET);
  assert(!s.transport.activated);
});

Deno.test("mmio: reset takes the queues back and forgets everything", () => {
  const s = setup();
  activate(s);
  s.device.interrupt!.signalUsedQueue(0);
  const resets = s.device.resets;
  s.driver.w32(MmioReg.STATUS, 0);
  assertEquals(s.device.resets, resets + 1);
  assert(!s.transport.activated);
  assertEquals(s.driver.r32(MmioReg.STATUS), 0);
  assertEquals(s.driver.r32(MmioReg.INTERRUPT_STATUS), 0);
  for (const q of s.transport.queues) {
    assertEquals([q.ready, q.descTable, q.size], [false, 0, q.maxSize]);
  }
  s.driver.notify(0);
  assertEquals(s.device.notified, []);
  // And the whole dance works again.
  activate(s);
  assertEquals(s.device.activations.length, 2);
});

Deno.test("mmio: interrupt status, acknowledge and config generation", () => {
  const s = setup();
  activate(s);
  const hooks = s.device.interrupt!;
  hooks.signalUsedQueue(1);
  assertEquals(s.irqs(), 1);
  assertEquals(s.driver.r32(MmioReg.INTERRUPT_STATUS), INT_VRING);
  const gen = s.driver.r32(MmioReg.CONFIG_GENERATION);
  hooks.signalConfigChange();
  assertEquals(s.driver.r32(MmioReg.CONFIG_GENERATION), gen + 1);
  assertEquals(s.driver.r32(MmioReg.INTERRUPT_STATUS), INT_VRING | INT_CONFIG);
  s.driver.w32(MmioReg.INTERRUPT_ACK, INT_VRING);
  assertEquals(s.driver.r32(MmioReg.INTERRUPT_STATUS), INT_CONFIG);
  hooks.signalNeedsReset("test");
  hooks.signalNeedsReset("again"); // raised once
  assertEquals(s.irqs(), 3);
  assert(s.driver.status & Status.DEVICE_NEEDS_RESET);
});

Deno.test("mmio: a shared InterruptStatus word is updated in place", () => {
  const shared = new Int32Array(new SharedArrayBuffer(4));
  const device = new FakeDevice();
  const t = new MmioTransport(device, {
    memory: GuestMemory.anonymous(0x1000),
    interrupt: () => {},
    interruptStatus: shared,
  });
  t.interruptHooks.signalUsedQueue(0);
  assertEquals(Atomics.load(shared, 0), INT_VRING);
});

Deno.test("mmio: config space at 0x100 takes any access size; registers only 32-bit", () => {
  const { transport, driver } = setup();
  const b = new Uint8Array(2);
  transport.read(0x102, b);
  assertEquals([...b], [3, 4]);
  const q = new Uint8Array(8);
  transport.read(0x104, q);
  assertEquals([...q], [5, 6, 7, 8, 0, 0, 0, 0]);
  transport.write(0x100, new Uint8Array([9]));
  transport.read(0x100, b);
  assertEquals([...b], [9, 2]);
  // A 2-byte read of MagicValue reads zero; a 1-byte Status write is ignored.
  transport.read(MmioReg.MAGIC_VALUE, b);
  assertEquals([...b], [0, 0]);
  transport.write(MmioReg.STATUS, new Uint8Array([1]));
  assertEquals(driver.status, 0);
});

Deno.test("mmio: on the bus at a microvm slot", () => {
  const s = setup();
  const bus = mmioBus();
  const { base, irq } = microvmMmioSlot(0);
  bus.insert(base, MMIO_DEVICE_SIZE, s.transport, "virtio-mmio0");
  const b = new Uint8Array(4);
  assert(bus.read(MICROVM_MMIO_BASE, b));
  assertEquals(new DataView(b.buffer).getUint32(0, true), 0x74726976);
  assertEquals(kernelCmdlineArg(base, irq), "virtio_mmio.device=512@0xf0100000:5");
  assertEquals(microvmMmioSlot(2), { base: 0xf0100400, irq: 7 });
  // Slot 3 skips IRQ 8 (the guest's CMOS RTC); later slots skip 12 and 13 as well.
  assertEquals(microvmMmioSlot(3), { base: 0xf0100600, irq: 9 });
  assertEquals(microvmMmioSlot(6), { base: 0xf0100c00, irq: 14 });
  assertEquals(microvmMmioSlot(7), { base: 0xf0100e00, irq: 15 });
  for (let i = 0; i < 8; i++) assert(![1, 4, 8, 12, 13].includes(microvmMmioSlot(i).irq));
  assertEquals(kernelCmdlineArg(0xd000000, 12), "virtio_mmio.device=512@0x0d000000:12");
  assertThrows(() => microvmMmioSlot(8), RangeError);
});

Deno.test("mmio: random register accesses never throw", () => {
  const s = setup();
  let seed = 12345;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed;
  };
  const sizes = [1, 2, 4, 8, 3, 0];
  for (let i = 0; i < 20000; i++) {
    const offset = rand() % (MMIO_DEVICE_SIZE + 16);
    const data = new Uint8Array(sizes[rand() % sizes.length]);
    for (let j = 0; j < data.length; j++) data[j] = rand() & 0xff;
    // Status writes now and then so the fuzz also reaches activation and reset.
    if (i % 97 === 0) s.driver.w32(MmioReg.STATUS, rand() & 0xff);
    if (rand() % 2) s.transport.read(offset, data);
    else s.transport.write(offset, data);
  }
  // Still a working device afterwards.
  activate(s);
  assert(s.transport.activated);
});

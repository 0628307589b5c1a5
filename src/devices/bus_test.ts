import { assert, assertEquals, assertThrows } from "../../tests/lib/assert.ts";
import { Bus, type BusDevice, BusError, mmioBus, pioBus, readBytewise } from "./bus.ts";

/** A device that records accesses and reads back its offset in every byte. */
class Recorder implements BusDevice {
  log: string[] = [];
  read(offset: number, data: Uint8Array): void {
    this.log.push(`r${offset}:${data.length}`);
    data.fill(offset & 0xff);
  }
  write(offset: number, data: Uint8Array): void {
    this.log.push(`w${offset}:${[...data].join(",")}`);
  }
}

Deno.test("bus: overlapping ranges are refused with both names", () => {
  const bus = pioBus();
  bus.insert(0x3f8, 8, new Recorder(), "serial");
  const e = assertThrows(() => bus.insert(0x3fc, 8, new Recorder(), "other"), BusError);
  assert(e.message.includes("other") && e.message.includes("serial"), e.message);
  assertThrows(() => bus.insert(0x3f0, 9, new Recorder(), "below"), BusError, "overlaps serial");
  assertThrows(() => bus.insert(0x3f8, 1, new Recorder(), "same"), BusError, "overlaps");
  assertThrows(() => bus.insert(0x3f0, 0x20, new Recorder(), "around"), BusError, "overlaps");
  // Touching ranges are fine.
  bus.insert(0x3f0, 8, new Recorder(), "below-ok");
  bus.insert(0x400, 1, new Recorder(), "above-ok");
  assertEquals(bus.ranges().map((r) => r.name), ["below-ok", "serial", "above-ok"]);
});

Deno.test("bus: bad ranges are refused", () => {
  const bus = pioBus();
  assertThrows(() => bus.insert(0xffff, 2, new Recorder(), "x"), BusError, "limit");
  assertThrows(() => bus.insert(0, 0, new Recorder(), "x"), BusError, "length");
  assertThrows(() => bus.insert(-1, 1, new Recorder(), "x"), BusError, "base");
  assertThrows(() => bus.insert(1.5, 1, new Recorder(), "x"), BusError, "base");
});

Deno.test("bus: dispatch gives the device the offset within its range", () => {
  const bus = mmioBus();
  const a = new Recorder();
  const b = new Recorder();
  bus.insert(0xd000_0000, 0x1000, a, "a");
  bus.insert(0xd000_1000, 0x1000, b, "b");
  const data = new Uint8Array(4);
  assert(bus.read(0xd000_1010, data));
  assertEquals([...data], [0x10, 0x10, 0x10, 0x10]);
  assert(bus.write(0xd000_0fff, new Uint8Array([7])));
  assertEquals(a.log, ["w4095:7"]);
  assertEquals(b.log, ["r16:4"]);
});

Deno.test("bus: unassigned accesses return false and touch nothing", () => {
  const bus = pioBus();
  const dev = new Recorder();
  bus.insert(0x70, 2, dev, "rtc");
  const data = new Uint8Array([1, 2]);
  assertEquals(bus.read(0x72, data), false);
  assertEquals(bus.read(0x6f, data), false);
  assertEquals(bus.write(0x1000, data), false);
  assertEquals([...data], [1, 2]);
  assertEquals(dev.log, []);
  assertEquals(new Bus("empty").read(0, data), false);
});

Deno.test("bus: many ranges are found by binary search, remove frees a range", () => {
  const bus = mmioBus();
  const devs: Recorder[] = [];
  // Insert out of order to exercise the sorted insert.
  const order = Array.from({ length: 200 }, (_, i) => (i * 73) % 200);
  for (const i of order) {
    const d = new Recorder();
    devs[i] = d;
    bus.insert(i * 0x200, 0x100, d, `dev${i}`);
  }
  for (let i = 0; i < 200; i++) {
    assertEquals(bus.find(i * 0x200 + 0xff)?.name, `dev${i}`);
    assertEquals(bus.find(i * 0x200 + 0x100), undefined);
  }
  assert(bus.remove(0x200 * 5));
  assertEquals(bus.remove(0x200 * 5), false);
  assertEquals(bus.find(0x200 * 5), undefined);
  bus.insert(0x200 * 5, 0x200, new Recorder(), "replacement");
  assertEquals(bus.find(0x200 * 5 + 0x1ff)?.name, "replacement");
});

Deno.test("bus: a throwing device is reported, the access still completes", () => {
  const faults: string[] = [];
  const bus = pioBus((range, op) => faults.push(`${range.name}:${op}`));
  bus.insert(0x10, 1, {
    read() {
      throw new Error("boom");
    },
    write() {
      throw new Error("boom");
    },
  }, "broken");
  const data = new Uint8Array(2);
  assert(bus.read(0x10, data));
  assertEquals([...data], [0xff, 0xff]);
  assert(bus.write(0x10, data));
  assertEquals(faults, ["broken:read", "broken:write"]);
});

Deno.test("bus: bytewise helpers read 0xff past the registers", () => {
  const data = new Uint8Array(4);
  readBytewise(6, data, 8, (o) => o);
  assertEquals([...data], [6, 7, 0xff, 0xff]);
});

import { assertEquals, assertMatch } from "../../../tests/lib/assert.ts";
import { BootTimer } from "./boot_timer.ts";

Deno.test("boot timer: port 0x3ff values 1 and 2 mark boot start and completion", () => {
  let now = 1000;
  const lines: string[] = [];
  const timer = new BootTimer({ originMs: 400, now: () => now, log: (m) => lines.push(m) });
  timer.pio.write(0, new Uint8Array([1]));
  now = 3500.5;
  timer.pio.write(0, new Uint8Array([2]));
  timer.pio.write(0, new Uint8Array([3])); // not a marker
  assertEquals(timer.events, [
    { kind: "boot-start", source: "pio", sinceStartMs: 600 },
    { kind: "boot-complete", source: "pio", sinceStartMs: 3100.5 },
  ]);
  assertEquals(timer.first("boot-complete")?.sinceStartMs, 3100.5);
  assertEquals(lines.length, 2);
  assertMatch(lines[1], /Kernel boot complete: 3100\.5 ms/);
});

Deno.test("boot timer: Firecracker's MMIO marker is 123 at offset 0", () => {
  const seen: string[] = [];
  const timer = new BootTimer({ originMs: 0, now: () => 42, onEvent: (e) => seen.push(e.source) });
  timer.mmio.write(8, new Uint8Array([123]));
  timer.mmio.write(0, new Uint8Array([122]));
  assertEquals(timer.events.length, 0);
  timer.mmio.write(0, new Uint8Array([123, 0, 0, 0]));
  assertEquals(timer.events, [{ kind: "boot-complete", source: "mmio", sinceStartMs: 42 }]);
  assertEquals(seen, ["mmio"]);
});

Deno.test("boot timer: reads return zeros, odd accesses never throw, events are bounded", () => {
  const timer = new BootTimer({ originMs: 0, now: () => 1 });
  for (const size of [0, 1, 2, 4, 8]) {
    const data = new Uint8Array(size).fill(0xaa);
    timer.pio.read(0, data);
    timer.mmio.read(0xfff, data);
    assertEquals([...data], new Array(size).fill(0));
    timer.pio.write(5, data);
    timer.mmio.write(0, data);
  }
  for (let i = 0; i < 1000; i++) timer.pio.write(0, new Uint8Array([2]));
  assertEquals(timer.events.length, 64);
});

import { assertEquals, assertThrows } from "../../tests/lib/assert.ts";
import { BootError } from "./error.ts";
import { E820_RAM, E820_RESERVED, x86MemoryLayout } from "./layout.ts";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const LOW = [
  { addr: 0, size: 0x9fc00, type: E820_RAM },
  { addr: 0x9fc00, size: 0x400, type: E820_RESERVED },
  { addr: 0xf0000, size: 0, type: E820_RESERVED },
];

Deno.test("layout: 256M is one low region, e820 RAM from 1 MiB to 256M", () => {
  const l = x86MemoryLayout(256 * MiB);
  assertEquals(l.ramRegions, [{ gpa: 0, size: 256 * MiB }]);
  assertEquals(l.memEnd, 256 * MiB);
  assertEquals(l.e820, [...LOW, { addr: 0x100000, size: 255 * MiB, type: E820_RAM }]);
});

Deno.test("layout: 1G", () => {
  const l = x86MemoryLayout(GiB);
  assertEquals(l.ramRegions, [{ gpa: 0, size: GiB }]);
  assertEquals(l.e820, [...LOW, { addr: 0x100000, size: GiB - MiB, type: E820_RAM }]);
});

Deno.test("layout: exactly 3G fills the space below the hole, nothing above 4G", () => {
  const l = x86MemoryLayout(3 * GiB);
  assertEquals(l.ramRegions, [{ gpa: 0, size: 0xc000_0000 }]);
  assertEquals(l.e820[3], { addr: 0x100000, size: 0xc000_0000 - MiB, type: E820_RAM });
  assertEquals(l.e820.length, 4);
});

Deno.test("layout: 3.5G puts 512M above 4 GiB", () => {
  const l = x86MemoryLayout(3.5 * GiB);
  assertEquals(l.ramRegions, [
    { gpa: 0, size: 0xc000_0000 },
    { gpa: 0x1_0000_0000, size: 512 * MiB },
  ]);
  assertEquals(l.memEnd, 0x1_2000_0000);
  assertEquals(l.e820, [
    ...LOW,
    { addr: 0x100000, size: 0xc000_0000 - MiB, type: E820_RAM },
    { addr: 0x1_0000_0000, size: 512 * MiB, type: E820_RAM },
  ]);
});

Deno.test("layout: 4608M skips the 1 GiB hole", () => {
  const l = x86MemoryLayout(4608 * MiB);
  assertEquals(l.ramRegions, [
    { gpa: 0, size: 3 * GiB },
    { gpa: 4 * GiB, size: 4608 * MiB - 3 * GiB },
  ]);
  assertEquals(l.memEnd, 4 * GiB + 1536 * MiB);
  assertEquals(l.e820.slice(3), [
    { addr: 0x100000, size: 3 * GiB - MiB, type: E820_RAM },
    { addr: 4 * GiB, size: 1536 * MiB, type: E820_RAM },
  ]);
  const total = l.ramRegions.reduce((s, r) => s + r.size, 0);
  assertEquals(total, 4608 * MiB);
});

Deno.test("layout: sizes that cannot be laid out are refused", () => {
  assertThrows(() => x86MemoryLayout(MiB), BootError, "too small");
  assertThrows(() => x86MemoryLayout(256 * MiB + 1), BootError, "multiple of 4 KiB");
  assertThrows(() => x86MemoryLayout(NaN), BootError, "too small");
});

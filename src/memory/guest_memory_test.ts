import { assertEquals, assertThrows } from "../../tests/lib/assert.ts";
import { GuestMemory, GuestMemoryError, u64AsNumber } from "./guest_memory.ts";

Deno.test("guest memory: little-endian scalars round-trip", () => {
  const m = GuestMemory.anonymous(4096);
  m.writeU32(0x10, 0x11223344);
  assertEquals(m.readU8(0x10), 0x44);
  assertEquals(m.readU16(0x12), 0x1122);
  m.writeU64(0x20, 0x0102030405060708n);
  assertEquals(m.readU64(0x20), 0x0102030405060708n);
});

Deno.test("guest memory: accesses outside RAM are GuestMemoryError", () => {
  const m = GuestMemory.anonymous(4096, 0x1000);
  assertThrows(() => m.readU32(0xffe), GuestMemoryError);
  assertThrows(() => m.readU32(0x1ffe), GuestMemoryError);
  assertThrows(() => m.slice(0x1000, 4097), GuestMemoryError);
  assertThrows(() => m.write(0x1fff, new Uint8Array(2)), GuestMemoryError);
  assertThrows(() => m.readU8(-1), GuestMemoryError);
  assertThrows(() => m.readU8(2 ** 60), GuestMemoryError);
});

Deno.test("guest memory: reads and writes cross contiguous regions, not holes", () => {
  const m = new GuestMemory([
    { gpa: 0, size: 16, bytes: new Uint8Array(16) },
    { gpa: 16, size: 16, bytes: new Uint8Array(16) },
    { gpa: 64, size: 16, bytes: new Uint8Array(16) },
  ]);
  m.write(12, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
  assertEquals([...m.read(12, 8)], [1, 2, 3, 4, 5, 6, 7, 8]);
  assertThrows(() => m.write(28, new Uint8Array(8)), GuestMemoryError);
  assertThrows(() => m.readU32(14), GuestMemoryError);
});

Deno.test("guest memory: overlapping regions are refused", () => {
  assertThrows(
    () =>
      new GuestMemory([
        { gpa: 0, size: 32, bytes: new Uint8Array(32) },
        { gpa: 16, size: 16, bytes: new Uint8Array(16) },
      ]),
    GuestMemoryError,
  );
});

Deno.test("guest memory: accesses alternating between regions each reach their own", () => {
  // The last region found is tried first; every other access must still find the right one.
  const m = new GuestMemory([
    { gpa: 0, size: 4096, bytes: new Uint8Array(4096) },
    { gpa: 0x1_0000_0000, size: 4096, bytes: new Uint8Array(4096) },
  ]);
  for (let i = 0; i < 8; i++) {
    m.writeU32(0x10 + 4 * i, i);
    m.writeU32(0x1_0000_0010 + 4 * i, 100 + i);
  }
  for (let i = 0; i < 8; i++) {
    assertEquals(m.readU32(0x1_0000_0010 + 4 * i), 100 + i);
    assertEquals(m.readU32(0x10 + 4 * i), i);
  }
  assertThrows(() => m.readU32(0x1000), GuestMemoryError);
  assertThrows(() => m.readU32(0xffe), GuestMemoryError);
});

Deno.test("guest memory: u64AsNumber is exact below 2^53 and -1 from there", () => {
  const view = new DataView(new ArrayBuffer(32));
  view.setBigUint64(0, 2n ** 53n - 1n, true);
  assertEquals(u64AsNumber(view, 0), Number.MAX_SAFE_INTEGER);
  view.setBigUint64(8, 2n ** 53n, true);
  assertEquals(u64AsNumber(view, 8), -1);
  view.setBigUint64(16, 0xffff_ffff_ffff_ffffn, true);
  assertEquals(u64AsNumber(view, 16), -1);
  view.setBigUint64(24, 0x1234_5678_9abcn, true);
  assertEquals(u64AsNumber(view, 24), 0x1234_5678_9abc);
});

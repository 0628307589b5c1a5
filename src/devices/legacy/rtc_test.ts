import { assert, assertEquals } from "../../../tests/lib/assert.ts";
import { CmosRtc } from "./rtc.ts";

function reader(rtc: CmosRtc) {
  return (index: number): number => {
    rtc.write(0, new Uint8Array([index]));
    const b = new Uint8Array(1);
    rtc.read(1, b);
    return b[0];
  };
}
function writer(rtc: CmosRtc) {
  return (index: number, value: number): void => {
    rtc.write(0, new Uint8Array([index]));
    rtc.write(1, new Uint8Array([value]));
  };
}
const bcd = (n: number) => ((Math.floor(n / 10)) << 4) | (n % 10);

// 2026-12-03 (a Thursday) 14:05:09.250 UTC.
const T = Date.UTC(2026, 11, 3, 14, 5, 9, 250);

Deno.test("rtc: reads the host time in BCD, 24-hour, by default", () => {
  const rtc = new CmosRtc({ now: () => T });
  const r = reader(rtc);
  assertEquals(r(0x00), 0x09);
  assertEquals(r(0x02), 0x05);
  assertEquals(r(0x04), 0x14);
  assertEquals(r(0x06), 5, "day of week, Sunday = 1");
  assertEquals(r(0x07), 0x03);
  assertEquals(r(0x08), 0x12);
  assertEquals(r(0x09), 0x26);
  assertEquals(r(0x32), 0x20, "century");
  assertEquals(r(0x0b), 0x02);
  assertEquals(r(0x0d), 0x80, "valid RAM and time");
  assertEquals(r(0x0c), 0);
});

Deno.test("rtc: binary mode and 12-hour mode follow register B", () => {
  const rtc = new CmosRtc({ now: () => T });
  const r = reader(rtc);
  const w = writer(rtc);
  w(0x0b, 0x06); // binary, 24h
  assertEquals([r(0x00), r(0x02), r(0x04), r(0x07), r(0x08), r(0x09)], [9, 5, 14, 3, 12, 26]);
  assertEquals(r(0x32), 20);
  w(0x0b, 0x04); // binary, 12h
  assertEquals(r(0x04), 0x80 | 2, "2 PM");
  w(0x0b, 0x00); // BCD, 12h
  assertEquals(r(0x04), 0x80 | 0x02);
  const midnight = new CmosRtc({ now: () => Date.UTC(2026, 0, 1, 0, 30) });
  writer(midnight)(0x0b, 0x00);
  assertEquals(reader(midnight)(0x04), 0x12, "00:30 is 12 AM");
});

Deno.test("rtc: update-in-progress in the last 244 us of a second only", () => {
  let now = T; // .250 into the second
  const rtc = new CmosRtc({ now: () => now });
  const r = reader(rtc);
  assertEquals(r(0x0a), 0x26);
  now = Date.UTC(2026, 11, 3, 14, 5, 9) + 999.9;
  assertEquals(r(0x0a), 0xa6);
  now = Date.UTC(2026, 11, 3, 14, 5, 10);
  assertEquals(r(0x0a), 0x26);
});

Deno.test("rtc: the guest sets the time with SET, and the clock runs on from there", () => {
  let now = T;
  const rtc = new CmosRtc({ now: () => now });
  const r = reader(rtc);
  const w = writer(rtc);
  // What Linux's mc146818_set_time does: SET, write fields in the current format, clear SET.
  w(0x0b, 0x82);
  w(0x00, bcd(45));
  w(0x02, bcd(59));
  w(0x04, bcd(23));
  w(0x07, bcd(31));
  w(0x08, bcd(12));
  w(0x09, bcd(99));
  w(0x32, bcd(19));
  now += 5000; // frozen while SET
  assertEquals(r(0x00), bcd(45));
  w(0x0b, 0x02);
  assertEquals([r(0x09), r(0x32), r(0x08), r(0x07), r(0x04), r(0x02), r(0x00)], [
    0x99,
    0x19,
    0x12,
    0x31,
    0x23,
    0x59,
    0x45,
  ]);
  now += 31_000;
  assertEquals([r(0x09), r(0x32), r(0x08), r(0x07), r(0x04), r(0x02), r(0x00)], [
    0x00,
    0x20,
    0x01,
    0x01,
    0x00,
    0x00,
    0x16,
  ], "1999-12-31 23:59:45 + 31 s rolls over to 2000");
  // Setting one field on a running clock keeps the others.
  w(0x02, bcd(10));
  assertEquals([r(0x04), r(0x02), r(0x00)], [0x00, 0x10, 0x16]);
});

Deno.test("rtc: garbage written as time leaves the clock where it was", () => {
  const rtc = new CmosRtc({ now: () => T });
  const r = reader(rtc);
  const w = writer(rtc);
  const time = () => [0x09, 0x08, 0x07, 0x04, 0x02, 0x00].map(r);
  const before = time();
  for (const garbage of [0xff, 0x1a, 0x99]) {
    w(0x0b, 0x82);
    for (const i of [0, 2, 4, 7, 8, 9, 0x32]) w(i, garbage);
    w(0x0b, 0x02);
    assertEquals(time(), before, `all fields ${garbage.toString(16)}`);
  }
  // A single bad field on a running clock is refused too.
  w(0x08, 0x13);
  assertEquals(time(), before);
});

Deno.test("rtc: memory size bytes as StratoVirt writes them", () => {
  const GiB = 1024 ** 3;
  const rtc = new CmosRtc({ now: () => T, memSize: 6 * GiB, gapStart: 3 * GiB });
  const r = (i: number) => rtc.readCmos(i);
  assertEquals(r(0x15) | (r(0x16) << 8), 640);
  assertEquals(r(0x17) | (r(0x18) << 8), 63 * 1024);
  assertEquals(r(0x30) | (r(0x31) << 8), 63 * 1024);
  assertEquals(r(0x34) | (r(0x35) << 8), (3 * GiB - 16 * 1024 ** 2) / 65536);
  assertEquals(r(0x5b) | (r(0x5c) << 8) | (r(0x5d) << 16), 3 * GiB / 65536);
  const small = new CmosRtc({ now: () => T, memSize: 128 * 1024 ** 2 });
  assertEquals(small.readCmos(0x34) | (small.readCmos(0x35) << 8), (112 * 1024 ** 2) / 65536);
  assertEquals(small.readCmos(0x5b) | small.readCmos(0x5c) | small.readCmos(0x5d), 0);
});

Deno.test("rtc: index bit 7 is the NMI mask, the index port reads 0xff", () => {
  const rtc = new CmosRtc({ now: () => T });
  rtc.write(0, new Uint8Array([0x80 | 0x0d]));
  assertEquals(rtc.nmiDisabled, true);
  const b = new Uint8Array(1);
  rtc.read(1, b);
  assertEquals(b[0], 0x80, "index 0x0d selected despite the NMI bit");
  rtc.read(0, b);
  assertEquals(b[0], 0xff);
  rtc.write(0, new Uint8Array([0x0d]));
  assertEquals(rtc.nmiDisabled, false);
  // Registers C and D are read-only; CMOS RAM is read-write.
  const w = writer(rtc);
  const r = reader(rtc);
  w(0x0d, 0);
  assertEquals(r(0x0d), 0x80);
  w(0x40, 0xab);
  assertEquals(r(0x40), 0xab);
});

Deno.test("rtc: reading and writing every register at every size never throws", () => {
  const rtc = new CmosRtc({ memSize: 256 * 1024 ** 2 });
  for (let index = 0; index < 256; index++) {
    for (const size of [1, 2, 4, 8]) {
      const data = new Uint8Array(size);
      rtc.write(0, new Uint8Array([index]));
      for (let offset = 0; offset < 4; offset++) rtc.read(offset, data);
    }
  }
  let seed = 3;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let i = 0; i < 20000; i++) {
    const data = new Uint8Array([1, 2, 4, 8][rand(4)]).map(() => rand(256));
    if (rand(2)) rtc.write(rand(4), data);
    else rtc.read(rand(4), data);
  }
  // Whatever the noise did, back in BCD mode the clock reads valid BCD.
  writer(rtc)(0x0b, 0x02);
  const year = reader(rtc)(0x09);
  assert((year >> 4) <= 9 && (year & 0x0f) <= 9, `year ${year.toString(16)}`);
});

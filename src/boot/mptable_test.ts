import { assert, assertEquals, assertThrows } from "../../tests/lib/assert.ts";
import { GuestMemory } from "../memory/guest_memory.ts";
import { BootError } from "./error.ts";
import { buildMpTable, mpTableSize, writeMpTable } from "./mptable.ts";

function sum(bytes: Uint8Array): number {
  return bytes.reduce((s, b) => (s + b) & 0xff, 0);
}

function text(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}

/** Reads the table back the way a guest would, independent of the writer's layout code. */
function parse(mem: GuestMemory, fpAddr: number) {
  const fp = mem.read(fpAddr, 16);
  const cfg = mem.readU32(fpAddr + 4);
  const length = mem.readU16(cfg + 4);
  const table = mem.read(cfg, length);
  const v = new DataView(table.buffer);
  const entries: Record<string, number | string>[] = [];
  let at = 44;
  while (at < length) {
    const type = table[at];
    if (type === 0) {
      entries.push({
        type,
        apicId: table[at + 1],
        version: table[at + 2],
        flags: table[at + 3],
        signature: v.getUint32(at + 4, true),
        features: v.getUint32(at + 8, true),
      });
      at += 20;
    } else {
      const e: Record<string, number | string> = { type };
      if (type === 1) {
        Object.assign(e, { bus: table[at + 1], name: text(table.subarray(at + 2, at + 8)) });
      }
      if (type === 2) {
        Object.assign(e, {
          id: table[at + 1],
          version: table[at + 2],
          flags: table[at + 3],
          addr: v.getUint32(at + 4, true),
        });
      }
      if (type === 3 || type === 4) {
        Object.assign(e, {
          irqType: table[at + 1],
          irqFlags: v.getUint16(at + 2, true),
          srcBus: table[at + 4],
          srcIrq: table[at + 5],
          dst: table[at + 6],
          dstPin: table[at + 7],
        });
      }
      entries.push(e);
      at += 8;
    }
  }
  return { fp, cfg, length, table, v, entries };
}

Deno.test("mptable: floating pointer and header fields, both checksums zero", () => {
  const mem = GuestMemory.anonymous(1 << 20);
  const where = writeMpTable(mem, 2);
  assertEquals(where, { gpa: 0x9fc00, size: mpTableSize(2) });
  const t = parse(mem, 0x9fc00);
  assertEquals(text(t.fp.subarray(0, 4)), "_MP_");
  assertEquals(t.cfg, 0x9fc10);
  assertEquals([t.fp[8], t.fp[9], t.fp[11]], [1, 4, 0]); // length 16 bytes, spec 1.4, no default config
  assertEquals(sum(t.fp), 0);
  assertEquals(text(t.table.subarray(0, 4)), "PCMP");
  assertEquals(t.length, 44 + 2 * 20 + 8 + 8 + 16 * 8 + 2 * 8);
  assertEquals(t.length + 16, where.size);
  assertEquals(t.table[6], 4);
  assertEquals(sum(t.table), 0);
  assertEquals(text(t.table.subarray(8, 16)), "STRATO\0\0");
  assertEquals(text(t.table.subarray(16, 19)), "1.0");
  assertEquals(t.v.getUint16(34, true), t.entries.length);
  assertEquals(t.v.getUint32(36, true), 0xfee0_0000);
});

Deno.test("mptable: processors, ISA bus, IOAPIC, 16 ISA IRQs, LINT0 ExtINT and LINT1 NMI", () => {
  const mem = GuestMemory.anonymous(1 << 20);
  writeMpTable(mem, 3);
  const { entries } = parse(mem, 0x9fc00);
  const cpu = { type: 0, version: 0x14, signature: 0x600, features: 0x201 };
  assertEquals(entries.slice(0, 3), [
    { ...cpu, apicId: 0, flags: 3 },
    { ...cpu, apicId: 1, flags: 1 },
    { ...cpu, apicId: 2, flags: 1 },
  ]);
  assertEquals(entries[3], { type: 1, bus: 0, name: "ISA\0\0\0" });
  assertEquals(entries[4], { type: 2, id: 4, version: 0x14, flags: 1, addr: 0xfec0_0000 });
  for (let irq = 0; irq < 16; irq++) {
    assertEquals(entries[5 + irq], {
      type: 3,
      irqType: 0,
      irqFlags: 0,
      srcBus: 0,
      srcIrq: irq,
      dst: 4,
      dstPin: irq,
    });
  }
  assertEquals(entries[21], {
    type: 4,
    irqType: 3,
    irqFlags: 0,
    srcBus: 0,
    srcIrq: 0,
    dst: 0,
    dstPin: 0,
  });
  assertEquals(entries[22], {
    type: 4,
    irqType: 1,
    irqFlags: 0,
    srcBus: 0,
    srcIrq: 0,
    dst: 0xff,
    dstPin: 1,
  });
  assertEquals(entries.length, 23);
});

Deno.test("mptable: 254 vCPUs, checksums still zero, IOAPIC id 255", () => {
  const bytes = buildMpTable(254);
  assertEquals(bytes.length, mpTableSize(254));
  assertEquals(sum(bytes.subarray(0, 16)), 0);
  assertEquals(sum(bytes.subarray(16)), 0);
  const mem = GuestMemory.anonymous(1 << 20);
  writeMpTable(mem, 254);
  const t = parse(mem, 0x9fc00);
  assertEquals(t.entries.filter((e) => e.type === 0).length, 254);
  assertEquals(t.entries.find((e) => e.type === 2)?.id, 255);
  assert(t.entries.filter((e) => e.type === 0).every((e, i) => e.apicId === i));
});

Deno.test("mptable: honours a chosen address and APIC bases", () => {
  const mem = GuestMemory.anonymous(1 << 20);
  writeMpTable(mem, 1, { gpa: 0xf0000, ioapicAddr: 0xfec1_0000, lapicAddr: 0xfee1_0000 });
  const t = parse(mem, 0xf0000);
  assertEquals(t.cfg, 0xf0010);
  assertEquals(t.v.getUint32(36, true), 0xfee1_0000);
  assertEquals(t.entries.find((e) => e.type === 2)?.addr, 0xfec1_0000);
  assertEquals(sum(t.table), 0);
  assertEquals(sum(t.fp), 0);
});

Deno.test("mptable: out-of-range vCPU counts and a table outside RAM are refused", () => {
  assertThrows(() => buildMpTable(0), BootError, "0 vCPUs is out of range 1..254");
  assertThrows(() => buildMpTable(255), BootError, "255 vCPUs is out of range");
  assertThrows(() => buildMpTable(1.5), BootError, "out of range");
  assertThrows(
    () => writeMpTable(GuestMemory.anonymous(0x9fd00), 4),
    BootError,
    "outside guest RAM",
  );
});

import { assertEquals } from "../../tests/lib/assert.ts";
import { GuestMemory } from "../memory/guest_memory.ts";
import { gdtEntry, longModeGdt, pvhGdt, segmentFromGdtEntry, writeGdt } from "./gdt.ts";

Deno.test("gdt: descriptors pack as Linux's GDT_ENTRY", () => {
  assertEquals(gdtEntry(0xa09b, 0, 0xfffff), 0x00af_9b00_0000_ffffn);
  assertEquals(gdtEntry(0xc093, 0, 0xfffff), 0x00cf_9300_0000_ffffn);
  assertEquals(gdtEntry(0x008b, 0, 0x67), 0x0000_8b00_0000_0067n);
  assertEquals(gdtEntry(0x93, 0x1234_5678, 0x9abcd), 0x1209_9334_5678_abcdn);
});

Deno.test("gdt: a segment decodes every field and scales the limit by g", () => {
  assertEquals(segmentFromGdtEntry(0x1209_9334_5678_abcdn, 0x20), {
    base: 0x1234_5678,
    limit: 0x9abcd,
    selector: 0x20,
    type: 3,
    present: 1,
    dpl: 0,
    db: 0,
    s: 1,
    l: 0,
    g: 0,
    avl: 0,
    unusable: 0,
  });
});

Deno.test("gdt: long-mode table is StratoVirt's, code 0x10 (L=1), data 0x18", () => {
  const t = longModeGdt();
  assertEquals(t.entries, [0n, 0n, 0x00af_9b00_0000_ffffn, 0x00cf_9300_0000_ffffn]);
  assertEquals(t.code, {
    base: 0,
    limit: 0xffff_ffff,
    selector: 0x10,
    type: 11,
    present: 1,
    dpl: 0,
    db: 0,
    s: 1,
    l: 1,
    g: 1,
    avl: 0,
    unusable: 0,
  });
  assertEquals(t.data, { ...t.code, selector: 0x18, type: 3, db: 1, l: 0 });
  assertEquals(t.gdt, { base: 0x500, limit: 31 });
  assertEquals(t.idt, { base: 0x520, limit: 7 });
  assertEquals(t.tss, null);
});

Deno.test("gdt: PVH table has flat 32-bit code 0x08, data 0x10, busy TSS 0x18", () => {
  const t = pvhGdt();
  assertEquals(t.code.selector, 0x08);
  assertEquals([t.code.type, t.code.db, t.code.l, t.code.g, t.code.limit], [
    11,
    1,
    0,
    1,
    0xffff_ffff,
  ]);
  assertEquals([t.data.selector, t.data.type, t.data.db, t.data.s], [0x10, 3, 1, 1]);
  assertEquals(t.tss, {
    base: 0,
    limit: 0x67,
    selector: 0x18,
    type: 11,
    present: 1,
    dpl: 0,
    db: 0,
    s: 0,
    l: 0,
    g: 0,
    avl: 0,
    unusable: 0,
  });
});

Deno.test("gdt: writeGdt stores the descriptors and a zero IDT entry", () => {
  const mem = GuestMemory.anonymous(0x1000);
  mem.fill(0x500, 0x30, 0xee);
  writeGdt(mem, longModeGdt());
  assertEquals(mem.readU64(0x500), 0n);
  assertEquals(mem.readU64(0x508), 0n);
  assertEquals(mem.readU64(0x510), 0x00af_9b00_0000_ffffn);
  assertEquals(mem.readU64(0x518), 0x00cf_9300_0000_ffffn);
  assertEquals(mem.readU64(0x520), 0n);
});

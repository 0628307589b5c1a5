import { assertEquals, assertThrows } from "../../tests/lib/assert.ts";
import { parseElfKernel } from "./elf.ts";
import { BootError } from "./error.ts";
import { fakeElf } from "./test_images.ts";

Deno.test("elf: PT_LOAD segments and the PVH note are found", () => {
  const k = parseElfKernel(fakeElf());
  assertEquals(k.pvhEntry, 0x100_0200);
  assertEquals(k.entry, 0x100_0000);
  assertEquals(k.segments.map((s) => [s.index, s.paddr, s.fileSize, s.memSize]), [
    [0, 0x100_0000, 0x3000, 0x3000],
    [1, 0x110_0000, 0x800, 0x2000],
  ]);
  assertEquals(k.segments[0].fileOffset, 0x1000);
});

Deno.test("elf: a 4-byte PVH note value is read too", () => {
  assertEquals(
    parseElfKernel(fakeElf({ pvhEntry: 0x100_1234, pvhDescSize: 4 })).pvhEntry,
    0x100_1234,
  );
});

Deno.test("elf: no PVH note gives a null entry", () => {
  assertEquals(parseElfKernel(fakeElf({ pvhEntry: null })).pvhEntry, null);
});

Deno.test("elf: malformed images are refused with their problem", () => {
  const good = fakeElf();
  const patched = (at: number, bytes: number[]) => {
    const c = good.slice();
    c.set(bytes, at);
    return c;
  };
  const phdr1 = 64 + 56;
  const cases: [Uint8Array, string][] = [
    [good.slice(0, 40), "v: truncated ELF header (40 bytes)"],
    [fakeElf({ elfClass: 1 }), "not a 64-bit (ELFCLASS64) kernel"],
    [patched(5, [2]), "not a little-endian ELF"],
    [fakeElf({ machine: 3 }), "ELF machine 3 is not x86_64"],
    [patched(56, [0, 0]), "ELF has no program headers"],
    [patched(54, [40, 0]), "program header size 40 is below 56"],
    [patched(56, [0xff, 0xff]), "program headers end past the file"],
    [good.slice(0, 0x1800), "truncated: segment 0 needs file bytes up to 0x4000"],
    [
      patched(phdr1 + 40, [0x10, 0, 0, 0, 0, 0, 0, 0]),
      "segment 1 has p_filesz larger than p_memsz",
    ],
    [
      patched(phdr1 + 24, [0, 0, 0, 0, 0, 0, 0, 0x80]),
      "segment 1 p_paddr 8000000000000000 is out of range",
    ],
    [fakeElf({ pvhEntry: 0x1_0000_0000 }), "PVH entry 0x100000000 is not a 32-bit address"],
  ];
  for (const [image, message] of cases) {
    assertThrows(() => parseElfKernel(image, "v"), BootError, message);
  }
});

Deno.test("elf: a note running past its segment is refused", () => {
  const image = fakeElf();
  const v = new DataView(image.buffer);
  const notePh = 64 + 2 * 56;
  const noteOff = Number(v.getBigUint64(notePh + 8, true));
  v.setUint32(noteOff + 4, 0x1000, true); // GNU note's descsz now overruns
  assertThrows(() => parseElfKernel(image, "v"), BootError, "v: truncated ELF note");
});

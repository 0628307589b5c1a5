import { assertEquals, assertThrows } from "../../tests/lib/assert.ts";
import { bzImageFootprint, looksLikeBzImage, parseSetupHeader } from "./bzimage.ts";
import { BootError } from "./error.ts";
import { fakeBzImage } from "./test_images.ts";

Deno.test("bzImage: setup header fields are read", () => {
  const h = parseSetupHeader(fakeBzImage({ bodySize: 0x3000 }));
  assertEquals(h, {
    setupSects: 4,
    setupSize: 5 * 512,
    protectedModeSize: 0x3000,
    syssize: 0x300,
    version: 0x20f,
    loadflags: 1,
    code32Start: 0x100000,
    initrdAddrMax: 0x7fff_ffff,
    kernelAlignment: 0x200000,
    relocatable: true,
    xloadflags: 3,
    cmdlineSize: 2047,
    prefAddress: 0x100_0000,
    initSize: 0x40_0000,
    headerEnd: 0x26c,
  });
});

Deno.test("bzImage: setup_sects 0 means 4", () => {
  const h = parseSetupHeader(fakeBzImage({ setupSects: 0 }));
  assertEquals([h.setupSects, h.setupSize], [0, 2560]);
  assertEquals(parseSetupHeader(fakeBzImage({ setupSects: 9 })).setupSize, 5120);
});

Deno.test("bzImage: protocols before 2.10 have no pref_address / init_size", () => {
  const h = parseSetupHeader(fakeBzImage({ version: 0x206, prefAddress: 0x123000, initSize: 99 }));
  assertEquals([h.prefAddress, h.initSize, h.xloadflags], [0, 0, 0]);
});

Deno.test("bzImage: footprint covers the decompressed kernel at its run address", () => {
  // relocatable: max(align_up(1 MiB, 2 MiB), pref 16 MiB) + init_size
  const rel = parseSetupHeader(fakeBzImage({ initSize: 0x80_0000 }));
  assertEquals(bzImageFootprint(rel), { start: 0x10_0000, end: 0x180_0000 });
  // relocatable with a pref below the aligned load address
  const low = parseSetupHeader(fakeBzImage({ prefAddress: 0x10_0000, kernelAlignment: 0x40_0000 }));
  assertEquals(bzImageFootprint(low), { start: 0x10_0000, end: 0x40_0000 + 0x40_0000 });
  // not relocatable: runs at pref_address
  const fixed = parseSetupHeader(fakeBzImage({ relocatable: 0, prefAddress: 0x200_0000 }));
  assertEquals(bzImageFootprint(fixed), { start: 0x10_0000, end: 0x240_0000 });
  // init_size smaller than the file body: the body bounds it
  const big = parseSetupHeader(
    fakeBzImage({ bodySize: 0x10_0000, initSize: 0x1000, prefAddress: 0, relocatable: 0 }),
  );
  assertEquals(bzImageFootprint(big), { start: 0x10_0000, end: 0x20_0000 });
});

Deno.test("bzImage: detection looks for HdrS at 0x202", () => {
  assertEquals(looksLikeBzImage(fakeBzImage()), true);
  assertEquals(looksLikeBzImage(fakeBzImage({ magic: 0x1234 })), false);
  assertEquals(looksLikeBzImage(new Uint8Array(0x204)), false);
});

Deno.test("bzImage: every malformed header is refused with its problem", () => {
  const cases: [Uint8Array, string][] = [
    [fakeBzImage({ truncateTo: 0x250 }), "k: truncated (592 bytes)"],
    [fakeBzImage({ magic: 0x11223344 }), 'no "HdrS" magic at 0x202'],
    [fakeBzImage({ bootFlag: 0 }), "boot_flag at 0x1fe is not 0xaa55"],
    [fakeBzImage({ version: 0x205 }), "boot protocol 2.05 is too old (need 2.06+)"],
    [fakeBzImage({ version: 0x200 }), "boot protocol 2.00 is too old"],
    [fakeBzImage({ loadflags: 0x80 }), "loadflags lacks LOADED_HIGH"],
    [fakeBzImage({ xloadflags: 0x2 }), "lacks XLF_KERNEL_64: not a 64-bit kernel"],
    [fakeBzImage({ truncateTo: 2560 }), "no protected-mode kernel after 2560 bytes"],
    [fakeBzImage({ syssize: 0x300 }), "header says 12288 bytes of protected-mode kernel"],
    [fakeBzImage({ code32Start: 0x8000 }), "code32_start 0x8000 is below 1 MiB"],
    [fakeBzImage({ kernelAlignment: 0x30_0000 }), "kernel_alignment 0x300000 is not a power"],
    [fakeBzImage({ kernelAlignment: 0 }), "kernel_alignment 0x0 is not a power"],
    [fakeBzImage({ initrdAddrMax: 0x1000 }), "initrd_addr_max 0x1000 is below 1 MiB"],
    [new Uint8Array(10), "truncated (10 bytes)"],
  ];
  for (const [image, message] of cases) {
    assertThrows(() => parseSetupHeader(image, "k"), BootError, message);
  }
  // A kernel that is not relocatable need not declare an alignment.
  parseSetupHeader(fakeBzImage({ relocatable: 0, kernelAlignment: 0 }));
  // 2.06..2.11 cannot advertise XLF_KERNEL_64: accepted.
  parseSetupHeader(fakeBzImage({ version: 0x20b, xloadflags: 0 }));
});

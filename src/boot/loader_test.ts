import { assert, assertEquals, assertThrows } from "../../tests/lib/assert.ts";
import { GuestMemory } from "../memory/guest_memory.ts";
import { BootError } from "./error.ts";
import { detectKernelFormat, loadLinux, placeInitrd } from "./loader.ts";
import { x86MemoryLayout } from "./layout.ts";
import {
  bodyByte,
  DEFAULT_ELF_SEGMENTS,
  fakeBzImage,
  fakeElf,
  fakeVmlinuxBin,
} from "./test_images.ts";

const MiB = 1 << 20;
const RAM = 64 * MiB;
const CMDLINE = "console=ttyS0 panic=-1 reboot=k";
const INITRD = new Uint8Array(0x2345).map((_, i) => (i * 13) & 0xff);

function ram(size = RAM): GuestMemory {
  return GuestMemory.anonymous(size);
}

function allZero(bytes: Uint8Array): boolean {
  const words = new Int32Array(bytes.buffer, bytes.byteOffset, bytes.length >> 2);
  for (let i = 0; i < words.length; i++) if (words[i] !== 0) return false;
  return true;
}

function cstring(mem: GuestMemory, gpa: number): string {
  let end = gpa;
  while (mem.readU8(end) !== 0) end++;
  return new TextDecoder().decode(mem.read(gpa, end - gpa));
}

function checkE820(mem: GuestMemory, size: number): void {
  const e820 = x86MemoryLayout(size).e820;
  assertEquals(mem.readU8(0x7000 + 0x1e8), e820.length);
  e820.forEach((e, i) => {
    const at = 0x7000 + 0x2d0 + i * 20;
    assertEquals(
      [mem.readU64(at), mem.readU64(at + 8), mem.readU32(at + 16)],
      [BigInt(e.addr), BigInt(e.size), e.type],
    );
  });
  assertEquals(mem.readU64(0x7000 + 0x2d0 + e820.length * 20), 0n);
}

function checkLongModeTables(mem: GuestMemory): void {
  assertEquals(mem.readU64(0x9000), 0xa003n);
  assertEquals(mem.readU64(0x9008), 0n);
  assertEquals(mem.readU64(0xa000), 0xb003n);
  for (let i = 0; i < 512; i++) {
    assertEquals(mem.readU64(0xb000 + i * 8), (BigInt(i) << 21n) | 0x83n);
  }
  assertEquals(
    [0x500, 0x508, 0x510, 0x518, 0x520].map((a) => mem.readU64(a)),
    [0n, 0n, 0x00af_9b00_0000_ffffn, 0x00cf_9300_0000_ffffn, 0n],
  );
  assertEquals(new TextDecoder().decode(mem.read(0x9fc00, 4)), "_MP_");
}

const FLAT64 = { base: 0, limit: 0xffff_ffff, present: 1, dpl: 0, s: 1, g: 1, avl: 0, unusable: 0 };

Deno.test("loader: bzImage is loaded at code32_start and entered in long mode", () => {
  const mem = ram();
  const image = fakeBzImage({ bodySize: 0x3000 });
  const s = loadLinux(mem, { kernel: image, initrd: INITRD, cmdline: CMDLINE, cpus: 2 });

  assertEquals([s.format, s.mode], ["bzimage", "long64"]);
  assertEquals(s.regs, { rip: 0x100200, rsp: 0x8ff0, rbp: 0x8ff0, rsi: 0x7000, rbx: 0, rflags: 2 });
  const code = { ...FLAT64, selector: 0x10, type: 11, db: 0, l: 1 };
  const data = { ...FLAT64, selector: 0x18, type: 3, db: 1, l: 0 };
  assertEquals(s.sregs, {
    cs: code,
    ds: data,
    es: data,
    fs: data,
    gs: data,
    ss: data,
    tr: null,
    gdt: { base: 0x500, limit: 31 },
    idt: { base: 0x520, limit: 7 },
    cr0: 0x8000_0011,
    cr3: 0x9000,
    cr4: 0x20,
    efer: 0x500,
  });
  assertEquals(s.fpu, { fcw: 0x37f, mxcsr: 0x1f80 });
  assertEquals(s.msrs.find((m) => m.index === 0x1a0)?.value, 1);
  // relocatable, pref 16 MiB, init_size 4 MiB: the kernel will occupy up to 20 MiB
  assertEquals(s.kernel, { start: 0x100000, end: 0x140_0000, entry: 0x100200 });
  assertEquals(s.zeroPage, 0x7000);
  assertEquals(s.pvhStartInfo, null);

  // protected-mode kernel copied from file offset (setup_sects + 1) * 512
  assertEquals(mem.read(0x100000, 0x3000), image.subarray(2560));
  assertEquals(mem.readU8(0xfffff), 0);
  assertEquals(mem.readU8(0x103000), 0);

  // zero page: the file's setup header, with the loader's fields
  const hdr = mem.read(0x7000 + 0x1f1, 0x26c - 0x1f1);
  const expected = image.slice(0x1f1, 0x26c);
  const ev = new DataView(expected.buffer);
  ev.setUint16(0x1fa - 0x1f1, 0xffff, true);
  expected[0x210 - 0x1f1] = 0xff;
  ev.setUint32(0x218 - 0x1f1, 64 * MiB - 0x3000, true);
  ev.setUint32(0x21c - 0x1f1, INITRD.length, true);
  ev.setUint32(0x228 - 0x1f1, 0x20000, true);
  assertEquals(hdr, expected);
  assertEquals(mem.readU32(0x7000 + 0x238), 2047); // cmdline_size left as the kernel says
  assertEquals(mem.read(0x7000, 0x1e8), new Uint8Array(0x1e8));
  assertEquals(mem.read(0x7000 + 0x26c, 0x2d0 - 0x26c), new Uint8Array(0x2d0 - 0x26c));
  checkE820(mem, RAM);

  assertEquals(cstring(mem, 0x20000), CMDLINE);
  assertEquals(s.cmdline, { gpa: 0x20000, size: CMDLINE.length + 1 });
  // initrd at the top of RAM, page aligned
  assertEquals(s.initrd, { gpa: 64 * MiB - 0x3000, size: INITRD.length });
  assertEquals(mem.read(64 * MiB - 0x3000, INITRD.length), INITRD);
  checkLongModeTables(mem);
  assertEquals(s.mptable, { gpa: 0x9fc00, size: 16 + 44 + 2 * 20 + 20 * 8 });
  assertEquals(s.areas.map((a) => a.name), [
    "kernel",
    "initrd",
    "cmdline",
    "mptable",
    "gdt",
    "idt",
    "zero-page",
    "page-tables",
  ]);
});

Deno.test("loader: bzImage initrd stays below the kernel's initrd_addr_max", () => {
  const mem = ram();
  const image = fakeBzImage({ initrdAddrMax: 0x1ff_ffff });
  const s = loadLinux(mem, { kernel: image, initrd: INITRD, cmdline: "", cpus: 1 });
  assertEquals(s.initrd?.gpa, 0x200_0000 - 0x3000);
  assertEquals(mem.readU32(0x7000 + 0x218), 0x200_0000 - 0x3000);
  assertEquals(cstring(mem, 0x20000), "");
});

Deno.test("loader: no initrd leaves ramdisk fields zero", () => {
  const mem = ram();
  const s = loadLinux(mem, { kernel: fakeBzImage(), cmdline: CMDLINE, cpus: 1 });
  assertEquals(s.initrd, null);
  assertEquals([mem.readU32(0x7218), mem.readU32(0x721c)], [0, 0]);
});

Deno.test("loader: flat vmlinux.bin is loaded and entered at 16 MiB in long mode", () => {
  const mem = ram();
  mem.fill(0x7000, 0x1000, 0xee); // a previous boot's zero page is fully replaced
  const kernel = fakeVmlinuxBin(0x5000);
  const s = loadLinux(mem, { kernel, initrd: INITRD, cmdline: CMDLINE, cpus: 4 });
  assertEquals([s.format, s.mode], ["vmlinux-bin", "long64"]);
  assertEquals(s.regs.rip, 0x100_0000);
  assertEquals(s.regs.rsi, 0x7000);
  assertEquals(s.sregs.cs.selector, 0x10);
  assertEquals([s.sregs.cr0, s.sregs.cr3, s.sregs.cr4, s.sregs.efer], [
    0x8000_0011,
    0x9000,
    0x20,
    0x500,
  ]);
  assertEquals(s.kernel, { start: 0x100_0000, end: 0x100_5000, entry: 0x100_0000 });
  assertEquals(mem.read(0x100_0000, 0x5000), kernel);
  // StratoVirt's minimal header for a kernel that has none
  assertEquals(mem.readU16(0x7000 + 0x1fe), 0xaa55);
  assertEquals(mem.readU32(0x7000 + 0x202), 0x5372_6448);
  assertEquals(mem.readU8(0x7000 + 0x210), 0xff);
  assertEquals(mem.readU32(0x7000 + 0x228), 0x20000);
  assertEquals(mem.readU32(0x7000 + 0x238), CMDLINE.length);
  assertEquals(mem.readU32(0x7000 + 0x218), 64 * MiB - 0x3000);
  assertEquals(mem.readU32(0x7000 + 0x21c), INITRD.length);
  assertEquals(mem.readU16(0x7000 + 0x206), 0); // no protocol version: not a bzImage
  assertEquals(mem.read(0x7000, 0x1e8), new Uint8Array(0x1e8));
  checkE820(mem, RAM);
  checkLongModeTables(mem);
  assertEquals(mem.read(64 * MiB - 0x3000, INITRD.length), INITRD);
});

Deno.test("loader: ELF vmlinux boots through PVH in 32-bit protected mode", () => {
  const mem = ram();
  mem.fill(0x110_0000, 0x2000, 0xee); // the BSS must come out zeroed
  const kernel = fakeElf();
  const s = loadLinux(mem, { kernel, initrd: INITRD, cmdline: CMDLINE, cpus: 2 });
  assertEquals([s.format, s.mode], ["pvh", "protected32"]);
  assertEquals(s.regs, {
    rip: 0x100_0200,
    rsp: 0x8ff0,
    rbp: 0x8ff0,
    rsi: 0,
    rbx: 0x6000,
    rflags: 2,
  });
  const flat32 = { base: 0, limit: 0xffff_ffff, present: 1, dpl: 0, s: 1, l: 0, g: 1, avl: 0 };
  const code = { ...flat32, selector: 0x08, type: 11, db: 1, unusable: 0 };
  const data = { ...flat32, selector: 0x10, type: 3, db: 1, unusable: 0 };
  assertEquals(s.sregs.cs, code);
  for (const seg of [s.sregs.ds, s.sregs.es, s.sregs.ss, s.sregs.fs, s.sregs.gs]) {
    assertEquals(seg, data);
  }
  assertEquals(s.sregs.tr?.selector, 0x18);
  assertEquals([s.sregs.tr?.type, s.sregs.tr?.limit, s.sregs.tr?.s], [11, 0x67, 0]);
  assertEquals([s.sregs.cr0, s.sregs.cr3, s.sregs.cr4, s.sregs.efer], [0x11, 0, 0, 0]);
  assertEquals(s.sregs.gdt, { base: 0x500, limit: 31 });
  assertEquals(mem.readU64(0x508), 0x00cf_9b00_0000_ffffn);
  assertEquals(mem.readU64(0x510), 0x00cf_9300_0000_ffffn);
  assertEquals(mem.readU64(0x518), 0x0000_8b00_0000_0067n);
  assertEquals(s.zeroPage, null);
  assertEquals(s.pvhStartInfo, 0x6000);
  assertEquals(s.kernel, { start: 0x100_0000, end: 0x110_2000, entry: 0x100_0200 });

  // segments at their physical addresses, BSS zeroed
  assertEquals(mem.read(0x100_0000, 0x3000), DEFAULT_ELF_SEGMENTS[0].data);
  assertEquals(mem.read(0x110_0000, 0x800), new Uint8Array(0x800).fill(0xcc));
  assertEquals(mem.read(0x110_0800, 0x1800), new Uint8Array(0x1800));
  assertEquals(mem.readU8(0x100_0000 + 5), bodyByte(5));

  // hvm_start_info
  assertEquals(mem.readU32(0x6000), 0x336e_c578);
  assertEquals(mem.readU32(0x6004), 1);
  assertEquals(mem.readU32(0x6008), 0);
  assertEquals(mem.readU32(0x600c), 1);
  assertEquals(mem.readU64(0x6010), 0x6040n);
  assertEquals(mem.readU64(0x6018), 0x20000n);
  assertEquals(mem.readU64(0x6020), 0n);
  assertEquals(mem.readU64(0x6028), 0x7000n);
  const e820 = x86MemoryLayout(RAM).e820;
  assertEquals(mem.readU32(0x6030), e820.length);
  assertEquals(mem.readU32(0x6034), 0);
  // module list: the initrd
  assertEquals(
    [mem.readU64(0x6040), mem.readU64(0x6048), mem.readU64(0x6050), mem.readU64(0x6058)],
    [BigInt(64 * MiB - 0x3000), BigInt(INITRD.length), 0n, 0n],
  );
  e820.forEach((e, i) => {
    const at = 0x7000 + i * 24;
    assertEquals(
      [mem.readU64(at), mem.readU64(at + 8), mem.readU32(at + 16), mem.readU32(at + 20)],
      [BigInt(e.addr), BigInt(e.size), e.type, 0],
    );
  });
  assertEquals(cstring(mem, 0x20000), CMDLINE);
  assertEquals(mem.read(64 * MiB - 0x3000, INITRD.length), INITRD);
  assertEquals(new TextDecoder().decode(mem.read(0x9fc00, 4)), "_MP_");
});

Deno.test("loader: PVH without an initrd has no modules", () => {
  const mem = ram();
  const s = loadLinux(mem, { kernel: fakeElf(), cmdline: CMDLINE, cpus: 1 });
  assertEquals(s.initrd, null);
  assertEquals([mem.readU32(0x600c), mem.readU64(0x6010)], [0, 0n]);
});

Deno.test("loader: format detection by content, or by explicit choice", () => {
  assertEquals(detectKernelFormat(fakeBzImage()), "bzimage");
  assertEquals(detectKernelFormat(fakeElf()), "pvh");
  assertEquals(detectKernelFormat(fakeVmlinuxBin()), "vmlinux-bin");
  assertThrows(
    () => detectKernelFormat(fakeElf({ pvhEntry: null }), "vmlinux"),
    BootError,
    "vmlinux: ELF kernel has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)",
  );
  assertThrows(() => detectKernelFormat(new Uint8Array()), BootError, "kernel image is empty");
  // forcing vmlinux.bin on a bzImage loads the whole file flat at 16 MiB
  const mem = ram();
  const image = fakeBzImage();
  const s = loadLinux(mem, { kernel: image, cmdline: "", cpus: 1, format: "vmlinux-bin" });
  assertEquals([s.format, s.regs.rip], ["vmlinux-bin", 0x100_0000]);
  assertEquals(mem.read(0x100_0000, image.length), image);
  // forcing bzImage on a flat blob reports what is wrong with it
  assertThrows(
    () => loadLinux(ram(), { kernel: fakeVmlinuxBin(), cmdline: "", cpus: 1, format: "bzimage" }),
    BootError,
    'kernel: no "HdrS" magic',
  );
});

Deno.test("loader: placeInitrd puts it page aligned below the limit, above the kernel", () => {
  assertEquals(placeInitrd(0x1000, 0x200_0000, 0x37ff_ffff), 0x37ff_e000);
  assertEquals(placeInitrd(0x2001, 0x100_0000, 0x400_0000), 0x3ffd000);
  assertEquals(placeInitrd(0x1000, 0x3000, 0x4000), 0x3000);
  assertThrows(
    () => placeInitrd(0x1001, 0x3000, 0x4000, "rd"),
    BootError,
    "rd: 4097 bytes do not fit",
  );
  assertThrows(() => placeInitrd(0, 0x3000, 0x4000, "rd"), BootError, "rd: the initrd is empty");
});

Deno.test("loader: refusals name the problem and leave guest memory untouched", () => {
  const cases: [string, () => Parameters<typeof loadLinux>[1], string][] = [
    ["cmdline over cmdline_size", () => ({
      kernel: fakeBzImage({ cmdlineSize: 10 }),
      cmdline: "console=ttyS0",
      cpus: 1,
    }), "kernel command line is 13 bytes, kernel accepts at most 10"],
    ["cmdline with NUL", () => ({ kernel: fakeElf(), cmdline: "a\0b", cpus: 1 }), "NUL byte"],
    ["cmdline over the space", () => ({
      kernel: fakeElf(),
      cmdline: "x".repeat(0x7fc00),
      cpus: 1,
    }), "kernel command line is 523264 bytes, at most 523263 fit"],
    ["initrd too big", () => ({
      kernel: fakeBzImage(),
      initrd: new Uint8Array(50 * MiB),
      initrdName: "big.img",
      cmdline: "",
      cpus: 1,
    }), "big.img: 52428800 bytes do not fit between the kernel's end 0x1400000 and 0x4000000"],
    ["empty initrd", () => ({
      kernel: fakeBzImage(),
      initrd: new Uint8Array(0),
      cmdline: "",
      cpus: 1,
    }), "initrd: the initrd is empty"],
    ["vmlinux.bin larger than RAM", () => ({
      kernel: fakeVmlinuxBin(49 * MiB),
      kernelName: "vmlinux.bin",
      cmdline: "",
      cpus: 1,
    }), "vmlinux.bin: the kernel needs RAM up to 0x4100000, the guest has 0x4000000"],
    ["bzImage init_size beyond RAM", () => ({
      kernel: fakeBzImage({ initSize: 60 * MiB }),
      cmdline: "",
      cpus: 1,
    }), "the kernel needs RAM up to 0x4c00000"],
    ["ELF segment past RAM", () => ({
      kernel: fakeElf({ segments: [{ paddr: 0x3ff_f000, data: new Uint8Array(0x2000) }] }),
      kernelName: "vmlinux",
      cmdline: "",
      cpus: 1,
    }), "vmlinux: segment 0 at 0x3fff000+0x2000 lies outside guest RAM above 1 MiB"],
    ["ELF segment below 1 MiB", () => ({
      kernel: fakeElf({ segments: [{ paddr: 0x8000, data: new Uint8Array(0x100) }] }),
      cmdline: "",
      cpus: 1,
    }), "segment 0 at 0x8000+0x100 lies outside guest RAM above 1 MiB"],
    ["PVH entry outside the segments", () => ({
      kernel: fakeElf({ pvhEntry: 0x200_0000 }),
      cmdline: "",
      cpus: 1,
    }), "PVH entry 0x2000000 is not inside a loaded segment"],
    ["ELF without PVH note, forced", () => ({
      kernel: fakeElf({ pvhEntry: null }),
      cmdline: "",
      cpus: 1,
      format: "pvh",
    }), "ELF kernel has no PVH entry note"],
    ["too many vCPUs", () => ({ kernel: fakeElf(), cmdline: "", cpus: 255 }), "255 vCPUs"],
    ["truncated bzImage", () => ({
      kernel: fakeBzImage({ bodySize: 0x2000, syssize: 0x400 }),
      kernelName: "bzImage",
      cmdline: "",
      cpus: 1,
    }), "bzImage: truncated: header says 16384 bytes"],
  ];
  for (const [what, config, message] of cases) {
    const mem = ram();
    assertThrows(() => loadLinux(mem, config()), BootError, message);
    assert(allZero(mem.regions[0].bytes), `${what}: guest memory was written`);
  }
});

Deno.test("loader: guest memory that does not follow the layout is refused", () => {
  const shifted = GuestMemory.anonymous(16 * MiB, 0x1000);
  assertThrows(
    () => loadLinux(shifted, { kernel: fakeElf(), cmdline: "", cpus: 1 }),
    BootError,
    "guest memory does not follow the x86 layout for 0x1000000 bytes: no RAM at 0x0+0x1000000",
  );
  assertThrows(
    () => loadLinux(GuestMemory.anonymous(MiB), { kernel: fakeElf(), cmdline: "", cpus: 1 }),
    BootError,
    "too small",
  );
});

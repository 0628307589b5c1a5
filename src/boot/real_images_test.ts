/** The loaders against the reference guest kernel, when it is there (STRATOVIRT_GUEST_DIR). */
import { assert, assertEquals } from "../../tests/lib/assert.ts";
import { file, testWhen } from "../../tests/lib/skip.ts";
import { GuestMemory } from "../memory/guest_memory.ts";
import { XLF_KERNEL_64 } from "./bzimage.ts";
import { detectKernelFormat, loadLinux } from "./loader.ts";
import { parseElfKernel, parseSetupHeader } from "./mod.ts";

const GUEST_DIR = Deno.env.get("STRATOVIRT_GUEST_DIR") ?? "/work/shared/guest";
const VMLINUX = `${GUEST_DIR}/vmlinux`;
const BZIMAGE = `${GUEST_DIR}/bzImage`;
const INITRD = `${GUEST_DIR}/initramfs-tiny.cpio`;
const MiB = 1 << 20;

testWhen([file(VMLINUX, "guest vmlinux")], "real vmlinux: PVH entry inside its image", () => {
  const image = Deno.readFileSync(VMLINUX);
  assertEquals(detectKernelFormat(image), "pvh");
  const elf = parseElfKernel(image, VMLINUX);
  const entry = elf.pvhEntry!;
  assert(elf.segments.every((s) => s.paddr >= MiB), "segments below 1 MiB");
  assert(
    elf.segments.some((s) => entry >= s.paddr && entry < s.paddr + s.fileSize),
    `PVH entry 0x${entry.toString(16)} is not in a loaded segment`,
  );
  const mem = GuestMemory.anonymous(256 * MiB);
  const s = loadLinux(mem, { kernel: image, cmdline: "console=ttyS0", cpus: 1 });
  assertEquals([s.mode, s.regs.rip, s.regs.rbx], ["protected32", entry, 0x6000]);
  assertEquals(mem.readU32(0x6000), 0x336e_c578);
  // the PVH entry's first instruction bytes are the file's
  const seg = elf.segments.find((x) => entry >= x.paddr && entry < x.paddr + x.fileSize)!;
  const off = seg.fileOffset + entry - seg.paddr;
  assertEquals(mem.read(entry, 16), image.subarray(off, off + 16));
});

testWhen(
  [file(BZIMAGE, "guest bzImage"), file(INITRD, "guest initramfs-tiny.cpio")],
  "real bzImage: setup header is a 64-bit Linux 6.1 kernel's",
  () => {
    const image = Deno.readFileSync(BZIMAGE);
    assertEquals(detectKernelFormat(image), "bzimage");
    const h = parseSetupHeader(image, BZIMAGE);
    assert(h.version >= 0x20c, `protocol 0x${h.version.toString(16)} < 2.12`);
    assert((h.xloadflags & XLF_KERNEL_64) !== 0, "no XLF_KERNEL_64");
    assertEquals(h.code32Start, 0x10_0000);
    assert(h.protectedModeSize >= h.syssize * 16, "protected-mode kernel shorter than syssize");
    assert(h.initSize >= h.protectedModeSize, "init_size smaller than the loaded kernel");
    assert(h.cmdlineSize >= 255, `cmdline_size ${h.cmdlineSize}`);
    const initrd = Deno.readFileSync(INITRD);
    const mem = GuestMemory.anonymous(256 * MiB);
    const s = loadLinux(mem, { kernel: image, initrd, cmdline: "console=ttyS0", cpus: 2 });
    assertEquals([s.mode, s.regs.rip, s.regs.rsi], ["long64", 0x10_0200, 0x7000]);
    assertEquals(mem.read(0x10_0000, 64), image.subarray(h.setupSize, h.setupSize + 64));
    assertEquals(mem.read(s.initrd!.gpa, initrd.length), initrd);
    assert(s.initrd!.gpa >= s.kernel.end, "initrd overlaps the decompressed kernel");
  },
);

/**
 * Structure of the guest images scripts/guest/build.sh produces (the directory named by
 * STRATOVIRT_GUEST_DIR): the right formats, boot entry points and contents, without booting.
 */
import { assert, assertEquals, assertMatch } from "../lib/assert.ts";
import { file, testWhen } from "../lib/skip.ts";
import {
  bzImageHeader,
  cpioEntries,
  elfMachine,
  elfNotes,
  elfSegments,
  EXT4_FEATURE_INCOMPAT_EXTENTS,
  ext4Superblock,
  PT_LOAD,
  S_IFCHR,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  XEN_ELFNOTE_PHYS32_ENTRY,
} from "./image_formats.ts";

const dir = Deno.env.get("STRATOVIRT_GUEST_DIR");
const built = file(dir, "guest images (STRATOVIRT_GUEST_DIR)");
const read = (name: string) => Deno.readFileSync(`${dir}/${name}`);
const EM_X86_64 = 62;
const LZ4_LEGACY_MAGIC = [0x02, 0x21, 0x4c, 0x18];

testWhen([built], "guest vmlinux is an x86-64 ELF with a PVH entry note", () => {
  const vmlinux = read("vmlinux");
  assertEquals(elfMachine(vmlinux), EM_X86_64);
  const pvh = elfNotes(vmlinux).find((n) =>
    n.name === "Xen" && n.type === XEN_ELFNOTE_PHYS32_ENTRY
  );
  assert(pvh, "no Xen PHYS32_ENTRY note: the kernel lacks CONFIG_PVH");
  assert(pvh.desc.length >= 4, "PVH note descriptor too short");
  const entry = new DataView(pvh.desc.buffer).getUint32(0, true);
  assert(
    entry > 0 && entry < 0x1_0000_0000,
    `PVH entry ${entry.toString(16)} not a 32-bit address`,
  );
});

testWhen([built], "guest vmlinux.bin is vmlinux's first loadable segment onwards", () => {
  const vmlinux = read("vmlinux");
  const flat = read("vmlinux.bin");
  const first = elfSegments(vmlinux).filter((s) => s.type === PT_LOAD)
    .sort((a, b) => a.paddr - b.paddr)[0];
  assert(first, "vmlinux has no PT_LOAD segment");
  assert(flat.length >= first.filesz, "vmlinux.bin shorter than the first segment");
  const segment = vmlinux.subarray(first.offset, first.offset + first.filesz);
  assertEquals(flat.subarray(0, 4096), segment.subarray(0, 4096));
  assertEquals(flat.subarray(first.filesz - 4096, first.filesz), segment.subarray(-4096));
});

testWhen([built], "guest bzImage has a boot protocol header and an LZ4 payload", () => {
  const bz = read("bzImage");
  const header = bzImageHeader(bz);
  assertEquals(header.bootFlag, 0xaa55);
  assert(header.version >= 0x020c, `boot protocol ${header.version.toString(16)} < 2.12`);
  assert(header.loadFlags & 1, "LOADED_HIGH not set: not a bzImage");
  const payloadAt = (header.setupSects + 1) * 512 + header.payloadOffset;
  assertEquals([...bz.subarray(payloadAt, payloadAt + 4)], LZ4_LEGACY_MAGIC);
});

testWhen([built], "guest initramfs.cpio carries the busybox init and /etc/sv scripts", () => {
  const entries = new Map(cpioEntries(read("initramfs.cpio")).map((e) => [e.name, e]));
  const init = entries.get("init");
  assert(init, "no /init");
  assertEquals(init.mode & S_IFMT, S_IFREG);
  assert(init.mode & 0o100, "/init is not executable");
  assertMatch(new TextDecoder().decode(init.data.subarray(0, 64)), /^#!\/bin\/sh\n/);
  const console = entries.get("dev/console");
  assert(console, "no /dev/console: init would start without stdio");
  assertEquals([console.mode & S_IFMT, console.rdevMajor, console.rdevMinor], [S_IFCHR, 5, 1]);
  for (const name of ["bin/busybox", "etc/sv/disks", "etc/sv/blkpattern", "etc/sv/cpuinfo"]) {
    const entry = entries.get(name);
    assert(entry && (entry.mode & S_IFMT) === S_IFREG, `missing ${name}`);
  }
  const sbinInit = entries.get("sbin/init");
  assert(sbinInit && (sbinInit.mode & S_IFMT) === S_IFLNK, "sbin/init is not a symlink");
  assertEquals(new TextDecoder().decode(sbinInit.data), "/init");
  const poweroff = entries.get("sbin/poweroff");
  assert(poweroff && (poweroff.mode & S_IFMT) === S_IFREG, "poweroff is not the reset wrapper");
});

testWhen([built], "guest initramfs-tiny.cpio is a static ELF /init and /dev/console", () => {
  const entries = cpioEntries(read("initramfs-tiny.cpio"));
  const init = entries.find((e) => e.name === "init");
  assert(init, "no /init");
  assert(init.data.length < 64 * 1024, `tiny /init is ${init.data.length} bytes`);
  assertEquals(elfMachine(init.data), EM_X86_64);
  assert(!elfSegments(init.data).some((s) => s.type === 3), "tiny /init has an interpreter");
  assert(entries.some((e) => e.name === "dev/console" && (e.mode & S_IFMT) === S_IFCHR));
});

for (const image of ["rootfs.ext4", "rootfs-bench.ext4"]) {
  const present = image === "rootfs.ext4"
    ? built
    : file(dir ? `${dir}/${image}` : undefined, `${image} (build.sh --bench)`);
  testWhen([built, present], `guest ${image} is ext4 labelled svroot`, () => {
    const bytes = read(image);
    const sb = ext4Superblock(bytes);
    assertEquals(sb.magic, 0xef53);
    assertEquals(sb.label, "svroot");
    assert(sb.featureIncompat & EXT4_FEATURE_INCOMPAT_EXTENTS, "no extents: not ext4");
    assertEquals(sb.blocksCount * sb.blockSize, bytes.length);
  });
}

testWhen([built], "guest config and cmdline match the kernel variant", () => {
  const config = new TextDecoder().decode(read("config"));
  const cmdline = new TextDecoder().decode(read("cmdline")).trim();
  for (const option of ["PVH", "VIRTIO_MMIO_CMDLINE_DEVICES", "VIRTIO_BLK", "DEVPORT", "EXT4_FS"]) {
    assertMatch(config, new RegExp(`^CONFIG_${option}=y$`, "m"));
  }
  assertMatch(cmdline, /^console=ttyS0 panic=-1 /);
  const variant = new TextDecoder().decode(read("variant")).trim();
  assert(variant === "pvm" || variant === "standard", `unknown variant ${variant}`);
  if (variant === "pvm") {
    for (const word of ["no_int3_selftest", "pvm_syscall_fixup", "noxsave"]) {
      assert(cmdline.split(" ").includes(word), `pvm cmdline lacks ${word}`);
    }
  } else {
    assertEquals(cmdline, "console=ttyS0 panic=-1 quiet");
  }
});

/**
 * virtio-blk on the KVM microvm, through the command line a user types: Linux boots with its root
 * filesystem on /dev/vda (no initramfs), sees every disk with its size and read-only flag, and
 * what the guest writes and syncs is in the host file — even when the VMM is SIGKILLed right
 * after the guest's sync. Each boot costs 1–4 minutes here (kvm_pvm emulates the guest kernel;
 * several times that on a loaded host: the hang guards are generous),
 * so each checks several things. Boot times are printed, never asserted.
 */
import { createHash } from "node:crypto";
import { assert, assertEquals, assertMatch } from "../lib/assert.ts";
import { kvm, testWhen } from "../lib/skip.ts";
import { helperBuilt } from "../machine/run_vm.ts";
import { describe, GUEST, guestFile, report, runVmm } from "./vmm.ts";
import { disk, microvmArgs } from "./disk_args.ts";

const MiB = 1 << 20;
const needs = [kvm, helperBuilt, guestFile("vmlinux"), guestFile("rootfs.ext4")];

function machineArgs(append: string): string[] {
  return microvmArgs(1, append);
}

/** A copy of the guest's root filesystem (the guest mounts it read-write). */
function rootCopy(dir: string): string {
  const path = `${dir}/rootfs.ext4`;
  Deno.copyFileSync(`${GUEST}/rootfs.ext4`, path);
  return path;
}

function imageFilled(path: string, size: number, byte: number): void {
  Deno.writeFileSync(path, new Uint8Array(size).fill(byte));
}

/** ext4's s_mnt_count (superblock at 1024, field at 52): a read-write mount increments it. */
function ext4MountCount(path: string): number {
  const f = Deno.openSync(path);
  try {
    const sb = new Uint8Array(1024);
    f.seekSync(1024, Deno.SeekMode.Start);
    f.readSync(sb);
    return new DataView(sb.buffer).getUint16(52, true);
  } finally {
    f.close();
  }
}

/** The `DISK vdX <sectors> ro=<0|1>` lines of the guest's `disks` script. */
function disksSeen(stdout: string): Map<string, { sectors: number; ro: number }> {
  const seen = new Map<string, { sectors: number; ro: number }>();
  for (const m of stdout.matchAll(/^DISK (vd[a-z]) (\d+) ro=([01])\s*$/gm)) {
    seen.set(m[1], { sectors: Number(m[2]), ro: Number(m[3]) });
  }
  return seen;
}

testWhen(
  needs,
  "blk: root on vda, four disks over two iothreads and the default thread, readonly seen ro=1",
  async () => {
    const dir = Deno.makeTempDirSync({ prefix: "sv-blk-" });
    try {
      const root = rootCopy(dir);
      const mountsBefore = ext4MountCount(root);
      const rootSectors = Deno.statSync(root).size / 512;
      imageFilled(`${dir}/data.img`, 8 * MiB, 0);
      imageFilled(`${dir}/ro.img`, 4 * MiB, 0x5a);
      imageFilled(`${dir}/small.img`, 2 * MiB, 0);
      const r = await runVmm([
        ...machineArgs("sv.cmd=disks sv.halt"),
        "-object",
        "iothread,id=io0",
        "-object",
        "iothread,id=io1",
        ...disk("rootfs", root, "vda"),
        ...disk("data", `${dir}/data.img`, "blk1", ",iothread=io0"),
        ...disk("ro", `${dir}/ro.img`, "blk2", ",iothread=io0", ",readonly=on"),
        ...disk("small", `${dir}/small.img`, "blk3", ",iothread=io1", ",direct=off"),
      ], { limitMs: 900_000, timeMarker: "BOOT-OK" });
      report("4 disks, root on vda, 1 vCPU, 256 MiB", r);
      assert(!r.hung, describe(r));
      // No initramfs: init came from the ext4 image on the first disk.
      assertMatch(r.stdout, /BOOT-OK uptime=\S+ cpus=1/, describe(r));
      assertEquals(
        Object.fromEntries(disksSeen(r.stdout)),
        {
          vda: { sectors: rootSectors, ro: 0 },
          vdb: { sectors: 8 * MiB / 512, ro: 0 },
          vdc: { sectors: 4 * MiB / 512, ro: 1 },
          vdd: { sectors: 2 * MiB / 512, ro: 0 },
        },
        describe(r),
      );
      assertMatch(r.stdout, /SV-CMD-DONE disks rc=0/);
      assertEquals(r.code, 0, describe(r));
      // The read-write mount reached the host file (the guest synced before its reset).
      assertEquals(ext4MountCount(root), mountsBefore + 1);
      const ro = Deno.readFileSync(`${dir}/ro.img`);
      assert(ro.every((b) => b === 0x5a), "the read-only image changed");
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
);

testWhen(
  needs,
  "blk: a pattern the guest writes and syncs on an iothread disk survives SIGKILL of the VMM",
  async () => {
    const dir = Deno.makeTempDirSync({ prefix: "sv-blk-" });
    try {
      const root = rootCopy(dir);
      const data = `${dir}/data.img`;
      const size = 8 * MiB;
      imageFilled(data, size, 0xa5);
      // No sv.halt: the VMM is killed as soon as the guest printed the checksum, after its sync.
      const r = await runVmm([
        ...machineArgs("sv.cmd=blkpattern"),
        "-object",
        "iothread,id=io0",
        ...disk("rootfs", root, "vda"),
        ...disk("data", data, "vdb", ",iothread=io0"),
      ], { limitMs: 1_200_000, timeMarker: "BOOT-OK", signalOn: "SV-CMD-DONE blkpattern" });
      report("blkpattern on vdb (iothread), then SIGKILL", r);
      assert(!r.hung, describe(r));
      assertEquals(r.signal, "SIGKILL", describe(r));
      const m = r.stdout.match(/PATTERN-MD5 ([0-9a-f]{32})/);
      assert(m, describe(r));
      const bytes = Deno.readFileSync(data);
      assertEquals(bytes.length, size);
      const pattern = bytes.subarray(0, 4 * MiB);
      const firstWrong = pattern.findIndex((b) => b !== 0x5a);
      assertEquals(firstWrong, -1, `byte ${firstWrong} of the pattern is not 'Z' on the host`);
      // The rest of the disk was never written.
      assert(bytes.subarray(4 * MiB).every((b) => b === 0xa5), "bytes past the pattern changed");
      // What the guest read back is what the host file holds.
      assertEquals(createHash("md5").update(pattern).digest("hex"), m[1]);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
);

/**
 * Disk configurations the KVM microvm cannot run end with one clear line naming the device and
 * exit status 1, before any vCPU runs: a missing image, a fifth disk, a virtio device that is not
 * wired yet. (A missing image is found by the device thread that opens it.)
 */
import { assertEquals, assertMatch } from "../lib/assert.ts";
import { kvm, testWhen } from "../lib/skip.ts";
import { helperBuilt } from "../machine/run_vm.ts";
import { describe, GUEST, guestCmdline, guestFile, runVmm } from "./vmm.ts";

const base = [
  "-machine",
  "microvm",
  "-m",
  "256",
  "-kernel",
  `${GUEST}/vmlinux`,
  "-append",
  guestCmdline(),
];

testWhen(
  [kvm, helperBuilt, guestFile("vmlinux")],
  "blk: a missing image is named with its device and drive, exit 1",
  async () => {
    const dir = Deno.makeTempDirSync({ prefix: "sv-blk-" });
    try {
      Deno.writeFileSync(`${dir}/ok.img`, new Uint8Array(1 << 20));
      const r = await runVmm([
        ...base,
        "-object",
        "iothread,id=io0",
        "-drive",
        `id=ok,file=${dir}/ok.img`,
        "-device",
        "virtio-blk-device,drive=ok,id=disk0",
        "-drive",
        `id=gone,file=${dir}/missing.img`,
        "-device",
        "virtio-blk-device,drive=gone,id=disk1,iothread=io0",
      ], { limitMs: 60_000 });
      assertEquals(r.code, 1, describe(r));
      assertMatch(
        r.stderr,
        /virtio-blk-device,id=disk1: drive gone \(.*missing\.img\)/,
        describe(r),
      );
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
);

Deno.test("blk: a fifth virtio-blk device and a virtio-net device are refused by name", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "sv-blk-" });
  try {
    const disks: string[] = [];
    for (let i = 0; i < 5; i++) {
      Deno.writeFileSync(`${dir}/d${i}.img`, new Uint8Array(4096));
      disks.push("-drive", `id=d${i},file=${dir}/d${i}.img`);
      disks.push("-device", `virtio-blk-device,drive=d${i},id=blk${i}`);
    }
    // Refused while turning the command line into a machine: no KVM or kernel needed.
    const five = await runVmm([...base, ...disks], { limitMs: 60_000 });
    assertEquals(five.code, 1, describe(five));
    assertMatch(five.stderr, /id=blk4: a microvm takes at most 4 virtio-blk devices/);

    const net = await runVmm([
      ...base,
      "-netdev",
      "tap,id=n0,ifname=tap0",
      "-device",
      "virtio-net-device,netdev=n0,id=net0",
    ], { limitMs: 60_000 });
    assertEquals(net.code, 1, describe(net));
    assertMatch(net.stderr, /virtio-net-device,id=net0: only virtio-blk-device is wired/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

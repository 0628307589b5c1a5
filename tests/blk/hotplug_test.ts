/**
 * virtio-blk hot-plug on a running microvm, through ./stratovirt with a real Linux guest: QMP
 * blockdev-add + device_add fill an empty slot, the guest sees the disk's capacity change and
 * reads its content; device_del empties it (DEVICE_DELETED, capacity 0), what the guest wrote is
 * in the host file; every refused request gets a GenericError while the VM keeps running.
 * One boot checks all of it (each costs 15–60 s here, more on a loaded host). The guest is driven
 * through its serial console with shell builtins and one busybox applet (dd).
 */
import { assert, assertEquals, assertMatch } from "../lib/assert.ts";
import { kvm, testWhen } from "../lib/skip.ts";
import { guestCmdline, guestFile, guestPath } from "../boot/guest.ts";
import { BOOT_OK } from "../boot/shell.ts";
import { describeResult, helperBuilt, startVm } from "../boot/stratovirt.ts";
import { TextLog } from "../boot/text_log.ts";
import type { Json } from "../qmp/client.ts";
import { Monitor } from "../lifecycle/vmm.ts";

const needs = [kvm, helperBuilt, guestFile("vmlinux"), guestFile("rootfs.ext4")];
const KiB = 1024;
const MiB = 1024 * KiB;

/** A raw image whose first line is `head`, last sector starts with `tail`, filled with `fill`. */
function image(path: string, size: number, head: string, tail: string, fill: number): void {
  const bytes = new Uint8Array(size).fill(fill);
  const enc = new TextEncoder();
  bytes.set(enc.encode(`${head}\n`), 0);
  bytes.set(enc.encode(`${tail}\n`), size - 512);
  Deno.writeFileSync(path, bytes);
}

/**
 * Shell functions typed once into the guest. Each prints a tag with `$((40+2))` in it, so the
 * terminal's echo of the typed line (which shows the expression) never matches the output.
 *   ws DEV N: waits (bounded) until /sys/block/DEV/size is N, prints `WS-42 DEV <size>`;
 *   rd DEV:   first line of /dev/DEV, `RD-42 DEV rc=<read status> [<line>]`;
 *   sn DEV:   `SN-42 DEV [<serial>]` (a GET_ID request);
 *   tl DEV S: the line at sector S, through dd, `TL-42 DEV [<line>]`;
 *   wr DEV S TEXT: writes TEXT at sector S through dd (its last close writes it back);
 *   rt:       `RT-42 rtc=yes|no`: whether the CMOS RTC driver got its IRQ 8 (slot 3 used to
 *             take it, and rtc_cmos then failed to load).
 */
const GUEST_FUNCTIONS = [
  'ws() { i=0; while [ $i -lt 20000 ]; do read -r s </sys/block/$1/size; [ "$s" = "$2" ] && break; i=$((i+1)); done; echo "WS-$((40+2)) $1 $s"; }',
  'rd() { l=; read -r l </dev/$1; echo "RD-$((40+2)) $1 rc=$? [$l]"; }',
  'sn() { read -r l </sys/block/$1/serial; echo "SN-$((40+2)) $1 [$l]"; }',
  'tl() { dd if=/dev/$1 bs=512 skip=$2 count=1 2>/dev/null | { read -r t; echo "TL-$((40+2)) $1 [$t]"; }; }',
  'wr() { echo "$3" | dd of=/dev/$1 bs=512 seek=$2 conv=notrunc 2>/dev/null; echo "WR-$((40+2)) $1 rc=$?"; }',
  'rt() { r=no; [ -e /sys/class/rtc/rtc0 ] && r=yes; echo "RT-$((40+2)) rtc=$r"; }',
];

/** Whether the guest kernel has the CMOS RTC driver (the project's tiny config leaves it out). */
function guestHasRtcCmos(): boolean {
  try {
    return /^CONFIG_RTC_DRV_CMOS=y$/m.test(Deno.readTextFileSync(guestPath("config")));
  } catch {
    return false;
  }
}

testWhen(
  needs,
  "blk hot-plug: blockdev-add + device_add, the guest reads the disk; device_del empties the slot; errors keep the VM running",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "sv-hotplug-" });
    const root = `${dir}/rootfs.ext4`;
    Deno.copyFileSync(guestPath("rootfs.ext4"), root);
    const files = {
      d1: `${dir}/d1.img`,
      d2: `${dir}/d2.img`,
      d3: `${dir}/d3.img`,
      d4: `${dir}/d4.img`,
    };
    const tag = crypto.randomUUID().slice(0, 8);
    image(files.d1, 1 * MiB, `HEAD-ONE-${tag}`, `TAIL-ONE-${tag}`, 0x11);
    image(files.d2, 2 * MiB, `HEAD-TWO-${tag}`, `TAIL-TWO-${tag}`, 0x22);
    image(files.d3, 512 * KiB, `HEAD-THREE-${tag}`, `TAIL-THREE-${tag}`, 0x33);
    image(files.d4, 768 * KiB, `HEAD-FOUR-${tag}`, `TAIL-FOUR-${tag}`, 0x44);
    const qmpPath = `${dir}/qmp.sock`;
    const serialPath = `${dir}/serial.sock`;
    const vm = await startVm([
      "-machine",
      "microvm",
      "-m",
      "256",
      "-smp",
      "1",
      "-kernel",
      guestPath("vmlinux"),
      "-append",
      `${guestCmdline()} reboot=k root=/dev/vda rw`,
      "-drive",
      `id=rootfs,file=${root}`,
      "-device",
      "virtio-blk-device,drive=rootfs,id=vda",
      "-qmp",
      `unix:${qmpPath},server,nowait`,
      "-chardev",
      `socket,id=s,path=${serialPath},server,nowait`,
      "-serial",
      "chardev:s",
    ], { env: { STRATOVIRT_LOG_LEVEL: "info" } });
    let qmp: Monitor | null = null;
    let serial: Deno.UnixConn | null = null;
    const tty = new TextLog();
    let exited = false;
    vm.done.then(() => exited = true);
    const context = () => `--- guest console\n${tty.text}\n${vm.describe()}`;
    try {
      while (!serial && !exited) {
        try {
          serial = await Deno.connect({ transport: "unix", path: serialPath });
        } catch {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      assert(serial, `the VM exited before its serial socket accepted:\n${vm.describe()}`);
      const conn = serial;
      void tty.pump((buf) => conn.read(buf));
      qmp = await Monitor.unix(qmpPath);
      const monitor = qmp;
      const type = async (line: string) => {
        await conn.write(new TextEncoder().encode(line + "\n"));
      };
      /** Types `command`; returns the first match of `pattern` in what the guest prints next. */
      const guest = async (command: string, pattern: RegExp): Promise<RegExpMatchArray> => {
        const from = tty.text.length;
        await type(command);
        const m = await tty.waitFor(
          new RegExp(`^[\\s\\S]{${from}}[\\s\\S]*?(${pattern.source})`),
        );
        assert(m, `guest: no ${pattern} after '${command}'\n${context()}`);
        return m[1].match(pattern)!;
      };
      const ok = async (command: string, args: Json) => {
        const r = await monitor.execute(command, args);
        assertEquals(r, { return: {} }, `${command} ${JSON.stringify(args)}\n${context()}`);
      };
      const refused = async (command: string, args: Json, why: RegExp) => {
        const r = await monitor.execute(command, args);
        assertEquals(r.error?.class, "GenericError", `${command}: ${JSON.stringify(r)}`);
        assertMatch(r.error.desc, why);
      };
      const running = async () => {
        const r = await monitor.execute("query-status");
        assertEquals(r.return?.status, "running", JSON.stringify(r));
      };

      assert(await tty.waitFor(BOOT_OK), `no BOOT-OK\n${context()}`);
      for (const f of GUEST_FUNCTIONS) await type(f);
      // The empty hot-plug slots are there from boot: disks of 0 sectors.
      assertEquals((await guest("ws vdb 0", /WS-42 vdb (\d+)\r?\n/))[1], "0");
      assertEquals((await guest("rd vdb", /RD-42 vdb rc=(\d+) \[(.*)\]/))[2], "");
      if (guestHasRtcCmos()) {
        assertEquals((await guest("rt", /RT-42 rtc=(\w+)\r?\n/))[1], "yes", context());
      } else {
        console.log("  (the guest kernel has no rtc_cmos: the IRQ 8 check is skipped)");
      }

      await refused(
        "device_add",
        { id: "hp0", driver: "virtio-blk-device", drive: "missing" },
        /no drive missing/,
      );
      for (const [name, path] of Object.entries(files)) {
        await ok("blockdev-add", {
          "node-name": name,
          file: { driver: "file", filename: path },
          cache: { direct: name !== "d2" },
        });
      }
      await refused(
        "blockdev-add",
        { "node-name": "d1", file: { driver: "file", filename: files.d1 } },
        /already exists/,
      );
      await ok("device_add", {
        id: "hp1",
        driver: "virtio-blk-device",
        drive: "d1",
        serial: "HP1",
      });
      await refused(
        "device_add",
        { id: "hp1", driver: "virtio-blk-device", drive: "d2" },
        /already in use/,
      );
      await refused(
        "device_add",
        { id: "vda", driver: "virtio-blk-device", drive: "d2" },
        /in use/,
      );
      await refused(
        "device_add",
        { id: "hpx", driver: "virtio-blk-device", drive: "d1" },
        /already used by device hp1/,
      );
      await refused("blockdev-del", { "node-name": "d1" }, /in use by device hp1/);
      await refused("device_del", { id: "nope" }, /Device nope not found/);
      await ok("device_add", { id: "hp2", driver: "virtio-blk-device", drive: "d2" });
      await ok("device_add", { id: "hp3", driver: "virtio-blk-mmio", drive: "d3" });
      await refused(
        "device_add",
        { id: "hp4", driver: "virtio-blk-device", drive: "d4" },
        /no free virtio-blk slot/,
      );
      const blocks = await monitor.execute("query-block");
      assertEquals(
        Object.fromEntries((blocks.return as Json[]).map((b) => [b.device, b.qdev ?? null])),
        { rootfs: "vda", d1: "hp1", d2: "hp2", d3: "hp3", d4: null },
      );
      await running();

      // Slot 1 (vdb) got hp1: the guest sees its size, its serial and its content.
      assertEquals(
        (await guest(`ws vdb ${MiB / 512}`, /WS-42 vdb (\d+)\r?\n/))[1],
        String(MiB / 512),
      );
      assertEquals((await guest("sn vdb", /SN-42 vdb \[(.*)\]/))[1], "HP1");
      assertEquals((await guest("rd vdb", /RD-42 vdb rc=(\d+) \[(.*)\]/))[2], `HEAD-ONE-${tag}`);
      assertEquals((await guest("tl vdb 2047", /TL-42 vdb \[(.*)\]/))[1], `TAIL-ONE-${tag}`);
      assertEquals(
        (await guest(`ws vdc ${2 * MiB / 512}`, /WS-42 vdc (\d+)\r?\n/))[1],
        String(2 * MiB / 512),
      );
      assertEquals((await guest("rd vdd", /RD-42 vdd rc=(\d+) \[(.*)\]/))[2], `HEAD-THREE-${tag}`);
      assertEquals(
        (await guest(`wr vdb 8 GUEST-WROTE-${tag}`, /WR-42 vdb rc=(\d+)\r?\n/))[1],
        "0",
      );

      // device_del: DEVICE_DELETED, then the reply; the data the guest wrote is in the file.
      const del = await monitor.execute("device_del", { id: "hp1" });
      assertEquals(del, { return: {} }, context());
      const deleted = await monitor.event("DEVICE_DELETED");
      assertEquals(deleted.data, { device: "hp1", path: "/machine/peripheral/hp1" });
      const d1 = Deno.readFileSync(files.d1);
      assertEquals(
        new TextDecoder().decode(d1.subarray(4096, 4096 + `GUEST-WROTE-${tag}`.length)),
        `GUEST-WROTE-${tag}`,
      );
      assertEquals(new TextDecoder().decode(d1.subarray(0, 9)), "HEAD-ONE-");
      assertEquals((await guest("ws vdb 0", /WS-42 vdb (\d+)\r?\n/))[1], "0");
      assertEquals((await guest("rd vdb", /RD-42 vdb rc=(\d+) \[(.*)\]/))[2], "");
      await refused("device_del", { id: "hp1" }, /Device hp1 not found/);

      // The drive outlives its device until blockdev-del; then it is gone for device_add.
      await ok("blockdev-del", { "node-name": "d1" });
      await refused(
        "device_add",
        { id: "hp5", driver: "virtio-blk-device", drive: "d1" },
        /no drive d1/,
      );
      // The freed slot takes another disk: the guest reads the new content in the same vdb.
      await ok("device_add", { id: "hp4", driver: "virtio-blk-device", drive: "d4" });
      assertEquals(
        (await guest(`ws vdb ${768 * KiB / 512}`, /WS-42 vdb (\d+)\r?\n/))[1],
        String(768 * KiB / 512),
      );
      assertEquals((await guest("rd vdb", /RD-42 vdb rc=(\d+) \[(.*)\]/))[2], `HEAD-FOUR-${tag}`);
      await running();

      const quit = await monitor.execute("quit");
      assertEquals(quit, { return: {} });
      const r = await vm.done;
      assertEquals(r.code, 0, describeResult(r));
    } finally {
      qmp?.close();
      try {
        serial?.close();
      } catch { /* closed */ }
      vm.kill("SIGKILL");
      await vm.done;
      await Deno.remove(dir, { recursive: true });
    }
  },
);

/**
 * RAM above 4 GiB through ./stratovirt: `-m 4608M` is 3 GiB below the PCI hole and 1.5 GiB from
 * 4 GiB up. The guest must see about 4.5 GiB in MemTotal, and its resource map (/proc/iomem,
 * built from the e820 table) must show RAM on both sides of the hole and none inside it.
 * Commands go in through the stdio serial backend (the VMM's stdin is a pipe), then `reboot -f`.
 *
 * The slowest boot of the suite: initialising 4.5 GiB of struct pages is emulated guest kernel
 * code here (about 4 minutes on an idle machine against 45 s for 256 MiB).
 */
import { assert, assertEquals } from "../lib/assert.ts";
import { kvm, testWhen } from "../lib/skip.ts";
import { guestCmdline, guestFile, guestPath } from "./guest.ts";
import { assertMemTotal, BOOT_OK, markedCommand, parseBootOk } from "./shell.ts";
import { describeResult, helperBuilt, report, startVm } from "./stratovirt.ts";

const RAM = 4608 * 1024 * 1024;
const HOLE_START = 0xc000_0000;
const FOUR_GIB = 0x1_0000_0000;

interface Range {
  start: number;
  end: number;
}

/** The top-level "System RAM" ranges of /proc/iomem (inclusive ends, as the kernel prints). */
function systemRam(text: string): Range[] {
  const ranges: Range[] = [];
  for (const m of text.matchAll(/^([0-9a-f]+)-([0-9a-f]+) : System RAM\r?$/gm)) {
    ranges.push({ start: parseInt(m[1], 16), end: parseInt(m[2], 16) });
  }
  return ranges;
}

testWhen(
  [kvm, helperBuilt, guestFile("vmlinux"), guestFile("initramfs.cpio")],
  "boot: -m 4608M puts RAM above 4 GiB: MemTotal ~4.5 GiB, RAM on both sides of the hole",
  async () => {
    const started = performance.now();
    const vm = await startVm([
      "-machine",
      "microvm",
      "-smp",
      "1",
      "-m",
      "4608M",
      "-kernel",
      guestPath("vmlinux"),
      "-initrd",
      guestPath("initramfs.cpio"),
      "-append",
      `${guestCmdline()} reboot=k`,
      "-serial",
      "stdio",
    ], { stdin: true, limitMs: 1_800_000 });
    try {
      const bootOk = await vm.stdout.waitFor(BOOT_OK);
      const bootOkMs = bootOk ? performance.now() : null;
      assert(bootOk, `no BOOT-OK:\n${vm.describe()}`);
      const cmd = markedCommand(
        "HIGH",
        "echo IOMEM-BEGIN; cat /proc/iomem; echo IOMEM-END; dmesg | grep -i e820",
      );
      await vm.write(cmd.line);
      assert(await vm.stdout.waitFor(cmd.done), `the command did not run:\n${vm.describe()}`);
      await vm.write("reboot -f\n");
      const r = await vm.done;
      report("4608 MiB", started, bootOkMs);
      assertEquals(r.code, 0, describeResult(r));

      const seen = parseBootOk(bootOk);
      assertMemTotal(seen.memKb, RAM, 0.9, r.stdout);
      // The output after the echoed command line (the terminal echoes what we typed).
      const iomem = r.stdout.slice(r.stdout.lastIndexOf("IOMEM-BEGIN"));
      const e820 = r.stdout.match(/^.*e820.*$/gim) ?? [];
      console.log(`  guest e820 lines:\n    ${e820.join("\n    ")}`);
      const ram = systemRam(iomem);
      assert(ram.length > 0, `no System RAM in /proc/iomem:\n${iomem}`);
      const inHole = ram.filter((x) => x.end >= HOLE_START && x.start < FOUR_GIB);
      assertEquals(inHole, [], `RAM inside the hole:\n${iomem}`);
      const high = ram.filter((x) => x.start >= FOUR_GIB);
      assertEquals(high.length, 1, `RAM above 4 GiB:\n${iomem}`);
      assertEquals(high[0].start, FOUR_GIB);
      assertEquals(high[0].end + 1, FOUR_GIB + RAM - HOLE_START);
      const lowTop = Math.max(...ram.filter((x) => x.start < HOLE_START).map((x) => x.end + 1));
      assertEquals(lowTop, HOLE_START, `low RAM should reach the hole:\n${iomem}`);
    } finally {
      vm.kill("SIGKILL");
      await vm.done;
    }
  },
);

/**
 * ./stratovirt on a terminal with `-serial stdio`, 4 vCPUs: the guest counts its CPUs, then
 * SIGTERM ends the VMM with status 1 (as StratoVirt) and the terminal is as it was before.
 * `script` provides the terminal; a shell probe records `stty -g` before, while the guest runs,
 * and after, and waits (bounded) for the busybox init's BOOT-OK in the VMM's output file.
 */
import { assert, assertEquals, assertMatch, assertNotEquals } from "../lib/assert.ts";
import { command, kvm, testWhen } from "../lib/skip.ts";
import { guestCmdline, guestFile, guestPath } from "./guest.ts";
import { assertMemTotal, BOOT_OK, parseBootOk, smpSwitches } from "./shell.ts";
import { helperBuilt, stratovirtLauncher } from "./stratovirt.ts";

// "$@" is the VMM's command. Gives up waiting after 600 s; SIGKILL if SIGTERM is not obeyed.
const PROBE = `
b=$(stty -g)
echo "BEFORE $b"
"$@" </dev/tty >"$DIR/out" 2>"$DIR/err" &
p=$!
end=$(($(date +%s) + 600))
while [ "$(date +%s)" -lt "$end" ]; do
  # The whole BOOT-OK line: a line follows it (the shell's banner) once it is complete.
  [ "$(grep -A1 BOOT-OK "$DIR/out" | wc -l)" -ge 2 ] && break
  kill -0 $p 2>/dev/null || break
  sleep 0.1
done
echo "DURING $(stty -g)"
kill -TERM $p
( sleep 30; kill -KILL $p 2>/dev/null ) &
w=$!
wait $p
echo "RC $?"
kill $w 2>/dev/null
echo "AFTER $(stty -g)"
`;

testWhen(
  [
    kvm,
    helperBuilt,
    command("script"),
    command("stty"),
    guestFile("vmlinux"),
    guestFile("initramfs.cpio"),
  ],
  "boot: -smp 4 on a terminal (-serial stdio): the guest sees 4 CPUs; SIGTERM exits 1, terminal restored",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "sv-boot-tty-" });
    try {
      const launcher = await stratovirtLauncher();
      const vmArgs = [
        ...launcher.argv,
        "-machine",
        "microvm",
        "-smp",
        "4",
        "-m",
        "256",
        "-kernel",
        guestPath("vmlinux"),
        "-initrd",
        guestPath("initramfs.cpio"),
        "-append",
        `${guestCmdline()} reboot=k${smpSwitches(4)}`,
        "-serial",
        "stdio",
      ];
      await Deno.writeTextFile(`${dir}/probe.sh`, PROBE);
      const quoted = vmArgs.map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(" ");
      const out = await new Deno.Command("script", {
        args: ["-qec", `sh ${dir}/probe.sh ${quoted}`, "/dev/null"],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        env: { ...launcher.env, DIR: dir },
        signal: AbortSignal.timeout(900_000),
      }).output();
      const text = new TextDecoder().decode(out.stdout);
      const vmOut = await Deno.readTextFile(`${dir}/out`).catch(() => "");
      const vmErr = await Deno.readTextFile(`${dir}/err`).catch(() => "");
      const all = `probe:\n${text}\n--- VM stdout\n${vmOut}\n--- VM stderr\n${vmErr}`;
      const field = (name: string) => text.match(new RegExp(`${name} (\\S*)`))?.[1] ?? "";

      assert(field("BEFORE") !== "", `no probe output:\n${all}`);
      assertNotEquals(field("DURING"), field("BEFORE"), "the terminal never went raw");
      assertEquals(field("RC"), "1", all);
      assertMatch(vmErr, /Received kill signal, signal number: 15/);
      assertEquals(field("AFTER"), field("BEFORE"), "the terminal was not restored");

      const bootOk = vmOut.match(BOOT_OK);
      assert(bootOk, `no BOOT-OK before SIGTERM:\n${all}`);
      const seen = parseBootOk(bootOk);
      assertEquals(seen.cpus, 4, all);
      assertMemTotal(seen.memKb, 256 << 20, 0.8, all);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

/**
 * The stdio serial backend puts a terminal in raw mode; every way the VM ends must put it back.
 * `script` gives the VMM a pseudo-terminal, and a small shell probe records `stty -g` before,
 * while the VM runs, and after it ended.
 */
import { assert, assertEquals, assertNotEquals } from "../lib/assert.ts";
import { command, kvm, testWhen } from "../lib/skip.ts";
import { type Ending, tinyKernel } from "./tiny_guests.ts";
import { helperBuilt } from "./run_vm.ts";

const RUN_SPEC = new URL("./run_spec.ts", import.meta.url).pathname;

// Waits (bounded) for the VMM to change the terminal mode, optionally signals it, then reports.
const PROBE = `
b=$(stty -g)
echo "BEFORE $b"
"$DENO" run -A --quiet "$RUN_SPEC" "$SPEC" </dev/tty >/dev/null 2>&1 &
p=$!
d=$b
for i in $(seq 200); do d=$(stty -g); [ "$d" != "$b" ] && break; sleep 0.05; done
echo "DURING $d"
[ -n "$SIGNAL" ] && kill -"$SIGNAL" $p
wait $p
echo "RC $?"
echo "AFTER $(stty -g)"
`;

interface Probe {
  before: string;
  during: string;
  after: string;
  rc: number;
}

async function probe(ending: Ending, signal: string): Promise<Probe> {
  const dir = await Deno.makeTempDir({ prefix: "sv-tty-" });
  try {
    await Deno.writeFile(`${dir}/kernel`, tinyKernel("pvh", "tty\n", ending));
    await Deno.writeTextFile(`${dir}/probe.sh`, PROBE);
    const spec = {
      cpus: 1,
      memory: { size: 32 << 20 },
      kernel: `${dir}/kernel`,
      cmdline: "",
      serial: { backend: "stdio" },
    };
    const out = await new Deno.Command("script", {
      args: ["-qec", `sh ${dir}/probe.sh`, "/dev/null"],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { DENO: Deno.execPath(), RUN_SPEC, SPEC: JSON.stringify(spec), SIGNAL: signal },
      signal: AbortSignal.timeout(60_000),
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    const field = (name: string) => text.match(new RegExp(`${name} (\\S*)`))?.[1] ?? "";
    const p = { before: field("BEFORE"), during: field("DURING"), after: field("AFTER") };
    assert(p.before !== "", `no probe output:\n${text}`);
    return { ...p, rc: Number(field("RC")) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

testWhen(
  [kvm, helperBuilt, command("script"), command("stty")],
  "terminal: raw while the VM runs, restored after SIGTERM",
  async () => {
    const p = await probe("count", "TERM");
    assertNotEquals(p.during, p.before, "the stdio backend never made the terminal raw");
    assertEquals(p.rc, 1);
    assertEquals(p.after, p.before);
  },
);

testWhen(
  [kvm, helperBuilt, command("script"), command("stty")],
  "terminal: restored after a guest reset and after a KVM error",
  async () => {
    const reset = await probe("reset", "");
    assertEquals(reset.rc, 0);
    assertEquals(reset.after, reset.before);
    const failed = await probe("internal-error", "");
    assertEquals(failed.rc, 1);
    assertEquals(failed.after, failed.before);
  },
);

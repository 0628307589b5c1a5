/**
 * Quick start-up benchmark (run by scripts/bench/boot-startup): starts a VMM RUNS times with the
 * boot benchmark's guest and ends each run as soon as vCPU 0 has entered the guest, so it measures
 * only (b) "process start -> first KVM_RUN" and the VMM's RSS without guest RAM: its peak over
 * samples every 10 ms until SETTLE_MS after the first KVM_RUN, and the last sample ("settled"),
 * without waiting ~20 s for the guest kernel. Also prints the `-D` log's other info/debug lines as offsets from spawn,
 * which shows where the start-up time goes.
 *
 * Usage: deno run -A startup.ts COMMAND [ARGS...] [-- COMMAND [ARGS...]]...
 *   e.g. build/bench-boot/stratovirt, or deno run -A --quiet main.ts (each command runs with the
 *   guest's arguments appended; several commands alternate run by run).
 */
import { vmmMemory } from "./memory.ts";

const runs = Number(Deno.env.get("RUNS") ?? "5");
const memMiB = Number(Deno.env.get("MEM_MIB") ?? "256");
const cpus = Number(Deno.env.get("SMP") ?? "1");
const settleMs = Number(Deno.env.get("SETTLE_MS") ?? "300");
const dir = Deno.env.get("GUEST_DIR") ?? "/work/shared/guest";
const kernel = Deno.env.get("KERNEL") ?? `${dir}/vmlinux`;
const initrd = Deno.env.get("INITRD") ?? `${dir}/initramfs-tiny.cpio`;
const extra = (Deno.env.get("EXTRA_ARGS") ?? "").split(" ").filter((a) => a !== "");
/** The commands to compare, separated by "--" on the command line; runs alternate between them. */
const commands: string[][] = [[]];
for (const a of Deno.args) {
  if (a === "--") commands.push([]);
  else commands[commands.length - 1].push(a);
}
if (commands.some((c) => c.length === 0)) {
  throw new Error("usage: startup.ts COMMAND [ARGS...] [-- COMMAND [ARGS...]]...");
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Epoch ms of a log line's local timestamp, with the sub-ms digits. */
function lineTime(line: string): number | null {
  const m = line.match(/^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})(\d{3})/);
  return m ? new Date(m[1]).getTime() + Number(m[2]) / 1000 : null;
}

interface Result {
  firstMs: number;
  rssMiB: number;
  anonMiB: number;
  settledRssMiB: number;
  settledAnonMiB: number;
}

async function startOnce(cmd: string, cmdArgs: string[]): Promise<Result> {
  const logFile = await Deno.makeTempFile({ prefix: "startup-log-" });
  const args = [
    ...cmdArgs,
    ...["-machine", "microvm", "-smp", String(cpus), "-m", `${memMiB}M`],
    ...["-kernel", kernel, "-initrd", initrd, "-append", "console=ttyS0 quiet"],
    ...["-serial", "file,path=/dev/null", "-D", logFile, ...extra],
  ];
  const start = Date.now();
  const child = new Deno.Command(cmd, {
    args,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    env: { STRATOVIRT_LOG_LEVEL: Deno.env.get("STRATOVIRT_LOG_LEVEL") ?? "info" },
  }).spawn();
  const stderr = new Response(child.stderr).text();
  let first: number | null = null;
  let peak = { rssKb: 0, anonKb: 0 };
  let settled = { rssKb: 0, anonKb: 0 };
  const deadline = start + 30_000;
  while (Date.now() < deadline) {
    const m = vmmMemory(child.pid, memMiB * 1024 * 1024);
    if (m) {
      peak = { rssKb: Math.max(peak.rssKb, m.rssKb), anonKb: Math.max(peak.anonKb, m.anonKb) };
      settled = m;
    }
    if (first === null) {
      const text = Deno.readTextFileSync(logFile);
      const line = text.split("\n").find((l) => l.includes("vCPU 0: first KVM_RUN"));
      if (line) first = lineTime(line)! - start;
    } else if (Date.now() - start > first + settleMs) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  try {
    child.kill("SIGKILL");
  } catch { /* exited already: its stderr says why */ }
  await child.status;
  const err = await stderr;
  const text = Deno.readTextFileSync(logFile);
  await Deno.remove(logFile);
  if (first === null) throw new Error(`${cmd}: no first KVM_RUN line\n${err}\n${text}`);
  if (Deno.env.get("VERBOSE")) {
    for (const l of text.split("\n")) {
      const t = lineTime(l);
      if (t !== null) {
        console.log(`  ${(t - start).toFixed(1).padStart(7)} ms ${l.replace(/^\S+ /, "")}`);
      }
    }
  }
  return {
    firstMs: first,
    rssMiB: peak.rssKb / 1024,
    anonMiB: peak.anonKb / 1024,
    settledRssMiB: settled.rssKb / 1024,
    settledAnonMiB: settled.anonKb / 1024,
  };
}

const results: Result[][] = commands.map(() => []);
for (let run = 1; run <= runs; run++) {
  for (const [i, [cmd, ...cmdArgs]] of commands.entries()) {
    const r = await startOnce(cmd, cmdArgs);
    results[i].push(r);
    console.log(
      `run ${run} [${i}]: first KVM_RUN ${r.firstMs.toFixed(1)} ms, RSS peak ` +
        `${r.rssMiB.toFixed(1)} MiB (anon ${r.anonMiB.toFixed(1)}), settled ` +
        `${r.settledRssMiB.toFixed(1)} MiB (anon ${r.settledAnonMiB.toFixed(1)})`,
    );
  }
}
for (const [i, rs] of results.entries()) {
  const firsts = rs.map((r) => r.firstMs);
  const mib = (f: (r: Result) => number) => median(rs.map(f)).toFixed(1);
  console.log(
    `[${i}] ${commands[i].join(" ")}\n    first KVM_RUN median ${median(firsts).toFixed(1)} ms, ` +
      `min ${Math.min(...firsts).toFixed(1)} ms; RSS median: peak ${mib((r) => r.rssMiB)} MiB ` +
      `(anon ${mib((r) => r.anonMiB)}), settled ${mib((r) => r.settledRssMiB)} MiB ` +
      `(anon ${mib((r) => r.settledAnonMiB)})`,
  );
}

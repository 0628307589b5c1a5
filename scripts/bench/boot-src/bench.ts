/**
 * Boot benchmark driver (run by scripts/bench/boot): boots the same kernel, initramfs, memory,
 * vCPUs and command line with ./stratovirt and with `qemu-system-x86_64 -M microvm`, RUNS times
 * each, alternating, and prints per run and as median / min with ratios ours / QEMU:
 *
 * (a) process start -> guest init: the time `BOOT-OK` appears on the VMM's serial stdout, the
 *     same way for both; for ours also the `-D` log's "Kernel boot complete" line (the guest's
 *     port 0x3ff write) when the guest writes that marker (the reference tiny init cannot: its
 *     kernel has no ioperm);
 * (b) process start -> first guest instruction: ours from the `-D` log's "vCPU 0: first KVM_RUN"
 *     line; QEMU is started with -S and (b) is the time its QMP `cont` is answered, the moment
 *     its vCPUs are let into the guest (the machine, RAM and kernel are set up before that);
 * (c) VMM RSS without guest RAM, peak of samples every 100 ms of /proc/PID/smaps: the Rss of
 *     every mapping minus the Rss of the anonymous read-write mappings at least as large as the
 *     guest RAM (both VMMs map guest RAM as one anonymous mapping); also its private anonymous
 *     part (the `Anonymous:` lines, same subtraction), which leaves out file pages such as the
 *     executable's text that the page cache shares.
 *
 * Usage: deno run -A bench.ts STRATOVIRT_BINARY  (settings from the environment, see the script)
 */

import { vmmMemory } from "./memory.ts";
import { qemuMicrovmArgs } from "../qemu_microvm.ts";

interface Settings {
  stratovirt: string;
  qemu: string;
  kernel: string;
  initrd: string;
  cmdline: string;
  memMiB: number;
  cpus: number;
  runs: number;
  limitMs: number;
}

interface Sample {
  /** (a) start -> BOOT-OK on the serial console. */
  serialMs: number;
  /** (a') start -> the guest's boot-complete marker (ours: the -D log line; QEMU: none). */
  markerMs: number;
  /** (b) start -> first guest instruction. */
  firstRunMs: number;
  /** (c) peak VMM RSS without guest RAM, kB; and its anonymous part. */
  rssKb: number;
  anonKb: number;
}

const BOOT_OK = "BOOT-OK";

function env(name: string, fallback: string): string {
  return Deno.env.get(name) ?? fallback;
}

function positive(name: string, fallback: number): number {
  const v = env(name, String(fallback));
  if (!/^[1-9][0-9]*$/.test(v)) throw new Error(`${name} must be a positive integer, got '${v}'`);
  return Number(v);
}

function settings(): Settings {
  const dir = env("GUEST_DIR", "/work/shared/guest");
  const stratovirt = Deno.args[0];
  if (!stratovirt) throw new Error("usage: bench.ts STRATOVIRT_BINARY");
  let cmdline = Deno.env.get("CMDLINE");
  if (!cmdline) {
    try {
      cmdline = Deno.readTextFileSync(`${dir}/cmdline`).trim();
    } catch {
      throw new Error(`no CMDLINE given and no ${dir}/cmdline`);
    }
  }
  return {
    stratovirt,
    qemu: env("QEMU", "qemu-system-x86_64"),
    kernel: env("KERNEL", `${dir}/vmlinux`),
    initrd: env("INITRD", `${dir}/initramfs-tiny.cpio`),
    cmdline: `${cmdline} reboot=k`,
    memMiB: positive("MEM_MIB", 256),
    cpus: positive("SMP", 1),
    runs: positive("RUNS", 3),
    limitMs: positive("LIMIT_S", 900) * 1000,
  };
}

/** A child process whose stdout is searched for BOOT-OK and whose memory is sampled. */
class Watched {
  readonly child: Deno.ChildProcess;
  serialAt: number | null = null;
  peak = { rssKb: 0, anonKb: 0 };
  readonly #sampler: ReturnType<typeof setInterval>;
  readonly #killer: ReturnType<typeof setTimeout>;
  readonly output: Promise<string>;

  constructor(cmd: string, args: string[], s: Settings, envs: Record<string, string> = {}) {
    this.child = new Deno.Command(cmd, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: envs,
    }).spawn();
    const guestBytes = s.memMiB * 1024 * 1024;
    this.#sampler = setInterval(() => {
      const m = vmmMemory(this.child.pid, guestBytes);
      if (!m) return;
      this.peak.rssKb = Math.max(this.peak.rssKb, m.rssKb);
      this.peak.anonKb = Math.max(this.peak.anonKb, m.anonKb);
    }, 100);
    this.#killer = setTimeout(() => this.child.kill("SIGKILL"), s.limitMs);
    this.output = this.#watch();
  }

  async #watch(): Promise<string> {
    const decoder = new TextDecoder();
    let all = "";
    const errText = new Response(this.child.stderr).text();
    for await (const chunk of this.child.stdout) {
      all += decoder.decode(chunk, { stream: true });
      if (this.serialAt === null && all.includes(BOOT_OK)) this.serialAt = Date.now();
    }
    return all + decoder.decode() + (await errText);
  }

  async finish(): Promise<{ code: number; output: string }> {
    const [status, output] = await Promise.all([this.child.status, this.output]);
    clearInterval(this.#sampler);
    clearTimeout(this.#killer);
    return { code: status.code, output };
  }
}

/** Epoch ms of a StratoVirt log line's local timestamp (`2026-12-03T13:20:00.123456789: ...`). */
function logTime(log: string, pattern: RegExp): number | null {
  for (const line of log.split("\n")) {
    if (!pattern.test(line)) continue;
    const ts = line.match(/^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})/);
    if (ts) return new Date(ts[1]).getTime();
  }
  return null;
}

async function runOurs(s: Settings, logFile: string): Promise<Sample> {
  try {
    Deno.removeSync(logFile);
  } catch { /* first run */ }
  const args = [
    "-machine",
    "microvm",
    "-smp",
    String(s.cpus),
    "-m",
    `${s.memMiB}M`,
    "-kernel",
    s.kernel,
    "-initrd",
    s.initrd,
    "-append",
    s.cmdline,
    "-serial",
    "stdio",
    "-D",
    logFile,
  ];
  const start = Date.now();
  const w = new Watched(s.stratovirt, args, s, { STRATOVIRT_LOG_LEVEL: "info" });
  const { code, output } = await w.finish();
  const log = Deno.readTextFileSync(logFile);
  const complete = logTime(log, /Kernel boot complete/);
  const firstRun = logTime(log, /vCPU 0: first KVM_RUN/);
  if (code !== 0 || firstRun === null || w.serialAt === null) {
    throw new Error(
      `stratovirt run failed (exit ${code}; first KVM_RUN line ${firstRun !== null}, ` +
        `BOOT-OK ${w.serialAt !== null}):\n${output}\n${log}`,
    );
  }
  return {
    serialMs: w.serialAt - start,
    // A guest without the marker (the reference tiny init: its kernel lacks ioperm) has none.
    markerMs: complete === null ? NaN : complete - start,
    firstRunMs: firstRun - start,
    ...w.peak,
  };
}

/** Sends QMP commands on a connected monitor, one reply line each. */
async function qmpCont(path: string, deadline: number): Promise<void> {
  let conn: Deno.UnixConn | null = null;
  while (!conn) {
    try {
      conn = await Deno.connect({ transport: "unix", path });
    } catch {
      if (Date.now() > deadline) throw new Error(`QEMU's QMP socket ${path} never accepted`);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  }
  const reader = conn.readable.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  const nextLine = async (): Promise<string> => {
    while (!buffered.includes("\n")) {
      const r = await reader.read();
      if (r.done) throw new Error("QMP closed");
      buffered += r.value;
    }
    const i = buffered.indexOf("\n");
    const line = buffered.slice(0, i);
    buffered = buffered.slice(i + 1);
    return line;
  };
  const send = async (cmd: string) => {
    await conn.write(new TextEncoder().encode(JSON.stringify({ execute: cmd }) + "\n"));
    for (;;) {
      const line = await nextLine();
      if (line.includes('"return"')) return;
      if (line.includes('"error"')) throw new Error(`QMP ${cmd}: ${line}`);
    }
  };
  await nextLine(); // greeting
  await send("qmp_capabilities");
  await send("cont");
  reader.releaseLock();
  // Keep the monitor open until QEMU exits: closing it is harmless, but keeps this symmetric.
  conn.close();
}

async function runQemu(s: Settings, qmpPath: string): Promise<Sample> {
  try {
    Deno.removeSync(qmpPath);
  } catch { /* first run */ }
  const args = [
    ...qemuMicrovmArgs(s.memMiB, s.cpus),
    "-kernel",
    s.kernel,
    "-initrd",
    s.initrd,
    "-append",
    s.cmdline,
    "-S",
    "-qmp",
    `unix:${qmpPath},server=on,wait=off`,
  ];
  const start = Date.now();
  const w = new Watched(s.qemu, args, s);
  let contAt: number | null = null;
  try {
    await qmpCont(qmpPath, start + 30_000);
    contAt = Date.now();
  } catch (e) {
    w.child.kill("SIGKILL");
    await w.finish();
    throw e;
  }
  const { code, output } = await w.finish();
  if (code !== 0 || w.serialAt === null) {
    throw new Error(`QEMU run failed (exit ${code}, BOOT-OK ${w.serialAt !== null}):\n${output}`);
  }
  return {
    serialMs: w.serialAt - start,
    markerMs: NaN,
    firstRunMs: contAt - start,
    ...w.peak,
  };
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function fmt(v: number, unit: string): string {
  if (Number.isNaN(v)) return "-";
  if (unit === "s") return `${(v / 1000).toFixed(2)} s`;
  if (unit === "ms") return `${v.toFixed(0)} ms`;
  return `${(v / 1024).toFixed(1)} MiB`;
}

function ratio(ours: number, qemu: number): string {
  return Number.isNaN(ours / qemu) ? "-" : (ours / qemu).toFixed(2);
}

async function main(): Promise<void> {
  const s = settings();
  const tmp = await Deno.makeTempDir({ prefix: "sv-bench-boot-" });
  const ours: Sample[] = [], qemu: Sample[] = [];
  console.log(
    `boot: ${s.kernel} + ${s.initrd}, ${s.cpus} vCPU(s), ${s.memMiB} MiB, ${s.runs} runs each`,
  );
  console.log(`cmdline: ${s.cmdline}`);
  let failed = 0;
  try {
    for (let i = 1; i <= s.runs; i++) {
      for (const who of ["stratovirt", "qemu"] as const) {
        let r: Sample;
        try {
          r = who === "stratovirt"
            ? await runOurs(s, `${tmp}/stratovirt.log`)
            : await runQemu(s, `${tmp}/qmp.sock`);
        } catch (e) {
          // One bad run (e.g. killed at LIMIT_S on a loaded machine) is reported, not fatal.
          failed++;
          console.log(`  run ${i} ${who.padEnd(10)} FAILED: ${(e as Error).message}`);
          continue;
        }
        (who === "stratovirt" ? ours : qemu).push(r);
        console.log(
          `  run ${i} ${who.padEnd(10)} BOOT-OK ${fmt(r.serialMs, "s")}  marker ${
            fmt(r.markerMs, "s")
          }  first insn ${fmt(r.firstRunMs, "ms")}  RSS ${fmt(r.rssKb, "kb")} (anon ${
            fmt(r.anonKb, "kb")
          })`,
        );
      }
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
  if (ours.length === 0 || qemu.length === 0) throw new Error("no successful run of one VMM");
  const rows: [string, keyof Sample, string][] = [
    ["(a) start -> BOOT-OK on serial", "serialMs", "s"],
    ["    start -> boot-complete mark", "markerMs", "s"],
    ["(b) start -> first guest insn", "firstRunMs", "ms"],
    ["(c) VMM RSS w/o guest RAM", "rssKb", "kb"],
    ["    its anonymous part", "anonKb", "kb"],
  ];
  console.log(
    `${"metric".padEnd(32)} ${"ours median".padStart(12)} ${"ours min".padStart(10)} ` +
      `${"QEMU median".padStart(12)} ${"QEMU min".padStart(10)}  ratio (median, min)`,
  );
  for (const [name, key, unit] of rows) {
    const o = ours.map((x) => x[key]), q = qemu.map((x) => x[key]);
    const [om, omin, qm, qmin] = [median(o), Math.min(...o), median(q), Math.min(...q)];
    console.log(
      `${name.padEnd(32)} ${fmt(om, unit).padStart(12)} ${fmt(omin, unit).padStart(10)} ` +
        `${fmt(qm, unit).padStart(12)} ${fmt(qmin, unit).padStart(10)}  ` +
        `${ratio(om, qm)}, ${ratio(omin, qmin)}`,
    );
  }
  console.log(`runs: ${ours.length} stratovirt, ${qemu.length} QEMU, ${failed} failed`);
  if (failed > 0) Deno.exit(1);
}

try {
  await main();
} catch (e) {
  console.error(`error: ${(e as Error).message}`);
  Deno.exit(1);
}

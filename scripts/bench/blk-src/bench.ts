/**
 * virtio-blk benchmark driver (run by scripts/bench/blk): boots the bench rootfs (busybox + fio)
 * on /dev/vda with ./stratovirt and with `qemu-system-x86_64 -M microvm`, RUNS times each,
 * alternating, and runs one fio invocation in the guest against /dev/vdb, a data file both VMMs
 * open with O_DIRECT (ours: `direct` defaults to on; QEMU: cache=none). Three stonewalled
 * time-based jobs: sequential read and sequential write of SEQ_BS blocks (MB/s), and 4 KiB
 * random read (IOPS), each RUNTIME_S seconds, measured by fio with the guest's clock.
 *
 * The fio script is copied into /etc/sv of a fresh copy of rootfs-bench.ext4 for every run
 * (debugfs), and the busybox init runs it (`sv.cmd=fiobench sv.halt`), then resets the VM. It
 * prints fio's terse lines prefixed with `FIO `; fields 7/8 are read KB/s and IOPS, 48/49 write.
 *
 * Usage: deno run -A bench.ts STRATOVIRT_BINARY  (settings from the environment, see the script)
 */
import { qemuMicrovmArgs } from "../qemu_microvm.ts";

interface Settings {
  stratovirt: string;
  qemu: string;
  guestDir: string;
  cmdline: string;
  memMiB: number;
  runs: number;
  runtimeS: number;
  seqBs: string;
  iodepth: number;
  sizeMiB: number;
  limitMs: number;
}

function env(name: string, fallback: string): string {
  return Deno.env.get(name) || fallback;
}

function positive(name: string, fallback: number): number {
  const v = Number(env(name, String(fallback)));
  if (!Number.isSafeInteger(v) || v < 1) throw new Error(`${name} must be a positive integer`);
  return v;
}

function settings(): Settings {
  const guestDir = env("GUEST_DIR", "");
  const stratovirt = Deno.args[0];
  if (!stratovirt || !guestDir) throw new Error("usage: GUEST_DIR=DIR bench.ts STRATOVIRT_BINARY");
  const seqBs = env("SEQ_BS", "128k");
  if (!/^\d+[kKmM]?$/.test(seqBs)) throw new Error(`SEQ_BS '${seqBs}' is not a block size`);
  return {
    stratovirt,
    qemu: env("QEMU", "qemu-system-x86_64"),
    guestDir,
    cmdline: `${Deno.readTextFileSync(`${guestDir}/cmdline`).trim()} reboot=k`,
    memMiB: positive("MEM_MIB", 256),
    runs: positive("RUNS", 1),
    runtimeS: positive("RUNTIME_S", 5),
    seqBs,
    iodepth: positive("IODEPTH", 1),
    sizeMiB: positive("SIZE_MIB", 64),
    limitMs: positive("LIMIT_S", 1200) * 1000,
  };
}

/**
 * The guest side. `--thread` and `--gtod_reduce` keep fio's own kernel work (forks, clock
 * reads) small: the guest kernel is emulated on kvm_pvm hosts and would otherwise dominate.
 */
function fioScript(s: Settings): string {
  const engine = s.iodepth === 1 ? "psync" : `libaio --iodepth=${s.iodepth}`;
  return `#!/bin/sh
fio --thread --gtod_reduce=1 --direct=1 --filename=/dev/vdb --ioengine=${engine} \\
  --time_based --runtime=${s.runtimeS} --output-format=terse --terse-version=3 \\
  --name=seqread --rw=read --bs=${s.seqBs} \\
  --name=seqwrite --stonewall --rw=write --bs=${s.seqBs} \\
  --name=randread --stonewall --rw=randread --bs=4k >/tmp/fio.out 2>&1
rc=$?
while read -r line; do echo "FIO $line"; done </tmp/fio.out
echo "FIO-RC $rc"
`;
}

async function run(cmd: string, args: string[]): Promise<string> {
  const r = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
  if (!r.success) throw new Error(`${cmd} ${args.join(" ")} failed:\n${text}`);
  return text;
}

/** A fresh copy of the bench rootfs with the fio script as /etc/sv/fiobench. */
async function preparedRoot(s: Settings, work: string): Promise<string> {
  const image = `${work}/root.ext4`;
  Deno.copyFileSync(`${s.guestDir}/rootfs-bench.ext4`, image);
  const script = `${work}/fiobench.sh`;
  Deno.writeTextFileSync(script, fioScript(s));
  await run("debugfs", ["-w", "-R", `write ${script} /etc/sv/fiobench`, image]);
  await run("debugfs", ["-w", "-R", "sif /etc/sv/fiobench mode 0100755", image]);
  const back = await run("debugfs", ["-R", "cat /etc/sv/fiobench", image]);
  if (!back.includes("FIO-RC")) throw new Error(`debugfs did not write the script:\n${back}`);
  return image;
}

/** The data disk: SIZE_MIB of pseudo-random bytes (not a sparse file: reads hit real blocks). */
function writeDataDisk(path: string, sizeMiB: number): void {
  const f = Deno.openSync(path, { create: true, write: true, truncate: true });
  try {
    const chunk = new Uint8Array(1 << 20);
    let x = 0x9e3779b9;
    for (let i = 0; i < sizeMiB; i++) {
      for (let j = 0; j < chunk.length; j++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        chunk[j] = x & 0xff;
      }
      f.writeSync(chunk);
    }
  } finally {
    f.close();
  }
}

function stratovirtArgs(s: Settings, root: string, data: string): string[] {
  return [
    // Warnings to stderr (STRATOVIRT_LOG_LEVEL=warn): e.g. a disk falling back from io_uring.
    "-D",
    "-machine",
    "microvm",
    "-m",
    String(s.memMiB),
    "-smp",
    "1",
    "-kernel",
    `${s.guestDir}/vmlinux`,
    "-append",
    `${s.cmdline} root=/dev/vda rw sv.cmd=fiobench sv.halt`,
    "-serial",
    "stdio",
    "-drive",
    `id=root,file=${root}`,
    "-device",
    "virtio-blk-device,drive=root,id=vda",
    "-drive",
    `id=data,file=${data}`,
    "-device",
    "virtio-blk-device,drive=data,id=vdb",
  ];
}

function qemuArgs(s: Settings, root: string, data: string): string[] {
  return [
    ...qemuMicrovmArgs(s.memMiB, 1),
    "-kernel",
    `${s.guestDir}/vmlinux`,
    "-append",
    `${s.cmdline} root=/dev/vda rw sv.cmd=fiobench sv.halt`,
    "-drive",
    `id=root,file=${root},format=raw,if=none,cache=none`,
    "-device",
    "virtio-blk-device,drive=root",
    "-drive",
    `id=data,file=${data},format=raw,if=none,cache=none`,
    "-device",
    "virtio-blk-device,drive=data",
  ];
}

interface Sample {
  seqReadMBs: number;
  seqWriteMBs: number;
  randReadIops: number;
  wallS: number;
}

/** fio's terse v3 line of job `name`, split on ';'. */
function terse(output: string, name: string): string[] {
  for (const m of output.matchAll(/^FIO (3;fio-[^\r\n]*)/gm)) {
    const fields = m[1].split(";");
    if (fields[2] === name) return fields;
  }
  throw new Error(`no fio result for job ${name}`);
}

function parse(output: string, wallS: number): Sample {
  const rc = output.match(/^FIO-RC (\d+)/m);
  if (!rc || rc[1] !== "0") throw new Error(`fio failed in the guest (rc ${rc?.[1] ?? "none"})`);
  // Terse v3: field 7 read KiB/s, 8 read IOPS; 48 write KiB/s, 49 write IOPS (1-based).
  const kibToMB = (kib: string) => Number(kib) * 1024 / 1e6;
  return {
    seqReadMBs: kibToMB(terse(output, "seqread")[6]),
    seqWriteMBs: kibToMB(terse(output, "seqwrite")[47]),
    randReadIops: Number(terse(output, "randread")[7]),
    wallS,
  };
}

async function runVm(s: Settings, cmd: string, args: string[]): Promise<Sample> {
  const start = performance.now();
  const child = new Deno.Command(cmd, {
    args,
    env: { STRATOVIRT_LOG_LEVEL: "warn" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const killer = setTimeout(() => child.kill("SIGKILL"), s.limitMs);
  const out = await child.output();
  clearTimeout(killer);
  const wallS = (performance.now() - start) / 1000;
  const text = new TextDecoder().decode(out.stdout);
  // The VMM's warnings say which block backend it fell back to (e.g. io_uring unavailable).
  const warnings = new TextDecoder().decode(out.stderr).split("\n").filter((l) => /warn/i.test(l));
  for (const line of warnings.slice(0, 5)) console.log(`  ${cmd}: ${line}`);
  try {
    if (out.signal) throw new Error(`killed by ${out.signal} after ${wallS.toFixed(0)} s`);
    return parse(text, wallS);
  } catch (e) {
    const tail = (text + new TextDecoder().decode(out.stderr)).slice(-3000);
    throw new Error(`${(e as Error).message}\n--- output (tail)\n${tail}`);
  }
}

function median(xs: number[]): number {
  const v = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** Runs the benchmark; resolves to the number of failed runs. */
async function main(): Promise<number> {
  const s = settings();
  const work = Deno.makeTempDirSync({ dir: "/var/tmp", prefix: "stratovirt-blk-bench-" });
  try {
    const data = `${work}/data.img`;
    writeDataDisk(data, s.sizeMiB);
    const engine = s.iodepth === 1 ? "psync" : `libaio iodepth=${s.iodepth}`;
    console.log(
      `blk (fio in the guest): ${s.guestDir}/vmlinux + rootfs-bench.ext4, 1 vCPU, ${s.memMiB} MiB, ` +
        `data disk ${s.sizeMiB} MiB (O_DIRECT on the host), fio ${engine}, ${s.runtimeS} s a job, ` +
        `seq bs ${s.seqBs}, ${s.runs} run(s) each`,
    );
    const results = { stratovirt: [] as Sample[], qemu: [] as Sample[] };
    let failed = 0;
    for (let i = 0; i < s.runs; i++) {
      for (const who of ["stratovirt", "qemu"] as const) {
        const root = await preparedRoot(s, work);
        try {
          const sample = who === "stratovirt"
            ? await runVm(s, s.stratovirt, stratovirtArgs(s, root, data))
            : await runVm(s, s.qemu, qemuArgs(s, root, data));
          results[who].push(sample);
          console.log(
            `run ${i + 1} ${who.padEnd(10)}  seq read ${sample.seqReadMBs.toFixed(2)} MB/s  ` +
              `seq write ${sample.seqWriteMBs.toFixed(2)} MB/s  4k rand read ` +
              `${sample.randReadIops.toFixed(0)} IOPS  (VM wall ${sample.wallS.toFixed(0)} s)`,
          );
        } catch (e) {
          failed++;
          console.log(`run ${i + 1} ${who}: FAILED: ${(e as Error).message}`);
        }
      }
    }
    const ours = results.stratovirt, qemu = results.qemu;
    if (ours.length === 0 || qemu.length === 0) throw new Error("no successful run of one VMM");
    console.log(
      `\n${"median".padEnd(22)} ${"stratovirt".padStart(10)} ${
        "QEMU".padStart(10)
      }  ratio ours/QEMU`,
    );
    const rows: [string, keyof Sample, number][] = [
      ["seq read (MB/s)", "seqReadMBs", 2],
      ["seq write (MB/s)", "seqWriteMBs", 2],
      ["4k rand read (IOPS)", "randReadIops", 0],
    ];
    for (const [label, key, digits] of rows) {
      const o = median(ours.map((x) => x[key])), q = median(qemu.map((x) => x[key]));
      console.log(
        `${label.padEnd(22)} ${o.toFixed(digits).padStart(10)} ${
          q.toFixed(digits).padStart(10)
        }  ` +
          `${q === 0 ? "-" : (o / q).toFixed(2)}`,
      );
    }
    console.log(`runs: ${ours.length} stratovirt, ${qemu.length} QEMU, ${failed} failed`);
    return failed;
  } finally {
    Deno.removeSync(work, { recursive: true });
  }
}

if (await main() > 0) Deno.exit(1);

/**
 * virtio-blk seen from a Linux guest doing I/O: `throttling.iops-total` limits the rate the guest
 * itself measures, and a `num-queues=4` disk shows four blk-mq queues and keeps what parallel
 * writers put in their own regions. The guest programs are shell scripts copied into the guest's
 * /etc/sv of a copy of rootfs.ext4 with debugfs (no image rebuild) and run by the busybox init's
 * `sv.cmd=NAME`. The IOPS come from the guest's own clock (/proc/uptime) and its own request
 * counters (/sys/block/vdX/stat).
 *
 * On kvm_pvm the guest kernel is emulated: one 4 KiB O_DIRECT read costs it ~10–25 ms, so an
 * unthrottled guest reaches only ~15–100 IOPS here (dd, one request at a time; less under host
 * load) and a 200 IOPS limit cannot be observed. The throttle test therefore limits one disk to
 * LIMIT_IOPS, measures an unthrottled disk in the same boot, and asserts the latter is clearly
 * faster: the limit, not the guest, is what holds the rate. Each boot takes 1–20 minutes here
 * depending on the load (hang guards are generous; times are printed, never asserted).
 */
import { createHash } from "node:crypto";
import { assert, assertEquals } from "../lib/assert.ts";
import { command, kvm, testWhen } from "../lib/skip.ts";
import { helperBuilt } from "../machine/run_vm.ts";
import { describe, GUEST, guestFile, report, runVmm, withOneRetry } from "./vmm.ts";
import { disk, microvmArgs } from "./disk_args.ts";

const MiB = 1 << 20;
const needs = [
  kvm,
  helperBuilt,
  guestFile("vmlinux"),
  guestFile("rootfs.ext4"),
  command("debugfs"),
];

/** The throttled disk's limit: a fraction of what an unthrottled guest reaches on these hosts. */
const LIMIT_IOPS = 2;

async function debugfs(image: string, request: string, write = false): Promise<string> {
  const r = await new Deno.Command("debugfs", {
    args: [...(write ? ["-w"] : []), "-R", request, image],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(r.stdout);
  if (!r.success) {
    throw new Error(`debugfs '${request}' failed: ${new TextDecoder().decode(r.stderr)}`);
  }
  return out;
}

/**
 * A copy of the guest's root filesystem in `dir` with `scripts` as executable /etc/sv/NAME files
 * (debugfs reports most failures only in its output: each file is read back).
 */
async function rootWithScripts(dir: string, scripts: Record<string, string>): Promise<string> {
  const image = `${dir}/rootfs.ext4`;
  Deno.copyFileSync(`${GUEST}/rootfs.ext4`, image);
  for (const [name, text] of Object.entries(scripts)) {
    const local = `${dir}/${name}.sh`;
    Deno.writeTextFileSync(local, text);
    await debugfs(image, `write ${local} /etc/sv/${name}`, true);
    await debugfs(image, `sif /etc/sv/${name} mode 0100755`, true);
    const back = await debugfs(image, `cat /etc/sv/${name}`);
    assertEquals(back, text, `debugfs did not put /etc/sv/${name} into ${image}`);
  }
  return image;
}

/**
 * With more than one vCPU, only CPU 0 is brought up (`maxcpus=1`): the other vCPUs exist (the
 * MP table lists them, so the guest counts them as possible CPUs and virtio_blk sizes its queues
 * by them) but stay parked. On kvm_pvm hosts a guest running user code on several CPUs corrupts
 * user memory now and then, with QEMU as well (docs/status.md, known problems).
 */
function machineArgs(cpus: number, append: string): string[] {
  return microvmArgs(cpus, cpus > 1 ? `maxcpus=1 ${append}` : append);
}

/**
 * `iops`: background dd processes of 4 KiB O_DIRECT reads on one disk, then the other, each
 * disk counted between two of its completions on the guest's clock: "IOPS vdX ops=N cs=T
 * iops=N*100/T". vdb (no limit, one reader), before and after vdc: from its 5th to its 5th +
 * FREE_MEASURED completion.
 * vdc (a limit of L a second, READERS readers so a request is always waiting when a grant
 * frees up, whatever the guest's hiccups): request j+L is granted the moment request j's grant
 * is one second old, so from completion WARM (the first burst spent) to completion WARM +
 * MEASURED (a multiple of L) takes MEASURED / L seconds whatever the phase. Shell builtins only
 * around dd: it sleeps with `read -t` on a FIFO nobody writes, so the loop leaves the vCPU to
 * the readers and notices a completion within ~20 ms.
 */
const WARM = 2 * LIMIT_IOPS;
// 16 s: the guest notices a completion up to ~0.5 s late when the host is busy, at either end.
const MEASURED = 16 * LIMIT_IOPS;
const FREE_MEASURED = 100;
const READERS = 4;
const IOPS_SCRIPT = `#!/bin/sh
completed() { read -r r _ _ _ w _ <"/sys/block/$1/stat"; OPS=$((r + w)); }
# /proc/uptime has centiseconds: "123.45" -> 12345.
now() { read -r u _ </proc/uptime; NOW=$((\${u%.*}\${u#*.})); }
nap() { read -r -t 0.02 _ <&3; }
# sample DEV: OPS and NOW read together (up to 3 more tries if the vCPU was taken away between).
sample() {
  tries=0
  while now; ta=$NOW; completed "$1"; now; [ $((NOW - ta)) -gt 2 ] && [ $tries -lt 3 ]; do
    tries=$((tries + 1))
  done
}
# measure DEV SKIP COUNT READERS: the time between DEV's SKIP-th and SKIP+COUNT-th completion.
measure() {
  completed "$1"; base=$OPS
  pids=
  k=0
  while [ $k -lt "$4" ]; do
    dd if="/dev/$1" of=/dev/null bs=4096 skip=$((k * 4096)) count=4096 iflag=direct 2>/dev/null &
    pids="$pids $!"
    k=$((k + 1))
  done
  while completed "$1"; [ $((OPS - base)) -lt "$2" ]; do nap; done
  # The loop may start long after the SKIP-th completion (forking the readers is slow here):
  # start the window at the next completion.
  last=$OPS
  while sample "$1"; [ "$OPS" -eq "$last" ]; do nap; done
  t0=$NOW; c0=$OPS
  while sample "$1"; [ $((OPS - c0)) -lt "$3" ]; do nap; done
  t1=$NOW; c1=$OPS
  kill $pids 2>/dev/null
  wait
  echo "IOPS $1 ops=$((c1 - c0)) cs=$((t1 - t0)) iops=$(((c1 - c0) * 100 / (t1 - t0)))"
}
mkfifo /tmp/never
exec 3<>/tmp/never
measure vdb 5 ${FREE_MEASURED} 1
measure vdc ${WARM} ${MEASURED} ${READERS}
measure vdb 5 ${FREE_MEASURED} 1
`;

interface Measured {
  readonly ops: number;
  readonly cs: number;
  readonly iops: number;
}

/** Every `IOPS dev ...` line, in order. */
function iopsSeen(stdout: string, dev: string): Measured[] {
  const re = new RegExp(`^IOPS ${dev} ops=(\\d+) cs=(\\d+) iops=\\d+\\s*$`, "gm");
  return [...stdout.matchAll(re)].map((m) => {
    const ops = Number(m[1]), cs = Number(m[2]);
    return { ops, cs, iops: ops * 100 / cs };
  });
}

function shown(m: Measured): string {
  return `${m.iops.toFixed(1)} IOPS (${m.ops} in ${m.cs / 100} s)`;
}

testWhen(
  needs,
  `blk: with throttling.iops-total=${LIMIT_IOPS} the guest measures ${LIMIT_IOPS} IOPS ±10%, an unthrottled disk more`,
  () =>
    withOneRetry("throttle", async () => {
      const dir = Deno.makeTempDirSync({ prefix: "sv-blk-io-" });
      try {
        const root = await rootWithScripts(dir, { iops: IOPS_SCRIPT });
        // Sparse: reads of holes cost the host nothing and the guest the same as data.
        for (const name of ["free.img", "limited.img"]) {
          Deno.writeFileSync(`${dir}/${name}`, new Uint8Array());
          Deno.truncateSync(`${dir}/${name}`, 64 * MiB);
        }
        const r = await runVmm([
          ...machineArgs(1, "sv.cmd=iops sv.halt"),
          ...disk("rootfs", root, "vda"),
          ...disk("free", `${dir}/free.img`, "blk1"),
          ...disk(
            "limited",
            `${dir}/limited.img`,
            "blk2",
            "",
            `,throttling.iops-total=${LIMIT_IOPS}`,
          ),
        ], { limitMs: 1_800_000, timeMarker: "BOOT-OK" });
        report(`iops on vdb (free) and vdc (iops-total=${LIMIT_IOPS})`, r);
        assert(!r.hung, describe(r));
        const free = iopsSeen(r.stdout, "vdb");
        const [limited] = iopsSeen(r.stdout, "vdc");
        assert(free.length === 2 && limited, describe(r));
        console.log(
          `  guest measured: vdb ${shown(free[0])}, vdc ${shown(limited)}, vdb ${shown(free[1])}`,
        );
        // Before and after: the guest was clearly faster than the limit all along.
        for (const f of free) {
          assert(
            f.iops > 3 * LIMIT_IOPS,
            `the unthrottled disk reached only ${f.iops.toFixed(1)} IOPS: too slow a guest (a ` +
              `loaded host?) to tell a limit of ${LIMIT_IOPS} from its own speed\n${describe(r)}`,
          );
        }
        assert(
          limited.iops >= 0.9 * LIMIT_IOPS && limited.iops <= 1.1 * LIMIT_IOPS,
          `the throttled disk ran at ${limited.iops.toFixed(1)} IOPS, not ${LIMIT_IOPS} ±10%\n${
            describe(r)
          }`,
        );
        assertEquals(r.code, 0, describe(r));
      } finally {
        Deno.removeSync(dir, { recursive: true });
      }
    }),
);

const WRITERS = 4;
const REGION = MiB;

/** Writer `i`'s 64-byte line: 63 times its letter, then a newline (what `yes` repeats). */
function writerLine(i: number): string {
  return String.fromCharCode(65 + i).repeat(63);
}

function writerRegion(i: number): Uint8Array {
  const line = new TextEncoder().encode(`${writerLine(i)}\n`);
  const region = new Uint8Array(REGION);
  for (let at = 0; at < REGION; at += line.length) region.set(line, at);
  return region;
}

/**
 * `mqwriters`: "MQ-QUEUES n" (the blk-mq hardware queues of vdb), then WRITERS dd processes at
 * once, writer i putting its `yes` line over 1 MiB at i MiB with O_DIRECT; after all exit, the
 * page cache dropped, "MQ-REGION i <md5>" of each region read back with O_DIRECT.
 */
const MQ_SCRIPT = `#!/bin/sh
queues=0
for q in /sys/block/vdb/mq/*; do [ -d "$q" ] && queues=$((queues + 1)); done
echo "MQ-QUEUES $queues"
i=0
for line in ${Array.from({ length: WRITERS }, (_, i) => writerLine(i)).join(" ")}; do
  yes "$line" | dd of=/dev/vdb bs=65536 count=16 seek=$((i * 16)) iflag=fullblock oflag=direct \\
    conv=notrunc 2>/dev/null &
  i=$((i + 1))
done
wait
sync
echo 3 >/proc/sys/vm/drop_caches
i=0
while [ $i -lt ${WRITERS} ]; do
  echo "MQ-REGION $i $(dd if=/dev/vdb bs=65536 count=16 skip=$((i * 16)) iflag=direct 2>/dev/null |
    md5sum)"
  i=$((i + 1))
done
`;

testWhen(
  needs,
  `blk: num-queues=4, 4 vCPUs (1 online): the guest sees 4 queues, ${WRITERS} parallel O_DIRECT writers' regions read back in the guest and on the host`,
  () =>
    withOneRetry("multi-queue writers", async () => {
      const dir = Deno.makeTempDirSync({ prefix: "sv-blk-io-" });
      try {
        const root = await rootWithScripts(dir, { mqwriters: MQ_SCRIPT });
        const data = `${dir}/data.img`;
        const size = 8 * MiB;
        Deno.writeFileSync(data, new Uint8Array(size).fill(0xee));
        const r = await runVmm([
          // The guest's virtio_blk uses at most one queue per possible CPU: 4 queues need 4 vCPUs.
          ...machineArgs(4, "sv.cmd=mqwriters sv.halt"),
          ...disk("rootfs", root, "vda"),
          ...disk("data", data, "blk1", ",num-queues=4"),
        ], { limitMs: 2_400_000, timeMarker: "BOOT-OK" });
        report(`${WRITERS} writers on a 4-queue vdb, 4 vCPUs (1 online)`, r);
        assert(!r.hung, describe(r));
        // One CPU online of four possible (machineArgs).
        assert(/BOOT-OK uptime=\S+ cpus=1/.test(r.stdout), describe(r));
        assert(
          /^MQ-QUEUES 4\s*$/m.test(r.stdout),
          `the guest did not see 4 queues\n${describe(r)}`,
        );
        const bytes = Deno.readFileSync(data);
        // Every region is checked before anything is asserted, so a failure tells where and how.
        const problems: string[] = [];
        for (let i = 0; i < WRITERS; i++) {
          const expected = writerRegion(i);
          const md5 = createHash("md5").update(expected).digest("hex");
          const seen = r.stdout.match(new RegExp(`^MQ-REGION ${i} ([0-9a-f]{32})`, "m"))?.[1];
          if (seen !== md5) {
            problems.push(`writer ${i}: the guest read back md5 ${seen}, not ${md5}`);
          }
          const onHost = bytes.subarray(i * REGION, (i + 1) * REGION);
          const wrong = onHost.reduce((n, b, at) => n + (b !== expected[at] ? 1 : 0), 0);
          if (wrong > 0) {
            const first = onHost.findIndex((b, at) => b !== expected[at]);
            const around = new TextDecoder().decode(onHost.subarray(first, first + 80));
            problems.push(
              `writer ${i}: ${wrong} bytes differ on the host, the first at ${first}: ` +
                JSON.stringify(around),
            );
          }
        }
        assertEquals(problems, [], describe(r));
        const rest = bytes.subarray(WRITERS * REGION);
        assert(rest.every((b) => b === 0xee), "bytes past the writers' regions changed");
        assertEquals(r.code, 0, describe(r));
      } finally {
        Deno.removeSync(dir, { recursive: true });
      }
    }),
);

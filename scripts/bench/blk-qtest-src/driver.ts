/**
 * The guest side of the blk-qtest benchmark: starts the VMM with `-accel test`, sets up a
 * virtio-blk device over the qtest protocol, and keeps IODEPTH requests of BS bytes in the ring
 * for RUNTIME seconds. Every round re-submits the requests found completed since the last one
 * (new sector, status byte re-armed to 0xff, new avail entries, QueueNotify), then learns which
 * finished from the used ring and checks each one's status byte.
 *
 * MEM=shared (default): guest RAM is a file both processes map (`-mem-path`, `mem-share=on`),
 * so the driver reads and writes rings and headers in place as a guest does, and a round is two
 * commands: the QueueNotify (a register write, the guest's exit) and a `readw` of the used idx
 * (where the VMM waits for a completion, see IO). MEM=protocol: every ring and header access is
 * a protocol command (one `write` per request, the avail entries and idx, QueueNotify, then a
 * `read` of the used ring and one of the request slots), formatted and parsed byte by byte.
 * Data buffers stay in guest RAM either way. Prints one line:
 * `requests=N seconds=S iops=X mbps=Y rounds=R driver_cpu_us_per_request=C` (C: this process's
 * CPU time per completed request).
 *
 * IO=poll starts the VMM with STRATOVIRT_QTEST_IO=poll: it answers what finished
 * before each command and never waits, so requests stay in flight across rounds, as with a
 * guest. IO=wait (default): the same, but a round that would find nothing new waits in the VMM for one
 * request to finish (as a guest waits for its interrupt) instead of coming back empty.
 * IO=settle: the VMM waits for every request in flight before each command (each round is then
 * one batch, submitted and drained). PIPELINE (1..4) rounds stay on the socket; with MEM=protocol,
 * KICK requests go into the ring per QueueNotify (default 8; 32 and more: all of a round's at
 * once). VMM_FLAGS (e.g. `--cpu-prof --cpu-prof-dir=DIR`) are passed to the VMM's `deno run`,
 * for profiling it. CPU (unset or empty: no pinning): once the VMM is up, the main threads of this
 * process and of the VMM (which serves the socket and submits and reaps the io_uring I/O) are
 * pinned to that CPU with `taskset -p -c CPU PID`, so the serial round trip never wakes another
 * CPU; their other threads stay free (see pin.ts). WAIT (spin when CPU is set, else sleep): how
 * the driver waits for a reply. spin: it polls the socket, yielding its CPU to the VMM's thread
 * between tries, as a polling guest keeps its vCPU busy (see blocking_conn.ts); sleep: it sleeps
 * in poll(2) until the reply comes.
 *
 * Usage: deno run -A driver.ts FILE BS IODEPTH DIRECT(0|1) RW(randread|randwrite|read|write) RUNTIME
 */
import process from "node:process";
import { hostBytes, mapFileRam } from "../../../ffi/guest_ram.ts";
import { close, O_RDWR, open } from "../../../ffi/libc.ts";
import { QtestClient } from "../../../tests/qtest/client.ts";
import { BlockingConn } from "./blocking_conn.ts";
import { parseCpu, pinMainThread } from "./pin.ts";
import {
  GuestAllocator,
  RemoteRing,
  VIRTIO_F_VERSION_1,
  VirtioMmioDriver,
} from "../../../tests/qtest/virtio_driver.ts";

const [file, bsArg, depthArg, directArg, rw, runtimeArg] = Deno.args;
const bs = Number(bsArg);
const depth = Number(depthArg);
const runtimeMs = Number(runtimeArg) * 1000;
if (!file || !(bs >= 512 && bs % 512 === 0) || !(depth >= 1) || !(runtimeMs > 0)) {
  console.error("usage: driver.ts FILE BS IODEPTH DIRECT RW RUNTIME");
  Deno.exit(2);
}
if (!["randread", "randwrite", "read", "write"].includes(rw)) {
  console.error(`driver.ts: RW must be randread, randwrite, read or write, not ${rw}`);
  Deno.exit(2);
}
const write = rw.endsWith("write");
const random = rw.startsWith("rand");
const fileSize = (await Deno.stat(file)).size;
const blocks = Math.floor(fileSize / bs);

// Three descriptors per request; the queue must hold them all.
let queueSize = 4;
while (queueSize < 3 * depth) queueSize *= 2;
if (queueSize > 1024) {
  console.error(`driver.ts: IODEPTH ${depth} needs more than 1024 descriptors`);
  Deno.exit(2);
}
const memory = Math.max(256, Math.ceil((depth * (bs + 4096) * 2) / (1 << 20)) + 64);
const ioMode = Deno.env.get("IO") ?? "wait";
if (!["poll", "wait", "settle"].includes(ioMode)) {
  console.error(`driver.ts: IO must be poll, wait or settle, not ${ioMode}`);
  Deno.exit(2);
}
// The VMM inherits the environment.
Deno.env.set("STRATOVIRT_QTEST_IO", ioMode);
/**
 * MEM (env): `shared` (default) backs guest RAM with a file both processes map (`-mem-path`,
 * `mem-share=on`), so the driver reads and writes the rings and headers in place, as a guest
 * does, and only the device's registers (QueueNotify) and the wait for completions cross the
 * socket; `protocol` moves every ring and header access through `write` / `read` commands.
 */
const memMode = Deno.env.get("MEM") ?? "shared";
if (!["shared", "protocol"].includes(memMode)) {
  console.error(`driver.ts: MEM must be shared or protocol, not ${memMode}`);
  Deno.exit(2);
}
const shared = memMode === "shared";
/** CPU (env): the CPU both main threads go on, null for none; checked before the VMM starts. */
let pinCpu: number | null = null;
try {
  pinCpu = parseCpu(Deno.env.get("CPU"), navigator.hardwareConcurrency);
} catch (e) {
  console.error(`driver.ts: ${(e as Error).message}`);
  Deno.exit(2);
}
const waitMode = Deno.env.get("WAIT") || (pinCpu === null ? "sleep" : "spin");
if (!["spin", "sleep"].includes(waitMode)) {
  console.error(`driver.ts: WAIT must be spin or sleep, not ${waitMode}`);
  Deno.exit(2);
}
const ramFile = `/dev/shm/blk-qtest-${Deno.pid}.ram`;
const vmmArgs = [
  "-drive",
  `id=d0,file=${file},direct=${directArg === "1" ? "on" : "off"}`,
  "-device",
  `virtio-blk-device,id=b0,drive=d0,queue-size=${queueSize}`,
  ...(shared ? ["-mem-path", ramFile] : []),
];
const qt = await startVmm(
  vmmArgs,
  `${memory}M`,
  shared ? "microvm,accel=test,mem-share=on" : "microvm,accel=test",
);
if (pinCpu !== null) {
  try {
    await pinMainThread(Deno.pid, pinCpu);
    await pinMainThread(qt.child.pid, pinCpu);
  } catch (e) {
    // Hang up first so the VMM exits too.
    await qt.close();
    console.error(`driver.ts: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
(qt.conn as unknown as BlockingConn).spin = waitMode === "spin";
/** Guest RAM as the VMM has it (MEM=shared): byte `gpa` at index `gpa` (RAM is below 3 GiB). */
let ram: Uint8Array<ArrayBuffer> | null = null;
/** A DataView over `ram`, made once. */
let ramView: DataView | null = null;
if (shared) {
  const fd = open(ramFile, O_RDWR);
  try {
    ram = hostBytes(mapFileRam(fd, memory << 20), memory << 20);
  } finally {
    close(fd);
    await Deno.remove(ramFile);
  }
}

/**
 * QtestClient.start, except that the `-machine` value is the caller's and VMM_FLAGS (env, e.g.
 * `--cpu-prof --cpu-prof-dir=DIR`) go to the VMM's `deno run`: the VMM listens on the socket
 * itself and the driver connects.
 */
async function startVmm(args: string[], mem: string, machine: string): Promise<QtestClient> {
  const flags = Deno.env.get("VMM_FLAGS") ?? "";
  const dir = await Deno.makeTempDir({ prefix: "blk-qtest-" });
  const socketPath = `${dir}/qtest.sock`;
  const main = new URL("../../../main.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      ...flags.split(/\s+/).filter((f) => f),
      main,
      "-machine",
      machine,
    ]
      .concat(["-mod-test", socketPath, "-m", mem, ...args]),
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  for (let i = 0;; i++) {
    const conn = BlockingConn.connect(socketPath);
    if (conn) {
      // The constructor is private to tests; the benchmark reuses it for this one case.
      const Client = QtestClient as unknown as new (...a: unknown[]) => QtestClient;
      return new Client(conn, child, dir, socketPath);
    }
    if (i > 3000) throw new Error(`the VMM did not listen on ${socketPath} in 30 s`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const dev = new VirtioMmioDriver(qt, 0xf010_0000, 5);
if ((await dev.negotiate(VIRTIO_F_VERSION_1)) === null) throw new Error("FEATURES_OK refused");
const alloc = new GuestAllocator(0x10_0000);
const ring = await RemoteRing.create(qt, alloc, queueSize);
await dev.setupQueue(0, ring);
await dev.driverOk();
await qt.writew(ring.avail, 1); // VIRTQ_AVAIL_F_NO_INTERRUPT: the driver polls the used ring

// Request k: a 32-byte slot k holding its header (16 bytes) and, right after, its status byte,
// so one `write` both sets a new sector and re-arms the status (0xff); data buffer k (4 KiB
// aligned); descriptors 3k..3k+2.
const SLOT = 32;
const slots = alloc.alloc(SLOT * depth, 4096);
const data = alloc.alloc(depth * bs, 4096);
const setup: string[] = [];
for (let k = 0; k < depth; k++) {
  const h = slots + SLOT * k;
  setup.push(QtestClient.cmd("writel", h, write ? 1 : 0), QtestClient.cmd("writel", h + 4, 0));
  setup.push(...ring.descCommands(3 * k, h, 16, 1, 3 * k + 1));
  setup.push(...ring.descCommands(3 * k + 1, data + k * bs, bs, write ? 1 : 3, 3 * k + 2));
  setup.push(...ring.descCommands(3 * k + 2, h + 16, 1, 2, 0));
}
if (write) setup.push(`memset 0x${data.toString(16)} ${depth * bs} 0x5a`);
await qt.ok(...setup);

/**
 * KICK (env, default 8): requests made available per QueueNotify, as a guest kicks per request
 * or per small batch. The disk starts on the first ones while the VMM still parses the rest of
 * the round (with 32, all at once, it idles until the whole round is parsed).
 */
const KICK = Number(Deno.env.get("KICK") ?? "8");
if (!(KICK >= 1 && Number.isInteger(KICK))) {
  console.error(`driver.ts: KICK must be a positive integer, not ${Deno.env.get("KICK")}`);
  Deno.exit(2);
}

let sequential = 0;
function nextBlock(): number {
  return random ? Math.floor(Math.random() * blocks) : (sequential++ % blocks);
}

/** Two hex digits of each byte value. */
const HEX2 = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));
/** `type` and `reserved` of the header, as hex (the sector and the re-armed status follow). */
const HEADER_HEAD = HEX2[write ? 1 : 0] + "000000" + "00000000";
/** The hex of slot k's 17 bytes: header with `sector`, status byte 0xff. */
function slotHex(sector: number): string {
  let hex = HEADER_HEAD;
  for (let i = 0, v = sector; i < 8; i++, v = Math.floor(v / 256)) hex += HEX2[v % 256];
  return hex + "ff";
}
/** Byte `i` of a `read` reply ("0x" + hex). */
function replyByte(reply: string, i: number): number {
  return parseInt(reply.slice(2 + 2 * i, 4 + 2 * i), 16);
}

function hexOf(bytes: Uint8Array): string {
  let hex = "";
  for (const b of bytes) hex += HEX2[b];
  return hex;
}

/** The commands of a round that resubmits requests `ks` and learns which finished. */
function round(ks: number[]): string[] {
  return ram ? sharedRound(ram, ks) : protocolRound(ks);
}

/**
 * MEM=shared: the headers, status bytes and avail entries are written in guest RAM directly,
 * then a QueueNotify and a `readw` of the used idx, at which the VMM waits for a completion
 * (IO=wait) when none came since the round began.
 */
function sharedRound(mem: Uint8Array<ArrayBuffer>, ks: number[]): string[] {
  const view = ramView ??= new DataView(mem.buffer, mem.byteOffset, mem.byteLength);
  const cmds: string[] = [];
  for (const k of ks) {
    const h = slots + SLOT * k;
    // The sector as two 32-bit halves (no bigint per request).
    const sector = nextBlock() * (bs / 512);
    view.setUint32(h + 8, sector % 0x1_0000_0000, true);
    view.setUint32(h + 12, Math.floor(sector / 0x1_0000_0000), true);
    mem[h + 16] = 0xff;
    view.setUint16(ring.avail + 4 + 2 * (ring.availIdx % queueSize), 3 * k, true);
    ring.availIdx = (ring.availIdx + 1) & 0xffff;
  }
  // The index last, after the entries it makes available.
  view.setUint16(ring.avail + 2, ring.availIdx, true);
  // One notify: the device takes every entry the avail idx shows (KICK is for MEM=protocol).
  if (ks.length > 0) cmds.push(dev.notifyCmd(0));
  cmds.push(`readw 0x${(ring.used + 2).toString(16)}`);
  return cmds;
}

/**
 * MEM=protocol: the commands resubmitting requests `ks` (new sector, status re-armed, avail
 * entries in one write per contiguous run of slots) and notifying, then reading the used ring
 * (flags, idx and entries in one read) and the request slots (for the status bytes).
 */
function protocolRound(ks: number[]): string[] {
  const cmds: string[] = [];
  for (let first = 0; first < ks.length; first += KICK) {
    const group = ks.slice(first, first + KICK);
    const entries = new Uint8Array(2 * group.length);
    group.forEach((k, i) => {
      const sector = nextBlock() * (bs / 512);
      cmds.push(`write 0x${(slots + SLOT * k).toString(16)} 17 0x${slotHex(sector)}`);
      entries[2 * i] = (3 * k) & 0xff;
      entries[2 * i + 1] = (3 * k) >> 8;
    });
    // The new avail entries are consecutive slots of the ring (two runs when it wraps).
    let i = 0;
    while (i < group.length) {
      const slot = (ring.availIdx + i) % queueSize;
      const run = Math.min(group.length - i, queueSize - slot);
      const at = ring.avail + 4 + 2 * slot;
      cmds.push(
        `write 0x${at.toString(16)} ${2 * run} 0x${hexOf(entries.subarray(2 * i, 2 * (i + run)))}`,
      );
      i += run;
    }
    ring.availIdx = (ring.availIdx + group.length) & 0xffff;
    cmds.push(QtestClient.cmd("writew", ring.avail + 2, ring.availIdx));
    cmds.push(dev.notifyCmd(0));
  }
  cmds.push(`read 0x${ring.used.toString(16)} ${4 + 8 * queueSize}`);
  cmds.push(`read 0x${slots.toString(16)} ${SLOT * depth}`);
  return cmds;
}

/**
 * PIPELINE rounds (env, default 1) stay outstanding on the socket: with 2, while the VMM serves
 * one, the reply to the other is being read and the next one written, so neither side waits
 * for the other's wake-up (a finished request then goes back one round later). The reader
 * below takes over the connection after setup (every earlier reply has been read).
 */
const PIPELINE = Number(Deno.env.get("PIPELINE") ?? "1");
if (!(PIPELINE >= 1 && PIPELINE <= 4 && Number.isInteger(PIPELINE))) {
  console.error(`driver.ts: PIPELINE must be 1..4, not ${Deno.env.get("PIPELINE")}`);
  Deno.exit(2);
}
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const readBuf = new Uint8Array(1 << 20);
/** Received text not consumed yet. */
let buffered = "";
async function send(cmds: string[]): Promise<void> {
  const bytes = encoder.encode(cmds.join("\n") + "\n");
  for (let done = 0; done < bytes.length;) done += await qt.conn.write(bytes.subarray(done));
}
/** The replies to `cmds` ("OK " taken off); every buffered line is taken without an await. */
async function replies(cmds: string[]): Promise<string[]> {
  const out: string[] = [];
  let at = 0;
  for (;;) {
    for (let nl = buffered.indexOf("\n", at); nl >= 0; nl = buffered.indexOf("\n", at)) {
      const line = buffered.slice(at, nl);
      at = nl + 1;
      if (line.startsWith("IRQ ")) continue;
      if (line !== "OK" && !line.startsWith("OK ")) {
        throw new Error(`${cmds[out.length]}: ${line}`);
      }
      out.push(line.slice(3));
      if (out.length === cmds.length) {
        buffered = buffered.slice(at);
        return out;
      }
    }
    buffered = buffered.slice(at);
    at = 0;
    const n = await qt.conn.read(readBuf);
    if (n === null) throw new Error("the VMM closed the qtest socket");
    buffered += decoder.decode(readBuf.subarray(0, n), { stream: true });
  }
}

/** MEM=shared: takes the used entries since the last look (status checked); returns how many. */
function takeShared(mem: Uint8Array<ArrayBuffer>): number {
  const view = ramView ??= new DataView(mem.buffer, mem.byteOffset, mem.byteLength);
  const used = view.getUint16(ring.used + 2, true);
  const n = (used - usedSeen) & 0xffff;
  for (let i = 0; i < n; i++) {
    const k = view.getUint32(ring.used + 4 + 8 * ((usedSeen + i) % queueSize), true) / 3;
    const status = mem[slots + SLOT * k + 16];
    if (status !== 0) throw new Error(`request ${k}: status 0x${status.toString(16)}`);
    finished.push(k);
  }
  usedSeen = used;
  return n;
}

let usedSeen = 0;
let completed = 0;
let rounds = 0;
let idleRounds = 0;
/** Finished requests not resubmitted yet. */
let finished = Array.from({ length: depth }, (_, k) => k);
const outstanding: string[][] = [];
const start = performance.now();
const cpuStart = process.cpuUsage();
while (performance.now() - start < runtimeMs) {
  while (outstanding.length < PIPELINE) {
    const cmds = round(finished);
    finished = [];
    await send(cmds);
    outstanding.push(cmds);
  }
  const answer = await replies(outstanding.shift()!);
  rounds++;
  if (ram) {
    const n = takeShared(ram);
    if (n === 0 && ++idleRounds > 1_000_000) {
      throw new Error("no request completed in 1000000 rounds");
    }
    if (n > 0) idleRounds = 0;
    completed += n;
    continue;
  }
  // Only the bytes needed: used idx, the new entries' ids, their requests' status bytes.
  const usedReply = answer[answer.length - 2];
  const used = replyByte(usedReply, 2) | (replyByte(usedReply, 3) << 8);
  const n = (used - usedSeen) & 0xffff;
  if (n === 0) {
    // Nothing finished yet: poll again.
    if (++idleRounds > 1_000_000) throw new Error("no request completed in 1000000 rounds");
    continue;
  }
  idleRounds = 0;
  // Which requests finished: the used entries since the last round (id = head descriptor,
  // below 1024, so its two low bytes).
  const slotReply = answer[answer.length - 1];
  for (let i = 0; i < n; i++) {
    const at = 4 + 8 * ((usedSeen + i) % queueSize);
    const k = (replyByte(usedReply, at) | (replyByte(usedReply, at + 1) << 8)) / 3;
    const status = replyByte(slotReply, SLOT * k + 16);
    if (status !== 0) throw new Error(`request ${k}: status 0x${status.toString(16)}`);
    finished.push(k);
  }
  usedSeen = used;
  completed += n;
}
// Collect the replies still on the way before closing.
for (const cmds of outstanding.splice(0)) await replies(cmds);
const seconds = (performance.now() - start) / 1000;
const cpu = process.cpuUsage(cpuStart);
const exit = await qt.close();
if (exit.code !== 0) throw new Error(`VMM exited ${exit.code}: ${exit.stderr}`);
const iops = completed / seconds;
console.log(
  `requests=${completed} seconds=${seconds.toFixed(2)} iops=${iops.toFixed(0)} ` +
    `mbps=${(iops * bs / 1e6).toFixed(1)} rounds=${rounds} ` +
    `driver_cpu_us_per_request=${((cpu.user + cpu.system) / completed).toFixed(1)} ` +
    `(user ${(cpu.user / completed).toFixed(1)})`,
);

/**
 * The guest side of the blk-qtest benchmark: starts the VMM with `-accel test`, sets up a
 * virtio-blk device over the qtest protocol, and keeps IODEPTH requests of BS bytes in the ring
 * for RUNTIME seconds: every round re-submits all completed requests with new offsets (one
 * pipelined write of protocol commands, one round trip), notifies, and reads the used index.
 * Data buffers stay in guest RAM (as a guest's would); only headers and ring entries cross the
 * socket. Prints one line: `requests=N seconds=S iops=X mbps=Y`.
 *
 * Usage: deno run -A driver.ts FILE BS IODEPTH DIRECT(0|1) RW(randread|randwrite|read|write) RUNTIME
 */
import { Buffer } from "node:buffer";
import { QtestClient } from "../../../tests/qtest/client.ts";
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
const qt = await QtestClient.start([
  "-drive",
  `id=d0,file=${file},direct=${directArg === "1" ? "on" : "off"}`,
  "-device",
  `virtio-blk-device,id=b0,drive=d0,queue-size=${queueSize}`,
], { memory: `${memory}M` });

const dev = new VirtioMmioDriver(qt, 0xf010_0000, 5);
if ((await dev.negotiate(VIRTIO_F_VERSION_1)) === null) throw new Error("FEATURES_OK refused");
const alloc = new GuestAllocator(0x10_0000);
const ring = await RemoteRing.create(qt, alloc, queueSize);
await dev.setupQueue(0, ring);
await dev.driverOk();
await qt.writew(ring.avail, 1); // VIRTQ_AVAIL_F_NO_INTERRUPT: the driver polls the used ring

// Request k: header k, data buffer k (4 KiB aligned), status byte k, descriptors 3k..3k+2.
const headers = alloc.alloc(16 * depth, 4096);
const statuses = alloc.alloc(depth, 4096);
const data = alloc.alloc(depth * bs, 4096);
const setup: string[] = [];
for (let k = 0; k < depth; k++) {
  const h = headers + 16 * k;
  setup.push(QtestClient.cmd("writel", h, write ? 1 : 0), QtestClient.cmd("writel", h + 4, 0));
  setup.push(...ring.descCommands(3 * k, h, 16, 1, 3 * k + 1));
  setup.push(...ring.descCommands(3 * k + 1, data + k * bs, bs, write ? 1 : 3, 3 * k + 2));
  setup.push(...ring.descCommands(3 * k + 2, statuses + k, 1, 2, 0));
}
if (write) setup.push(`memset 0x${data.toString(16)} ${depth * bs} 0x5a`);
await qt.ok(...setup);

let sequential = 0;
function nextSector(): bigint {
  const block = random ? Math.floor(Math.random() * blocks) : (sequential++ % blocks);
  return BigInt(block * (bs / 512));
}

/** The commands submitting requests `ks` and notifying; the used index is read back last. */
function round(ks: number[]): string[] {
  const cmds: string[] = [];
  for (const k of ks) {
    cmds.push(QtestClient.cmd("writeq", headers + 16 * k + 8, nextSector()));
    cmds.push(QtestClient.cmd("writew", ring.avail + 4 + 2 * (ring.availIdx % queueSize), 3 * k));
    ring.availIdx = (ring.availIdx + 1) & 0xffff;
  }
  cmds.push(QtestClient.cmd("writew", ring.avail + 2, ring.availIdx));
  cmds.push(dev.notifyCmd(0));
  cmds.push(`readw 0x${(ring.used + 2).toString(16)}`);
  cmds.push(`read 0x${statuses.toString(16)} ${depth}`);
  cmds.push(`read 0x${(ring.used + 4).toString(16)} ${8 * queueSize}`);
  return cmds;
}

const all = Array.from({ length: depth }, (_, k) => k);
let usedSeen = 0;
let completed = 0;
let pending = all;
const start = performance.now();
while (performance.now() - start < runtimeMs) {
  const replies = await qt.ok(...round(pending));
  const used = Number(replies[replies.length - 3]);
  const n = (used - usedSeen) & 0xffff;
  if (n === 0) throw new Error("no request completed in a round");
  // Which requests finished: the used entries since the last round (id = head descriptor).
  const usedRing = Buffer.from(replies[replies.length - 1].slice(2), "hex");
  pending = Array.from(
    { length: n },
    (_, i) => usedRing.readUInt32LE(8 * ((usedSeen + i) % queueSize)) / 3,
  );
  const st = replies[replies.length - 2].slice(2);
  for (const k of pending) {
    const s = st.slice(2 * k, 2 * k + 2);
    if (s !== "00") throw new Error(`request ${k}: status 0x${s}`);
  }
  usedSeen = used;
  completed += n;
}
const seconds = (performance.now() - start) / 1000;
const exit = await qt.close();
if (exit.code !== 0) throw new Error(`VMM exited ${exit.code}: ${exit.stderr}`);
const iops = completed / seconds;
console.log(
  `requests=${completed} seconds=${seconds.toFixed(2)} iops=${iops.toFixed(0)} ` +
    `mbps=${(iops * bs / 1e6).toFixed(1)}`,
);

/**
 * The blk-qtest workload without the qtest socket: the virtio-blk device model (io_uring
 * backend) behind its MMIO transport in this process, a driver writing guest RAM directly and
 * keeping IODEPTH requests of BS bytes in the ring, waiting for completions as the device
 * thread's epoll loop would. What the device model can do here, to set against the qtest figure
 * (which adds two processes and a socket round trip per batch).
 *
 * Usage: deno run -A inprocess.ts FILE BS IODEPTH DIRECT(0|1) RW(randread|randwrite) RUNTIME
 * Prints `requests=N seconds=S iops=X mbps=Y`.
 */
import { openBlockDevice } from "../../../src/devices/virtio/blk/device.ts";
import { MmioTransport } from "../../../src/devices/virtio/mmio.ts";
import { DriverRing, MmioDriver } from "../../../src/devices/virtio/test_support.ts";
import { GuestMemory } from "../../../src/memory/guest_memory.ts";

const [file, bsArg, depthArg, directArg, rw, runtimeArg] = Deno.args;
const bs = Number(bsArg);
const depth = Number(depthArg);
const runtimeMs = Number(runtimeArg) * 1000;
if (!file || !(bs >= 512 && bs % 512 === 0) || !(depth >= 1) || !(runtimeMs > 0)) {
  console.error("usage: inprocess.ts FILE BS IODEPTH DIRECT RW RUNTIME");
  Deno.exit(2);
}
const write = rw === "randwrite";
let queueSize = 4;
while (queueSize < 3 * depth) queueSize *= 2;

// Page-aligned guest RAM, as the VMM's mmap'ed RAM is.
const ramSize = 0x10_0000 + depth * (bs + 64) + 0x10_0000;
const raw = new Uint8Array(ramSize + 4096);
const skip = (4096 - Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(raw))) % 4096) % 4096;
const memory = new GuestMemory([{
  gpa: 0,
  size: ramSize,
  bytes: raw.subarray(skip, skip + ramSize),
}]);

const device = openBlockDevice({
  path: file,
  readonly: false,
  direct: directArg === "1",
  serial: null,
  numQueues: 1,
  queueSize,
  iopsTotal: null,
});
if (device.completionFd === null) throw new Error("io_uring is not available");
const transport = new MmioTransport(device, { memory, interrupt: () => {} });
const driver = new MmioDriver(transport);
driver.negotiate(1n << 32n);
const ring = DriverRing.at(memory, queueSize, 0x1000);
driver.setupQueue(0, ring);
driver.driverOk();
ring.setAvailFlags(1); // no interrupts: completions are read from the used ring

const slots = 0x10_0000;
const data = slots + 32 * depth + 4096 - ((slots + 32 * depth) % 4096);
const blocks = Number(device.capacitySectors / BigInt(bs / 512));
const heads: number[] = [];
for (let k = 0; k < depth; k++) {
  memory.writeU32(slots + 32 * k, write ? 1 : 0);
  heads.push(ring.chain([
    { addr: slots + 32 * k, len: 16 },
    { addr: data + k * bs, len: bs, write: !write },
    { addr: slots + 32 * k + 16, len: 1, write: true },
  ]));
}
const submit = (k: number) => {
  const block = Math.floor(Math.random() * blocks);
  memory.writeU64(slots + 32 * k + 8, BigInt(block * (bs / 512)));
  memory.writeU8(slots + 32 * k + 16, 0xff);
  ring.publish(heads[k]);
};
for (let k = 0; k < depth; k++) submit(k);
driver.notify(0);

let usedSeen = 0;
let completed = 0;
const start = performance.now();
while (performance.now() - start < runtimeMs) {
  device.processCompletions(true);
  const used = ring.usedIdx;
  for (; usedSeen !== used; usedSeen = (usedSeen + 1) & 0xffff) {
    const k = ring.usedEntry(usedSeen).id / 3;
    const status = memory.readU8(slots + 32 * k + 16);
    if (status !== 0) throw new Error(`request ${k}: status ${status}`);
    completed++;
    submit(k);
  }
  driver.notify(0);
}
const seconds = (performance.now() - start) / 1000;
device.close();
const iops = completed / seconds;
console.log(
  `requests=${completed} seconds=${seconds.toFixed(2)} iops=${iops.toFixed(0)} ` +
    `mbps=${(iops * bs / 1e6).toFixed(1)}`,
);

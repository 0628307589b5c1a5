/**
 * What one blk-qtest round costs inside the VMM, without the socket or the driver process: an
 * `accel=test` machine (STRATOVIRT_QTEST_IO=poll) in this process, its QtestProtocol fed the
 * same command lines driver.ts sends, timed phase by phase:
 *   writes  the IODEPTH slot `write`s, the avail entries and the avail idx (protocol parsing)
 *   notify  the QueueNotify: the device pops, parses and plans every chain and submits them
 *   submit  the io_uring_enter part of notify (kernel time)
 *   drain   waiting until all of them completed and answering them (the disk)
 *   reads   the two `read`s of the used ring and the request slots (hex replies)
 *
 * Usage: deno run -A vmm_round.ts FILE [ROUNDS=1000] [IODEPTH=32] [BS=4096]
 * Prints `phase microseconds-per-round` lines.
 */
import { IoUring } from "../../../ffi/uring.ts";
import { parseCommandLine } from "../../../src/config/parse.ts";
import { QtestProtocol } from "../../../src/qtest/protocol.ts";
import { buildTestMachine } from "../../../src/qtest/test_machine.ts";

const [file, roundsArg, depthArg, bsArg] = Deno.args;
const rounds = Number(roundsArg ?? 1000);
const depth = Number(depthArg ?? 32);
const bs = Number(bsArg ?? 4096);
if (!file || !(rounds >= 1) || !(depth >= 1 && depth <= 341) || !(bs >= 512 && bs % 512 === 0)) {
  console.error("usage: vmm_round.ts FILE [ROUNDS] [IODEPTH] [BS]");
  Deno.exit(2);
}
let queueSize = 4;
while (queueSize < 3 * depth) queueSize *= 2;

// The kernel's share of notify: every submit call is timed (this process only).
let submitMs = 0;
const submit = IoUring.prototype.submit;
IoUring.prototype.submit = function (batch, count) {
  const t = performance.now();
  try {
    return submit.call(this, batch, count);
  } finally {
    submitMs += performance.now() - t;
  }
};

const config = parseCommandLine([
  "-machine",
  "microvm,accel=test",
  "-m",
  "256M",
  "-drive",
  `id=d0,file=${file},direct=on`,
  "-device",
  `virtio-blk-device,id=b0,drive=d0,queue-size=${queueSize}`,
]);
const machine = buildTestMachine(config, () => {}, "poll");
const protocol = new QtestProtocol(machine);
const hex = (n: number) => "0x" + n.toString(16);
const run = (line: string) => {
  const reply = protocol.handleLine(line).at(-1)!;
  if (!reply.startsWith("OK")) throw new Error(`${line}: ${reply}`);
};

// Slot 0 (0xf0100000): VERSION_1, queue 0 in guest RAM, DRIVER_OK, no interrupts.
const BASE = 0xf010_0000;
const reg = (off: number, v: number) => run(`writel ${hex(BASE + off)} ${v}`);
const [desc, avail, used] = [0x10_0000, 0x11_0000, 0x12_0000];
for (const [off, v] of [[0x70, 0], [0x70, 1], [0x70, 3], [0x24, 1], [0x20, 1], [0x70, 11]]) {
  reg(off, v);
}
for (const [off, v] of [[0x30, 0], [0x38, queueSize], [0x80, desc], [0x84, 0], [0x90, avail]]) {
  reg(off, v);
}
for (const [off, v] of [[0x94, 0], [0xa0, used], [0xa4, 0], [0x44, 1], [0x70, 15]]) reg(off, v);
run(`writew ${hex(avail)} 1`);
const slots = 0x20_0000;
const data = 0x30_0000;
const descriptor = (i: number, addr: number, len: number, flags: number, next: number) => {
  run(`writeq ${hex(desc + 16 * i)} ${hex(addr)}`);
  run(`writel ${hex(desc + 16 * i + 8)} ${len}`);
  run(`writew ${hex(desc + 16 * i + 12)} ${flags}`);
  run(`writew ${hex(desc + 16 * i + 14)} ${next}`);
};
for (let k = 0; k < depth; k++) {
  descriptor(3 * k, slots + 32 * k, 16, 1, 3 * k + 1);
  descriptor(3 * k + 1, data + bs * k, bs, 3, 3 * k + 2);
  descriptor(3 * k + 2, slots + 32 * k + 16, 1, 2, 0);
}

const byteHex = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));
const blocks = Math.floor(Deno.statSync(file).size / bs);
const ms = { writes: 0, notify: 0, submit: 0, drain: 0, reads: 0 };
let availIdx = 0;
for (let r = 0; r < rounds; r++) {
  const lines: string[] = [];
  let entries = "";
  for (let k = 0; k < depth; k++) {
    // type IN, reserved, sector (little-endian), status re-armed to 0xff.
    let header = "0000000000000000";
    for (let i = 0, v = Math.floor(Math.random() * blocks) * (bs / 512); i < 8; i++) {
      header += byteHex[v % 256];
      v = Math.floor(v / 256);
    }
    lines.push(`write ${hex(slots + 32 * k)} 17 0x${header}ff`);
    entries += byteHex[(3 * k) & 0xff] + byteHex[(3 * k) >> 8];
  }
  const at = avail + 4 + 2 * (availIdx % queueSize);
  availIdx = (availIdx + depth) & 0xffff;
  lines.push(`write ${hex(at)} ${2 * depth} 0x${entries}`, `writew ${hex(avail + 2)} ${availIdx}`);
  const out: string[] = [];
  const t0 = performance.now();
  lines.forEach((line, i) => protocol.handleInto(line, out, i === 0));
  const t1 = performance.now();
  const submitBefore = submitMs;
  protocol.handleInto(`writel ${hex(BASE + 0x50)} 0`, out, false);
  const t2 = performance.now();
  machine.virtio.processCompletions(true);
  const t3 = performance.now();
  protocol.handleInto(`read ${hex(used)} ${4 + 8 * queueSize}`, out, false);
  protocol.handleInto(`read ${hex(slots)} ${32 * depth}`, out, false);
  const t4 = performance.now();
  const bad = out.find((l) => !l.startsWith("OK"));
  if (bad) throw new Error(`round ${r}: ${bad}`);
  ms.writes += t1 - t0;
  ms.notify += t2 - t1;
  ms.submit += submitMs - submitBefore;
  ms.drain += t3 - t2;
  ms.reads += t4 - t3;
}
machine.close();
for (const [phase, total] of Object.entries(ms)) {
  console.log(`${phase.padEnd(7)} ${(1000 * total / rounds).toFixed(1)} us/round`);
}

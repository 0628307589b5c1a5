/**
 * The device's asynchronous path against a backend whose completions the test hands out one by
 * one, in any order: out-of-order answers, one interrupt per batch, errors, FLUSH ordering,
 * reset and close with requests in flight, the throttle.
 */
import { assert, assertEquals } from "../../../../tests/lib/assert.ts";
import { MmioReg } from "../mmio.ts";
import type { AsyncBlockBackend, IoDone } from "./async_backend.ts";
import { BlockIoError } from "./backend.ts";
import { RequestType } from "./request.ts";
import { BlkHarness, DISK_SIZE, IOERR, OK, pattern } from "./test_harness.ts";

type OpKind = "read" | "write" | "flush";

interface ManualOp {
  readonly kind: OpKind;
  readonly offset: number;
  readonly buffers: readonly Uint8Array[];
  readonly done: IoDone;
  submitted: boolean;
}

/** An in-memory image whose operations finish only when the test says so. */
class ManualBackend implements AsyncBlockBackend {
  readonly asyncIo = true;
  readonly readonly = false;
  readonly direct = false;
  readonly completionFd = null;
  readonly bytes = pattern(DISK_SIZE);
  /** Queued or submitted, not finished. */
  readonly ops: ManualOp[] = [];
  /** Finished, callback not run yet (runs from poll). */
  readonly #ready: { op: ManualOp; error: string | null }[] = [];
  readonly log: string[] = [];
  closed = false;

  get size(): number {
    return this.bytes.length;
  }
  get inFlight(): number {
    return this.ops.length + this.#ready.length;
  }
  readv(dsts: readonly Uint8Array[], offset: number, done: IoDone): void {
    this.ops.push({ kind: "read", offset, buffers: dsts, done, submitted: false });
  }
  writev(srcs: readonly Uint8Array[], offset: number, done: IoDone): void {
    this.ops.push({ kind: "write", offset, buffers: srcs, done, submitted: false });
  }
  flush(done: IoDone): void {
    this.log.push("flush started");
    this.ops.push({ kind: "flush", offset: 0, buffers: [], done, submitted: false });
  }
  submit(): void {
    for (const op of this.ops) op.submitted = true;
  }
  /** Carries out submitted op `i` (of `ops`) and makes its completion ready for poll. */
  finish(i: number, error: string | null = null): void {
    const [op] = this.ops.splice(i, 1);
    assert(op.submitted, "finished an op that was never submitted");
    if (error === null) {
      let at = op.offset;
      for (const b of op.buffers) {
        if (op.kind === "read") b.set(this.bytes.subarray(at, at + b.length));
        else this.bytes.set(b, at);
        at += b.length;
      }
    }
    this.log.push(`${op.kind} ${op.offset} ${error === null ? "done" : "failed"}`);
    this.#ready.push({ op, error });
  }
  find(kind: OpKind, offset = 0): number {
    const i = this.ops.findIndex((o) => o.kind === kind && o.offset === offset);
    assert(i >= 0, `no ${kind} at ${offset} in flight`);
    return i;
  }
  poll(wait = false): number {
    // Waiting stands for the host finishing its oldest operation.
    if (wait && this.#ready.length === 0 && this.ops.length > 0) this.finish(0);
    const ready = this.#ready.splice(0);
    for (const r of ready) r.op.done(r.error);
    return ready.length;
  }
  discard(offset: number, length: number): void {
    this.writeZeroes(offset, length);
  }
  writeZeroes(offset: number, length: number): void {
    if (offset + length > this.size) throw new BlockIoError("outside the image");
    this.bytes.fill(0, offset, offset + length);
  }
  close(): void {
    assertEquals(this.inFlight, 0, "closed with I/O in flight");
    this.closed = true;
  }
}

interface Pending {
  head: number;
  status: number;
  data: number;
  len: number;
}

/** Publishes a request without notifying: header, one data buffer, status byte. */
function publish(
  h: BlkHarness,
  type: number,
  sector: number,
  data: { out?: Uint8Array; inLen?: number } = {},
): Pending {
  const hdr = h.header(type, sector);
  const buffers = [{ addr: hdr, len: 16, write: false }];
  let addr = 0;
  let len = 0;
  if (data.out) {
    len = data.out.length;
    addr = h.buffer(len, data.out);
    buffers.push({ addr, len, write: false });
  } else if (data.inLen) {
    len = data.inLen;
    addr = h.buffer(len, 0xee);
    buffers.push({ addr, len, write: true });
  }
  const status = h.statusByte();
  buffers.push({ addr: status, len: 1, write: true });
  const head = h.ring.chain(buffers);
  h.ring.publish(head);
  return { head, status, data: addr, len };
}

function usedIds(h: BlkHarness): number[] {
  return Array.from({ length: h.ring.usedIdx }, (_, i) => h.ring.usedEntry(i).id);
}

function withManual(name: string, fn: (h: BlkHarness, b: ManualBackend) => void): void {
  Deno.test(name, () => {
    const backend = new ManualBackend();
    const h = new BlkHarness({ backend });
    try {
      fn(h, backend);
    } finally {
      h.device.reset();
      h.close();
    }
  });
}

withManual("blk async: one notify submits every available chain as one batch", (h, b) => {
  for (let s = 0; s < 5; s++) publish(h, RequestType.IN, s, { inLen: 512 });
  h.driver.notify(0);
  assertEquals(b.ops.length, 5);
  assert(b.ops.every((o) => o.submitted));
  assertEquals(h.ring.usedIdx, 0, "nothing answered before its I/O completed");
  assertEquals(h.device.inFlight, 5);
});

withManual("blk async: requests complete out of order with their own data", (h, b) => {
  const reqs = [0, 1, 2].map((s) => publish(h, RequestType.IN, s, { inLen: 512 }));
  h.driver.notify(0);
  b.finish(b.find("read", 2 * 512));
  h.device.processCompletions();
  assertEquals(usedIds(h), [reqs[2].head]);
  assertEquals(h.ring.usedEntry(0).len, 513);
  assertEquals(h.memory.readU8(reqs[2].status), OK);
  assertEquals(h.memory.read(reqs[2].data, 512), h.initial.subarray(1024, 1536));
  assertEquals(h.memory.readU8(reqs[0].status), 0xff, "unfinished request untouched");
  b.finish(b.find("read", 0));
  b.finish(b.find("read", 512));
  h.device.processCompletions();
  assertEquals(usedIds(h), [reqs[2].head, reqs[0].head, reqs[1].head]);
  assertEquals(h.memory.read(reqs[1].data, 512), h.initial.subarray(512, 1024));
  assertEquals(h.device.inFlight, 0);
});

withManual("blk async: one interrupt per batch of completions", (h, b) => {
  for (let s = 0; s < 4; s++) publish(h, RequestType.IN, s, { inLen: 512 });
  h.driver.notify(0);
  assertEquals(h.irqs, 0);
  b.finish(0);
  b.finish(0);
  b.finish(0);
  h.device.processCompletions();
  assertEquals(h.irqs, 1);
  assertEquals(h.ring.usedIdx, 3);
  h.device.processCompletions();
  assertEquals(h.irqs, 1, "no interrupt without new used entries");
  // EVENT_IDX: the driver asks to hear only once the used index passes 4.
  publish(h, RequestType.IN, 5, { inLen: 512 });
  h.driver.notify(0);
  h.ring.setUsedEvent(4);
  b.finish(0);
  h.device.processCompletions();
  assertEquals(h.irqs, 1, "used_event not reached");
  b.finish(0);
  h.device.processCompletions();
  assertEquals(h.irqs, 2);
});

withManual("blk async: a failed operation answers IOERR, the others OK", (h, b) => {
  const bad = publish(h, RequestType.OUT, 3, { out: new Uint8Array(512).fill(7) });
  const good = publish(h, RequestType.IN, 4, { inLen: 512 });
  h.driver.notify(0);
  b.finish(b.find("write", 3 * 512), "EIO");
  b.finish(b.find("read", 4 * 512));
  h.device.processCompletions();
  assertEquals(h.memory.readU8(bad.status), IOERR);
  assertEquals(h.ring.usedEntry(0), { id: bad.head, len: 1 });
  assertEquals(h.memory.readU8(good.status), OK);
  assertEquals(b.bytes.subarray(3 * 512, 4 * 512), h.initial.subarray(3 * 512, 4 * 512));
});

withManual("blk async: requests answered without I/O do not wait for the others", (h, b) => {
  publish(h, RequestType.IN, 0, { inLen: 512 });
  const id = publish(h, RequestType.GET_ID, 0, { inLen: 20 });
  const past = publish(h, RequestType.IN, DISK_SIZE / 512, { inLen: 512 });
  h.driver.notify(0);
  assertEquals(usedIds(h), [id.head, past.head]);
  assertEquals(h.memory.readU8(past.status), IOERR);
  assertEquals(h.irqs, 1);
  assertEquals(b.ops.length, 1);
});

withManual("blk async: FLUSH starts only after the writes before it completed", (h, b) => {
  const w1 = publish(h, RequestType.OUT, 1, { out: new Uint8Array(512).fill(1) });
  const w2 = publish(h, RequestType.OUT, 2, { out: new Uint8Array(512).fill(2) });
  const flush = publish(h, RequestType.FLUSH, 0);
  h.driver.notify(0);
  // A write made available after the FLUSH does not hold it back.
  const w3 = publish(h, RequestType.OUT, 3, { out: new Uint8Array(512).fill(3) });
  h.driver.notify(0);
  assert(!b.log.includes("flush started"));
  b.finish(b.find("write", 2 * 512));
  h.device.processCompletions();
  assert(!b.log.includes("flush started"), "one earlier write still in flight");
  b.finish(b.find("write", 512));
  h.device.processCompletions();
  assert(b.log.includes("flush started"));
  assertEquals(h.memory.readU8(flush.status), 0xff, "not answered before fdatasync returned");
  b.finish(b.find("flush"));
  h.device.processCompletions();
  assertEquals(h.memory.readU8(flush.status), OK);
  assertEquals(usedIds(h), [w2.head, w1.head, flush.head]);
  assertEquals(b.log.indexOf("write 512 done") < b.log.indexOf("flush started"), true);
  assertEquals(b.ops.map((o) => o.kind), ["write"], "the later write is still in flight");
  b.finish(0);
  h.device.processCompletions();
  assertEquals(h.memory.readU8(w3.status), OK);
});

withManual("blk async: a failed write still releases the FLUSH after it", (h, b) => {
  publish(h, RequestType.OUT, 1, { out: new Uint8Array(512) });
  const flush = publish(h, RequestType.FLUSH, 0);
  h.driver.notify(0);
  b.finish(b.find("write", 512), "ENOSPC");
  h.device.processCompletions();
  b.finish(b.find("flush"));
  h.device.processCompletions();
  assertEquals(h.memory.readU8(flush.status), OK);
});

withManual("blk async: reset waits for the I/O in flight and leaves the rings alone", (h, b) => {
  const reqs = [0, 1, 2].map((s) => publish(h, RequestType.IN, s, { inLen: 512 }));
  h.driver.notify(0);
  b.finish(1);
  h.driver.w32(MmioReg.STATUS, 0);
  assertEquals(b.inFlight, 0, "every operation finished before reset returned");
  assertEquals(h.device.inFlight, 0);
  assertEquals(h.ring.usedIdx, 0, "no answer written into the old rings");
  for (const r of reqs) assertEquals(h.memory.readU8(r.status), 0xff);
  h.activate();
  const again = publish(h, RequestType.IN, 5, { inLen: 512 });
  h.driver.notify(0);
  b.finish(0);
  h.device.processCompletions();
  assertEquals(usedIds(h), [again.head]);
  assertEquals(h.memory.read(again.data, 512), h.initial.subarray(5 * 512, 6 * 512));
});

Deno.test("blk async: close waits for the I/O in flight before releasing the backend", () => {
  const backend = new ManualBackend();
  const h = new BlkHarness({ backend });
  publish(h, RequestType.OUT, 0, { out: new Uint8Array(512).fill(9) });
  publish(h, RequestType.IN, 1, { inLen: 512 });
  h.driver.notify(0);
  h.close(); // ManualBackend.close asserts nothing is in flight
  assert(backend.closed);
  assertEquals(backend.bytes.subarray(0, 512), new Uint8Array(512).fill(9));
});

Deno.test("blk async: iops-total holds chains back, the rest go out after the delay", () => {
  let now = 1000;
  const backend = new ManualBackend();
  const h = new BlkHarness({ backend, iopsTotal: 2, now: () => now });
  try {
    for (let s = 0; s < 3; s++) publish(h, RequestType.IN, s, { inLen: 512 });
    h.driver.notify(0);
    assertEquals(backend.ops.length, 2);
    assertEquals(h.throttled, [[0, 1001]]);
    h.device.settle();
    assertEquals(h.ring.usedIdx, 2);
    now += 1001;
    h.driver.notify(0);
    assertEquals(backend.ops.length, 1);
    h.device.settle();
    assertEquals(h.ring.usedIdx, 3);
  } finally {
    h.close();
  }
});

withManual("blk async: settle answers everything in flight", (h, b) => {
  for (let s = 0; s < 6; s++) publish(h, RequestType.IN, s, { inLen: 1024 });
  h.driver.notify(0);
  h.device.settle();
  assertEquals(h.ring.usedIdx, 6);
  assertEquals(b.inFlight, 0);
  assertEquals(h.device.inFlight, 0);
});

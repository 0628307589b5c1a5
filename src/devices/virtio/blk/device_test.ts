import { assert, assertEquals } from "../../../../tests/lib/assert.ts";
import { feature, FeatureBit, Status } from "../constants.ts";
import { INT_CONFIG, INT_VRING, MmioReg } from "../mmio.ts";
import { BlkConfig, BlkFeature, MAX_REQUEST_SECTORS } from "./device.ts";
import { RequestType } from "./request.ts";
import type { BlockBackend } from "./backend.ts";
import { testWhen } from "../../../../tests/lib/skip.ts";
import { helperAvailable } from "../../../../ffi/helper.ts";
import { BlkHarness, DISK_SIZE, IOERR, OK, UNSUPP } from "./test_harness.ts";

function withHarness(
  name: string,
  options: ConstructorParameters<typeof BlkHarness>[0],
  fn: (h: BlkHarness) => void,
) {
  Deno.test(name, () => {
    const h = new BlkHarness(options);
    try {
      fn(h);
    } finally {
      h.close();
    }
  });
}

function configU32(h: BlkHarness, offset: number): number {
  return h.driver.r32(MmioReg.STATUS + 0x90 + offset); // 0x70 + 0x90 = 0x100
}

withHarness("blk: features and configuration space as the driver reads them", {}, (h) => {
  const f = h.negotiated!;
  for (const bit of [BlkFeature.SEG_MAX, BlkFeature.BLK_SIZE, BlkFeature.FLUSH]) {
    assert(f & feature(bit), `feature ${bit}`);
  }
  for (const bit of [BlkFeature.DISCARD, BlkFeature.WRITE_ZEROES]) assert(f & feature(bit));
  for (const bit of [FeatureBit.VERSION_1, FeatureBit.EVENT_IDX, FeatureBit.INDIRECT_DESC]) {
    assert(f & feature(bit));
  }
  assertEquals(f & feature(BlkFeature.RO), 0n);
  assertEquals(f & feature(BlkFeature.MQ), 0n);
  // Capacity as virtio_cread64 reads it: two 32-bit halves.
  assertEquals(configU32(h, BlkConfig.CAPACITY), DISK_SIZE / 512);
  assertEquals(configU32(h, BlkConfig.CAPACITY + 4), 0);
  assertEquals(configU32(h, BlkConfig.SEG_MAX), 14);
  assertEquals(configU32(h, BlkConfig.BLK_SIZE), 512);
  const nq = new Uint8Array(2);
  h.transport.read(0x100 + BlkConfig.NUM_QUEUES, nq);
  assertEquals(nq[0] | (nq[1] << 8), 1);
  assertEquals(configU32(h, BlkConfig.MAX_DISCARD_SECTORS), MAX_REQUEST_SECTORS);
  assertEquals(configU32(h, BlkConfig.MAX_DISCARD_SEG), 1);
  assertEquals(configU32(h, BlkConfig.MAX_WRITE_ZEROES_SEG), 1);
  assert(h.transport.activated);
  assert(h.device.activated);
});

withHarness(
  "blk: read returns the image bytes, byte for byte, over several descriptors",
  {},
  (h) => {
    const r = h.request(RequestType.IN, 3, { inLen: 4096 });
    assertEquals([r.status, r.usedLen], [OK, 4097]);
    assertEquals(r.data, h.initial.subarray(3 * 512, 3 * 512 + 4096));
    // Data split over three writable descriptors of odd sizes, status in its own.
    const hdr = h.header(RequestType.IN, 10);
    const a = h.buffer(100, 0xee), b = h.buffer(900, 0xee), c = h.buffer(24, 0xee);
    const st = h.statusByte();
    h.submit([
      { addr: hdr, len: 16 },
      { addr: a, len: 100, write: true },
      { addr: b, len: 900, write: true },
      { addr: c, len: 24, write: true },
      { addr: st, len: 1, write: true },
    ]);
    assertEquals(h.memory.readU8(st), OK);
    const got = new Uint8Array([
      ...h.memory.read(a, 100),
      ...h.memory.read(b, 900),
      ...h.memory.read(c, 24),
    ]);
    assertEquals(got, h.initial.subarray(5120, 5120 + 1024));
    assertEquals(h.ring.usedEntry(1).len, 1025);
  },
);

withHarness("blk: write lands in the file, then reads back", {}, (h) => {
  const data = new Uint8Array(1536).map((_, i) => (i * 13 + 5) & 0xff);
  const w = h.request(RequestType.OUT, 7, { out: data });
  assertEquals([w.status, w.usedLen], [OK, 1]);
  const expected = h.initial.slice();
  expected.set(data, 7 * 512);
  assertEquals(h.disk(), expected);
  const r = h.request(RequestType.IN, 7, { inLen: 1536 });
  assertEquals(r.data, data);
});

withHarness("blk: the last sector is reachable, one past it is not", {}, (h) => {
  const last = DISK_SIZE / 512 - 1;
  assertEquals(h.request(RequestType.IN, last, { inLen: 512 }).status, OK);
  assertEquals(h.request(RequestType.IN, last, { inLen: 1024 }).status, IOERR);
  assertEquals(h.request(RequestType.IN, last + 1, { inLen: 512 }).status, IOERR);
});

withHarness("blk: flush and get-id", {}, (h) => {
  const f = h.request(RequestType.FLUSH, 0);
  assertEquals([f.status, f.usedLen], [OK, 1]);
  const id = h.request(RequestType.GET_ID, 0, { inLen: 20 });
  assertEquals([id.status, id.usedLen], [OK, 21]);
  assertEquals(new TextDecoder().decode(id.data), "stratovirt-blk-0001\0");
  const short = h.request(RequestType.GET_ID, 0, { inLen: 4 });
  assertEquals(new TextDecoder().decode(short.data), "stra");
  assertEquals(short.usedLen, 5);
});

withHarness("blk: get-id without a serial answers zeroes", { serial: null }, (h) => {
  const id = h.request(RequestType.GET_ID, 0, { inLen: 20 });
  assertEquals(id.data, new Uint8Array(20));
});

function segment(sector: number, sectors: number, flags = 0): Uint8Array {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  v.setBigUint64(0, BigInt(sector), true);
  v.setUint32(8, sectors, true);
  v.setUint32(12, flags, true);
  return b;
}

withHarness("blk: discard and write-zeroes clear exactly their sectors", {}, (h) => {
  const expected = h.initial.slice();
  assertEquals(h.request(RequestType.DISCARD, 0, { out: segment(4, 3) }).status, OK);
  expected.fill(0, 4 * 512, 7 * 512);
  assertEquals(h.disk(), expected);
  assertEquals(h.request(RequestType.WRITE_ZEROES, 0, { out: segment(20, 2, 1) }).status, OK);
  expected.fill(0, 20 * 512, 22 * 512);
  assertEquals(h.disk(), expected);
  const r = h.request(RequestType.IN, 19, { inLen: 2048 });
  assertEquals(r.data, expected.subarray(19 * 512, 23 * 512));
});

withHarness(
  "blk: read-only disk refuses writes and leaves the file unchanged",
  { readonly: true },
  (h) => {
    const f = h.negotiated!;
    assert(f & feature(BlkFeature.RO));
    assertEquals(f & (feature(BlkFeature.DISCARD) | feature(BlkFeature.WRITE_ZEROES)), 0n);
    const w = h.request(RequestType.OUT, 0, { out: new Uint8Array(512).fill(1) });
    assertEquals([w.status, w.usedLen], [IOERR, 1]);
    assertEquals(h.request(RequestType.WRITE_ZEROES, 0, { out: segment(0, 1) }).status, UNSUPP);
    assertEquals(h.request(RequestType.IN, 0, { inLen: 512 }).data, h.initial.subarray(0, 512));
    assertEquals(h.request(RequestType.FLUSH, 0).status, OK);
    assertEquals(h.disk(), h.initial);
    assertEquals(openAccessMode(h.path), "read-only");
  },
);

/** How this process holds `path` open, from /proc/self/fdinfo. */
function openAccessMode(path: string): string {
  for (const e of Deno.readDirSync("/proc/self/fd")) {
    let target = "";
    try {
      target = Deno.readLinkSync(`/proc/self/fd/${e.name}`);
    } catch {
      continue;
    }
    if (target !== path) continue;
    const info = Deno.readTextFileSync(`/proc/self/fdinfo/${e.name}`);
    const flags = parseInt(/flags:\s+([0-7]+)/.exec(info)![1], 8);
    return ["read-only", "write-only", "read-write"][flags & 3];
  }
  return "not open";
}

withHarness("blk: a writable disk is open read-write", {}, (h) => {
  assertEquals(openAccessMode(h.path), "read-write");
});

withHarness("blk: multi-queue: each queue is served on its own notify", { numQueues: 3 }, (h) => {
  assert(h.negotiated! & feature(BlkFeature.MQ));
  const nq = new Uint8Array(2);
  h.transport.read(0x100 + BlkConfig.NUM_QUEUES, nq);
  assertEquals(nq[0], 3);
  const data = new Uint8Array(512).fill(0x5a);
  assertEquals(h.request(RequestType.OUT, 2, { out: data }, 2).status, OK);
  assertEquals(h.request(RequestType.IN, 2, { inLen: 512 }, 1).data, data);
  assertEquals([h.rings[0].usedIdx, h.rings[1].usedIdx, h.rings[2].usedIdx], [0, 1, 1]);
});

withHarness("blk: reset stops processing; re-initialisation works again", {}, (h) => {
  assertEquals(h.request(RequestType.IN, 0, { inLen: 512 }).status, OK);
  h.driver.w32(MmioReg.STATUS, 0);
  assert(!h.device.activated);
  assertEquals(h.device.ackedFeatures, 0n);
  // A notify after reset does nothing (the ring is still in guest memory).
  const head = h.ring.chain([{ addr: h.header(RequestType.IN, 0), len: 16 }, {
    addr: h.statusByte(),
    len: 1,
    write: true,
  }]);
  h.ring.publish(head);
  h.driver.notify(0);
  assertEquals(h.ring.usedIdx, 1);
  h.activate();
  assert(h.device.activated);
  assertEquals(h.request(RequestType.IN, 1, { inLen: 512 }).data, h.initial.subarray(512, 1024));
});

withHarness(
  "blk: EVENT_IDX: interrupts only when used_event is passed; avail_event published",
  {},
  (h) => {
    h.request(RequestType.FLUSH, 0);
    assertEquals(h.irqs, 1);
    assertEquals(h.driver.ackInterrupt(), INT_VRING);
    h.ring.setUsedEvent(3); // interrupt once entry 3 is used
    h.request(RequestType.FLUSH, 0); // used idx 2
    h.request(RequestType.FLUSH, 0); // 3
    assertEquals(h.irqs, 1);
    h.request(RequestType.FLUSH, 0); // 4: passes used_event
    assertEquals(h.irqs, 2);
    assertEquals(h.ring.availEvent, 4, "device asks to be notified at the next avail slot");
  },
);

withHarness(
  "blk: without EVENT_IDX every batch interrupts unless NO_INTERRUPT is set",
  { features: ~feature(FeatureBit.EVENT_IDX) },
  (h) => {
    h.request(RequestType.FLUSH, 0);
    h.request(RequestType.FLUSH, 0);
    assertEquals(h.irqs, 2);
    h.ring.setAvailFlags(1);
    h.request(RequestType.FLUSH, 0);
    assertEquals(h.irqs, 2);
  },
);

withHarness(
  "blk: many chains made available at once complete in one batch, one interrupt",
  {},
  (h) => {
    for (let i = 0; i < 10; i++) {
      h.ring.publish(h.ring.chain([
        { addr: h.header(RequestType.IN, i), len: 16 },
        { addr: h.buffer(512), len: 512, write: true },
        { addr: h.statusByte(), len: 1, write: true },
      ]));
    }
    h.driver.notify(0);
    assertEquals(h.ring.usedIdx, 10);
    assertEquals(h.irqs, 1);
  },
);

Deno.test("blk: iops-total holds requests back and resumes after the delay", () => {
  let now = 1000;
  const h = new BlkHarness({ iopsTotal: 2, now: () => now });
  try {
    for (let i = 0; i < 3; i++) {
      h.ring.publish(h.ring.chain([
        { addr: h.header(RequestType.FLUSH, 0), len: 16 },
        { addr: h.statusByte(), len: 1, write: true },
      ]));
    }
    h.driver.notify(0);
    assertEquals(h.ring.usedIdx, 2);
    assertEquals(h.throttled, [[0, 1001]]);
    now += 500;
    h.driver.notify(0);
    assertEquals(h.ring.usedIdx, 2);
    now += 501;
    h.driver.notify(0);
    assertEquals(h.ring.usedIdx, 3);
    assertEquals(h.transport.status & Status.DEVICE_NEEDS_RESET, 0);
  } finally {
    h.close();
  }
});

Deno.test("blk: data reaches the file before the status byte is written", () => {
  // The status byte is read while the backend call is in progress: it must still be untouched.
  const h = new BlkHarness();
  try {
    const seen: number[] = [];
    // The harness's default backend is the synchronous one.
    const backend = h.device.backend as BlockBackend;
    const original = backend.writev.bind(backend);
    let statusAddr = 0;
    backend.writev = (srcs, offset) => {
      seen.push(h.memory.readU8(statusAddr));
      original(srcs, offset);
      seen.push(Deno.readFileSync(h.path)[offset]);
    };
    const hdr = h.header(RequestType.OUT, 1);
    const data = h.buffer(512, 0x42);
    statusAddr = h.statusByte();
    h.submit([{ addr: hdr, len: 16 }, { addr: data, len: 512 }, {
      addr: statusAddr,
      len: 1,
      write: true,
    }]);
    assertEquals(seen, [0xff, 0x42]);
    assertEquals(h.memory.readU8(statusAddr), OK);
  } finally {
    h.close();
  }
});

// ---------------------------------------------------------------------------------------------
// Malformed rings and requests. Every case must end with the device in DEVICE_NEEDS_RESET or
// the request answered with an error, nothing thrown, and the disk file unchanged.

type Expect = { reset: true } | { status: number; usedLen: number } | { unanswered: true };

interface MalformedCase {
  name: string;
  options?: ConstructorParameters<typeof BlkHarness>[0];
  /** Puts the bad chain in the ring; returns the status byte address for request-level cases. */
  build: (h: BlkHarness) => number | void;
  expect: Expect;
}

const DESC_NEXT = 1, DESC_WRITE = 2, DESC_INDIRECT = 4;
const RESET: Expect = { reset: true };
const ioerr: Expect = { status: IOERR, usedLen: 1 };
const unsupp: Expect = { status: UNSUPP, usedLen: 1 };

/** A write request whose descriptors the case can spoil: [header, 512 data, status]. */
function writeChain(h: BlkHarness, sector = 0) {
  return {
    hdr: h.header(RequestType.OUT, sector),
    data: h.buffer(512, 0x99),
    status: h.statusByte(),
  };
}

function rawChain(h: BlkHarness, descs: [number | bigint, number, number, number][]): void {
  descs.forEach(([addr, len, flags, next], i) => h.ring.writeDesc(i, { addr, len, flags, next }));
  h.ring.publish(0);
}

function indirectCase(
  h: BlkHarness,
  entries: [number | bigint, number, number, number][],
  tableLen?: number,
  tableAddr?: number | bigint,
): void {
  const table = h.buffer(16 * Math.max(entries.length, 1));
  entries.forEach(([addr, len, flags, next], i) =>
    h.ring.writeDesc(i, { addr, len, flags, next }, table)
  );
  rawChain(h, [[tableAddr ?? table, tableLen ?? 16 * entries.length, DESC_INDIRECT, 0]]);
}

function goodIndirectEntries(h: BlkHarness): [number, number, number, number][] {
  const c = writeChain(h);
  return [[c.hdr, 16, DESC_NEXT, 1], [c.data, 512, DESC_NEXT, 2], [c.status, 1, DESC_WRITE, 0]];
}

const RAM_END = 0x200000;

const malformed: MalformedCase[] = [
  // --- ring-level: the device must ask for a reset ---
  { name: "head index = queue size", build: (h) => h.ring.publish(16), expect: RESET },
  { name: "head index 0xffff", build: (h) => h.ring.publish(0xffff), expect: RESET },
  {
    name: "next index >= queue size",
    build: (h) => {
      const c = writeChain(h);
      rawChain(h, [[c.hdr, 16, DESC_NEXT, 16]]);
    },
    expect: RESET,
  },
  {
    name: "two-descriptor loop",
    build: (h) => {
      const c = writeChain(h);
      rawChain(h, [[c.hdr, 16, DESC_NEXT, 1], [c.data, 512, DESC_NEXT, 0]]);
    },
    expect: RESET,
  },
  {
    name: "self loop",
    build: (h) => rawChain(h, [[writeChain(h).hdr, 16, DESC_NEXT, 0]]),
    expect: RESET,
  },
  {
    name: "chain through every descriptor and back (longer than the queue)",
    build: (h) => {
      const c = writeChain(h);
      rawChain(h, Array.from({ length: 16 }, (_, i) => [c.hdr, 16, DESC_NEXT, (i + 1) % 16]));
    },
    expect: RESET,
  },
  {
    name: "data buffer outside guest RAM",
    build: (h) => {
      const c = writeChain(h);
      rawChain(h, [[c.hdr, 16, DESC_NEXT, 1], [RAM_END + 0x1000, 512, DESC_NEXT, 2], [
        c.status,
        1,
        DESC_WRITE,
        0,
      ]]);
    },
    expect: RESET,
  },
  {
    name: "data buffer straddling the end of RAM",
    build: (h) => {
      const c = writeChain(h);
      rawChain(h, [[c.hdr, 16, DESC_NEXT, 1], [RAM_END - 256, 512, DESC_NEXT, 2], [
        c.status,
        1,
        DESC_WRITE,
        0,
      ]]);
    },
    expect: RESET,
  },
  {
    name: "buffer address with the top bits set",
    build: (h) => {
      const c = writeChain(h);
      rawChain(h, [[c.hdr, 16, DESC_NEXT, 1], [0xffff_ffff_ffff_f000n, 512, DESC_NEXT, 2], [
        c.status,
        1,
        DESC_WRITE,
        0,
      ]]);
    },
    expect: RESET,
  },
  {
    name: "buffer length 0xffffffff",
    build: (h) => {
      const c = writeChain(h);
      rawChain(h, [[c.hdr, 16, DESC_NEXT, 1], [c.data, 0xffff_ffff, DESC_NEXT, 2], [
        c.status,
        1,
        DESC_WRITE,
        0,
      ]]);
    },
    expect: RESET,
  },
  {
    name: "status descriptor not writable after a writable one",
    build: (h) => {
      const c = writeChain(h);
      rawChain(h, [[c.hdr, 16, DESC_NEXT, 1], [c.data, 512, DESC_WRITE | DESC_NEXT, 2], [
        c.status,
        1,
        0,
        0,
      ]]);
    },
    expect: RESET,
  },
  {
    name: "INDIRECT without VIRTIO_F_INDIRECT_DESC negotiated",
    options: { features: ~feature(FeatureBit.INDIRECT_DESC) },
    build: (h) => indirectCase(h, goodIndirectEntries(h)),
    expect: RESET,
  },
  {
    name: "INDIRECT combined with NEXT",
    build: (h) => {
      const table = h.buffer(48);
      goodIndirectEntries(h).forEach(([a, l, f, n], i) =>
        h.ring.writeDesc(i, { addr: a, len: l, flags: f, next: n }, table)
      );
      rawChain(h, [[table, 48, DESC_INDIRECT | DESC_NEXT, 1], [h.statusByte(), 1, DESC_WRITE, 0]]);
    },
    expect: RESET,
  },
  {
    name: "indirect table of length 0",
    build: (h) => indirectCase(h, goodIndirectEntries(h), 0),
    expect: RESET,
  },
  {
    name: "indirect table length not a multiple of 16",
    build: (h) => indirectCase(h, goodIndirectEntries(h), 40),
    expect: RESET,
  },
  {
    name: "indirect table longer than the queue size",
    build: (h) => indirectCase(h, goodIndirectEntries(h), 17 * 16),
    expect: RESET,
  },
  {
    name: "indirect table outside guest RAM",
    build: (h) => indirectCase(h, goodIndirectEntries(h), 48, RAM_END - 32),
    expect: RESET,
  },
  {
    name: "indirect table address with the top bits set",
    build: (h) => indirectCase(h, goodIndirectEntries(h), 48, 0x8000_0000_0000_0000n),
    expect: RESET,
  },
  {
    name: "nested indirect table",
    build: (h) => {
      const inner = h.buffer(48);
      goodIndirectEntries(h).forEach(([a, l, f, n], i) =>
        h.ring.writeDesc(i, { addr: a, len: l, flags: f, next: n }, inner)
      );
      indirectCase(h, [[inner, 48, DESC_INDIRECT, 0]]);
    },
    expect: RESET,
  },
  {
    name: "indirect entry next outside the table",
    build: (h) => {
      const e = goodIndirectEntries(h);
      e[1][3] = 3;
      indirectCase(h, e);
    },
    expect: RESET,
  },
  {
    name: "indirect table loop",
    build: (h) => {
      const e = goodIndirectEntries(h);
      e[1][3] = 0;
      indirectCase(h, e);
    },
    expect: RESET,
  },
  {
    name: "indirect entry buffer outside guest RAM",
    build: (h) => {
      const e = goodIndirectEntries(h);
      e[1][0] = RAM_END;
      indirectCase(h, e);
    },
    expect: RESET,
  },
  {
    name: "indirect entries readable after writable",
    build: (h) => {
      const e = goodIndirectEntries(h);
      e[1][2] = DESC_NEXT | DESC_WRITE;
      e[2][2] = 0;
      indirectCase(h, e);
    },
    expect: RESET,
  },
  {
    name: "avail idx jumps one past the queue size",
    build: (h) => {
      const c = writeChain(h);
      h.ring.chain([{ addr: c.hdr, len: 16 }, { addr: c.data, len: 512 }, {
        addr: c.status,
        len: 1,
        write: true,
      }]);
      h.ring.setAvailIdx(17);
    },
    expect: RESET,
  },
  { name: "avail idx jumps by 0x8000", build: (h) => h.ring.setAvailIdx(0x8000), expect: RESET },
  { name: "avail idx moves backwards", build: (h) => h.ring.setAvailIdx(0xffff), expect: RESET },

  // --- request-level: the request fails, the device carries on ---
  {
    name: "header of 8 bytes",
    build: (h) => {
      const st = h.statusByte();
      rawChain(h, [[h.header(RequestType.OUT, 0, 8), 8, DESC_NEXT, 1], [st, 1, DESC_WRITE, 0]]);
      return st;
    },
    expect: ioerr,
  },
  {
    name: "no readable descriptor at all",
    build: (h) => {
      const st = h.statusByte();
      rawChain(h, [[st, 1, DESC_WRITE, 0]]);
      return st;
    },
    expect: ioerr,
  },
  {
    name: "no status byte (nothing writable)",
    build: (h) => {
      const c = writeChain(h);
      rawChain(h, [[c.hdr, 16, DESC_NEXT, 1], [c.data, 512, 0, 0]]);
    },
    expect: { unanswered: true },
  },
  {
    name: "write past the disk end",
    build: (h) => {
      const c = writeChain(h, DISK_SIZE / 512);
      h.submit([{ addr: c.hdr, len: 16 }, { addr: c.data, len: 512 }, {
        addr: c.status,
        len: 1,
        write: true,
      }]);
      return c.status;
    },
    expect: ioerr,
  },
  {
    name: "write straddling the disk end",
    build: (h) => {
      const c = writeChain(h, DISK_SIZE / 512 - 1);
      const more = h.buffer(512, 0x77);
      h.submit([{ addr: c.hdr, len: 16 }, { addr: c.data, len: 512 }, { addr: more, len: 512 }, {
        addr: c.status,
        len: 1,
        write: true,
      }]);
      return c.status;
    },
    expect: ioerr,
  },
  {
    name: "write at sector 2^64-1 (overflow)",
    build: (h) => {
      const c = writeChain(h);
      h.memory.writeU64(c.hdr + 8, 0xffff_ffff_ffff_ffffn);
      h.submit([{ addr: c.hdr, len: 16 }, { addr: c.data, len: 512 }, {
        addr: c.status,
        len: 1,
        write: true,
      }]);
      return c.status;
    },
    expect: ioerr,
  },
  {
    name: "write at sector 2^55 (byte offset overflows 64 bits)",
    build: (h) => {
      const c = writeChain(h, 2 ** 55);
      h.submit([{ addr: c.hdr, len: 16 }, { addr: c.data, len: 512 }, {
        addr: c.status,
        len: 1,
        write: true,
      }]);
      return c.status;
    },
    expect: ioerr,
  },
  {
    name: "write of a partial sector",
    build: (h) => {
      const c = writeChain(h);
      h.submit([{ addr: c.hdr, len: 16 }, { addr: c.data, len: 500 }, {
        addr: c.status,
        len: 1,
        write: true,
      }]);
      return c.status;
    },
    expect: ioerr,
  },
  {
    name: "write with device-writable data (wrong direction)",
    build: (h) => {
      const c = writeChain(h);
      h.submit([{ addr: c.hdr, len: 16 }, { addr: c.data, len: 512, write: true }, {
        addr: c.status,
        len: 1,
        write: true,
      }]);
      return c.status;
    },
    expect: ioerr,
  },
  {
    name: "read with device-readable data (wrong direction)",
    build: (h) => {
      const hdr = h.header(RequestType.IN, 0);
      const st = h.statusByte();
      h.submit([{ addr: hdr, len: 16 }, { addr: h.buffer(512), len: 512 }, {
        addr: st,
        len: 1,
        write: true,
      }]);
      return st;
    },
    expect: ioerr,
  },
  {
    name: "read past the disk end",
    build: (h) => {
      const hdr = h.header(RequestType.IN, DISK_SIZE / 512);
      const st = h.statusByte();
      h.submit([{ addr: hdr, len: 16 }, { addr: h.buffer(512), len: 512, write: true }, {
        addr: st,
        len: 1,
        write: true,
      }]);
      return st;
    },
    expect: ioerr,
  },
  {
    name: "unknown request type",
    build: (h) => {
      const c = writeChain(h);
      h.memory.writeU32(c.hdr, 99);
      h.submit([{ addr: c.hdr, len: 16 }, { addr: c.data, len: 512 }, {
        addr: c.status,
        len: 1,
        write: true,
      }]);
      return c.status;
    },
    expect: unsupp,
  },
  {
    name: "GET_LIFETIME is not supported",
    build: (h) => {
      const hdr = h.header(RequestType.GET_LIFETIME, 0);
      const st = h.statusByte();
      h.submit([{ addr: hdr, len: 16 }, { addr: h.buffer(12), len: 12, write: true }, {
        addr: st,
        len: 1,
        write: true,
      }]);
      return st;
    },
    expect: unsupp,
  },
  ...discardCases(),
];

function discardCases(): MalformedCase[] {
  const make = (
    name: string,
    type: number,
    payload: Uint8Array,
    expect: Expect,
    options?: MalformedCase["options"],
  ): MalformedCase => ({
    name,
    options,
    expect,
    build: (h) => {
      const hdr = h.header(type, 0);
      const st = h.statusByte();
      h.submit([{ addr: hdr, len: 16 }, {
        addr: h.buffer(payload.length, payload),
        len: payload.length,
      }, {
        addr: st,
        len: 1,
        write: true,
      }]);
      return st;
    },
  });
  const DISCARD = RequestType.DISCARD, ZEROES = RequestType.WRITE_ZEROES;
  return [
    make("discard with the unmap flag", DISCARD, segment(0, 1, 1), unsupp),
    make("write-zeroes with an unknown flag", ZEROES, segment(0, 1, 2), unsupp),
    make(
      "discard with two segments",
      DISCARD,
      new Uint8Array([...segment(0, 1), ...segment(2, 1)]),
      unsupp,
    ),
    make("discard payload of 8 bytes", DISCARD, new Uint8Array(8), ioerr),
    make("write-zeroes past the disk end", ZEROES, segment(DISK_SIZE / 512 - 1, 2), ioerr),
    make(
      "discard of more than max_discard_sectors",
      DISCARD,
      segment(0, MAX_REQUEST_SECTORS + 1),
      ioerr,
    ),
    make(
      "discard at sector 2^64-16",
      DISCARD,
      (() => {
        const s = segment(0, 32);
        new DataView(s.buffer).setBigUint64(0, 0xffff_ffff_ffff_fff0n, true);
        return s;
      })(),
      ioerr,
    ),
    make("discard not negotiated", DISCARD, segment(0, 1), unsupp, {
      features: ~feature(BlkFeature.DISCARD),
    }),
  ];
}

for (const c of malformed) {
  Deno.test(`blk malformed: ${c.name}`, () => {
    const h = new BlkHarness(c.options);
    try {
      const usedBefore = h.ring.usedIdx;
      const status = c.build(h);
      h.driver.notify(0); // cases that only wrote the ring; a no-op for the others
      const after = h.disk();
      assertEquals(after.length, h.initial.length);
      assert(after.every((b, i) => b === h.initial[i]), "disk file changed");
      if ("reset" in c.expect) {
        assert(h.transport.status & Status.DEVICE_NEEDS_RESET, "DEVICE_NEEDS_RESET not set");
        assert(h.driver.r32(MmioReg.INTERRUPT_STATUS) & INT_CONFIG, "no config interrupt");
        // A broken device ignores further notifications until reset, then works again.
        const before = h.ring.usedIdx;
        h.driver.notify(0);
        assertEquals(h.ring.usedIdx, before);
        h.activate();
        assertEquals(h.transport.status & Status.DEVICE_NEEDS_RESET, 0);
        assertEquals(h.request(RequestType.IN, 0, { inLen: 512 }).status, OK);
      } else {
        assertEquals(h.transport.status & Status.DEVICE_NEEDS_RESET, 0, "unexpected reset");
        assertEquals(h.ring.usedIdx, (usedBefore + 1) & 0xffff, "request not completed");
        const used = h.ring.usedEntry(usedBefore);
        if ("unanswered" in c.expect) {
          assertEquals(used.len, 0);
        } else {
          assertEquals(h.memory.readU8(status as number), c.expect.status);
          assertEquals(used.len, c.expect.usedLen);
        }
        // The device carries on with the next request.
        assertEquals(h.request(RequestType.IN, 0, { inLen: 512 }).status, OK);
      }
    } finally {
      h.close();
    }
  });
}

Deno.test("blk malformed: the table has at least 30 cases", () => {
  assert(malformed.length >= 30, `${malformed.length}`);
});

Deno.test("blk: a random stream of garbage chains never throws; the device stays usable", () => {
  const h = new BlkHarness({ readonly: true });
  try {
    let seed = 99;
    const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
    for (let round = 0; round < 300; round++) {
      for (let i = 0; i < 16; i++) {
        const addr = rand() % 3 === 0 ? rand() * 1024 : 0x100000 + (rand() % 0x8000);
        h.ring.writeDesc(i, {
          addr,
          len: rand() % 2 ? rand() % 1024 : rand(),
          flags: rand() & 7,
          next: rand() % 20,
        });
      }
      h.ring.publish(rand() % 18);
      h.driver.notify(0);
      if (h.transport.status & Status.DEVICE_NEEDS_RESET) h.activate();
    }
    assertEquals(h.disk(), h.initial);
    h.activate();
    assertEquals(h.request(RequestType.IN, 2, { inLen: 512 }).data, h.initial.subarray(1024, 1536));
  } finally {
    h.close();
  }
});

Deno.test("blk: config space reads past the end are zero, writes are ignored", () => {
  const h = new BlkHarness();
  try {
    const b = new Uint8Array(8).fill(0xaa);
    h.transport.read(0x100 + BlkConfig.SIZE - 2, b);
    assertEquals([...b.subarray(2)], [0, 0, 0, 0, 0, 0]);
    h.transport.write(0x100, new Uint8Array(8).fill(0xff));
    assertEquals(configU32(h, BlkConfig.CAPACITY), DISK_SIZE / 512);
  } finally {
    h.close();
  }
});

testWhen([() => helperAvailable()], "blk: direct=on serves requests through O_DIRECT", () => {
  const h = new BlkHarness({ direct: true });
  try {
    assert(h.device.backend.direct);
    const data = new Uint8Array(3072).map((_, i) => (i * 3) & 0xff);
    assertEquals(h.request(RequestType.OUT, 5, { out: data }).status, OK);
    assertEquals(h.request(RequestType.FLUSH, 0).status, OK);
    assertEquals(h.request(RequestType.IN, 5, { inLen: 3072 }).data, data);
    const expected = h.initial.slice();
    expected.set(data, 5 * 512);
    assertEquals(h.disk(), expected);
  } finally {
    h.close();
  }
});

import { assertEquals } from "../../../../tests/lib/assert.ts";
import { GuestMemory } from "../../../memory/guest_memory.ts";
import type { Descriptor } from "../queue.ts";
import { MemoryBackend } from "./backend.ts";
import {
  BlkStatus,
  executeRequest,
  parseRequest,
  type RequestContext,
  RequestType,
} from "./request.ts";

function context(backend: MemoryBackend, over: Partial<RequestContext> = {}): RequestContext {
  return {
    backend,
    capacitySectors: BigInt(Math.floor(backend.size / 512)),
    readonly: backend.readonly,
    serial: new TextEncoder().encode("serial-0".padEnd(20, "\0")),
    discard: true,
    writeZeroes: true,
    maxDiscardSectors: 1000,
    maxDiscardSegments: 1,
    maxWriteZeroesSectors: 1000,
    maxWriteZeroesSegments: 1,
    ...over,
  };
}

function header(memory: GuestMemory, at: number, type: number, sector: bigint) {
  memory.writeU32(at, type);
  memory.writeU32(at + 4, 0);
  memory.writeU64(at + 8, sector);
}

const R = (addr: number, len: number): Descriptor => ({ addr, len, writable: false });
const W = (addr: number, len: number): Descriptor => ({ addr, len, writable: true });

Deno.test("request: header split over two descriptors, status sharing the data descriptor", () => {
  const memory = GuestMemory.anonymous(0x10000);
  header(memory, 0x100, RequestType.IN, 2n);
  const req = parseRequest(
    { head: 0, descriptors: [R(0x100, 8), R(0x108, 8), W(0x1000, 1025)] },
    memory,
  );
  assertEquals([req.type, req.sector, req.readableLen, req.writableLen, req.statusAddr], [
    RequestType.IN,
    2n,
    0,
    1024,
    0x1400,
  ]);
  const disk = new Uint8Array(8192).map((_, i) => i & 0xff);
  const result = executeRequest(req, memory, context(new MemoryBackend(disk)));
  assertEquals(result, { status: BlkStatus.OK, written: 1024 });
  assertEquals(memory.read(0x1000, 1024), disk.subarray(1024, 2048));
});

Deno.test("request: the usual three descriptors parse as the same request split otherwise", () => {
  const memory = GuestMemory.anonymous(0x10000);
  header(memory, 0x100, RequestType.IN, 7n);
  const usual = parseRequest(
    { head: 3, descriptors: [R(0x100, 16), W(0x1000, 512), W(0x2000, 1)] },
    memory,
  );
  const split = parseRequest(
    {
      head: 3,
      descriptors: [R(0x100, 8), R(0x108, 8), W(0x1000, 256), W(0x1100, 256), W(0x2000, 1)],
    },
    memory,
  );
  assertEquals(
    [usual.type, usual.sector, usual.readableLen, usual.writableLen, usual.statusAddr],
    [split.type, split.sector, split.readableLen, split.writableLen, split.statusAddr],
  );
  assertEquals(usual.writable.map((d) => [d.addr, d.len]), [[0x1000, 512]]);
  assertEquals(usual.readable, []);
  // OUT: the data is device-readable; FLUSH: no data descriptor at all.
  header(memory, 0x100, RequestType.OUT, 9n);
  const out = parseRequest(
    { head: 0, descriptors: [R(0x100, 16), R(0x1000, 1024), W(0x2000, 1)] },
    memory,
  );
  assertEquals([out.sector, out.readableLen, out.writableLen, out.statusAddr], [
    9n,
    1024,
    0,
    0x2000,
  ]);
  header(memory, 0x100, RequestType.FLUSH, 0n);
  const flush = parseRequest({ head: 0, descriptors: [R(0x100, 16), W(0x2000, 1)] }, memory);
  assertEquals([flush.type, flush.readableLen, flush.writableLen, flush.statusAddr], [
    RequestType.FLUSH,
    0,
    0,
    0x2000,
  ]);
  // A zero-length data descriptor is skipped, as in any layout.
  const empty = parseRequest(
    { head: 0, descriptors: [R(0x100, 16), W(0x1000, 0), W(0x2000, 1)] },
    memory,
  );
  assertEquals([empty.readableLen, empty.writableLen, empty.statusAddr], [0, 0, 0x2000]);
});

Deno.test("request: header and data in one readable descriptor (any layout)", () => {
  const memory = GuestMemory.anonymous(0x10000);
  header(memory, 0x100, RequestType.OUT, 1n);
  memory.fill(0x110, 512, 0xab);
  const req = parseRequest({ head: 3, descriptors: [R(0x100, 16 + 512), W(0x2000, 1)] }, memory);
  assertEquals([req.readableLen, req.writableLen, req.statusAddr], [512, 0, 0x2000]);
  const disk = new Uint8Array(4096);
  assertEquals(executeRequest(req, memory, context(new MemoryBackend(disk))).status, BlkStatus.OK);
  assertEquals(disk.subarray(512, 1024), new Uint8Array(512).fill(0xab));
  assertEquals(disk.subarray(0, 512), new Uint8Array(512));
});

Deno.test("request: zero-length descriptors are skipped", () => {
  const memory = GuestMemory.anonymous(0x10000);
  header(memory, 0x100, RequestType.FLUSH, 0n);
  const req = parseRequest({
    head: 0,
    descriptors: [R(0x100, 16), R(0x500, 0), W(0x600, 0), W(0x700, 1), W(0x800, 0)],
  }, memory);
  assertEquals(req.statusAddr, 0x700);
  const backend = new MemoryBackend(new Uint8Array(512));
  assertEquals(executeRequest(req, memory, context(backend)).status, BlkStatus.OK);
  assertEquals(backend.flushes, 1);
});

Deno.test("request: a backend failure is IOERR, not an exception", () => {
  const memory = GuestMemory.anonymous(0x10000);
  header(memory, 0x100, RequestType.IN, 0n);
  const req = parseRequest({ head: 0, descriptors: [R(0x100, 16), W(0x1000, 513)] }, memory);
  // The context claims more capacity than the backend has: the backend refuses the read.
  const backend = new MemoryBackend(new Uint8Array(256));
  assertEquals(
    executeRequest(req, memory, context(backend, { capacitySectors: 8n })).status,
    BlkStatus.IOERR,
  );
});

Deno.test("request: write-zeroes with unmap set is allowed; discard range checks hold", () => {
  const memory = GuestMemory.anonymous(0x10000);
  header(memory, 0x100, RequestType.WRITE_ZEROES, 0n);
  memory.writeU64(0x110, 1n);
  memory.writeU32(0x118, 2);
  memory.writeU32(0x11c, 1);
  const disk = new Uint8Array(4096).fill(0x11);
  const req = parseRequest({ head: 0, descriptors: [R(0x100, 32), W(0x200, 1)] }, memory);
  assertEquals(executeRequest(req, memory, context(new MemoryBackend(disk))).status, BlkStatus.OK);
  assertEquals(disk.subarray(512, 1536), new Uint8Array(1024));
  assertEquals(disk[511], 0x11);
  assertEquals(disk[1536], 0x11);
  // Over the advertised limit: IOERR, nothing cleared.
  memory.writeU32(0x118, 1001);
  disk.fill(0x11);
  assertEquals(
    executeRequest(req, memory, context(new MemoryBackend(disk))).status,
    BlkStatus.IOERR,
  );
  assertEquals(disk.every((b) => b === 0x11), true);
});

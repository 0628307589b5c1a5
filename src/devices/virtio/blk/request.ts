/**
 * One virtio-blk request (virtio 1.2 §5.2.6): parsing a descriptor chain and carrying it out
 * against a backend.
 *
 *   struct virtio_blk_req { le32 type; le32 reserved; le64 sector; u8 data[]; u8 status; }
 *
 * The layout does not depend on how the driver split it into descriptors (VERSION_1 implies
 * ANY_LAYOUT): the header is the first 16 device-readable bytes, the status is the last
 * device-writable byte, and the data is what lies between. Every problem with a request is
 * answered in its status byte (IOERR / UNSUPP); only a chain without any writable byte cannot
 * be answered at all, and is returned with a used length of 0.
 */
import type { GuestMemory } from "../../../memory/guest_memory.ts";
import { log } from "../../../util/logger.ts";
import type { DescriptorChain } from "../queue.ts";
import { type BlockBackend, BlockIoError, SECTOR_SIZE } from "./backend.ts";

export const RequestType = {
  IN: 0,
  OUT: 1,
  FLUSH: 4,
  GET_ID: 8,
  GET_LIFETIME: 10,
  DISCARD: 11,
  WRITE_ZEROES: 13,
  SECURE_ERASE: 14,
} as const;

export const BlkStatus = { OK: 0, IOERR: 1, UNSUPP: 2 } as const;

export const HEADER_SIZE = 16;
/** The GET_ID answer is at most 20 bytes (VIRTIO_BLK_ID_BYTES). */
export const ID_BYTES = 20;
/** struct virtio_blk_discard_write_zeroes: le64 sector; le32 num_sectors; le32 flags. */
export const DISCARD_SEGMENT_SIZE = 16;
export const WRITE_ZEROES_FLAG_UNMAP = 1;

export interface Segment {
  readonly addr: number;
  readonly len: number;
}

export interface BlkRequest {
  readonly head: number;
  readonly type: number;
  readonly sector: bigint;
  /** Device-readable data after the header. */
  readonly readable: readonly Segment[];
  readonly readableLen: number;
  /** Device-writable data before the status byte. */
  readonly writable: readonly Segment[];
  readonly writableLen: number;
  /** Where the status byte goes, or null when the chain has no writable byte. */
  readonly statusAddr: number | null;
  /** Set when the header could not be read (fewer than 16 readable bytes). */
  readonly problem: string | null;
}

/** The synchronous range operations DISCARD / WRITE_ZEROES need (every backend has them). */
export type RangeBackend = Pick<BlockBackend, "discard" | "writeZeroes">;

/** What a device needs to know to carry out requests. */
export interface RequestContext<B extends RangeBackend = BlockBackend> {
  readonly backend: B;
  readonly capacitySectors: bigint;
  readonly readonly: boolean;
  /** The GET_ID answer, zero-padded to 20 bytes. */
  readonly serial: Uint8Array;
  /** DISCARD / WRITE_ZEROES negotiated, and their limits. */
  readonly discard: boolean;
  readonly writeZeroes: boolean;
  readonly maxDiscardSectors: number;
  readonly maxDiscardSegments: number;
  readonly maxWriteZeroesSectors: number;
  readonly maxWriteZeroesSegments: number;
}

export interface RequestResult {
  readonly status: number;
  /** Bytes written into the data part of the chain (the status byte not counted). */
  readonly written: number;
}

/** Splits `segments` at byte `at`: [the first `at` bytes, the rest]. */
function splitAt(segments: readonly Segment[], at: number): [Segment[], Segment[]] {
  const before: Segment[] = [];
  const after: Segment[] = [];
  let pos = 0;
  for (const s of segments) {
    if (pos + s.len <= at) before.push(s);
    else if (pos >= at) after.push(s);
    else {
      const k = at - pos;
      before.push({ addr: s.addr, len: k });
      after.push({ addr: s.addr + k, len: s.len - k });
    }
    pos += s.len;
  }
  return [before.filter((s) => s.len > 0), after.filter((s) => s.len > 0)];
}

function total(segments: readonly Segment[]): number {
  return segments.reduce((n, s) => n + s.len, 0);
}

function gather(memory: GuestMemory, segments: readonly Segment[], len: number): Uint8Array {
  const out = new Uint8Array(len);
  let done = 0;
  for (const s of segments) {
    if (done >= len) break;
    const n = Math.min(s.len, len - done);
    out.set(memory.slice(s.addr, n), done);
    done += n;
  }
  return out;
}

const NO_SEGMENTS: readonly Segment[] = [];

/**
 * The layout every driver uses: a 16-byte header descriptor, at most one data descriptor, a
 * 1-byte status descriptor. Parsed without the general splitting; null for any other layout.
 */
function parseUsualLayout(chain: DescriptorChain, memory: GuestMemory): BlkRequest | null {
  const ds = chain.descriptors;
  if (ds.length < 2 || ds.length > 3) return null;
  const header = ds[0];
  const status = ds[ds.length - 1];
  if (header.writable || header.len !== HEADER_SIZE || !status.writable || status.len !== 1) {
    return null;
  }
  const data = ds.length === 3 ? ds[1] : null;
  if (data !== null && data.len === 0) return null;
  const segments = data === null ? NO_SEGMENTS : [data];
  const intoDevice = data !== null && !data.writable;
  return {
    head: chain.head,
    type: memory.readU32(header.addr),
    sector: memory.readU64(header.addr + 8),
    readable: intoDevice ? segments : NO_SEGMENTS,
    readableLen: intoDevice ? data.len : 0,
    writable: intoDevice ? NO_SEGMENTS : segments,
    writableLen: intoDevice || data === null ? 0 : data.len,
    statusAddr: status.addr,
    problem: null,
  };
}

/** Reads the request out of a validated chain. Never throws for a chain `Queue.pop` returned. */
export function parseRequest(chain: DescriptorChain, memory: GuestMemory): BlkRequest {
  const usual = parseUsualLayout(chain, memory);
  if (usual !== null) return usual;
  const readableAll = chain.descriptors.filter((d) => !d.writable && d.len > 0);
  const writableAll = chain.descriptors.filter((d) => d.writable && d.len > 0);
  const writableTotal = total(writableAll);
  let statusAddr: number | null = null;
  let writable: Segment[] = [];
  if (writableTotal > 0) {
    const [data, status] = splitAt(writableAll, writableTotal - 1);
    writable = data;
    statusAddr = status[0].addr;
  }
  const base = {
    head: chain.head,
    writable,
    writableLen: writableTotal > 0 ? writableTotal - 1 : 0,
    statusAddr,
  };
  const readableTotal = total(readableAll);
  if (readableTotal < HEADER_SIZE) {
    return {
      ...base,
      type: -1,
      sector: 0n,
      readable: [],
      readableLen: 0,
      problem: `request header is ${readableTotal} bytes, not ${HEADER_SIZE}`,
    };
  }
  const [headerSegs, readable] = splitAt(readableAll, HEADER_SIZE);
  let type: number;
  let sector: bigint;
  if (headerSegs.length === 1) {
    // The usual layout: the header in one descriptor, read in place.
    type = memory.readU32(headerSegs[0].addr);
    sector = memory.readU64(headerSegs[0].addr + 8);
  } else {
    const header = new DataView(gather(memory, headerSegs, HEADER_SIZE).buffer);
    type = header.getUint32(0, true);
    sector = header.getBigUint64(8, true);
  }
  return {
    ...base,
    type,
    sector,
    readable,
    readableLen: readableTotal - HEADER_SIZE,
    problem: null,
  };
}

const fail = (status: number, why: string): RequestResult => {
  log.warn(
    `virtio-blk: request failed (${status === BlkStatus.UNSUPP ? "UNSUPP" : "IOERR"}): ${why}`,
  );
  return { status, written: 0 };
};

/** Byte offset of [sector, sector + bytes/512) if it lies inside the disk, else null. */
function rangeOffset(
  ctx: RequestContext<RangeBackend>,
  sector: bigint,
  bytes: number,
): number | null {
  // As numbers (this runs for every read and write): the capacity is far below 2^53, and a
  // sector that large, rounded, is still past it.
  const first = Number(sector);
  const capacity = Number(ctx.capacitySectors);
  if (first > capacity || first + Math.ceil(bytes / SECTOR_SIZE) > capacity) return null;
  return first * SECTOR_SIZE;
}

/**
 * What a parsed request needs from the backend: a read or write of `len` bytes at byte `offset`
 * through the guest buffers `segments`, a flush, or nothing more (`done`: it was answered here,
 * GET_ID, DISCARD / WRITE_ZEROES through the backend's synchronous calls, or a failure).
 */
export type RequestPlan =
  | {
    readonly kind: "read" | "write";
    readonly offset: number;
    readonly len: number;
    readonly segments: readonly Segment[];
  }
  | { readonly kind: "flush" }
  | { readonly kind: "done"; readonly result: RequestResult };

const done = (result: RequestResult): RequestPlan => ({ kind: "done", result });

/** Checks a parsed request and decides what it needs; the caller writes the status byte. */
export function planRequest(
  req: BlkRequest,
  memory: GuestMemory,
  ctx: RequestContext<RangeBackend>,
): RequestPlan {
  if (req.problem) return done(fail(BlkStatus.IOERR, req.problem));
  try {
    switch (req.type) {
      case RequestType.IN:
        return planRead(req, ctx);
      case RequestType.OUT:
        return planWrite(req, ctx);
      case RequestType.FLUSH:
        return { kind: "flush" };
      case RequestType.GET_ID: {
        const n = Math.min(ID_BYTES, req.writableLen);
        scatter(memory, req.writable, ctx.serial.subarray(0, n));
        return done({ status: BlkStatus.OK, written: n });
      }
      case RequestType.DISCARD:
      case RequestType.WRITE_ZEROES:
        return done(discardOrZero(req, memory, ctx));
      default:
        return done(fail(BlkStatus.UNSUPP, `request type ${req.type} is not supported`));
    }
  } catch (e) {
    if (e instanceof BlockIoError) return done(fail(BlkStatus.IOERR, e.message));
    throw e;
  }
}

/** Carries out a parsed request synchronously; the caller writes the status byte afterwards. */
export function executeRequest(
  req: BlkRequest,
  memory: GuestMemory,
  ctx: RequestContext,
): RequestResult {
  const plan = planRequest(req, memory, ctx);
  if (plan.kind === "done") return plan.result;
  try {
    if (plan.kind === "flush") {
      ctx.backend.flush();
      return { status: BlkStatus.OK, written: 0 };
    }
    const views = plan.segments.map((s) => memory.slice(s.addr, s.len));
    if (plan.kind === "read") {
      ctx.backend.readv(views, plan.offset);
      return { status: BlkStatus.OK, written: plan.len };
    }
    ctx.backend.writev(views, plan.offset);
    return { status: BlkStatus.OK, written: 0 };
  } catch (e) {
    if (e instanceof BlockIoError) return fail(BlkStatus.IOERR, e.message);
    throw e;
  }
}

/** Logs why a backend operation failed and gives the IOERR answer. */
export function ioFailure(why: string): RequestResult {
  return fail(BlkStatus.IOERR, why);
}

function scatter(memory: GuestMemory, segments: readonly Segment[], src: Uint8Array): void {
  let done = 0;
  for (const s of segments) {
    if (done >= src.length) break;
    const n = Math.min(s.len, src.length - done);
    memory.write(s.addr, src.subarray(done, done + n));
    done += n;
  }
}

function planRead(req: BlkRequest, ctx: RequestContext<RangeBackend>): RequestPlan {
  if (req.readableLen > 0) {
    return done(fail(BlkStatus.IOERR, "IN request with device-readable data"));
  }
  const len = req.writableLen;
  if (len % SECTOR_SIZE !== 0) {
    return done(fail(BlkStatus.IOERR, `IN length ${len} is not whole sectors`));
  }
  const offset = rangeOffset(ctx, req.sector, len);
  if (offset === null) {
    return done(
      fail(BlkStatus.IOERR, `IN of ${len} bytes at sector ${req.sector} is past the disk end`),
    );
  }
  return { kind: "read", offset, len, segments: req.writable };
}

function planWrite(req: BlkRequest, ctx: RequestContext<RangeBackend>): RequestPlan {
  if (req.writableLen > 0) {
    return done(fail(BlkStatus.IOERR, "OUT request with device-writable data"));
  }
  if (ctx.readonly) return done(fail(BlkStatus.IOERR, "write to a read-only disk"));
  const len = req.readableLen;
  if (len % SECTOR_SIZE !== 0) {
    return done(fail(BlkStatus.IOERR, `OUT length ${len} is not whole sectors`));
  }
  const offset = rangeOffset(ctx, req.sector, len);
  if (offset === null) {
    return done(fail(
      BlkStatus.IOERR,
      `OUT of ${len} bytes at sector ${req.sector} is past the disk end`,
    ));
  }
  return { kind: "write", offset, len, segments: req.readable };
}

function discardOrZero(
  req: BlkRequest,
  memory: GuestMemory,
  ctx: RequestContext<RangeBackend>,
): RequestResult {
  const zero = req.type === RequestType.WRITE_ZEROES;
  const name = zero ? "WRITE_ZEROES" : "DISCARD";
  if (!(zero ? ctx.writeZeroes : ctx.discard)) {
    return fail(BlkStatus.UNSUPP, `${name} was not negotiated`);
  }
  if (ctx.readonly) return fail(BlkStatus.IOERR, `${name} on a read-only disk`);
  if (req.writableLen > 0) return fail(BlkStatus.IOERR, `${name} with device-writable data`);
  const len = req.readableLen;
  if (len === 0 || len % DISCARD_SEGMENT_SIZE !== 0) {
    return fail(BlkStatus.IOERR, `${name} payload of ${len} bytes is not whole segments`);
  }
  const count = len / DISCARD_SEGMENT_SIZE;
  const maxSegments = zero ? ctx.maxWriteZeroesSegments : ctx.maxDiscardSegments;
  if (count > maxSegments) {
    return fail(BlkStatus.UNSUPP, `${name} with ${count} segments (at most ${maxSegments})`);
  }
  const maxSectors = zero ? ctx.maxWriteZeroesSectors : ctx.maxDiscardSectors;
  const payload = new DataView(gather(memory, req.readable, len).buffer);
  const ranges: [number, number][] = [];
  // Check every segment before touching the disk: a request is done whole or not at all.
  for (let i = 0; i < count; i++) {
    const sector = payload.getBigUint64(i * 16, true);
    const sectors = payload.getUint32(i * 16 + 8, true);
    const flags = payload.getUint32(i * 16 + 12, true);
    const allowed = zero ? WRITE_ZEROES_FLAG_UNMAP : 0;
    if (flags & ~allowed) return fail(BlkStatus.UNSUPP, `${name} flags 0x${flags.toString(16)}`);
    if (sectors > maxSectors) {
      return fail(BlkStatus.IOERR, `${name} of ${sectors} sectors (at most ${maxSectors})`);
    }
    const offset = rangeOffset(ctx, sector, sectors * SECTOR_SIZE);
    if (offset === null) {
      return fail(
        BlkStatus.IOERR,
        `${name} of ${sectors} sectors at ${sector} is past the disk end`,
      );
    }
    ranges.push([offset, sectors * SECTOR_SIZE]);
  }
  for (const [offset, bytes] of ranges) {
    if (zero) ctx.backend.writeZeroes(offset, bytes);
    else ctx.backend.discard(offset, bytes);
  }
  return { status: BlkStatus.OK, written: 0 };
}

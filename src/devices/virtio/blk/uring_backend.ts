/**
 * The io_uring block backend: a raw image (or host block device) whose reads, writes and
 * fdatasyncs go to the kernel in batches and complete out of order, so a device queue keeps
 * many requests in flight. Guest buffers are handed over by host address (no copy), except
 * with O_DIRECT when a buffer's address or length is not a multiple of DIRECT_IO_ALIGN: then
 * the request goes through a bounce buffer of its own, aligned to a page.
 *
 * A transfer the kernel cut short is resubmitted for the rest; a read that meets the end of
 * the file, or any error, fails the operation. DISCARD punches a hole and WRITE_ZEROES zeroes
 * a range with fallocate (synchronous), falling back to writing zeroes where the file system
 * or device has no such fallocate mode.
 */
import { eventfd } from "../../../../ffi/events.ts";
import { HelperLoadError } from "../../../../ffi/helper.ts";
import {
  close,
  Errno,
  errnoName,
  O_DIRECT,
  O_RDONLY,
  O_RDWR,
  open,
  pwrite,
  SysError,
} from "../../../../ffi/libc.ts";
import {
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE,
  FALLOC_FL_ZERO_RANGE,
  fallocate,
  hostAddress,
  IoUring,
  IOVEC_SIZE,
  URING_CQE_SIZE,
  URING_MAX_ENTRIES,
  URING_OP_SIZE,
  UringOp,
} from "../../../../ffi/uring.ts";
import type { AsyncBlockBackend, IoDone } from "./async_backend.ts";
import { BlockIoError, totalLength } from "./backend.ts";
import { DIRECT_IO_ALIGN } from "./direct_backend.ts";
import { log } from "../../../util/logger.ts";

/** Memory-side alignment of bounce buffers (a page covers every logical block size). */
const MEMORY_ALIGN = 4096;
/** Bytes written per call when zeroes must be written out. */
const ZERO_CHUNK = 1 << 20;

/** A fresh buffer of `len` bytes whose address is MEMORY_ALIGN-aligned. */
function alignedBuffer(len: number): Uint8Array {
  const raw = new Uint8Array(len + MEMORY_ALIGN);
  const skip = (MEMORY_ALIGN - (hostAddress(raw) % MEMORY_ALIGN)) % MEMORY_ALIGN;
  return raw.subarray(skip, skip + len);
}

interface Op {
  readonly tag: number;
  readonly opcode: number;
  /** What is left to transfer: host address and length of each piece. */
  pieces: { addr: number; len: number }[];
  offset: number;
  readonly done: IoDone;
  /** A read through a bounce buffer: where its bytes go once it completed. */
  readonly scatterTo: readonly Uint8Array[] | null;
  readonly bounce: Uint8Array | null;
}

export interface UringBackendOptions {
  path: string;
  readonly: boolean;
  direct: boolean;
  /** Submission slots (rounded up to a power of 2, at most 4096): how many ops are in flight. */
  entries: number;
}

export class UringBackend implements AsyncBlockBackend {
  readonly asyncIo = true;
  readonly size: number;
  readonly readonly: boolean;
  readonly direct: boolean;
  readonly path: string;
  readonly completionFd: number;
  readonly #ring: IoUring;
  #fd: number;
  readonly #capacity: number;
  readonly #batch: Uint8Array<ArrayBuffer>;
  readonly #batchWords: Uint32Array;
  readonly #cqes: Uint8Array<ArrayBuffer>;
  readonly #cqeWords: Uint32Array;
  /** Scratch iovecs of one batch (4 words each) and their host address. */
  #iov = new Uint32Array(0);
  #iovAddress = 0;
  readonly #ops = new Map<number, Op>();
  /** Queued, not yet handed to the kernel. */
  #queued: Op[] = [];
  #submitted = 0;
  #nextTag = 1;
  #zeroes: Uint8Array | null = null;

  /**
   * Opens the image and sets up the ring. Throws BlockIoError when the file cannot be opened,
   * SysError from io_uring_setup (ENOSYS, EPERM where io_uring is disabled) or from open(2)
   * with O_DIRECT (EINVAL where the file system has none), or HelperLoadError, so the caller
   * can fall back.
   */
  constructor(options: UringBackendOptions) {
    this.path = options.path;
    this.readonly = options.readonly;
    this.direct = options.direct;
    let entries = 1;
    while (entries < Math.min(options.entries, URING_MAX_ENTRIES)) entries *= 2;
    this.#capacity = entries;
    const flags = (options.readonly ? O_RDONLY : O_RDWR) | (options.direct ? O_DIRECT : 0);
    try {
      this.#fd = open(options.path, flags);
    } catch (e) {
      if (e instanceof HelperLoadError) throw e;
      if (e instanceof SysError && options.direct && e.errno === Errno.EINVAL) throw e;
      throw new BlockIoError(
        `cannot open ${options.path}${options.readonly ? " read-only" : " read-write"}: ` +
          (e as Error).message,
      );
    }
    let file: Deno.FsFile | null = null;
    let efd = -1;
    try {
      // Seeking to the end also sizes host block devices, whose stat size is 0.
      file = Deno.openSync(options.path, { read: true });
      this.size = file.seekSync(0, Deno.SeekMode.End);
      efd = eventfd();
      this.#ring = IoUring.create(entries, efd);
    } catch (e) {
      close(this.#fd);
      if (efd >= 0) close(efd);
      if (e instanceof SysError) throw e;
      throw new BlockIoError(`cannot open ${options.path}: ${(e as Error).message}`);
    } finally {
      file?.close();
    }
    this.completionFd = efd;
    this.#batch = new Uint8Array(entries * URING_OP_SIZE);
    this.#batchWords = new Uint32Array(this.#batch.buffer);
    // The completion queue is twice the submission queue.
    this.#cqes = new Uint8Array(2 * entries * URING_CQE_SIZE);
    this.#cqeWords = new Uint32Array(this.#cqes.buffer);
    this.#growIovecs(entries * 4);
  }

  get inFlight(): number {
    return this.#ops.size;
  }

  #check(offset: number, length: number, what: string): void {
    if (this.#fd < 0) throw new BlockIoError(`${this.path} is closed`);
    if (!Number.isSafeInteger(offset) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new BlockIoError(`${what} of ${length} bytes at ${offset} is outside the image`);
    }
  }

  /**
   * The host address and length of each non-empty buffer, or null when one is not
   * block-aligned in memory with O_DIRECT (that operation then goes through a bounce buffer).
   * One pass: this runs for every read and write.
   */
  #piecesOf(buffers: readonly Uint8Array[]): { addr: number; len: number }[] | null {
    const pieces: { addr: number; len: number }[] = [];
    for (let i = 0; i < buffers.length; i++) {
      const b = buffers[i];
      const len = b.length;
      const addr = hostAddress(b);
      if (this.direct && (len % DIRECT_IO_ALIGN !== 0 || addr % DIRECT_IO_ALIGN !== 0)) return null;
      if (len > 0) pieces.push({ addr, len });
    }
    return pieces;
  }

  #queue(
    opcode: number,
    pieces: { addr: number; len: number }[],
    offset: number,
    done: IoDone,
    scatterTo: readonly Uint8Array[] | null,
    bounce: Uint8Array | null,
  ): void {
    // Tags fit in 32 bits; one still in flight after 2^32 others is skipped over.
    while (this.#ops.has(this.#nextTag)) this.#nextTag = (this.#nextTag % 0xffff_ffff) + 1;
    // One literal, so every Op has one shape.
    const full: Op = { tag: this.#nextTag, opcode, pieces, offset, done, scatterTo, bounce };
    this.#nextTag = (this.#nextTag % 0xffff_ffff) + 1;
    this.#ops.set(full.tag, full);
    this.#queued.push(full);
  }

  readv(dsts: readonly Uint8Array[], offset: number, done: IoDone): void {
    const total = totalLength(dsts);
    this.#check(offset, total, "read");
    const pieces = this.#piecesOf(dsts);
    if (pieces === null) {
      const bounce = alignedBuffer(total);
      this.#queue(
        UringOp.READV,
        [{ addr: hostAddress(bounce), len: total }],
        offset,
        done,
        dsts,
        bounce,
      );
      return;
    }
    this.#queue(UringOp.READV, pieces, offset, done, null, null);
  }

  writev(srcs: readonly Uint8Array[], offset: number, done: IoDone): void {
    if (this.readonly) throw new BlockIoError(`${this.path} is read-only`);
    const total = totalLength(srcs);
    this.#check(offset, total, "write");
    let bounce: Uint8Array | null = null;
    let pieces = this.#piecesOf(srcs);
    if (pieces === null) {
      bounce = alignedBuffer(total);
      let at = 0;
      for (const s of srcs) {
        bounce.set(s, at);
        at += s.length;
      }
      pieces = [{ addr: hostAddress(bounce), len: total }];
    }
    this.#queue(UringOp.WRITEV, pieces, offset, done, null, bounce);
  }

  flush(done: IoDone): void {
    if (this.#fd < 0) throw new BlockIoError(`${this.path} is closed`);
    if (this.readonly) {
      // Nothing was written through this image: done as soon as the caller polls.
      this.#queue(-1, [], 0, done, null, null);
      return;
    }
    this.#queue(UringOp.FDATASYNC, [], 0, done, null, null);
  }

  submit(): void {
    while (this.#queued.length > 0 && this.#submitted < this.#capacity) {
      const room = this.#capacity - this.#submitted;
      const batch = this.#queued.length <= room ? this.#queued : this.#queued.slice(0, room);
      this.#queued = this.#queued.length <= room ? [] : this.#queued.slice(room);
      let iovecs = 0;
      for (const op of batch) iovecs += op.pieces.length;
      if (iovecs * 4 > this.#iov.length) this.#growIovecs(iovecs);
      // The kernel copies the iovecs while it takes the batch, so one scratch array serves all.
      const words = this.#batchWords;
      const iov = this.#iov;
      const local: Op[] = [];
      let n = 0;
      let v = 0;
      for (const op of batch) {
        if (op.opcode < 0) {
          local.push(op);
          continue;
        }
        const w = n++ * (URING_OP_SIZE / 4);
        const iovAddr = this.#iovAddress + v * IOVEC_SIZE;
        for (const p of op.pieces) {
          iov[v * 4] = p.addr % 0x1_0000_0000;
          iov[v * 4 + 1] = Math.floor(p.addr / 0x1_0000_0000);
          iov[v * 4 + 2] = p.len;
          iov[v * 4 + 3] = 0;
          v++;
        }
        words[w] = op.opcode;
        words[w + 1] = this.#fd;
        words[w + 2] = iovAddr % 0x1_0000_0000;
        words[w + 3] = Math.floor(iovAddr / 0x1_0000_0000);
        words[w + 4] = op.pieces.length;
        words[w + 5] = 0;
        words[w + 6] = op.offset % 0x1_0000_0000;
        words[w + 7] = Math.floor(op.offset / 0x1_0000_0000);
        words[w + 8] = op.tag;
        words[w + 9] = 0;
      }
      let taken = 0;
      let error = "";
      try {
        taken = this.#ring.submit(this.#batch, n);
      } catch (e) {
        error = (e as Error).message;
      }
      this.#submitted += taken;
      if (taken < n) {
        // What the kernel did not take fails now (a broken ring: not expected in practice).
        const refused = batch.filter((op) => op.opcode >= 0).slice(taken);
        for (const op of refused) this.#finish(op, `${this.path}: submission failed ${error}`);
      }
      for (const op of local) this.#finish(op, null);
    }
  }

  #growIovecs(count: number): void {
    let size = Math.max(1, this.#iov.length / 4);
    while (size < count) size *= 2;
    this.#iov = new Uint32Array(size * 4);
    this.#iovAddress = hostAddress(new Uint8Array(this.#iov.buffer));
  }

  #finish(op: Op, error: string | null): void {
    this.#ops.delete(op.tag);
    if (error === null && op.scatterTo && op.bounce) {
      let at = 0;
      for (const d of op.scatterTo) {
        d.set(op.bounce.subarray(at, at + d.length));
        at += d.length;
      }
    }
    op.done(error);
  }

  /** One completion: done, failed, or cut short (the rest goes back in the queue). */
  #complete(op: Op, res: number): void {
    if (op.opcode === UringOp.FDATASYNC && res >= 0) {
      this.#finish(op, null);
      return;
    }
    let remaining = 0;
    for (let i = 0; i < op.pieces.length; i++) remaining += op.pieces[i].len;
    if (res >= remaining) {
      this.#finish(op, null);
      return;
    }
    const what = op.opcode === UringOp.READV
      ? "read"
      : op.opcode === UringOp.WRITEV
      ? "write"
      : "fdatasync";
    if (res < 0) {
      this.#finish(op, `${this.path}: ${what} at ${op.offset}: ${errnoName(-res)}`);
      return;
    }
    if (res === 0) {
      this.#finish(op, `${this.path}: ${what} at ${op.offset}: end of file`);
      return;
    }
    let skip = res;
    const rest: { addr: number; len: number }[] = [];
    for (const p of op.pieces) {
      if (skip >= p.len) {
        skip -= p.len;
        continue;
      }
      rest.push({ addr: p.addr + skip, len: p.len - skip });
      skip = 0;
    }
    op.pieces = rest;
    op.offset += res;
    this.#queued.push(op);
  }

  poll(wait = false): number {
    if (this.#fd < 0) return 0;
    let ran = 0;
    if (this.#queued.length > 0) this.submit();
    const max = this.#cqeWords.length / 4;
    for (;;) {
      const waitFor = wait && ran === 0 && this.#submitted > 0 ? 1 : 0;
      const n = this.#ring.reap(this.#cqes, max, waitFor);
      const cqe = this.#cqeWords;
      for (let i = 0; i < n; i++) {
        // user_data (a tag below 2^32), res, flags.
        const tag = cqe[i * 4];
        const res = cqe[i * 4 + 2] | 0;
        this.#submitted--;
        const op = this.#ops.get(tag);
        if (!op) continue;
        ran++;
        this.#complete(op, res);
      }
      // Resubmissions and what waited for ring space.
      if (this.#queued.length > 0) this.submit();
      if (n < max && !(waitFor && n === 0)) break;
    }
    return ran;
  }

  discard(offset: number, length: number): void {
    if (this.readonly) throw new BlockIoError(`${this.path} is read-only`);
    this.#check(offset, length, "discard");
    if (length === 0) return;
    try {
      fallocate(this.#fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length);
    } catch (e) {
      if (!unsupported(e)) throw new BlockIoError(`${this.path}: discard: ${(e as Error).message}`);
      this.#writeZeroesOut(offset, length);
    }
  }

  writeZeroes(offset: number, length: number): void {
    if (this.readonly) throw new BlockIoError(`${this.path} is read-only`);
    this.#check(offset, length, "write zeroes");
    if (length === 0) return;
    try {
      fallocate(this.#fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, offset, length);
    } catch (e) {
      if (!unsupported(e)) {
        throw new BlockIoError(`${this.path}: write zeroes: ${(e as Error).message}`);
      }
      this.#writeZeroesOut(offset, length);
    }
  }

  #writeZeroesOut(offset: number, length: number): void {
    // Aligned, and offset and length are whole sectors: fine for O_DIRECT too.
    this.#zeroes ??= alignedBuffer(ZERO_CHUNK);
    for (let done = 0; done < length;) {
      const n = Math.min(ZERO_CHUNK, length - done);
      try {
        done += pwrite(this.#fd, this.#zeroes.subarray(0, n), offset + done);
      } catch (e) {
        throw new BlockIoError(`${this.path}: write zeroes: ${(e as Error).message}`);
      }
    }
  }

  close(): void {
    if (this.#fd < 0) return;
    // The kernel may still be writing into guest memory: wait for every op first.
    while (this.#submitted > 0) {
      try {
        this.poll(true);
      } catch {
        break;
      }
    }
    for (const op of [...this.#ops.values()]) this.#finish(op, `${this.path} is closed`);
    this.#queued = [];
    this.#ring.close();
    try {
      close(this.#fd);
      close(this.completionFd);
    } catch { /* closing is best effort at teardown */ }
    this.#fd = -1;
  }
}

function unsupported(e: unknown): boolean {
  return e instanceof SysError &&
    (e.errno === Errno.ENOTSUP || e.errno === Errno.EINVAL || e.errno === Errno.ENOSYS);
}

/**
 * The io_uring backend for `config`, or null (after a warning) where io_uring cannot be set up
 * (kernel without it, io_uring_disabled, the helper missing): the caller then uses the
 * synchronous backend. As with the synchronous one, direct=on falls back to the page cache
 * where the file system refuses O_DIRECT. Throws BlockIoError when the image cannot be opened.
 */
export function openUringBackend(
  config: { path: string; readonly: boolean; direct: boolean },
  entries: number,
): UringBackend | null {
  for (const direct of config.direct ? [true, false] : [false]) {
    try {
      return new UringBackend({ ...config, direct, entries });
    } catch (e) {
      if (e instanceof BlockIoError) throw e;
      if (
        direct && e instanceof SysError && e.call.startsWith("open") && e.errno === Errno.EINVAL
      ) {
        log.warn(`${config.path}: direct=on unavailable (${e.message}); using the page cache`);
        continue;
      }
      log.warn(
        `${config.path}: io_uring unavailable (${(e as Error).message}); ` +
          "requests are served synchronously, one at a time",
      );
      return null;
    }
  }
  return null;
}

/**
 * io_uring through the helper (helper/src/uring.zig): batches of vectored reads, writes and
 * fdatasyncs in, completions out many at a time, an eventfd signalled as they arrive. Plus the
 * synchronous fallocate / fdatasync the block backends need beside it.
 */
import { helper } from "./helper.ts";
import { check, SysError } from "./libc.ts";

/** Operation codes of a batch entry (BlkOp in uring.zig). */
export const UringOp = { READV: 0, WRITEV: 1, FDATASYNC: 2 } as const;
/** Bytes per batch entry: u32 opcode, i32 fd, u64 iovecs, u32 iovcnt, u32 pad, u64 offset, u64 user_data. */
export const URING_OP_SIZE = 40;
/** Bytes per completion: u64 user_data, i32 res, u32 flags (struct io_uring_cqe). */
export const URING_CQE_SIZE = 16;
/** Bytes per struct iovec. */
export const IOVEC_SIZE = 16;
/** The kernel's limit on a ring's submission slots. */
export const URING_MAX_ENTRIES = 4096;

export const FALLOC_FL_KEEP_SIZE = 0x01;
export const FALLOC_FL_PUNCH_HOLE = 0x02;
export const FALLOC_FL_ZERO_RANGE = 0x10;

const bufferAddresses = new WeakMap<ArrayBufferLike, number>();

/**
 * The host address of a byte view (its first byte). Backing stores never move, so the address
 * of each buffer is looked up once (guest RAM views all share a few buffers).
 */
export function hostAddress(view: Uint8Array): number {
  let base = bufferAddresses.get(view.buffer);
  if (base === undefined) {
    base = Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(new Uint8Array(view.buffer))));
    bufferAddresses.set(view.buffer, base);
  }
  return base + view.byteOffset;
}

export class IoUring {
  #handle: bigint | null;

  private constructor(handle: bigint, readonly entries: number) {
    this.#handle = handle;
  }

  /**
   * A ring of `entries` submission slots (a power of 2, at most 4096) whose completions are
   * signalled on `eventFd` (-1: none). Throws SysError (ENOSYS, EPERM where io_uring is
   * disabled) or HelperLoadError.
   */
  static create(entries: number, eventFd: number): IoUring {
    const rc = BigInt(helper().sv_uring_create(entries, eventFd));
    if (rc < 0n) throw new SysError("io_uring_setup", Number(-rc));
    return new IoUring(rc, entries);
  }

  #ring(): bigint {
    if (this.#handle === null) throw new SysError("io_uring (closed)", 9);
    return this.#handle;
  }

  /** Submits the first `count` entries of `batch`; returns how many the kernel took. */
  submit(batch: Uint8Array<ArrayBuffer>, count: number): number {
    if (count === 0) return 0;
    return check(helper().sv_uring_submit(this.#ring(), batch, count), "io_uring_enter(submit)");
  }

  /**
   * Copies up to `max` completions into `out` (URING_CQE_SIZE bytes each), first waiting for
   * `waitFor` of them when that is not 0. Returns the count (0 also when a signal cut a wait).
   */
  reap(out: Uint8Array<ArrayBuffer>, max: number, waitFor = 0): number {
    return check(
      helper().sv_uring_reap(this.#ring(), out, max, waitFor),
      "io_uring_enter(getevents)",
    );
  }

  /** Frees the ring; nothing may be in flight any more. */
  close(): void {
    if (this.#handle === null) return;
    helper().sv_uring_destroy(this.#handle);
    this.#handle = null;
  }
}

export function fallocate(fd: number, mode: number, offset: number, length: number): void {
  check(helper().sv_fallocate(fd, mode, BigInt(offset), BigInt(length)), "fallocate");
}

export function fdatasync(fd: number): void {
  check(helper().sv_fdatasync(fd), "fdatasync");
}

/**
 * A completion-based block backend: reads, writes and flushes are queued with a callback,
 * handed to the host in one batch by `submit()`, and their callbacks run from `poll()` once the
 * host finished them, in whatever order it finished them. So one device queue keeps many
 * requests in flight. DISCARD / WRITE_ZEROES stay synchronous calls (fallocate).
 *
 * Ordering is the caller's business (the device holds a FLUSH back until the writes before it
 * completed); the backend only promises that `done` runs after the operation finished.
 */
import type { RangeBackend } from "./request.ts";

/** null: the operation finished; otherwise why it failed (the request gets IOERR). */
export type IoDone = (error: string | null) => void;

export interface AsyncBlockBackend extends RangeBackend {
  /** Tells it apart from a synchronous BlockBackend. */
  readonly asyncIo: true;
  /** Bytes of the image (the device exposes the whole 512-byte sectors of it). */
  readonly size: number;
  readonly readonly: boolean;
  /** I/O bypasses the host page cache (O_DIRECT). */
  readonly direct: boolean;
  /**
   * An eventfd, readable when completions are waiting for `poll`; null when it has none. The
   * owner that waits on it resets it (reads it) before calling `poll`; `poll` does not.
   */
  readonly completionFd: number | null;
  /** Operations queued or in flight whose callback has not run yet. */
  readonly inFlight: number;
  /** Queues filling `dsts`, in order, from consecutive bytes starting at `offset`. */
  readv(dsts: readonly Uint8Array[], offset: number, done: IoDone): void;
  /** Queues writing `srcs`, in order, as consecutive bytes starting at `offset`. */
  writev(srcs: readonly Uint8Array[], offset: number, done: IoDone): void;
  /** Queues an fdatasync of what was written before it *completed*. */
  flush(done: IoDone): void;
  /** Hands the queued operations to the host. */
  submit(): void;
  /**
   * Runs the callbacks of the operations that finished, first waiting for one when `wait` and
   * something is in flight. Returns how many ran.
   */
  poll(wait?: boolean): number;
  /** Waits for everything in flight, then releases the image. */
  close(): void;
}

export function isAsyncBackend(b: object): b is AsyncBlockBackend {
  return (b as { asyncIo?: unknown }).asyncIo === true;
}

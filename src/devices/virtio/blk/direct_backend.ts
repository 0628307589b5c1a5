/**
 * `direct=on`: a raw image opened with O_DIRECT, so guest I/O bypasses the host page cache.
 *
 * O_DIRECT wants the memory address, file offset and length of every transfer aligned to the
 * device's logical block size. Guest buffers have no such alignment, so every transfer goes
 * through one bounce buffer aligned to 4 KiB, 512-byte aligned on the file side (a partial
 * first or last block is read, patched and written back). Reads and writes go through the
 * helper's pread/pwrite on the O_DIRECT descriptor; the image size and fdatasync come from a
 * second, ordinary descriptor of the same file (fdatasync acts on the file, not the fd).
 */
import { HelperLoadError } from "../../../../ffi/helper.ts";
import {
  close,
  Errno,
  O_DIRECT,
  O_RDONLY,
  O_RDWR,
  open,
  pread,
  pwrite,
  SysError,
} from "../../../../ffi/libc.ts";
import { log } from "../../../util/logger.ts";
import { type BlockBackend, BlockIoError, FileBackend, totalLength } from "./backend.ts";

/** File-side alignment: the logical block size of nearly every disk and filesystem. */
export const DIRECT_IO_ALIGN = 512;
/** Memory-side alignment of the bounce buffer (a page covers every block size). */
const MEMORY_ALIGN = 4096;
/** Bytes moved per system call. */
const BOUNCE_SIZE = 1 << 20;

function roundUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

/** A BOUNCE_SIZE view of fresh memory whose address is MEMORY_ALIGN-aligned. */
function alignedBuffer(): Uint8Array<ArrayBuffer> {
  const raw = new Uint8Array(BOUNCE_SIZE + MEMORY_ALIGN);
  const addr = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(raw)));
  const skip = Number(
    (BigInt(MEMORY_ALIGN) - (addr % BigInt(MEMORY_ALIGN))) % BigInt(MEMORY_ALIGN),
  );
  return raw.subarray(skip, skip + BOUNCE_SIZE);
}

/** Copies bytes [from, from + dst.length) of the concatenation of `srcs` into `dst`. */
function gather(srcs: readonly Uint8Array[], from: number, dst: Uint8Array): void {
  let pos = 0;
  let done = 0;
  for (const s of srcs) {
    if (done === dst.length) return;
    const end = pos + s.length;
    if (end > from + done) {
      const start = from + done - pos;
      const n = Math.min(s.length - start, dst.length - done);
      dst.set(s.subarray(start, start + n), done);
      done += n;
    }
    pos = end;
  }
}

/** Copies `src` into bytes [to, to + src.length) of the concatenation of `dsts`. */
function scatter(dsts: readonly Uint8Array[], to: number, src: Uint8Array): void {
  let pos = 0;
  let done = 0;
  for (const d of dsts) {
    if (done === src.length) return;
    const end = pos + d.length;
    if (end > to + done) {
      const start = to + done - pos;
      const n = Math.min(d.length - start, src.length - done);
      d.set(src.subarray(done, done + n), start);
      done += n;
    }
    pos = end;
  }
}

export class DirectFileBackend implements BlockBackend {
  readonly size: number;
  readonly direct = true;
  #fd: number;
  #file: Deno.FsFile | null;
  readonly #bounce = alignedBuffer();
  #zeroes: Uint8Array | null = null;

  /**
   * Opens `path` with O_DIRECT. Throws the SysError from open(2) (EINVAL when the filesystem
   * has no O_DIRECT, as on some tmpfs) or a HelperLoadError, so the caller can fall back.
   */
  constructor(readonly path: string, readonly readonly: boolean) {
    this.#fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_DIRECT);
    try {
      this.#file = Deno.openSync(path, { read: true });
      this.size = this.#file.seekSync(0, Deno.SeekMode.End);
    } catch (e) {
      close(this.#fd);
      throw new BlockIoError(`cannot open ${path}: ${(e as Error).message}`);
    }
  }

  #check(offset: number, length: number, what: string): void {
    if (this.#fd < 0) throw new BlockIoError(`${this.path} is closed`);
    if (!Number.isSafeInteger(offset) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new BlockIoError(`${what} of ${length} bytes at ${offset} is outside the image`);
    }
  }

  /** Reads up to `buf.length` bytes at `offset`; fewer only at the end of the file. */
  #preadFull(buf: Uint8Array, offset: number): number {
    let done = 0;
    while (done < buf.length) {
      let n: number;
      try {
        n = pread(this.#fd, buf.subarray(done), offset + done);
      } catch (e) {
        throw new BlockIoError(`${this.path}: ${(e as Error).message}`);
      }
      if (n === 0) break;
      done += n;
    }
    return done;
  }

  #pwriteFull(buf: Uint8Array, offset: number): void {
    let done = 0;
    while (done < buf.length) {
      try {
        done += pwrite(this.#fd, buf.subarray(done), offset + done);
      } catch (e) {
        throw new BlockIoError(`${this.path}: ${(e as Error).message}`);
      }
    }
  }

  /** The aligned window for the next piece of a transfer at `pos`. */
  #window(pos: number, remaining: number) {
    const start = pos - (pos % DIRECT_IO_ALIGN);
    const skip = pos - start;
    const want = Math.min(BOUNCE_SIZE - skip, remaining);
    const span = roundUp(skip + want, DIRECT_IO_ALIGN);
    return { start, skip, want, span };
  }

  readAt(dst: Uint8Array, offset: number): void {
    this.readv([dst], offset);
  }

  writeAt(src: Uint8Array, offset: number): void {
    this.writev([src], offset);
  }

  readv(dsts: readonly Uint8Array[], offset: number): void {
    const total = totalLength(dsts);
    this.#check(offset, total, "read");
    for (let done = 0; done < total;) {
      const w = this.#window(offset + done, total - done);
      const n = this.#preadFull(this.#bounce.subarray(0, w.span), w.start);
      if (n < w.skip + w.want) {
        throw new BlockIoError(`${this.path}: end of file at ${w.start + n}`);
      }
      scatter(dsts, done, this.#bounce.subarray(w.skip, w.skip + w.want));
      done += w.want;
    }
  }

  writev(srcs: readonly Uint8Array[], offset: number): void {
    if (this.readonly) throw new BlockIoError(`${this.path} is read-only`);
    const total = totalLength(srcs);
    this.#check(offset, total, "write");
    for (let done = 0; done < total;) {
      const w = this.#window(offset + done, total - done);
      const view = this.#bounce.subarray(0, w.span);
      if (w.skip !== 0 || w.span !== w.want) {
        // Partial blocks at either end keep their other bytes: read them first.
        const n = this.#preadFull(view, w.start);
        view.fill(0, n);
      }
      gather(srcs, done, view.subarray(w.skip, w.skip + w.want));
      this.#pwriteFull(view, w.start);
      done += w.want;
    }
  }

  flush(): void {
    if (this.readonly) return;
    try {
      this.#file?.syncDataSync();
    } catch (e) {
      throw new BlockIoError(`fdatasync ${this.path}: ${(e as Error).message}`);
    }
  }

  /** No fallocate(PUNCH_HOLE) in the helper yet: a discard writes zeroes. */
  discard(offset: number, length: number): void {
    this.writeZeroes(offset, length);
  }

  writeZeroes(offset: number, length: number): void {
    if (this.readonly) throw new BlockIoError(`${this.path} is read-only`);
    this.#check(offset, length, "write zeroes");
    this.#zeroes ??= new Uint8Array(BOUNCE_SIZE);
    for (let done = 0; done < length;) {
      const n = Math.min(BOUNCE_SIZE, length - done);
      this.writev([this.#zeroes.subarray(0, n)], offset + done);
      done += n;
    }
  }

  close(): void {
    if (this.#fd >= 0) {
      try {
        close(this.#fd);
      } catch { /* closing is best effort at teardown */ }
      this.#fd = -1;
    }
    this.#file?.close();
    this.#file = null;
  }
}

/**
 * Opens the image for `config.direct` with O_DIRECT, falling back to the page cache (with a
 * warning) where the filesystem refuses O_DIRECT (EINVAL) or the helper is missing.
 */
export function openBackend(
  config: { path: string; readonly: boolean; direct: boolean },
): BlockBackend {
  if (config.direct) {
    try {
      return new DirectFileBackend(config.path, config.readonly);
    } catch (e) {
      const fallback = e instanceof HelperLoadError ||
        (e instanceof SysError && e.errno === Errno.EINVAL);
      if (!fallback) {
        throw e instanceof BlockIoError ? e : new BlockIoError(
          `cannot open ${config.path}${config.readonly ? " read-only" : ""}: ${
            (e as Error).message
          }`,
        );
      }
      log.warn(
        `${config.path}: direct=on unavailable (${(e as Error).message}); using the page cache`,
      );
    }
  }
  return new FileBackend({ path: config.path, readonly: config.readonly });
}

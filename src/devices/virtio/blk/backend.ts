/**
 * Where a virtio-blk device's sectors live. `BlockBackend`: synchronous calls that return once
 * the data is on the backend (in the host page cache; `flush` makes it durable), one request
 * at a time. The VMM normally uses the completion-based `AsyncBlockBackend` beside it
 * (async_backend.ts, io_uring in uring_backend.ts); these stay for tests (MemoryBackend) and as
 * the fallback where io_uring cannot be set up.
 *
 * `FileBackend` serves a raw image file (or a host block device) through Deno.FsFile, using the
 * host page cache; `DirectFileBackend` (direct_backend.ts) is the O_DIRECT one. These are the
 * only places in the virtio tree that touch the host.
 */

export const SECTOR_SIZE = 512;

/** A backend operation failed; the request is answered VIRTIO_BLK_S_IOERR. */
export class BlockIoError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BlockIoError";
  }
}

export interface BlockBackend {
  /** Bytes of the image (the device exposes the whole 512-byte sectors of it). */
  readonly size: number;
  readonly readonly: boolean;
  /** I/O bypasses the host page cache (O_DIRECT). */
  readonly direct: boolean;
  /** Fills all of `dst` from byte `offset`. */
  readAt(dst: Uint8Array, offset: number): void;
  /** Writes all of `src` at byte `offset`. */
  writeAt(src: Uint8Array, offset: number): void;
  /** Fills the buffers, in order, from consecutive bytes starting at `offset`. */
  readv(dsts: readonly Uint8Array[], offset: number): void;
  /** Writes the buffers, in order, as consecutive bytes starting at `offset`. */
  writev(srcs: readonly Uint8Array[], offset: number): void;
  /** Makes written data durable (fdatasync). */
  flush(): void;
  /** The range's contents no longer matter (may deallocate; reads may then return anything). */
  discard(offset: number, length: number): void;
  /** The range reads back as zeroes afterwards. */
  writeZeroes(offset: number, length: number): void;
  close(): void;
}

export interface FileBackendOptions {
  path: string;
  readonly: boolean;
}

export function totalLength(buffers: readonly Uint8Array[]): number {
  let n = 0;
  for (let i = 0; i < buffers.length; i++) n += buffers[i].length;
  return n;
}

/** Zeroes written per call when a range must be cleared. */
const ZERO_CHUNK = 1 << 20;

export class FileBackend implements BlockBackend {
  readonly size: number;
  readonly readonly: boolean;
  readonly direct = false;
  #file: Deno.FsFile | null;
  #zeroes: Uint8Array | null = null;

  constructor(readonly options: FileBackendOptions) {
    this.readonly = options.readonly;
    try {
      this.#file = Deno.openSync(options.path, { read: true, write: !options.readonly });
    } catch (e) {
      throw new BlockIoError(
        `cannot open ${options.path}${options.readonly ? " read-only" : " read-write"}: ` +
          (e as Error).message,
      );
    }
    // Seeking to the end also sizes host block devices, whose stat size is 0.
    this.size = this.#file.seekSync(0, Deno.SeekMode.End);
  }

  #open(): Deno.FsFile {
    if (!this.#file) throw new BlockIoError(`${this.options.path} is closed`);
    return this.#file;
  }

  #check(offset: number, length: number, what: string): void {
    if (!Number.isSafeInteger(offset) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new BlockIoError(`${what} of ${length} bytes at ${offset} is outside the image`);
    }
  }

  readAt(dst: Uint8Array, offset: number): void {
    this.#check(offset, dst.length, "read");
    const f = this.#open();
    try {
      f.seekSync(offset, Deno.SeekMode.Start);
      let done = 0;
      while (done < dst.length) {
        const n = f.readSync(dst.subarray(done));
        if (n === null || n === 0) {
          throw new BlockIoError(`${this.options.path}: end of file at ${offset + done}`);
        }
        done += n;
      }
    } catch (e) {
      throw e instanceof BlockIoError ? e : new BlockIoError(`read: ${(e as Error).message}`);
    }
  }

  writeAt(src: Uint8Array, offset: number): void {
    if (this.readonly) throw new BlockIoError(`${this.options.path} is read-only`);
    this.#check(offset, src.length, "write");
    const f = this.#open();
    try {
      f.seekSync(offset, Deno.SeekMode.Start);
      let done = 0;
      while (done < src.length) done += f.writeSync(src.subarray(done));
    } catch (e) {
      throw new BlockIoError(`write: ${(e as Error).message}`);
    }
  }

  readv(dsts: readonly Uint8Array[], offset: number): void {
    this.#check(offset, totalLength(dsts), "read");
    for (const d of dsts) {
      this.readAt(d, offset);
      offset += d.length;
    }
  }

  writev(srcs: readonly Uint8Array[], offset: number): void {
    if (this.readonly) throw new BlockIoError(`${this.options.path} is read-only`);
    this.#check(offset, totalLength(srcs), "write");
    for (const s of srcs) {
      this.writeAt(s, offset);
      offset += s.length;
    }
  }

  flush(): void {
    if (this.readonly) return;
    try {
      this.#open().syncDataSync();
    } catch (e) {
      throw new BlockIoError(`fdatasync: ${(e as Error).message}`);
    }
  }

  /**
   * The helper has no fallocate(PUNCH_HOLE) yet, so a discard writes zeroes: slower and it
   * keeps the blocks allocated, but reads afterwards are well defined.
   */
  discard(offset: number, length: number): void {
    this.writeZeroes(offset, length);
  }

  writeZeroes(offset: number, length: number): void {
    if (this.readonly) throw new BlockIoError(`${this.options.path} is read-only`);
    this.#check(offset, length, "write zeroes");
    this.#zeroes ??= new Uint8Array(ZERO_CHUNK);
    for (let done = 0; done < length;) {
      const n = Math.min(ZERO_CHUNK, length - done);
      this.writeAt(this.#zeroes.subarray(0, n), offset + done);
      done += n;
    }
  }

  close(): void {
    this.#file?.close();
    this.#file = null;
  }
}

/** An image in memory (tests, and a scratch disk). */
export class MemoryBackend implements BlockBackend {
  readonly direct = false;
  flushes = 0;
  constructor(readonly bytes: Uint8Array, readonly readonly = false) {}

  get size(): number {
    return this.bytes.length;
  }
  #check(offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + length > this.bytes.length) {
      throw new BlockIoError(`${length} bytes at ${offset} are outside the image`);
    }
  }
  readAt(dst: Uint8Array, offset: number): void {
    this.#check(offset, dst.length);
    dst.set(this.bytes.subarray(offset, offset + dst.length));
  }
  writeAt(src: Uint8Array, offset: number): void {
    if (this.readonly) throw new BlockIoError("image is read-only");
    this.#check(offset, src.length);
    this.bytes.set(src, offset);
  }
  readv(dsts: readonly Uint8Array[], offset: number): void {
    this.#check(offset, totalLength(dsts));
    for (const d of dsts) {
      this.readAt(d, offset);
      offset += d.length;
    }
  }
  writev(srcs: readonly Uint8Array[], offset: number): void {
    if (this.readonly) throw new BlockIoError("image is read-only");
    this.#check(offset, totalLength(srcs));
    for (const s of srcs) {
      this.writeAt(s, offset);
      offset += s.length;
    }
  }
  flush(): void {
    this.flushes++;
  }
  discard(offset: number, length: number): void {
    this.writeZeroes(offset, length);
  }
  writeZeroes(offset: number, length: number): void {
    if (this.readonly) throw new BlockIoError("image is read-only");
    this.#check(offset, length);
    this.bytes.fill(0, offset, offset + length);
  }
  close(): void {}
}

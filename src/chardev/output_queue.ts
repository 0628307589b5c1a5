/**
 * Output of a chardev: bytes from device models are copied into blocks and written to the host by
 * one async loop, so a device's register write costs a copy, never a wait. Many small writes
 * (a UART sends one byte per exit) coalesce into one host write. The queue is bounded: when the
 * host does not keep up, or nobody is there to write to, the oldest bytes are dropped, because
 * the newest console output is the part worth seeing.
 */

/** Writes some of `bytes` to the host and returns how many it took (Deno's `Writer.write`). */
export type OutputSink = (bytes: Uint8Array) => Promise<number>;

const BLOCK_SIZE = 4096;

interface Block {
  buf: Uint8Array;
  start: number;
  end: number;
}

export class OutputQueue {
  #blocks: Block[] = [];
  #queued = 0;
  #sink: OutputSink | null;
  #draining: Promise<void> | null = null;
  /** Bytes dropped because the queue was full. */
  dropped = 0;

  /**
   * @param sink where bytes go; null holds them (bounded) until `setSink`
   * @param limit most bytes held while waiting for the host
   * @param onError told when the sink fails; the chunk being written is dropped
   */
  constructor(
    sink: OutputSink | null,
    public limit: number = 1 << 20,
    private readonly onError: (error: unknown) => void = () => {},
  ) {
    this.#sink = sink;
  }

  /** Bytes waiting (not counting a chunk being written). */
  get queued(): number {
    return this.#queued;
  }

  /** Replaces the sink (a socket client came or went); held bytes go to the new one. */
  setSink(sink: OutputSink | null): void {
    this.#sink = sink;
    this.#trim();
    this.#kick();
  }

  push(bytes: Uint8Array): void {
    let i = 0;
    while (i < bytes.length) {
      let last = this.#blocks[this.#blocks.length - 1];
      if (!last || last.end === last.buf.length) {
        last = { buf: new Uint8Array(Math.max(BLOCK_SIZE, bytes.length - i)), start: 0, end: 0 };
        this.#blocks.push(last);
      }
      const n = Math.min(last.buf.length - last.end, bytes.length - i);
      last.buf.set(bytes.subarray(i, i + n), last.end);
      last.end += n;
      i += n;
    }
    this.#queued += bytes.length;
    this.#trim();
    this.#kick();
  }

  /** Resolves when everything queued so far has been written (or the sink is gone). */
  async flush(): Promise<void> {
    while (this.#draining) await this.#draining;
  }

  /** Drops everything held. */
  clear(): void {
    this.#blocks = [];
    this.#queued = 0;
  }

  #trim(): void {
    while (this.#queued > this.limit) {
      const first = this.#blocks[0];
      const n = Math.min(first.end - first.start, this.#queued - this.limit);
      first.start += n;
      this.#queued -= n;
      this.dropped += n;
      if (first.start === first.end) this.#blocks.shift();
    }
  }

  #kick(): void {
    if (this.#draining || !this.#sink || this.#queued === 0) return;
    this.#draining = this.#drain().finally(() => {
      this.#draining = null;
      // Bytes pushed while the last write finished are picked up here.
      this.#kick();
    });
  }

  async #drain(): Promise<void> {
    while (this.#blocks.length > 0) {
      const sink = this.#sink;
      if (!sink) return;
      // Take the block out: pushes during the write go to a new block, trimming cannot touch it.
      const block = this.#blocks.shift()!;
      this.#queued -= block.end - block.start;
      let chunk = block.buf.subarray(block.start, block.end);
      try {
        while (chunk.length > 0) {
          const n = await sink(chunk);
          if (!(n > 0)) throw new Error("the host side accepted no bytes");
          chunk = chunk.subarray(n);
        }
      } catch (e) {
        this.onError(e);
        return;
      }
    }
  }
}

/**
 * Text arriving from somewhere (a process's stdout, a pty, a socket), kept whole so tests can wait
 * for a pattern to show up in it.
 */
export class TextLog {
  #text = "";
  #closed = false;
  #waiters: (() => void)[] = [];
  readonly #decoder = new TextDecoder();

  get text(): string {
    return this.#text;
  }

  append(bytes: Uint8Array): void {
    this.#text += this.#decoder.decode(bytes, { stream: true });
    this.#wake();
  }

  /** No more text will come: pending waits give up. */
  close(): void {
    if (this.#closed) return;
    this.#text += this.#decoder.decode();
    this.#closed = true;
    this.#wake();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  /** Resolves with the first match of `pattern`, or null once the source ends without one. */
  async waitFor(pattern: RegExp): Promise<RegExpMatchArray | null> {
    for (;;) {
      const m = this.#text.match(pattern);
      if (m) return m;
      if (this.#closed) return null;
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /** Appends everything `read` returns until it ends or fails, then closes. */
  async pump(read: (buf: Uint8Array) => Promise<number | null>): Promise<void> {
    const buf = new Uint8Array(4096);
    try {
      for (;;) {
        const n = await read(buf);
        if (n === null || n === 0) break;
        this.append(buf.subarray(0, n));
      }
    } catch {
      // A pty whose master went away fails with EIO; a reset socket likewise: the source ended.
    } finally {
      this.close();
    }
  }
}

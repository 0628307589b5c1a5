/**
 * Cuts the byte stream a QMP client sends into messages. Clients end each JSON object with a
 * newline (libvirt: "\r\n", Kata: "\n"), but some send objects back to back, so a message ends
 * either when its outermost braces close or, for anything that is not an object or array, at the
 * newline. A character JSON cannot contain outside a string (`{oops`) marks the message bad and it
 * ends at the next newline, so a typo is answered at once instead of waiting for a brace.
 *
 * A message longer than `maxBytes` is not buffered: it is reported once as `tooLong` and the rest
 * of it, up to the next newline, is discarded, so a client cannot grow the VMM's memory.
 */

export type Frame =
  | { readonly kind: "message"; readonly text: string }
  | { readonly kind: "tooLong"; readonly limit: number }
  | { readonly kind: "badUtf8" };

/** The default cap on one message: far above any real QMP command (device_add is < 1 KiB). */
export const MAX_MESSAGE_BYTES = 1 << 20;

const NL = 0x0a;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Bytes JSON allows outside strings: whitespace, structure, numbers, true/false/null. */
const JSON_OUTSIDE_STRING = new Uint8Array(256);
for (const c of " \t\r\n{}[],:-+.0123456789eEtrufalsn") JSON_OUTSIDE_STRING[c.charCodeAt(0)] = 1;

export class MessageSplitter {
  readonly #maxBytes: number;
  readonly #decoder = new TextDecoder("utf-8", { fatal: true });
  #chunks: Uint8Array[] = [];
  #length = 0;
  #depth = 0;
  #inString = false;
  #escaped = false;
  /** Set when the message can no longer be JSON: it ends at the next newline. */
  #broken = false;
  /** Set after a tooLong report: bytes are dropped up to the next newline. */
  #discarding = false;

  constructor(maxBytes = MAX_MESSAGE_BYTES) {
    this.#maxBytes = maxBytes;
  }

  /** Bytes held for an unfinished message (a client that stopped mid-line). */
  get pendingBytes(): number {
    return this.#length;
  }

  push(bytes: Uint8Array): Frame[] {
    const frames: Frame[] = [];
    let start = 0; // first byte of `bytes` that belongs to the current message
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i];
      if (this.#discarding) {
        if (b === NL) {
          this.#discarding = false;
          start = i + 1;
        }
        continue;
      }
      let ends = false;
      if (this.#broken) {
        ends = b === NL;
      } else if (this.#inString) {
        if (this.#escaped) this.#escaped = false;
        else if (b === BACKSLASH) this.#escaped = true;
        else if (b === QUOTE) this.#inString = false;
        else if (b === NL) ends = true; // raw newline inside a string: invalid, report now
      } else if (b === QUOTE) {
        this.#inString = true;
      } else if (b === 0x7b || b === 0x5b) { // { [
        this.#depth++;
      } else if (b === 0x7d || b === 0x5d) { // } ]
        this.#depth--;
        ends = this.#depth <= 0;
      } else if (b === NL) {
        ends = this.#depth <= 0;
        if (!ends) continue;
      } else if (!JSON_OUTSIDE_STRING[b]) {
        this.#broken = this.#depth > 0;
      }
      const size = this.#length + (i + 1 - start);
      if (size > this.#maxBytes) {
        frames.push({ kind: "tooLong", limit: this.#maxBytes });
        this.#reset();
        this.#discarding = b !== NL;
        start = i + 1;
        continue;
      }
      if (ends) {
        this.#take(bytes.subarray(start, i + 1));
        start = i + 1;
        const frame = this.#finish();
        if (frame) frames.push(frame);
      }
    }
    if (!this.#discarding && start < bytes.length) {
      if (this.#length + bytes.length - start > this.#maxBytes) {
        frames.push({ kind: "tooLong", limit: this.#maxBytes });
        this.#reset();
        this.#discarding = true;
      } else {
        this.#take(bytes.slice(start));
      }
    }
    return frames;
  }

  #take(part: Uint8Array): void {
    if (part.length === 0) return;
    this.#chunks.push(part.slice());
    this.#length += part.length;
  }

  /** The current message as text, or null when it was only whitespace. */
  #finish(): Frame | null {
    const whole = new Uint8Array(this.#length);
    let at = 0;
    for (const c of this.#chunks) {
      whole.set(c, at);
      at += c.length;
    }
    this.#reset();
    let text: string;
    try {
      text = this.#decoder.decode(whole);
    } catch {
      return { kind: "badUtf8" };
    }
    return text.trim() === "" ? null : { kind: "message", text };
  }

  #reset(): void {
    this.#chunks = [];
    this.#length = 0;
    this.#depth = 0;
    this.#inString = false;
    this.#escaped = false;
    this.#broken = false;
  }
}

/**
 * A character device backend: where a serial port's or a console's bytes go on the host, and
 * where its input comes from. Device models call `write` from their register handlers, so it
 * never blocks and never throws: bytes are copied into a bounded queue that an async loop drains.
 */

export type ChardevBackendKind = "stdio" | "pty" | "socket" | "file";

/** The shape of a parsed `-chardev` option (the config parser produces it). */
export interface ChardevConfig {
  backend: ChardevBackendKind;
  id: string;
  path?: string;
  server?: boolean;
  nowait?: boolean;
}

export interface Chardev {
  readonly id: string;
  readonly backend: ChardevBackendKind;
  /** Queues bytes for the host side; copies them, so the caller may reuse its buffer. */
  write(bytes: Uint8Array): void;
  /**
   * Sets the receiver of host input (input that arrived before it is delivered at once). The
   * receiver returns how many bytes it took (nothing = all); the rest is kept, and no more is read
   * from the host, until `resumeInput()`.
   */
  onInput(receiver: InputReceiver): void;
  /** The device has room again: offer it the held input and read on. */
  resumeInput(): void;
  /** Resolves once queued output has been handed to the host (or dropped because nobody reads). */
  flush(): Promise<void>;
  /** Stops I/O and releases host resources (a socket file is removed). Safe to call twice. */
  close(): Promise<void>;
}

/** Takes host input; returns how many bytes it accepted (undefined: all of them). */
export type InputReceiver = (bytes: Uint8Array) => number | void;

export class ChardevError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ChardevError";
  }
}

/** Where backends report what happens (pty path, socket clients, write errors). */
export type ChardevLog = (message: string) => void;

export const logToStderr: ChardevLog = (message) => {
  try {
    Deno.stderr.writeSync(new TextEncoder().encode(message + "\n"));
  } catch {
    // stderr gone: nothing left to tell.
  }
};

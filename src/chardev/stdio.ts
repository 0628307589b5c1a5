/**
 * The `stdio` backend: guest output to the VMM's stdout, host stdin to the guest, with the
 * terminal in raw mode when stdin is one (see terminal.ts for restoring it). Only one chardev can
 * own stdio.
 */
import { ChardevBase } from "./base.ts";
import { ChardevError, type ChardevLog } from "./chardev.ts";
import { enterRawMode, restoreTerminal } from "./terminal.ts";

let owner: string | null = null;

export interface StdioOptions {
  /** Put a terminal stdin in raw mode (default true). */
  raw?: boolean;
}

export class StdioChardev extends ChardevBase {
  /** Whether this backend switched the terminal to raw mode. */
  readonly rawMode: boolean;

  constructor(id: string, log: ChardevLog, options: StdioOptions = {}) {
    if (owner !== null) {
      throw new ChardevError(
        `chardev '${id}': stdio is already used by chardev '${owner}'`,
      );
    }
    super(id, "stdio", log, (bytes) => Deno.stdout.write(bytes));
    owner = id;
    this.rawMode = (options.raw ?? true) ? enterRawMode() : false;
    this.#readLoop();
  }

  async #readLoop(): Promise<void> {
    const buf = new Uint8Array(4096);
    try {
      while (!this.closed) {
        await this.inputRoom();
        if (this.closed) break;
        const n = await Deno.stdin.read(buf);
        if (n === null) break; // EOF: the guest simply gets no more input
        this.deliver(buf.slice(0, n));
      }
    } catch (e) {
      if (!this.closed) this.log(`chardev '${this.id}': stdin: ${(e as Error).message}`);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.output.flush();
    this.closed = true;
    this.releaseInputWaiters();
    restoreTerminal();
    owner = null;
    // A pending stdin read cannot be cancelled; it ends with the process.
  }
}

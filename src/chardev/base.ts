/**
 * What every backend shares: the output queue, and input delivery with flow control. The device
 * that registers for input may take only part of what arrives (a UART whose receive buffer is
 * full); the rest is held and the backend stops reading the host until `resumeInput()` says the
 * device has room again, so the host side (socket client, pty writer) is held back by its own
 * kernel buffers instead of losing bytes. Input arriving before any device registers is held too.
 */
import type { Chardev, ChardevBackendKind, ChardevLog, InputReceiver } from "./chardev.ts";
import { OutputQueue, type OutputSink } from "./output_queue.ts";

export abstract class ChardevBase implements Chardev {
  protected readonly output: OutputQueue;
  #receiver: InputReceiver | null = null;
  /** Input not yet taken by the device, oldest first. */
  #pending: Uint8Array[] = [];
  #roomWaiters: (() => void)[] = [];
  protected closed = false;

  constructor(
    readonly id: string,
    readonly backend: ChardevBackendKind,
    protected readonly log: ChardevLog,
    sink: OutputSink | null,
    outputLimit?: number,
  ) {
    this.output = new OutputQueue(sink, outputLimit, (e) => this.outputFailed(e));
  }

  write(bytes: Uint8Array): void {
    if (this.closed) return;
    this.output.push(bytes);
  }

  onInput(receiver: InputReceiver): void {
    this.#receiver = receiver;
    this.resumeInput();
  }

  resumeInput(): void {
    const receiver = this.#receiver;
    while (receiver && this.#pending.length > 0 && !this.closed) {
      const bytes = this.#pending[0];
      const taken = this.#offer(receiver, bytes);
      if (taken < bytes.length) {
        this.#pending[0] = bytes.subarray(taken);
        return;
      }
      this.#pending.shift();
    }
    const waiters = this.#roomWaiters;
    this.#roomWaiters = [];
    for (const wake of waiters) wake();
  }

  flush(): Promise<void> {
    return this.output.flush();
  }

  abstract close(): Promise<void>;

  /** Hands host input to the device; what it does not take waits for `resumeInput`. */
  protected deliver(bytes: Uint8Array): void {
    if (bytes.length === 0 || this.closed) return;
    this.#pending.push(bytes);
    this.resumeInput();
  }

  /** Read loops await this before reading more from the host: it holds while input is pending. */
  protected inputRoom(): Promise<void> {
    if (this.#pending.length === 0 || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.#roomWaiters.push(resolve));
  }

  /** Ends waits in `inputRoom` (on close). */
  protected releaseInputWaiters(): void {
    this.#pending = [];
    const waiters = this.#roomWaiters;
    this.#roomWaiters = [];
    for (const wake of waiters) wake();
  }

  #offer(receiver: InputReceiver, bytes: Uint8Array): number {
    try {
      const taken = receiver(bytes);
      return typeof taken === "number" ? Math.max(0, Math.min(taken, bytes.length)) : bytes.length;
    } catch (e) {
      this.log(`chardev '${this.id}': input receiver failed: ${(e as Error).message ?? e}`);
      return bytes.length; // drop it rather than offer it forever
    }
  }

  /** The host side refused a write: say so once and stop writing there. */
  protected outputFailed(error: unknown): void {
    this.log(`chardev '${this.id}': output stopped: ${(error as Error).message ?? error}`);
    this.output.setSink(null);
  }
}

/**
 * One QMP client: greeting, capabilities negotiation, then commands answered in order. Input is
 * cut into messages by MessageSplitter; each gets exactly one reply (or none, for blank lines).
 * Replies and events share one ordered output queue per client; a client that lets more than
 * `maxOutputBytes` pile up unread is disconnected rather than buffered without end.
 */
import { isPlainObject } from "./args.ts";
import { runCommand } from "./commands.ts";
import { QmpError, toWireError } from "./errors.ts";
import { type Frame, MessageSplitter } from "./framing.ts";
import { LeakBucket } from "./leak_bucket.ts";
import type { QmpMachine } from "./machine_api.ts";
import type { QmpStream } from "./stream.ts";
import { qmpGreeting } from "./version.ts";

/** What a session needs from its server. */
export interface SessionHost {
  readonly machine: QmpMachine;
  readonly shuttingDown: boolean;
  log(message: string): void;
  /** `quit` was answered: send SHUTDOWN and stop the machine. */
  quit(): void;
}

export interface SessionLimits {
  readonly maxMessageBytes: number;
  readonly maxOutputBytes: number;
  /** Commands a client may send per second before OperationThrottled (0: no limit). */
  readonly maxCommandsPerSecond: number;
  /** Milliseconds, for the rate limit. */
  readonly clock: () => number;
}

const TOP_LEVEL_MEMBERS = new Set(["execute", "arguments", "id"]);
const encoder = new TextEncoder();

export class QmpSession {
  #negotiated = false;
  #closed = false;
  #queuedBytes = 0;
  #output: Promise<void> = Promise.resolve();
  readonly #splitter: MessageSplitter;
  /** fds received and not yet taken by a getfd. */
  #fds: number[] = [];
  #streamClosed: Promise<void> = Promise.resolve();
  readonly #bucket: LeakBucket | null;

  constructor(
    readonly stream: QmpStream,
    readonly host: SessionHost,
    readonly limits: SessionLimits,
  ) {
    this.#splitter = new MessageSplitter(limits.maxMessageBytes);
    this.#bucket = limits.maxCommandsPerSecond > 0
      ? new LeakBucket(limits.maxCommandsPerSecond, limits.clock)
      : null;
  }

  /** Whether events go to this client (only after qmp_capabilities, as in QEMU). */
  get negotiated(): boolean {
    return this.#negotiated && !this.#closed;
  }

  /** Greets, then serves until the client leaves or `close()`; never rejects. */
  async run(): Promise<void> {
    this.#send(qmpGreeting());
    try {
      for (;;) {
        const input = await this.stream.read();
        if (input === null) break;
        this.#fds.push(...input.fds);
        for (const frame of this.#splitter.push(input.bytes)) {
          if (this.#closed) break;
          await this.#handle(frame);
          this.#dropUnclaimedFds();
        }
        if (this.#closed) break;
      }
    } catch (e) {
      this.host.log(`QMP: ${this.stream.label}: ${(e as Error).message}`);
    }
    if (this.#splitter.pendingBytes > 0) {
      this.host.log(
        `QMP: ${this.stream.label}: client left in the middle of a message ` +
          `(${this.#splitter.pendingBytes} bytes dropped)`,
      );
    }
    this.close();
    await this.#streamClosed;
  }

  /** Queues an event line (already encoded) if this client negotiated capabilities. */
  sendEvent(line: string): void {
    if (this.negotiated) this.#write(line);
  }

  /** Waits until everything queued has been written (or the client is gone). */
  flush(): Promise<void> {
    return this.#output;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#dropUnclaimedFds();
    this.#streamClosed = Promise.resolve(this.stream.close());
  }

  async #handle(frame: Frame): Promise<void> {
    if (frame.kind === "tooLong") {
      this.#sendError(
        new QmpError(
          "GenericError",
          `QMP input exceeds ${frame.limit} bytes in one message; it was discarded`,
        ),
      );
      return;
    }
    if (frame.kind === "badUtf8") {
      this.#sendError(new QmpError("GenericError", "QMP input is not valid UTF-8"));
      return;
    }
    let request: unknown;
    try {
      request = JSON.parse(frame.text);
    } catch (e) {
      this.#sendError(new QmpError("GenericError", `JSON parse error, ${(e as Error).message}`));
      return;
    }
    if (!isPlainObject(request)) {
      this.#sendError(new QmpError("GenericError", "QMP input must be a JSON object"));
      return;
    }
    const hasId = Object.hasOwn(request, "id");
    const id = request.id;
    if (this.#bucket?.throttled()) {
      const limit = this.#bucket.capacity;
      const desc = `More than ${limit} requests received during 1 second`;
      this.#sendError(new QmpError("OperationThrottled", desc), hasId, id);
      return;
    }
    let outcome: { result: unknown; quit: boolean };
    try {
      outcome = await this.#execute(request);
    } catch (e) {
      this.#sendError(e, hasId, id);
      return;
    }
    this.#send(hasId ? { return: outcome.result, id } : { return: outcome.result });
    // The reply goes out before SHUTDOWN, as StratoVirt does; then the machine stops.
    if (outcome.quit) this.host.quit();
  }

  /** Runs one request; resolves to the `return` payload and whether it was `quit`. */
  async #execute(request: Record<string, unknown>): Promise<{ result: unknown; quit: boolean }> {
    for (const key of Object.keys(request)) {
      if (!TOP_LEVEL_MEMBERS.has(key)) {
        throw new QmpError("GenericError", `QMP input member '${key}' is unexpected`);
      }
    }
    if (!Object.hasOwn(request, "execute")) {
      throw new QmpError("GenericError", "QMP input lacks member 'execute'");
    }
    const name = request.execute;
    if (typeof name !== "string") {
      throw new QmpError("GenericError", "QMP input member 'execute' must be a string");
    }
    const args = Object.hasOwn(request, "arguments") ? request.arguments : {};
    if (!isPlainObject(args)) {
      throw new QmpError("GenericError", "QMP input member 'arguments' must be an object");
    }
    const ctx = {
      machine: this.host.machine,
      takeFd: () => this.#fds.shift(),
      log: (m: string) => this.host.log(m),
    };
    if (!this.#negotiated) {
      if (name !== "qmp_capabilities") {
        throw new QmpError(
          "CommandNotFound",
          "Expecting capabilities negotiation with 'qmp_capabilities'",
        );
      }
      const result = await runCommand(ctx, name, args);
      this.#negotiated = true;
      return { result, quit: false };
    }
    if (name === "qmp_capabilities") {
      throw new QmpError(
        "CommandNotFound",
        "Capabilities negotiation is already complete, command ignored",
      );
    }
    if (this.host.shuttingDown) {
      throw new QmpError("GenericError", `The VM is shutting down; '${name}' was not run`);
    }
    const result = await runCommand(ctx, name, args);
    return { result, quit: name === "quit" };
  }

  #sendError(e: unknown, hasId = false, id?: unknown): void {
    const error = toWireError(e);
    this.#send(hasId ? { error, id } : { error });
  }

  #send(message: unknown): void {
    let line: string;
    try {
      line = JSON.stringify(message);
    } catch (e) {
      line = JSON.stringify({
        error: { class: "GenericError", desc: `reply cannot be encoded: ${(e as Error).message}` },
      });
    }
    this.#write(line);
  }

  #write(line: string): void {
    if (this.#closed) return;
    const bytes = encoder.encode(line + "\r\n");
    // One reply larger than the limit still goes out; a backlog behind it does not.
    if (this.#queuedBytes > 0 && this.#queuedBytes + bytes.length > this.limits.maxOutputBytes) {
      this.host.log(
        `QMP: ${this.stream.label}: client does not read its replies ` +
          `(${this.#queuedBytes} bytes pending); disconnecting it`,
      );
      this.close();
      return;
    }
    this.#queuedBytes += bytes.length;
    this.#output = this.#output.then(async () => {
      if (this.#closed) return;
      try {
        await this.stream.write(bytes);
      } catch {
        this.close(); // the client went away; its read loop ends too
      } finally {
        this.#queuedBytes -= bytes.length;
      }
    });
  }

  #dropUnclaimedFds(): void {
    for (const fd of this.#fds) this.stream.closeFd?.(fd);
    this.#fds = [];
  }
}

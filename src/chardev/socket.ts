/**
 * The `socket` backend: a Unix socket server (`path`, `server`, `nowait`, which StratoVirt
 * requires together). One client at a time: further clients wait in the listen backlog until the
 * current one leaves. The client's bytes are the guest's input; guest output goes to the client,
 * and while nobody is connected the newest `backlogBytes` of it are kept for the next client.
 * A stale socket file at `path` is replaced; the file is removed on close.
 */
import { ChardevBase } from "./base.ts";
import { ChardevError, type ChardevLog } from "./chardev.ts";

export interface SocketOptions {
  /** Output kept while no client is connected (default 64 KiB; 0 drops it). */
  backlogBytes?: number;
  /** Output queued for a slow client before the oldest is dropped (default 1 MiB). */
  clientQueueBytes?: number;
}

export class SocketChardev extends ChardevBase {
  readonly path: string;
  readonly #listener: Deno.UnixListener;
  #client: Deno.UnixConn | null = null;
  readonly #backlogBytes: number;
  readonly #clientQueueBytes: number;
  readonly #served: Promise<void>;

  constructor(id: string, path: string, log: ChardevLog, options: SocketOptions = {}) {
    removeStaleSocket(id, path);
    let listener: Deno.UnixListener;
    try {
      listener = Deno.listen({ transport: "unix", path });
      Deno.chmodSync(path, 0o600);
    } catch (e) {
      throw new ChardevError(
        `chardev '${id}': cannot listen on '${path}': ${(e as Error).message}`,
      );
    }
    const backlogBytes = options.backlogBytes ?? 64 * 1024;
    super(id, "socket", log, null, backlogBytes);
    this.path = path;
    this.#listener = listener;
    this.#backlogBytes = backlogBytes;
    this.#clientQueueBytes = options.clientQueueBytes ?? 1 << 20;
    this.#served = this.#acceptLoop();
  }

  /** Whether a client is connected now. */
  get connected(): boolean {
    return this.#client !== null;
  }

  async #acceptLoop(): Promise<void> {
    while (!this.closed) {
      let conn: Deno.UnixConn;
      try {
        conn = await this.#listener.accept();
      } catch (e) {
        if (!this.closed) this.log(`chardev '${this.id}': accept: ${(e as Error).message}`);
        return;
      }
      await this.#serve(conn);
    }
  }

  async #serve(conn: Deno.UnixConn): Promise<void> {
    if (this.closed) {
      conn.close();
      return;
    }
    this.#client = conn;
    this.log(`Chardev '${this.id}' event, connection opened: ${this.path}`);
    this.output.limit = this.#clientQueueBytes;
    this.output.setSink((bytes) =>
      conn.write(bytes).catch((e) => {
        // A write still in flight for a client that already left is not the new client's fault.
        if (this.#client === conn) throw e;
        return bytes.length;
      })
    );
    const buf = new Uint8Array(4096);
    try {
      for (;;) {
        await this.inputRoom();
        if (this.closed || this.#client !== conn) break;
        const n = await conn.read(buf);
        if (n === null) break;
        this.deliver(buf.slice(0, n));
      }
    } catch {
      // Reset by the peer, or closed by close(): either way this client is gone.
    }
    this.#detach(conn);
  }

  #detach(conn: Deno.UnixConn): void {
    if (this.#client !== conn) return;
    this.#client = null;
    this.output.setSink(null);
    this.output.limit = this.#backlogBytes;
    this.output.clear();
    try {
      conn.close();
    } catch {
      // Already closed.
    }
    if (!this.closed) this.log(`Chardev '${this.id}' event, connection closed: ${this.path}`);
  }

  /** A client that stops reading its socket (EPIPE, reset) is dropped, not the whole backend. */
  protected override outputFailed(_error: unknown): void {
    const conn = this.#client;
    if (conn) this.#detach(conn);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.releaseInputWaiters();
    this.output.setSink(null);
    this.output.clear();
    try {
      this.#listener.close();
    } catch {
      // Already closed.
    }
    if (this.#client) this.#detach(this.#client);
    await this.#served;
    try {
      Deno.removeSync(this.path);
    } catch {
      // Someone removed it already.
    }
  }
}

/** A socket file left by an earlier run is replaced; anything else at the path is refused. */
function removeStaleSocket(id: string, path: string): void {
  let info: Deno.FileInfo;
  try {
    info = Deno.lstatSync(path);
  } catch {
    return; // nothing there
  }
  if (!info.isSocket) {
    throw new ChardevError(`chardev '${id}': '${path}' exists and is not a socket`);
  }
  Deno.removeSync(path);
}

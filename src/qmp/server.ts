/**
 * The QMP server: any number of listening sockets (`-qmp unix:PATH,server,nowait`,
 * `-qmp tcp:HOST:PORT,server,nowait`, `-mon chardev=ID,mode=control` on a socket chardev) and
 * already-accepted connections, all driving one machine. Events go to every client that has
 * negotiated capabilities.
 *
 *   const qmp = new QmpServer(machine, { log });
 *   qmp.listen({ kind: "unix", path: "/run/vm.sock" });
 *   qmp.emitEvent("STOP", {});
 *   await qmp.close();   // flushes, disconnects, removes socket files
 */
import {
  encodeEvent,
  type QmpEventData,
  type QmpEventName,
  type ShutdownReason,
} from "./events.ts";
import { MAX_MESSAGE_BYTES } from "./framing.ts";
import type { QmpMachine } from "./machine_api.ts";
import { QmpSession, type SessionHost, type SessionLimits } from "./session.ts";
import { connStream, type QmpStream } from "./stream.ts";
import { FdPoller } from "./fd_poller.ts";
import { scmLibc } from "./scm_libc.ts";
import { ScmUnixListener } from "./scm_socket.ts";

export type QmpAddress =
  | { readonly kind: "unix"; readonly path: string }
  | { readonly kind: "tcp"; readonly host: string; readonly port: number };

/** Where a listener ended up (a tcp port 0 is resolved to the port the kernel chose). */
export type QmpListening =
  | { readonly kind: "unix"; readonly path: string }
  | { readonly kind: "tcp"; readonly host: string; readonly port: number };

export interface QmpServerOptions {
  /** Where the server reports clients, bad input and failures (default: nowhere). */
  log?: (message: string) => void;
  /** Longest accepted message in bytes (default 1 MiB); longer ones get an error. */
  maxMessageBytes?: number;
  /** Unread output a client may accumulate before it is disconnected (default 4 MiB). */
  maxOutputBytes?: number;
  /**
   * Commands one client may send per second; more are answered OperationThrottled (StratoVirt's
   * leaky bucket, default 100; 0 turns it off).
   */
  maxCommandsPerSecond?: number;
  /** Milliseconds for the rate limit (default performance.now; tests pass a fake). */
  clock?: () => number;
  /** How long close() waits for clients to take their last replies (default 1000 ms). */
  flushTimeoutMs?: number;
  /**
   * Unix sockets receive SCM_RIGHTS fds (getfd) through libc.so.6 (default true). Without FFI
   * permission, or when false, Deno's own socket is used and getfd answers that no fd came.
   */
  fdPassing?: boolean;
}

export class QmpListenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "QmpListenError";
  }
}

/** Converts src/config's `{transport: ...}` QmpConfig into a QmpAddress. */
export function qmpAddress(
  config:
    | { readonly transport: "unix"; readonly path: string }
    | { readonly transport: "tcp"; readonly host: string; readonly port: number },
): QmpAddress {
  return config.transport === "unix"
    ? { kind: "unix", path: config.path }
    : { kind: "tcp", host: config.host, port: config.port };
}

interface Listening {
  close(): void | Promise<void>;
  readonly socketPath?: string;
  readonly accepting: Promise<void>;
}

export class QmpServer {
  readonly #machine: QmpMachine;
  readonly #log: (message: string) => void;
  readonly #limits: SessionLimits;
  readonly #flushTimeoutMs: number;
  readonly #fdPassing: boolean;
  #poller: FdPoller | null = null;
  readonly #listeners: Listening[] = [];
  readonly #sessions = new Set<QmpSession>();
  readonly #running = new Set<Promise<void>>();
  #shuttingDown = false;
  #closing: Promise<void> | null = null;
  #quitting: Promise<void> | null = null;

  constructor(machine: QmpMachine, options: QmpServerOptions = {}) {
    this.#machine = machine;
    this.#log = options.log ?? (() => {});
    this.#limits = {
      maxMessageBytes: options.maxMessageBytes ?? MAX_MESSAGE_BYTES,
      maxOutputBytes: options.maxOutputBytes ?? 4 << 20,
      maxCommandsPerSecond: options.maxCommandsPerSecond ?? 100,
      clock: options.clock ?? (() => performance.now()),
    };
    this.#flushTimeoutMs = options.flushTimeoutMs ?? 1000;
    this.#fdPassing = options.fdPassing ?? true;
  }

  /** Connected clients (negotiated or not). */
  get clientCount(): number {
    return this.#sessions.size;
  }

  /** True once `quit` was accepted or close() began: further commands are refused. */
  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  /**
   * Starts listening. A unix socket file left by an earlier run is replaced (anything else at
   * the path is refused), the new one is made 0600 and it is removed by close().
   */
  listen(address: QmpAddress): QmpListening {
    if (this.#closing) throw new QmpListenError("QMP server is closed");
    if (address.kind === "unix") return this.#listenUnix(address.path);
    return this.#listenTcp(address.host, address.port);
  }

  /**
   * Serves QMP on a connection accepted elsewhere (a socket chardev named by `-mon`). Resolves
   * when the client leaves or the server closes.
   */
  serve(connection: Deno.Conn | QmpStream, label = "monitor"): Promise<void> {
    const stream = "read" in connection && "label" in connection
      ? connection as QmpStream
      : connStream(connection as Deno.Conn, label);
    if (this.#closing) {
      stream.close();
      return Promise.resolve();
    }
    const session = new QmpSession(stream, this.#host(), this.#limits);
    this.#sessions.add(session);
    this.#log(`QMP: client connected: ${stream.label}`);
    const run = session.run().finally(() => {
      this.#sessions.delete(session);
      this.#running.delete(run);
      this.#log(`QMP: client left: ${stream.label}`);
    });
    this.#running.add(run);
    return run;
  }

  /** Sends an event to every client that has negotiated capabilities. */
  emitEvent<E extends QmpEventName>(name: E, data: QmpEventData[E]): void {
    const line = encodeEvent(name, data);
    for (const s of this.#sessions) s.sendEvent(line);
  }

  /** SHUTDOWN with its reason; for the machine when the guest or a signal ends the VM. */
  emitShutdown(reason: ShutdownReason, guest = reason.startsWith("guest")): void {
    this.emitEvent("SHUTDOWN", { guest, reason });
  }

  /**
   * Stops listening (unix socket files are removed), gives clients up to flushTimeoutMs to take
   * what was queued for them, then disconnects them. Safe to call more than once, and from a
   * command handler (the machine's quit()).
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  /** Resolves once a `quit` the server started has finished (machine.quit() returned). */
  get quitDone(): Promise<void> {
    return this.#quitting ?? Promise.resolve();
  }

  async #close(): Promise<void> {
    this.#shuttingDown = true;
    await Promise.all(this.#listeners.map(async (l) => {
      try {
        await l.close();
      } catch {
        // already closed
      }
      await l.accepting;
    }));
    for (const l of this.#listeners) {
      if (l.socketPath) removeSocketFile(l.socketPath);
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.#flushTimeoutMs);
    });
    await Promise.race([Promise.all([...this.#sessions].map((s) => s.flush())), timeout]);
    clearTimeout(timer);
    for (const s of this.#sessions) s.close();
    await Promise.all([...this.#running]);
    await this.#poller?.close();
  }

  #host(): SessionHost {
    const isShuttingDown = () => this.#shuttingDown;
    return {
      machine: this.#machine,
      get shuttingDown() {
        return isShuttingDown();
      },
      log: (m: string) => this.#log(m),
      quit: () => this.#quit(),
    };
  }

  #quit(): void {
    if (this.#shuttingDown) return;
    this.#shuttingDown = true;
    this.emitShutdown("host-qmp-quit", false);
    // Not awaited by the session: the machine's quit() closes this server, which waits for
    // every session — including the one that received quit.
    this.#quitting = (async () => {
      try {
        await this.#machine.quit();
      } catch (e) {
        this.#log(`QMP: quit failed: ${(e as Error).message}`);
      }
    })();
  }

  #listenUnix(path: string): QmpListening {
    removeStaleSocket(path);
    const scm = this.#fdPassing && scmLibc() !== null;
    let listening: Omit<Listening, "socketPath">;
    try {
      listening = scm
        ? this.#acceptScm(path)
        : this.#acceptDeno(Deno.listen({ transport: "unix", path }), () => `unix:${path}`);
    } catch (e) {
      throw new QmpListenError(`QMP: cannot listen on unix:${path}: ${(e as Error).message}`);
    }
    this.#listeners.push({ ...listening, socketPath: path });
    try {
      Deno.chmodSync(path, 0o600);
    } catch (e) {
      throw new QmpListenError(`QMP: cannot chmod 0600 ${path}: ${(e as Error).message}`);
    }
    return { kind: "unix", path };
  }

  #acceptScm(path: string): Omit<Listening, "socketPath"> {
    this.#poller ??= new FdPoller();
    const listener = ScmUnixListener.open(path, this.#poller);
    const accepting = (async () => {
      for (let s = await listener.accept(); s !== null; s = await listener.accept()) {
        this.serve(s);
      }
    })();
    return { close: () => listener.close(), accepting };
  }

  #listenTcp(host: string, port: number): QmpListening {
    let listener: Deno.TcpListener;
    try {
      listener = Deno.listen({ transport: "tcp", hostname: host, port });
    } catch (e) {
      throw new QmpListenError(
        `QMP: cannot listen on tcp:${host}:${port}: ${(e as Error).message}`,
      );
    }
    this.#listeners.push(this.#acceptDeno(listener, (c) => {
      const a = c.remoteAddr as Deno.NetAddr;
      return `tcp:${a.hostname}:${a.port}`;
    }));
    return { kind: "tcp", host, port: listener.addr.port };
  }

  #acceptDeno(listener: Deno.Listener, describe: (c: Deno.Conn) => string): Listening {
    const accepting = (async () => {
      for (;;) {
        let conn: Deno.Conn;
        try {
          conn = await listener.accept();
        } catch (e) {
          if (!this.#closing) this.#log(`QMP: accept failed: ${(e as Error).message}`);
          return;
        }
        this.serve(conn, describe(conn));
      }
    })();
    return { close: () => listener.close(), accepting };
  }
}

/** A socket file from an earlier run is replaced; a regular file or directory is not touched. */
function removeStaleSocket(path: string): void {
  let info: Deno.FileInfo;
  try {
    info = Deno.lstatSync(path);
  } catch {
    return; // nothing there
  }
  if (!info.isSocket) {
    throw new QmpListenError(`QMP: '${path}' exists and is not a socket; not replacing it`);
  }
  removeSocketFile(path);
}

function removeSocketFile(path: string): void {
  try {
    Deno.removeSync(path);
  } catch {
    // gone already
  }
}

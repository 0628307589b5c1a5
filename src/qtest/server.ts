/**
 * The socket side of `-mod-test SOCKET`. As in StratoVirt and QEMU, the usual harness listens on
 * SOCKET and the VMM connects to it; when nothing listens there (no file, or a stale one), the
 * VMM listens itself and takes the first client, so a client can also start the VMM first.
 * One client; the session ends when it disconnects or sends `quit`. A socket file the VMM
 * created is removed when the session ends.
 */
import { POLLIN, POLLOUT, UnixListener, UnixSocket } from "../../ffi/unix_socket.ts";
import { Errno, SysError } from "../../ffi/libc.ts";
import { log } from "../util/logger.ts";
import type { QtestProtocol } from "./protocol.ts";
import { MAX_TRANSFER } from "./protocol.ts";

export class QtestSocketError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "QtestSocketError";
  }
}

/** Longest command line: a hex `write` of MAX_TRANSFER bytes plus its words. */
const MAX_LINE = 2 * MAX_TRANSFER + 256;

/**
 * The socket is served with blocking waits (a command is answered as soon as it arrives, with
 * no event-loop wake-up in between). The event loop still runs, so that signal listeners
 * (SIGTERM) get their turn: after every WAIT_MS of waiting, and every BUSY_MS of steady work
 * (not more often: a turn of the event loop through a timer takes milliseconds here).
 */
const WAIT_MS = 50;
const BUSY_MS = 1000;

/** Lets the event loop run once (timers, signal listeners). */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

export interface QtestConnection {
  readonly socket: UnixSocket;
  /** True when the VMM made the socket file (and must remove it). */
  readonly ownsSocket: boolean;
}

/**
 * Connects to a listening harness, or listens on `path` and accepts one client; `onListening`
 * runs once the VMM's own socket file exists (so a signal handler knows to remove it).
 */
export async function openQtestSocket(
  path: string,
  onListening: () => void = () => {},
): Promise<QtestConnection> {
  try {
    return { socket: UnixSocket.connect(path), ownsSocket: false };
  } catch (e) {
    const errno = e instanceof SysError ? e.errno : 0;
    if (errno !== Errno.ENOENT && errno !== Errno.ECONNREFUSED) {
      throw new QtestSocketError(`-mod-test ${path}: cannot connect: ${(e as Error).message}`);
    }
  }
  removeStaleSocket(path);
  let listener: UnixListener;
  try {
    listener = UnixListener.listen(path);
  } catch (e) {
    throw new QtestSocketError(`-mod-test ${path}: cannot listen: ${(e as Error).message}`);
  }
  onListening();
  try {
    while (!listener.waitForClient(WAIT_MS)) await yieldToEventLoop();
    return { socket: listener.accept(), ownsSocket: true };
  } finally {
    listener.close();
  }
}

function removeStaleSocket(path: string): void {
  let info: Deno.FileInfo;
  try {
    info = Deno.lstatSync(path);
  } catch {
    return;
  }
  if (!info.isSocket) {
    throw new QtestSocketError(`-mod-test ${path}: exists and is not a socket`);
  }
  Deno.removeSync(path);
}

/**
 * Reads command lines from `socket` and answers each through `protocol` until the client hangs
 * up or quits. Replies to the commands of one read are sent in one write, so a client may
 * pipeline commands.
 */
export async function serveQtest(socket: UnixSocket, protocol: QtestProtocol): Promise<void> {
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  const buf = new Uint8Array(1 << 20);
  let pending = "";
  let overlong = false;
  /** When the event loop last ran. */
  let lastYield = performance.now();
  for (;;) {
    let n: number | null;
    try {
      n = socket.tryRead(buf);
      while (n === 0) {
        if (!socket.waitFor(POLLIN, WAIT_MS)) {
          await yieldToEventLoop();
          lastYield = performance.now();
        }
        n = socket.tryRead(buf);
      }
    } catch (e) {
      log.debug(`qtest: read ended: ${(e as Error).message}`);
      return;
    }
    if (n === null) return;
    pending += decoder.decode(buf.subarray(0, n), { stream: true });
    if (pending.includes("\n")) protocol.target.startBatch?.();
    const out: string[] = [];
    let start = 0;
    // Devices are serviced before the first command of a batch; after that, each command's
    // "after" is the next one's "before" (nothing runs in between).
    let first = true;
    for (;;) {
      const end = pending.indexOf("\n", start);
      if (end < 0) break;
      const line = pending.slice(start, end);
      start = end + 1;
      if (overlong) {
        overlong = false;
        out.push(`FAIL command line longer than ${MAX_LINE} bytes`);
        continue;
      }
      protocol.handleInto(line.endsWith("\r") ? line.slice(0, -1) : line, out, first);
      first = false;
      if (protocol.quitRequested) break;
    }
    pending = pending.slice(start);
    if (pending.length > MAX_LINE) {
      pending = "";
      overlong = true;
    }
    if (out.length > 0) {
      try {
        await sendAll(socket, encoder.encode(out.join("\n") + "\n"));
      } catch (e) {
        log.debug(`qtest: write failed: ${(e as Error).message}`);
        return;
      }
    }
    if (protocol.quitRequested) return;
    if (performance.now() - lastYield >= BUSY_MS) {
      await yieldToEventLoop();
      lastYield = performance.now();
    }
  }
}

/** Sends all of `data`, waiting for room when the client's buffer is full. */
async function sendAll(socket: UnixSocket, data: Uint8Array): Promise<void> {
  let done = socket.trySend(data);
  while (done < data.length) {
    if (!socket.waitFor(POLLOUT, WAIT_MS)) await yieldToEventLoop();
    done += socket.trySend(data.subarray(done));
  }
}

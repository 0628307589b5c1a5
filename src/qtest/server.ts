/**
 * The socket side of `-mod-test SOCKET`. As in StratoVirt and QEMU, the usual harness listens on
 * SOCKET and the VMM connects to it; when nothing listens there (no file, or a stale one), the
 * VMM listens itself and takes the first client, so a client can also start the VMM first.
 * One client; the session ends when it disconnects or sends `quit`. A socket file the VMM
 * created is removed when the session ends.
 */
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

export interface QtestConnection {
  readonly conn: Deno.UnixConn;
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
    const conn = await Deno.connect({ transport: "unix", path });
    return { conn, ownsSocket: false };
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound || e instanceof Deno.errors.ConnectionRefused)) {
      throw new QtestSocketError(`-mod-test ${path}: cannot connect: ${(e as Error).message}`);
    }
  }
  removeStaleSocket(path);
  let listener: Deno.UnixListener;
  try {
    listener = Deno.listen({ transport: "unix", path });
  } catch (e) {
    throw new QtestSocketError(`-mod-test ${path}: cannot listen: ${(e as Error).message}`);
  }
  onListening();
  try {
    const conn = await listener.accept();
    return { conn, ownsSocket: true };
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
 * Reads command lines from `conn` and answers each through `protocol` until the client hangs
 * up or quits. Replies to the commands of one read are sent in one write, so a client may
 * pipeline commands.
 */
export async function serveQtest(conn: Deno.Conn, protocol: QtestProtocol): Promise<void> {
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  const buf = new Uint8Array(1 << 20);
  let pending = "";
  let overlong = false;
  for (;;) {
    let n: number | null;
    try {
      n = await conn.read(buf);
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
        await writeAll(conn, encoder.encode(out.join("\n") + "\n"));
      } catch (e) {
        log.debug(`qtest: write failed: ${(e as Error).message}`);
        return;
      }
    }
    if (protocol.quitRequested) return;
  }
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let done = 0;
  while (done < data.length) done += await conn.write(data.subarray(done));
}

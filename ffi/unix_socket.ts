/**
 * Unix stream sockets used with blocking waits (helper/src/unix_socket.zig), for a loop that
 * answers a peer command by command: a wait in poll(2) wakes as soon as bytes arrive, where an
 * await on a Deno connection goes through the event loop first. Reads and writes never block;
 * `waitFor` does, up to a timeout, so the caller can still let the event loop run (signal
 * listeners) between waits.
 */
import { cString, helper } from "./helper.ts";
import { check, close, Errno } from "./libc.ts";

export const POLLIN = 0x1;
export const POLLOUT = 0x4;
const POLLERR = 0x8;
const POLLHUP = 0x10;
/** Bytes per send / recv call (their lengths are 32-bit in the helper). */
const MAX_IO = 1 << 30;

/** Waits up to `timeoutMs` for `events` on `fd`: true when ready (or hung up / in error). */
function waitFor(fd: number, events: number, timeoutMs: number): boolean {
  const rc = helper().sv_poll_one(fd, events, timeoutMs);
  if (rc === -Errno.EINTR) return false;
  return (check(rc, "poll") & (events | POLLERR | POLLHUP)) !== 0;
}

/** A connected stream socket. */
export class UnixSocket {
  #fd: number;

  constructor(fd: number) {
    this.#fd = fd;
  }

  /** Connects to the socket at `path`; throws SysError (ENOENT, ECONNREFUSED: nobody listens). */
  static connect(path: string): UnixSocket {
    return new UnixSocket(check(helper().sv_unix_connect(cString(path)), `connect(${path})`));
  }

  /** See waitFor: POLLIN for bytes (or the peer's hang-up), POLLOUT for room to send. */
  waitFor(events: number, timeoutMs: number): boolean {
    return waitFor(this.#fd, events, timeoutMs);
  }

  /** Receives what is there: the byte count, 0 when nothing is, null when the peer hung up. */
  tryRead(buf: Uint8Array): number | null {
    const rc = helper().sv_recv_nowait(this.#fd, buf, Math.min(buf.byteLength, MAX_IO));
    if (rc === -Errno.EAGAIN || rc === -Errno.EINTR) return 0;
    if (rc === -Errno.ECONNRESET) return null;
    check(rc, "recv");
    return rc === 0 ? null : rc;
  }

  /** Sends what fits: the byte count (0 when the peer's buffer is full). Throws on EPIPE. */
  trySend(data: Uint8Array): number {
    const rc = helper().sv_send_nowait(this.#fd, data, Math.min(data.byteLength, MAX_IO));
    if (rc === -Errno.EAGAIN || rc === -Errno.EINTR) return 0;
    return check(rc, "send");
  }

  close(): void {
    if (this.#fd < 0) return;
    close(this.#fd);
    this.#fd = -1;
  }
}

/** A listening socket bound to a path (the caller removes the file). */
export class UnixListener {
  #fd: number;

  private constructor(fd: number) {
    this.#fd = fd;
  }

  /** Binds `path` (which must not exist) and listens; throws SysError. */
  static listen(path: string): UnixListener {
    return new UnixListener(check(helper().sv_unix_listen(cString(path)), `listen(${path})`));
  }

  /** Waits up to `timeoutMs` for a client: true when one can be accepted. */
  waitForClient(timeoutMs: number): boolean {
    return waitFor(this.#fd, POLLIN, timeoutMs);
  }

  accept(): UnixSocket {
    return new UnixSocket(check(helper().sv_unix_accept(this.#fd), "accept"));
  }

  close(): void {
    if (this.#fd < 0) return;
    close(this.#fd);
    this.#fd = -1;
  }
}

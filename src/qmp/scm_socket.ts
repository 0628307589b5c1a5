/**
 * The unix QMP socket with file-descriptor passing: a listener and connections on raw
 * non-blocking fds, read with recvmsg so that SCM_RIGHTS fds (getfd) arrive with the bytes.
 * Readiness comes from an FdPoller; nothing here blocks the event loop.
 */
import type { FdPoller } from "./fd_poller.ts";
import {
  accept,
  closeFd,
  EAGAIN,
  EINTR,
  POLLIN,
  POLLOUT,
  recvWithFds,
  sendNow,
  unixListen,
} from "./scm_libc.ts";
import type { QmpInput, QmpStream } from "./stream.ts";

export class ScmListenError extends Error {
  constructor(readonly errno: number, message: string) {
    super(message);
    this.name = "ScmListenError";
  }
}

export class ScmUnixListener {
  #closed = false;

  private constructor(readonly fd: number, readonly path: string, readonly poller: FdPoller) {}

  /** Binds and listens on `path` (which must not exist). */
  static open(path: string, poller: FdPoller): ScmUnixListener {
    const fd = unixListen(path);
    if (fd < 0) throw new ScmListenError(-fd, `errno ${-fd} (${errnoText(-fd)})`);
    return new ScmUnixListener(fd, path, poller);
  }

  /** The next client, or null once the listener is closed. */
  async accept(): Promise<ScmStream | null> {
    while (!this.#closed) {
      const fd = accept(this.fd);
      if (fd >= 0) return new ScmStream(fd, `unix:${this.path}`, this.poller);
      if (fd !== -EAGAIN && fd !== -EINTR) {
        // ECONNABORTED and friends concern one client only; EMFILE would spin, so wait a bit.
        await new Promise((r) => setTimeout(r, 10));
        continue;
      }
      if ((await this.poller.wait(this.fd, POLLIN)) === 0) return null;
    }
    return null;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.poller.forget(this.fd);
    closeFd(this.fd);
  }
}

export class ScmStream implements QmpStream {
  #closed = false;
  #closing: Promise<void> | null = null;
  readonly #buf = new Uint8Array(64 * 1024);

  constructor(readonly fd: number, readonly label: string, readonly poller: FdPoller) {}

  async read(): Promise<QmpInput | null> {
    while (!this.#closed) {
      const r = recvWithFds(this.fd, this.#buf);
      if (r.n > 0) return { bytes: this.#buf.slice(0, r.n), fds: r.fds };
      for (const fd of r.fds) closeFd(fd); // fds with an EOF belong to no command
      if (r.n === 0) return null;
      if (r.n === -EINTR) continue;
      if (r.n !== -EAGAIN) return null; // ECONNRESET: the client is gone
      // 0: the poller let go of this fd (closing), so no readiness will ever come.
      if ((await this.poller.wait(this.fd, POLLIN)) === 0) return null;
    }
    return null;
  }

  async write(bytes: Uint8Array): Promise<void> {
    let done = 0;
    while (done < bytes.length) {
      if (this.#closed) throw new Error("connection closed");
      const n = sendNow(this.fd, bytes.subarray(done));
      if (n >= 0) done += n;
      else if (n === -EAGAIN) {
        if ((await this.poller.wait(this.fd, POLLOUT)) === 0) throw new Error("connection closed");
      } else if (n !== -EINTR) throw new Error(`send failed: errno ${-n} (${errnoText(-n)})`);
    }
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#closing ??= this.poller.forget(this.fd).then(() => closeFd(this.fd));
    return this.#closing;
  }

  closeFd(fd: number): void {
    closeFd(fd);
  }
}

function errnoText(errno: number): string {
  const names: Record<number, string> = {
    2: "No such file or directory",
    13: "Permission denied",
    20: "Not a directory",
    24: "Too many open files",
    32: "Broken pipe",
    98: "Address already in use",
    104: "Connection reset by peer",
  };
  return names[errno] ?? "system error";
}

/**
 * A QMP connection as the session sees it: bytes in (with any file descriptors that came along
 * as SCM_RIGHTS), bytes out. `connStream` adapts a Deno socket, which cannot carry fds; a
 * transport that reads with recvmsg can hand fds in through the same interface.
 */

export interface QmpInput {
  readonly bytes: Uint8Array;
  /** File descriptors received with these bytes; the session owns them. */
  readonly fds: readonly number[];
}

export interface QmpStream {
  /** What the peer is (for the log): a socket path or host:port. */
  readonly label: string;
  /** The next bytes from the client; null once it has gone. */
  read(): Promise<QmpInput | null>;
  /** Writes all of `bytes`; rejects when the client has gone. */
  write(bytes: Uint8Array): Promise<void>;
  /**
   * Closes the connection; a pending read resolves to null. Safe to call twice. A returned
   * promise resolves once the fd is really closed.
   */
  close(): void | Promise<void>;
  /** Closes a received fd nobody took (only transports that receive fds need it). */
  closeFd?(fd: number): void;
}

const NO_FDS: readonly number[] = Object.freeze([]);

/** A QmpStream over a Deno connection (unix or tcp); it never receives fds. */
export function connStream(conn: Deno.Conn, label: string): QmpStream {
  const buf = new Uint8Array(64 * 1024);
  let closed = false;
  return {
    label,
    async read() {
      if (closed) return null;
      try {
        const n = await conn.read(buf);
        return n === null ? null : { bytes: buf.slice(0, n), fds: NO_FDS };
      } catch {
        return null; // reset by the peer, or closed under us: the client is gone either way
      }
    },
    async write(bytes) {
      let done = 0;
      while (done < bytes.length) done += await conn.write(bytes.subarray(done));
    },
    close() {
      if (closed) return;
      closed = true;
      try {
        conn.close();
      } catch {
        // already closed
      }
    },
  };
}

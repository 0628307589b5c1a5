/**
 * The part of Deno.Conn that QtestClient and the driver use (read, write, close), over a
 * UnixSocket with blocking waits: the driver has nothing else to do while the VMM works, and a
 * wait in poll(2) wakes as soon as the reply arrives, where an await goes through the event
 * loop first. This is the guest side of the round trip the benchmark measures, so it should not
 * add to it more than it must.
 */
import { POLLIN, POLLOUT, UnixSocket } from "../../../ffi/unix_socket.ts";

export class BlockingConn {
  constructor(readonly socket: UnixSocket) {}

  /** Connects to the VMM's socket at `path`; null while nobody listens there yet. */
  static connect(path: string): BlockingConn | null {
    try {
      return new BlockingConn(UnixSocket.connect(path));
    } catch {
      return null;
    }
  }

  /** Waits for bytes: their count, or null when the VMM hung up. */
  read(buf: Uint8Array): Promise<number | null> {
    for (;;) {
      const n = this.socket.tryRead(buf);
      if (n !== 0) return Promise.resolve(n);
      this.socket.waitFor(POLLIN, 1000);
    }
  }

  /** Sends some of `data` (at least one byte), waiting for room: the count. */
  write(data: Uint8Array): Promise<number> {
    for (;;) {
      const n = this.socket.trySend(data);
      if (n > 0 || data.byteLength === 0) return Promise.resolve(n);
      this.socket.waitFor(POLLOUT, 1000);
    }
  }

  close(): void {
    this.socket.close();
  }
}

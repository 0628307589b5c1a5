/**
 * The part of Deno.Conn that QtestClient and the driver use (read, write, close), over a
 * UnixSocket with blocking waits: the driver has nothing else to do while the VMM works, and a
 * wait in poll(2) wakes as soon as the reply arrives, where an await goes through the event
 * loop first. This is the guest side of the round trip the benchmark measures, so it should not
 * add to it more than it must.
 *
 * With `spin` set, a read does not sleep: it tries again, yielding the CPU to whatever else is
 * runnable there (the VMM's thread, pinned to the same CPU), as a polling guest keeps its vCPU
 * busy. The CPU then never halts while the VMM waits for the disk, and waking the VMM's thread
 * (on the disk's interrupt, on the driver's next command) needs no wake-up of a halted CPU,
 * which costs tens of microseconds on this host.
 */
import { schedYield } from "../../../ffi/libc.ts";
import { POLLIN, POLLOUT, UnixSocket } from "../../../ffi/unix_socket.ts";

export class BlockingConn {
  /** Poll for replies instead of sleeping (see above). */
  spin = false;

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
      if (this.spin) schedYield();
      else this.socket.waitFor(POLLIN, 1000);
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

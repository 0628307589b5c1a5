/**
 * The `pty` backend: a new pseudo-terminal whose slave path is printed (as StratoVirt logs it:
 * `Pty path is: "/dev/pts/N"`) for the user to attach `screen`/`minicom`; the VMM relays the
 * master side. The slave is in raw mode and the VMM keeps it open too, so a user detaching does
 * not hang up the master.
 *
 * The master comes from opening /dev/ptmx through `node:fs`, whose descriptors are real ones:
 * the libc calls need the number, and node:fs's async read/write run it on Deno's blocking pool
 * (one waiting read per pty).
 */
import type nodeFs from "node:fs";

// node:fs costs every start tens of ms to load; only a pty needs it, so it is loaded on first use.
let fsModule: typeof nodeFs | null = null;
function fsLazy(): typeof nodeFs {
  // deno-lint-ignore no-explicit-any
  return fsModule ??= (globalThis as any).process.getBuiltinModule("node:fs") as typeof nodeFs;
}
import { grantpt, ptsname, setRawMode, unlockpt } from "../../ffi/pty.ts";
import { ChardevBase } from "./base.ts";
import { ChardevError, type ChardevLog } from "./chardev.ts";

function readFd(fd: number, buf: Uint8Array): Promise<number> {
  return new Promise((resolve, reject) => {
    fsLazy().read(fd, buf, 0, buf.length, null, (err, n) => err ? reject(err) : resolve(n));
  });
}

function writeFd(fd: number, bytes: Uint8Array): Promise<number> {
  return new Promise((resolve, reject) => {
    fsLazy().write(fd, bytes, 0, bytes.length, null, (err, n) => err ? reject(err) : resolve(n));
  });
}

export class PtyChardev extends ChardevBase {
  /** Path of the slave side, e.g. /dev/pts/3. */
  readonly path: string;
  readonly #master: number;
  readonly #slave: number;

  constructor(id: string, log: ChardevLog) {
    let master = -1;
    let slave = -1;
    let path: string;
    const fs = fsLazy();
    try {
      master = fs.openSync("/dev/ptmx", fs.constants.O_RDWR | fs.constants.O_NOCTTY);
      grantpt(master);
      unlockpt(master);
      path = ptsname(master);
      slave = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_NOCTTY);
      setRawMode(slave);
    } catch (e) {
      if (slave >= 0) fs.closeSync(slave);
      if (master >= 0) fs.closeSync(master);
      throw new ChardevError(`chardev '${id}': cannot open a pty: ${(e as Error).message}`);
    }
    super(id, "pty", log, (bytes) => writeFd(master, bytes));
    this.#master = master;
    this.#slave = slave;
    this.path = path;
    log(`Pty path is: ${JSON.stringify(path)}`);
    this.#readLoop();
  }

  async #readLoop(): Promise<void> {
    const buf = new Uint8Array(4096);
    try {
      while (!this.closed) {
        await this.inputRoom();
        if (this.closed) break;
        const n = await readFd(this.#master, buf);
        if (n === 0) break;
        this.deliver(buf.slice(0, n));
      }
    } catch (e) {
      // EIO: every slave descriptor is closed (only at close, since we hold one).
      if (!this.closed) this.log(`chardev '${this.id}': pty read: ${(e as Error).message}`);
    }
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.releaseInputWaiters();
    this.output.clear();
    // Closing our slave makes a pending master read fail with EIO once no user holds the slave.
    fsLazy().closeSync(this.#slave);
    fsLazy().closeSync(this.#master);
    return Promise.resolve();
  }
}

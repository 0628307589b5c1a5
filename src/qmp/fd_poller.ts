/**
 * Readiness of raw fds for the main thread, without blocking it: a worker sits in poll(2) and
 * reports when an fd can be read or written. `wait(fd, POLLIN)` resolves once with the revents;
 * `forget(fd)` resolves pending waits with 0 and, once the worker has let go of the fd, it may be
 * closed (closing earlier could let poll watch a reused fd number).
 */
import { closeFd, pipe, POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, writeFd } from "./scm_libc.ts";

type Reply =
  | { op: "ready"; fd: number; revents: number }
  | { op: "forgot"; fd: number }
  | { op: "failed"; errno: number }
  | { op: "exited" };

interface Waiters {
  in?: (revents: number) => void;
  out?: (revents: number) => void;
}

const WAKE = new Uint8Array([1]);
const FAILURE = POLLERR | POLLHUP | POLLNVAL;

export class FdPoller {
  readonly #worker: Worker;
  readonly #wakeRead: number;
  readonly #wakeWrite: number;
  readonly #waiters = new Map<number, Waiters>();
  readonly #forgetting = new Map<number, () => void>();
  #exited: Promise<void>;
  #markExited!: () => void;
  #closed = false;

  constructor() {
    [this.#wakeRead, this.#wakeWrite] = pipe();
    this.#exited = new Promise((resolve) => this.#markExited = resolve);
    this.#worker = new Worker(new URL("./fd_poller_worker.ts", import.meta.url).href, {
      type: "module",
    });
    this.#worker.onmessage = (e: MessageEvent<Reply>) => this.#onReply(e.data);
    this.#worker.postMessage({ op: "init", wakeFd: this.#wakeRead });
  }

  /** Resolves with poll's revents once `fd` is ready for `events` (or failed); 0 if forgotten. */
  wait(fd: number, events: typeof POLLIN | typeof POLLOUT): Promise<number> {
    if (this.#closed) return Promise.resolve(0);
    const w = this.#waiters.get(fd) ?? {};
    this.#waiters.set(fd, w);
    const p = new Promise<number>((resolve) => {
      if (events === POLLIN) w.in = resolve;
      else w.out = resolve;
    });
    this.#send({ op: "watch", fd, events });
    return p;
  }

  /** Stops watching `fd`: pending waits resolve with 0; resolves when it is safe to close. */
  forget(fd: number): Promise<void> {
    this.#resolve(fd, ~0, 0);
    this.#waiters.delete(fd);
    if (this.#closed) return Promise.resolve();
    const done = new Promise<void>((resolve) => this.#forgetting.set(fd, resolve));
    this.#send({ op: "forget", fd });
    return done;
  }

  /** Stops the worker; every pending wait resolves with 0. */
  async close(): Promise<void> {
    if (this.#closed) return this.#exited;
    this.#closed = true;
    for (const fd of [...this.#waiters.keys()]) this.#resolve(fd, ~0, 0);
    this.#waiters.clear();
    this.#send({ op: "exit" });
    await this.#exited;
    this.#worker.terminate();
    closeFd(this.#wakeRead);
    closeFd(this.#wakeWrite);
    for (const done of this.#forgetting.values()) done();
    this.#forgetting.clear();
  }

  #send(request: unknown): void {
    this.#worker.postMessage(request);
    writeFd(this.#wakeWrite, WAKE);
  }

  #onReply(r: Reply): void {
    if (r.op === "ready") {
      if (r.revents & (POLLIN | FAILURE)) this.#resolve(r.fd, POLLIN, r.revents);
      if (r.revents & (POLLOUT | FAILURE)) this.#resolve(r.fd, POLLOUT, r.revents);
    } else if (r.op === "forgot") {
      this.#forgetting.get(r.fd)?.();
      this.#forgetting.delete(r.fd);
    } else if (r.op === "failed") {
      // poll itself failed (it cannot, short of a bug): wake everyone so reads see an error.
      for (const fd of [...this.#waiters.keys()]) this.#resolve(fd, ~0, POLLERR);
    } else {
      this.#markExited();
    }
  }

  #resolve(fd: number, which: number, revents: number): void {
    const w = this.#waiters.get(fd);
    if (!w) return;
    if (which & POLLIN && w.in) {
      const r = w.in;
      w.in = undefined;
      r(revents);
    }
    if (which & POLLOUT && w.out) {
      const r = w.out;
      w.out = undefined;
      r(revents);
    }
  }
}

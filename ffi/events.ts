/**
 * epoll, eventfd and timerfd for threads that wait synchronously (iothreads in Workers). Waiting
 * here blocks the calling isolate: never call wait() with a timeout on the main thread.
 */
import { helper } from "./helper.ts";
import { check, checkBig, close, Errno } from "./libc.ts";
import { EPOLL_EVENT } from "./kvm_structs.ts";

export const EPOLL_CTL_ADD = 1;
export const EPOLL_CTL_DEL = 2;
export const EPOLL_CTL_MOD = 3;
export const EPOLLIN = 0x001;
export const EPOLLOUT = 0x004;
export const EPOLLERR = 0x008;
export const EPOLLHUP = 0x010;
export const EPOLLET = 0x80000000;
export const EFD_SEMAPHORE = 1;
export const EFD_NONBLOCK = 0o4000;
export const EFD_CLOEXEC = 0o2000000;
export const TFD_NONBLOCK = 0o4000;
export const TFD_CLOEXEC = 0o2000000;
export const TFD_TIMER_ABSTIME = 1;
export const CLOCK_REALTIME = 0;
export const CLOCK_MONOTONIC = 1;

export interface ReadyEvent {
  readonly events: number;
  readonly data: bigint;
}

export class Epoll {
  readonly #buf: Uint8Array<ArrayBuffer>;
  readonly #dv: DataView<ArrayBuffer>;

  private constructor(readonly fd: number, readonly maxEvents: number) {
    this.#buf = new Uint8Array(maxEvents * EPOLL_EVENT.size);
    this.#dv = new DataView(this.#buf.buffer);
  }

  static create(maxEvents = 64): Epoll {
    return new Epoll(check(helper().sv_epoll_create(), "epoll_create1"), maxEvents);
  }

  /** Watches `fd` for `events`; `data` comes back with each ready event. */
  add(fd: number, events: number, data: number | bigint): void {
    check(
      helper().sv_epoll_ctl(this.fd, EPOLL_CTL_ADD, fd, events, BigInt(data)),
      `epoll_ctl(ADD ${fd})`,
    );
  }

  modify(fd: number, events: number, data: number | bigint): void {
    check(
      helper().sv_epoll_ctl(this.fd, EPOLL_CTL_MOD, fd, events, BigInt(data)),
      `epoll_ctl(MOD ${fd})`,
    );
  }

  remove(fd: number): void {
    check(helper().sv_epoll_ctl(this.fd, EPOLL_CTL_DEL, fd, 0, 0n), `epoll_ctl(DEL ${fd})`);
  }

  /** Blocks up to `timeoutMs` (-1: forever). Ready events; none on timeout or EINTR. */
  wait(timeoutMs: number): ReadyEvent[] {
    const n = helper().sv_epoll_wait(this.fd, this.#buf, this.maxEvents, timeoutMs);
    if (n === -Errno.EINTR) return [];
    check(n, "epoll_wait");
    const out: ReadyEvent[] = [];
    const { events, data } = EPOLL_EVENT.fields;
    for (let i = 0; i < n; i++) {
      const base = i * EPOLL_EVENT.size;
      out.push({
        events: this.#dv.getUint32(base + events.offset, true),
        data: this.#dv.getBigUint64(base + data.offset, true),
      });
    }
    return out;
  }

  close(): void {
    close(this.fd);
  }
}

export function eventfd(initval = 0, flags = EFD_CLOEXEC | EFD_NONBLOCK): number {
  return check(helper().sv_eventfd(initval, flags), "eventfd");
}

/** Adds `value` to the counter (wakes a waiter). */
export function eventfdWrite(fd: number, value: number | bigint = 1): void {
  check(helper().sv_eventfd_write(fd, BigInt(value)), `eventfd write(${fd})`);
}

/** Reads and resets the counter; null when it was zero on a non-blocking eventfd. */
export function eventfdRead(fd: number): bigint | null {
  const rc = BigInt(helper().sv_eventfd_read(fd));
  if (rc === BigInt(-Errno.EAGAIN)) return null;
  return checkBig(rc, `eventfd read(${fd})`);
}

export function timerfdCreate(clock = CLOCK_MONOTONIC, flags = TFD_CLOEXEC | TFD_NONBLOCK): number {
  return check(helper().sv_timerfd_create(clock, flags), "timerfd_create");
}

/** Arms the timer: first expiry after `initialNs`, then every `intervalNs`; 0/0 disarms. */
export function timerfdSet(
  fd: number,
  initialNs: number | bigint,
  intervalNs: number | bigint = 0,
  flags = 0,
): void {
  check(
    helper().sv_timerfd_settime(fd, flags, BigInt(initialNs), BigInt(intervalNs)),
    `timerfd_settime(${fd})`,
  );
}

/** Expirations since the last read (a timerfd reads like an eventfd); null when none. */
export function timerfdRead(fd: number): bigint | null {
  return eventfdRead(fd);
}

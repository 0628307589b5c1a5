/**
 * Hands a vCPU's MMIO exit to a device Worker (an iothread) that sleeps in epoll_wait, where it
 * cannot see Atomics.notify: the vCPU writes the request into a small SharedArrayBuffer, then
 * writes the device Worker's wake eventfd, then blocks in Atomics.wait until the answer is there.
 * The device Worker, woken by the eventfd, scans its channels (one per vCPU) for requests.
 *
 * Only configuration-path registers come this way (status, features, queue setup, config space):
 * queue notifications go through KVM_IOEVENTFD and never exit to TypeScript.
 */
import { eventfdWrite } from "../../ffi/events.ts";

const enum State {
  Idle = 0,
  Request = 1,
  Done = 2,
  Closed = 3,
}

const STATE = 0;
const IS_WRITE = 1;
const SIZE = 2;
const ADDR_LO = 3;
const ADDR_HI = 4;
const DATA = 24; // byte offset of the 8 data bytes, after the five words above
const BYTES = 32;

export function createDeviceChannelBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(BYTES);
}

/** One device Worker as a vCPU sees it: its wake eventfd and this vCPU's channel to it. */
export interface DeviceLink {
  readonly wakeFd: number;
  readonly channel: SharedArrayBuffer;
}

/** A guest-physical MMIO window [base, base + length) served by `links[link]`. */
export interface DeviceWindow {
  readonly base: number;
  readonly length: number;
  readonly link: number;
}

/** What a vCPU Worker needs to send MMIO exits to device Workers. */
export interface DeviceMmioRoutes {
  readonly links: readonly DeviceLink[];
  readonly windows: readonly DeviceWindow[];
}

/** The vCPU side: synchronous, blocks until the device Worker answers. */
export class DeviceChannelClient {
  readonly #words: Int32Array;
  readonly #data: Uint8Array;

  constructor(sab: SharedArrayBuffer, readonly wakeFd: number) {
    this.#words = new Int32Array(sab, 0, DATA / 4);
    this.#data = new Uint8Array(sab, DATA, 8);
  }

  /**
   * One MMIO access at guest-physical `addr`; `data` is read from (writes) or filled (reads).
   * Returns false when the device Worker closed the channel (the VM is going down).
   */
  call(isWrite: boolean, addr: number, data: Uint8Array): boolean {
    const w = this.#words;
    if (Atomics.load(w, STATE) === State.Closed) return false;
    w[IS_WRITE] = isWrite ? 1 : 0;
    w[SIZE] = Math.min(data.length, 8);
    w[ADDR_LO] = addr % 0x1_0000_0000;
    w[ADDR_HI] = Math.floor(addr / 0x1_0000_0000);
    this.#data.set(data.subarray(0, 8));
    Atomics.store(w, STATE, State.Request);
    // After the store: the Worker that wakes up finds the request.
    try {
      eventfdWrite(this.wakeFd);
    } catch {
      return false; // the eventfd is gone: the VM is being torn down
    }
    for (;;) {
      const s = Atomics.load(w, STATE);
      if (s === State.Done) break;
      if (s === State.Closed) return false;
      Atomics.wait(w, STATE, s);
    }
    data.set(this.#data.subarray(0, data.length));
    Atomics.compareExchange(w, STATE, State.Done, State.Idle);
    return true;
  }
}

/** One request as the device Worker sees it. */
export interface DeviceRequest {
  readonly isWrite: boolean;
  readonly addr: number;
  /** Bytes the guest wrote, or to be filled for a read. */
  readonly data: Uint8Array;
}

/** The device Worker side: answers whatever request is waiting, synchronously. */
export class DeviceChannelServer {
  readonly #words: Int32Array;
  readonly #data: Uint8Array;

  constructor(sab: SharedArrayBuffer) {
    this.#words = new Int32Array(sab, 0, DATA / 4);
    this.#data = new Uint8Array(sab, DATA, 8);
  }

  /** Serves the pending request, if any; true when one was served. `handle` must not throw. */
  serve(handle: (req: DeviceRequest) => void): boolean {
    const w = this.#words;
    if (Atomics.load(w, STATE) !== State.Request) return false;
    const size = Math.min(Math.max(w[SIZE], 0), 8);
    const req: DeviceRequest = {
      isWrite: w[IS_WRITE] === 1,
      addr: (w[ADDR_HI] >>> 0) * 0x1_0000_0000 + (w[ADDR_LO] >>> 0),
      data: this.#data.subarray(0, size),
    };
    try {
      handle(req);
    } catch {
      if (!req.isWrite) req.data.fill(0xff);
    }
    // The main thread may have closed the channel meanwhile: Closed must stay.
    Atomics.compareExchange(w, STATE, State.Request, State.Done);
    Atomics.notify(w, STATE);
    return true;
  }

  /** Refuses further requests and releases a vCPU waiting for an answer. */
  close(): void {
    Atomics.store(this.#words, STATE, State.Closed);
    Atomics.notify(this.#words, STATE);
  }
}

/** Closes a channel from any thread (the main thread, when a device Worker died). */
export function closeDeviceChannel(sab: SharedArrayBuffer): void {
  new DeviceChannelServer(sab).close();
}

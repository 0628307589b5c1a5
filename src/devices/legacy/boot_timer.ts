/**
 * Boot-time markers a guest writes so the VMM can log how long booting took.
 *
 * - StratoVirt's I/O port 0x3ff (its `boot_time` feature): byte 1 = the kernel starts to boot,
 *   byte 2 = boot complete (our guests' init writes 2 before starting userspace work).
 * - Firecracker's boot timer: a one-byte MMIO device; writing 123 at offset 0 marks boot complete.
 *
 * Each marker is logged with the time since the VMM process started and kept in `events` for
 * benchmarks. The device holds no state a vCPU would wait on, so the vCPU worker can own it (the
 * architecture keeps such exits out of hand-offs). In a Worker `performance.timeOrigin` is the
 * worker's start, so pass the main thread's `performance.timeOrigin` as `originMs`.
 */
import type { BusDevice } from "../bus.ts";

export const BOOT_TIMER_PORT = 0x3ff;
export const BOOT_TIMER_PORT_SIZE = 1;
/** Firecracker's boot timer device is one MMIO page; only offset 0 means something. */
export const BOOT_TIMER_MMIO_SIZE = 0x1000;

export const BOOT_START_VALUE = 1;
export const BOOT_COMPLETE_VALUE = 2;
export const FIRECRACKER_BOOT_COMPLETE_VALUE = 123;

/** Events kept (and logged); later markers are ignored. */
const MAX_EVENTS = 64;

export type BootEventKind = "boot-start" | "boot-complete";

export interface BootEvent {
  kind: BootEventKind;
  /** Which marker the guest used. */
  source: "pio" | "mmio";
  /** Milliseconds since the VMM process started. */
  sinceStartMs: number;
}

export interface BootTimerOptions {
  /** Receives one line per event (the machine sends it to its log or stderr). */
  log?: (message: string) => void;
  /** Epoch milliseconds the VMM process started: the main thread's `performance.timeOrigin`. */
  originMs?: number;
  /** Clock in epoch milliseconds (tests inject one). */
  now?: () => number;
  /** Also called for every event (e.g. to post it to the main thread). */
  onEvent?: (event: BootEvent) => void;
}

export class BootTimer {
  readonly events: BootEvent[] = [];
  #log: (message: string) => void;
  #originMs: number;
  #now: () => number;
  #onEvent: (event: BootEvent) => void;

  /** The device for I/O port 0x3ff. */
  readonly pio: BusDevice;
  /** The device for Firecracker's boot timer MMIO range. */
  readonly mmio: BusDevice;

  constructor(options: BootTimerOptions = {}) {
    this.#log = options.log ?? (() => {});
    this.#originMs = options.originMs ?? performance.timeOrigin;
    this.#now = options.now ?? (() => performance.timeOrigin + performance.now());
    this.#onEvent = options.onEvent ?? (() => {});
    const readNothing = (_offset: number, data: Uint8Array) => data.fill(0);
    this.pio = {
      read: readNothing,
      write: (offset, data) => {
        if (offset !== 0 || data.length === 0) return;
        if (data[0] === BOOT_START_VALUE) this.#record("boot-start", "pio");
        else if (data[0] === BOOT_COMPLETE_VALUE) this.#record("boot-complete", "pio");
      },
    };
    this.mmio = {
      read: readNothing,
      write: (offset, data) => {
        if (offset === 0 && data.length > 0 && data[0] === FIRECRACKER_BOOT_COMPLETE_VALUE) {
          this.#record("boot-complete", "mmio");
        }
      },
    };
  }

  /** The first event of a kind, if the guest has signalled it. */
  first(kind: BootEventKind): BootEvent | undefined {
    return this.events.find((e) => e.kind === kind);
  }

  #record(kind: BootEventKind, source: "pio" | "mmio"): void {
    // A guest writing markers in a loop must not grow memory or flood the log.
    if (this.events.length >= MAX_EVENTS) return;
    const sinceStartMs = this.#now() - this.#originMs;
    const event: BootEvent = { kind, source, sinceStartMs };
    this.events.push(event);
    const what = kind === "boot-start" ? "Kernel starts to boot" : "Kernel boot complete";
    this.#log(`${what}: ${sinceStartMs.toFixed(1)} ms since the VMM started (${source} marker)`);
    this.#onEvent(event);
  }
}

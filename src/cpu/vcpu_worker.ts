/**
 * One vCPU's thread: a synchronous KVM_RUN loop. Exits that need no shared device state are
 * answered here (port 0x80, unassigned ports, the boot timer); PIO/MMIO for device models goes to
 * the main thread over the ExitChannel, MMIO in a virtio register window to the device Worker that
 * owns it over a DeviceChannel. Exits that end the VM (triple fault, system events, KVM
 * errors) are posted to the main thread, which stops every vCPU.
 */
/// <reference lib="deno.worker" />
import { helper } from "../../ffi/helper.ts";
import { Errno } from "../../ffi/libc.ts";
import { gettid } from "../../ffi/libc.ts";
import { exitReasonName, KVM_EXIT, KVM_FLAGS, Vcpu } from "../../ffi/kvm.ts";
import { BootTimer } from "../devices/legacy/boot_timer.ts";
import { guestMemoryOf } from "../memory/guest_ram.ts";
import type { GuestMemory } from "../memory/guest_memory.ts";
import { enabled, initLogger, log } from "../util/logger.ts";
import { DeviceChannelClient, type DeviceMmioRoutes } from "./device_channel.ts";
import { ExitChannelClient, ExitKind } from "./exit_channel.ts";
import {
  COMMAND,
  STATE,
  TID,
  VcpuCommand,
  type VcpuExitKind,
  type VcpuMessage,
  VcpuState,
  type VcpuWorkerInit,
} from "./vcpu_control.ts";

/** The start message: the common fields plus, when the VM has device threads, their routes. */
type VcpuInit = VcpuWorkerInit & { readonly deviceMmio?: DeviceMmioRoutes };

/** A register window served by a device Worker. */
interface DeviceRoute {
  readonly base: number;
  readonly end: number;
  readonly client: DeviceChannelClient;
}

const POST_CODE_PORT = 0x80;
const BOOT_TIMER_PORT = 0x3ff;

function hex(n: number | bigint): string {
  return "0x" + n.toString(16);
}

function post(msg: VcpuMessage): void {
  self.postMessage(msg);
}

const INTERNAL_SUBERRORS: Record<number, string> = {
  [KVM_FLAGS.KVM_INTERNAL_ERROR_EMULATION]: "emulation failure",
  [KVM_FLAGS.KVM_INTERNAL_ERROR_SIMUL_EX]: "simultaneous exceptions",
  [KVM_FLAGS.KVM_INTERNAL_ERROR_DELIVERY_EV]: "event delivery failure",
  [KVM_FLAGS.KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON]: "unexpected exit reason",
};

/** Emulation-failure data: flags, then (when flags bit 0 is set) insn_size and 15 bytes. */
const EMULATION_FLAG_INSTRUCTION_BYTES = 1n;

function instructionBytes(data: BigUint64Array): string | null {
  if (data.length < 3 || (data[0] & EMULATION_FLAG_INSTRUCTION_BYTES) === 0n) return null;
  const bytes = new Uint8Array(data.buffer, data.byteOffset + 8, 16);
  const size = Math.min(bytes[0], 15);
  if (size === 0) return null;
  return [...bytes.subarray(1, 1 + size)].map((b) => b.toString(16).padStart(2, "0")).join(" ");
}

class VcpuThread {
  readonly #vcpu: Vcpu;
  readonly #control: Int32Array;
  readonly #channel: ExitChannelClient;
  readonly #pio: readonly (readonly [number, number])[];
  readonly #bootTimer: BootTimer | null;
  readonly #deviceRoutes: readonly DeviceRoute[];
  readonly #trace = enabled("trace");
  /** Epoch ms the VMM process started (for the first-KVM_RUN log line benchmarks read). */
  readonly #originMs: number;
  /** Kept for the life of the Worker: this isolate's one view of guest RAM. */
  readonly memory: GuestMemory;

  constructor(init: VcpuInit) {
    this.#vcpu = Vcpu.attach(init.handle);
    this.#control = new Int32Array(init.control);
    this.#channel = new ExitChannelClient(init.channel);
    this.#pio = init.pioRanges;
    const links = (init.deviceMmio?.links ?? []).map((l) =>
      new DeviceChannelClient(l.channel, l.wakeFd)
    );
    this.#deviceRoutes = (init.deviceMmio?.windows ?? []).map((w) => ({
      base: w.base,
      end: w.base + w.length,
      client: links[w.link],
    }));
    this.memory = guestMemoryOf(init.regions);
    this.#originMs = init.originMs;
    this.#bootTimer = init.bootTimer
      ? new BootTimer({
        originMs: init.originMs,
        log: (m) => log.info(m),
        onEvent: (e) => post({ type: "boot-event", kind: e.kind, sinceStartMs: e.sinceStartMs }),
      })
      : null;
  }

  get id(): number {
    return this.#vcpu.id;
  }

  #setState(state: VcpuState): void {
    if (Atomics.load(this.#control, STATE) === state) return;
    Atomics.store(this.#control, STATE, state);
    Atomics.notify(this.#control, STATE);
  }

  /** Runs until told to stop or until the guest ends the VM. */
  run(): void {
    const ctl = this.#control;
    Atomics.store(ctl, TID, gettid());
    let firstRun = true;
    for (;;) {
      const cmd = Atomics.load(ctl, COMMAND);
      if (cmd === VcpuCommand.Stop) break;
      if (cmd === VcpuCommand.Pause) {
        this.#setState(VcpuState.Paused);
        Atomics.wait(ctl, COMMAND, VcpuCommand.Pause);
        continue;
      }
      this.#setState(VcpuState.Running);
      if (firstRun) {
        // scripts/bench/boot reads this line: VMM start -> the guest's first instruction.
        firstRun = false;
        const sinceStart = performance.timeOrigin + performance.now() - this.#originMs;
        log.info(
          `vCPU ${this.id}: first KVM_RUN, ${sinceStart.toFixed(1)} ms since the VMM started`,
        );
      }
      const result = this.#vcpu.run();
      if (result < 0) {
        if (result === -Errno.EINTR) {
          this.#vcpu.kvmRun.immediate_exit = 0;
          continue;
        }
        // An AP waiting for SIPI returns EAGAIN when woken (INIT/SIPI arrived): run it again.
        if (result === -Errno.EAGAIN) continue;
        this.#end("error", `vCPU ${this.id}: KVM_RUN failed: errno ${-result}`);
        break;
      }
      if (!this.#handleExit(result)) break;
    }
    this.#setState(VcpuState.Stopped);
    post({ type: "stopped", vcpu: this.id });
  }

  #end(kind: VcpuExitKind, message: string): void {
    post({ type: "vm-exit", vcpu: this.id, kind, message });
  }

  #rip(): string {
    try {
      return hex(this.#vcpu.getRegs().rip);
    } catch {
      return "unknown";
    }
  }

  /** Handles one exit; false when this vCPU must not run again. */
  #handleExit(reason: number): boolean {
    const run = this.#vcpu.kvmRun;
    switch (reason) {
      case KVM_EXIT.IO:
        return this.#pioExit();
      case KVM_EXIT.MMIO: {
        const mmio = run.mmio;
        const data = mmio.data.subarray(0, Math.min(mmio.len, 8));
        const addr = Number(mmio.phys_addr);
        for (const r of this.#deviceRoutes) {
          if (addr >= r.base && addr < r.end) return r.client.call(mmio.is_write !== 0, addr, data);
        }
        const kind = mmio.is_write ? ExitKind.MmioWrite : ExitKind.MmioRead;
        return this.#channel.call(kind, Number(mmio.phys_addr), data);
      }
      case KVM_EXIT.HLT:
        // Only without an in-kernel LAPIC; the guest idles until an interrupt.
        return true;
      case KVM_EXIT.INTR:
        return true;
      case KVM_EXIT.SHUTDOWN:
        log.info(`vCPU ${this.id} received KVM_EXIT_SHUTDOWN (triple fault) at RIP ${this.#rip()}`);
        this.#end(
          "guest-shutdown",
          `vCPU ${this.id}: guest shutdown (KVM_EXIT_SHUTDOWN: triple fault at RIP ${this.#rip()})`,
        );
        return false;
      case KVM_EXIT.SYSTEM_EVENT: {
        const type = run.system_event.type;
        if (type === KVM_FLAGS.KVM_SYSTEM_EVENT_RESET) {
          this.#end("guest-reset", `vCPU ${this.id}: guest reset (KVM_EXIT_SYSTEM_EVENT)`);
        } else if (type === KVM_FLAGS.KVM_SYSTEM_EVENT_SHUTDOWN) {
          this.#end("guest-shutdown", `vCPU ${this.id}: guest shutdown (KVM_EXIT_SYSTEM_EVENT)`);
        } else {
          this.#end(
            "guest-crash",
            `vCPU ${this.id}: KVM_EXIT_SYSTEM_EVENT type ${type} (crash) at RIP ${this.#rip()}`,
          );
        }
        return false;
      }
      case KVM_EXIT.INTERNAL_ERROR: {
        const internal = run.internal;
        const sub = internal.suberror;
        const n = Math.min(internal.ndata, 16);
        const data = internal.data.subarray(0, n);
        const insn = sub === KVM_FLAGS.KVM_INTERNAL_ERROR_EMULATION ? instructionBytes(data) : null;
        this.#end(
          "error",
          `vCPU ${this.id}: KVM_EXIT_INTERNAL_ERROR (suberror ${sub}: ` +
            `${INTERNAL_SUBERRORS[sub] ?? "unknown"}) at RIP ${this.#rip()}` +
            (insn ? `, instruction bytes: ${insn}` : n > 0 ? `, data: ${[...data].map(hex)}` : ""),
        );
        return false;
      }
      case KVM_EXIT.FAIL_ENTRY:
        this.#end(
          "error",
          `vCPU ${this.id}: KVM_EXIT_FAIL_ENTRY (hardware entry failure reason ` +
            `${hex(run.fail_entry.hardware_entry_failure_reason)}) at RIP ${this.#rip()}`,
        );
        return false;
      default:
        this.#end(
          "error",
          `vCPU ${this.id}: unhandled ${exitReasonName(reason)} at RIP ${this.#rip()}`,
        );
        return false;
    }
  }

  #assigned(port: number): boolean {
    for (const [base, length] of this.#pio) if (port >= base && port < base + length) return true;
    return false;
  }

  #pioExit(): boolean {
    const io = this.#vcpu.kvmRun.io;
    const port = io.port;
    const size = io.size;
    const isIn = io.direction === KVM_FLAGS.KVM_EXIT_IO_IN;
    const data = this.#vcpu.ioData();
    if (this.#trace) {
      log.trace(`vCPU ${this.id}: pio ${isIn ? "in" : "out"} ${hex(port)} size ${size}`);
    }
    if (port === POST_CODE_PORT) return true;
    if (this.#bootTimer && port === BOOT_TIMER_PORT) {
      // String I/O (rep outsb) hands several elements at once: each is one access.
      for (let at = 0; at < data.length; at += size) {
        const element = data.subarray(at, at + size);
        if (isIn) this.#bootTimer.pio.read(0, element);
        else this.#bootTimer.pio.write(0, element);
      }
      return true;
    }
    if (!this.#assigned(port)) {
      if (isIn) data.fill(0xff);
      return true;
    }
    const kind = isIn ? ExitKind.PioIn : ExitKind.PioOut;
    for (let at = 0; at < data.length; at += size) {
      if (!this.#channel.call(kind, port, data.subarray(at, at + size))) return false;
    }
    return true;
  }
}

// This Worker is started before the VM is set up (VcpuWorkerPool): build the helper's FFI
// bindings now, while the main thread works, rather than after the start message. A failure
// here shows again, with its reason, when the start message opens the vCPU.
try {
  helper();
} catch { /* reported by the start message's handler */ }

self.onmessage = (event: MessageEvent<VcpuInit>) => {
  const init = event.data;
  self.onmessage = null;
  initLogger(init.log, gettid());
  let thread: VcpuThread;
  try {
    thread = new VcpuThread(init);
  } catch (e) {
    Atomics.store(new Int32Array(init.control), STATE, VcpuState.Stopped);
    post({
      type: "vm-exit",
      vcpu: init.handle.id,
      kind: "error",
      message: `vCPU ${init.handle.id}: cannot start: ${(e as Error).message}`,
    });
    return;
  }
  thread.run();
};

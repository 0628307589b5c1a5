/**
 * The microvm machine on x86_64: guest RAM, an in-kernel irqchip and PIT, the legacy devices
 * StratoVirt's microvm has (8250 UART at 0x3f8 / IRQ 4, i8042 for the reset line, CMOS RTC, the
 * boot-time port 0x3ff), a directly booted Linux kernel, and one Worker per vCPU.
 *
 * The VM ends when the guest resets or powers off (i8042 reset, triple fault, KVM system event:
 * status 0), when KVM cannot go on (internal error, failed entry: status 1, with a message naming
 * the exit, the vCPU and its RIP), or on SIGTERM / SIGINT (status 1, as StratoVirt).
 * A guest reset is a poweroff here (no firmware to re-run: StratoVirt's microvm does the same);
 * with -no-shutdown the VM pauses instead. Lifecycle events (STOP, RESUME, SHUTDOWN with its
 * reason) go to `hooks.onEvent` for QMP.
 */
import { installKickHandler } from "../../ffi/kick.ts";
import { readBootFiles } from "../boot/boot_files.ts";
import { MEM_BELOW_4G_END } from "../boot/layout.ts";
import { loadLinux } from "../boot/loader.ts";
import { createChardev } from "../chardev/create.ts";
import type { Chardev } from "../chardev/chardev.ts";
import { restoreTerminal } from "../chardev/terminal.ts";
import { type ExitHandler, ExitKind } from "../cpu/exit_channel.ts";
import type { VcpuMessage } from "../cpu/vcpu_control.ts";
import { cpuidEntries, setupVcpu } from "../cpu/vcpu_setup.ts";
import { type Bus, mmioBus, pioBus } from "../devices/bus.ts";
import { I8042, I8042_PORT_BASE, I8042_PORT_SIZE } from "../devices/legacy/i8042.ts";
import { CmosRtc, RTC_PORT_BASE, RTC_PORT_SIZE } from "../devices/legacy/rtc.ts";
import {
  Serial8250,
  SERIAL_IRQ,
  SERIAL_PORT_BASE,
  SERIAL_PORT_SIZE,
} from "../devices/legacy/serial.ts";
import { log, loggerSettings } from "../util/logger.ts";
import { Lifecycle, LifecycleError } from "./lifecycle.ts";
import type { GuestMemory } from "../memory/guest_memory.ts";
import { type DiskSpec, type MachineSpec, topologyOf, validateSpec } from "./spec.ts";
import { VcpuThreads, VcpuWorkerPool } from "./vcpu_threads.ts";
import { DeviceThreads, diskCmdlineArgs } from "./iothreads.ts";
import { createX86Vm, hostIsPvm, type X86Vm } from "./vm.ts";

/** Exit status of a VM the guest ended (reset, poweroff, triple fault). */
export const EXIT_GUEST_ENDED = 0;
/** Exit status of a VM that failed, or was killed by a signal (StratoVirt's VM_EXIT_GENE_ERR). */
export const EXIT_ERROR = 1;

/** How long stopping the vCPUs and flushing the console may take before we exit anyway. */
const STOP_TIMEOUT_MS = 1000;

/** What controls a running microvm (QMP's stop / cont / quit go through this). */
export interface MicrovmHandle {
  readonly lifecycle: Lifecycle;
  /** The main thread's view of guest RAM. */
  readonly memory: GuestMemory;
  /** Takes every vCPU out of KVM_RUN and holds it; the lifecycle moves to "paused". */
  pause(): Promise<void>;
  /** Lets paused vCPUs run again; the lifecycle moves to "running". */
  resume(): void;
  /** Ends the VM; runMicrovm resolves with `status`. No event: the caller has announced it. */
  shutdown(status: number, why: string): void;
  /**
   * Ends the VM the way a guest poweroff does: SHUTDOWN with `cause`, then status 0 — or, with
   * -no-shutdown, the vCPUs pause (STOP) and the VM stays paused until quit / a signal.
   */
  powerOff(cause: ShutdownCause, guest: boolean, why: string): void;
  /** The serial port's host backend (query-chardev), or null without -serial. */
  readonly serial: Chardev | null;
  /** Each vCPU's host thread id, in vCPU order (0 until its Worker has started). */
  vcpuThreadIds(): number[];
  /** Each `-object iothread`'s host thread id, by iothread id. */
  iothreadIds(): Map<string, number>;
  /**
   * Plugs `disk` into virtio-blk slot `slot` (null: empties it) while the guest runs; resolves
   * once the old image is flushed and closed and the guest was told (QMP device_add / _del).
   */
  replaceDisk(slot: number, disk: DiskSpec | null): Promise<void>;
}

/** Why the VM shut down (QMP SHUTDOWN's `reason`, QEMU's ShutdownCause names). */
export type ShutdownCause =
  | "guest-shutdown"
  | "guest-reset"
  | "guest-panic"
  | "host-signal"
  | "host-qmp-quit"
  | "host-qmp-system-reset";

/** Lifecycle events, in the order they happen, for QMP to forward. */
export type MachineEvent =
  | { readonly name: "STOP" }
  | { readonly name: "RESUME" }
  | { readonly name: "SHUTDOWN"; readonly guest: boolean; readonly reason: ShutdownCause };

export interface MicrovmHooks {
  /** Called with every boot-timer marker (kind "boot-start" / "boot-complete"). */
  onBootEvent?: (kind: string, sinceStartMs: number) => void;
  /** Called once the vCPU threads exist (running, or held paused with `startPaused`). */
  onRunning?: (vm: MicrovmHandle) => void;
  /** Called for every lifecycle event (STOP, RESUME, SHUTDOWN with its reason). */
  onEvent?: (event: MachineEvent) => void;
  /** -S: create the vCPUs but hold them before their first KVM_RUN until resume() (QMP cont). */
  startPaused?: boolean;
  /** -no-shutdown: a guest poweroff / reset pauses the VM instead of ending the process. */
  noShutdown?: boolean;
}

function stderr(message: string): void {
  try {
    Deno.stderr.writeSync(new TextEncoder().encode(message + "\n"));
  } catch {
    // stderr closed: the exit status still tells.
  }
}

interface LegacyDevices {
  readonly pio: Bus;
  readonly mmio: Bus;
  readonly chardev: Chardev | null;
}

function buildDevices(
  spec: MachineSpec,
  x86: X86Vm,
  requestEnd: (status: number, why: string) => void,
): LegacyDevices {
  const fault = (range: { name: string }, op: string, e: unknown) =>
    log.error(`device ${range.name}: ${op} failed: ${(e as Error).message}`);
  const pio = pioBus(fault);
  const mmio = mmioBus(fault);

  let chardev: Chardev | null = null;
  if (spec.serial) {
    const s = spec.serial;
    chardev = createChardev({
      backend: s.backend,
      id: s.id ?? "serial0",
      path: s.path,
      server: s.server,
      nowait: s.nowait,
    });
    const port = chardev;
    const serial = new Serial8250({
      setIrq: (level) => x86.vm.irqLine(SERIAL_IRQ, level ? 1 : 0),
      output: (bytes) => port.write(bytes),
    });
    port.onInput((bytes) => serial.receive(bytes));
    pio.insert(SERIAL_PORT_BASE, SERIAL_PORT_SIZE, serial, "serial");
  }
  const i8042 = new I8042({
    onReset: () => requestEnd(EXIT_GUEST_ENDED, "guest reset through the i8042 reset line"),
  });
  pio.insert(I8042_PORT_BASE, I8042_PORT_SIZE, i8042, "i8042");
  const rtc = new CmosRtc({ memSize: spec.memory.size, gapStart: MEM_BELOW_4G_END });
  pio.insert(RTC_PORT_BASE, RTC_PORT_SIZE, rtc, "rtc");
  return { pio, mmio, chardev };
}

function exitHandler(d: LegacyDevices): ExitHandler {
  return (req) => {
    switch (req.kind) {
      case ExitKind.PioIn:
        if (!d.pio.read(req.addr, req.data)) req.data.fill(0xff);
        break;
      case ExitKind.PioOut:
        d.pio.write(req.addr, req.data);
        break;
      case ExitKind.MmioRead:
        if (!d.mmio.read(req.addr, req.data)) req.data.fill(0);
        break;
      case ExitKind.MmioWrite:
        d.mmio.write(req.addr, req.data);
        break;
    }
  };
}

async function withTimeout(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    p.catch(() => {}),
    new Promise<void>((resolve) => timer = setTimeout(resolve, ms)),
  ]);
  clearTimeout(timer);
}

/**
 * Builds and runs the microvm described by `spec`; resolves with the process exit status once the
 * VM has ended and its vCPUs are stopped. Setup failures (unreadable kernel, bad sizes, KVM
 * refusing something) throw an Error whose message names what is wrong.
 *
 * The caller must end the process with `Deno.exit(status)`: a pending stdin read, or a vCPU that
 * did not leave KVM_RUN, would otherwise keep it alive.
 */
export async function runMicrovm(spec: MachineSpec, hooks: MicrovmHooks = {}): Promise<number> {
  validateSpec(spec);
  const vcpuWorkers = new VcpuWorkerPool();
  try {
    return await buildAndRun(spec, hooks, vcpuWorkers);
  } finally {
    vcpuWorkers.dispose(); // the Workers no vCPU took, when the set-up failed
  }
}

async function buildAndRun(
  spec: MachineSpec,
  hooks: MicrovmHooks,
  vcpuWorkers: VcpuWorkerPool,
): Promise<number> {
  const topology = topologyOf(spec);
  const pvm = spec.pvm ?? hostIsPvm();
  installKickHandler();
  // Read on Deno's I/O threads while this thread creates the VM and maps its RAM.
  const reading = readBootFiles(spec.kernel, spec.initrd);
  reading.catch(() => {}); // awaited below; keeps an earlier set-up error from leaving it unhandled
  const x86 = createX86Vm({
    memSize: spec.memory.size,
    backing: { path: spec.memory.path, share: spec.memory.share, prealloc: spec.memory.prealloc },
    cpus: spec.cpus,
    kvmPath: spec.kvmPath,
  });
  const files = await reading;
  // Now, so the vCPU Workers' start-up overlaps the rest of the set-up; not earlier, so their
  // isolates do not add to the moment the kernel file is held twice (read buffer and its copy).
  vcpuWorkers.start(spec.cpus);
  const boot = loadLinux(x86.memory, {
    kernel: files.kernel,
    kernelName: files.kernelName,
    initrd: files.initrd,
    initrdName: files.initrdName,
    // Each disk is announced to the guest as `virtio_mmio.device=512@0xADDR:IRQ`.
    cmdline: [spec.cmdline, ...diskCmdlineArgs(spec)].join(" ").trim(),
    cpus: spec.cpus,
  });
  log.info(
    `kernel ${spec.kernel} (${boot.format}, ${boot.mode}) entry 0x${boot.regs.rip.toString(16)}`,
  );
  // The images are in guest RAM now: free the host copies (a vmlinux is ~17 MiB) at once rather
  // than at some later major GC. Detaching an ArrayBuffer releases its memory.
  for (const image of [files.kernel, files.initrd]) {
    if (image?.buffer instanceof ArrayBuffer) image.buffer.transfer(0);
  }
  const supportedCpuid = cpuidEntries(x86.kvm.getSupportedCpuid());
  for (const vcpu of x86.vcpus) setupVcpu(vcpu, { supportedCpuid, topology, pvm, boot });

  let resolveEnd!: (status: number) => void;
  const ended = new Promise<number>((resolve) => resolveEnd = resolve);
  let ending = false;
  const requestEnd = (status: number, why: string) => {
    if (ending) return;
    ending = true;
    if (status === EXIT_GUEST_ENDED) log.info(`VM ends: ${why}`);
    else log.error(`VM ends: ${why}`);
    resolveEnd(status);
  };
  const emit = (event: MachineEvent) => {
    if (!ending) hooks.onEvent?.(event);
  };
  /** Set once the VM powered off under -no-shutdown: it stays paused for good. */
  let poweredOff = false;
  // A microvm has no firmware to re-run, so a reset ends the VM as a poweroff does (StratoVirt).
  const powerOff = (cause: ShutdownCause, guest: boolean, why: string) => {
    if (ending || poweredOff) return;
    emit({ name: "SHUTDOWN", guest, reason: cause });
    if (!hooks.noShutdown) return requestEnd(EXIT_GUEST_ENDED, why);
    poweredOff = true;
    log.info(`${why}; -no-shutdown: the VM stays paused`);
    if (lifecycle.state === "running") {
      pause("-no-shutdown").catch((e) => log.error(`-no-shutdown: ${(e as Error).message}`));
    }
  };

  // Whatever ends the process from here on must leave the user's terminal usable: the handlers
  // are in place before the stdio backend can put the terminal in raw mode.
  globalThis.addEventListener("error", restoreTerminal);
  globalThis.addEventListener("unhandledrejection", restoreTerminal);
  const signals: [Deno.Signal, () => void][] = (["SIGTERM", "SIGINT"] as const).map((sig) => [
    sig,
    () => {
      restoreTerminal();
      stderr(`Received kill signal, signal number: ${sig === "SIGTERM" ? 15 : 2}`);
      emit({ name: "SHUTDOWN", guest: false, reason: "host-signal" });
      requestEnd(EXIT_ERROR, `received ${sig}`);
    },
  ]);
  for (const [sig, fn] of signals) Deno.addSignalListener(sig, fn);
  const devices = buildDevices(
    spec,
    x86,
    (_status, why) => powerOff("guest-reset", true, why),
  );
  const lifecycle = new Lifecycle();
  lifecycle.onChange((from, to, reason) => log.info(`VM state ${from} -> ${to} (${reason})`));

  const onMessage = (msg: VcpuMessage) => {
    if (msg.type === "boot-event") {
      hooks.onBootEvent?.(msg.kind, msg.sinceStartMs);
    } else if (msg.type === "vm-exit") {
      if (msg.kind === "error" || msg.kind === "guest-crash") {
        restoreTerminal();
        stderr(`stratovirt: ${msg.message}`);
        if (msg.kind === "guest-crash") {
          emit({ name: "SHUTDOWN", guest: true, reason: "guest-panic" });
        }
        requestEnd(EXIT_ERROR, msg.message);
      } else {
        powerOff(msg.kind, true, msg.message);
      }
    }
  };
  // Before any vCPU runs: the ioeventfds / irqfds must be in place and every image open.
  const deviceThreads = await DeviceThreads.start({
    vm: x86.vm,
    disks: spec.disks ?? [],
    hotplug: spec.hotplug,
    iothreads: spec.iothreads,
    regions: x86.ram.regions,
    cpus: spec.cpus,
    log: spec.log ?? loggerSettings(),
    onError: (thread, message) => {
      stderr(`stratovirt: ${thread}: ${message}`);
      requestEnd(EXIT_ERROR, `${thread}: ${message}`);
    },
  });
  const threads = new VcpuThreads(
    x86.vcpus,
    {
      regions: x86.ram.regions,
      pioRanges: devices.pio.ranges().map((r) => [r.base, r.length] as const),
      bootTimer: spec.bootTimer ?? true,
      originMs: performance.timeOrigin,
      log: spec.log ?? loggerSettings(),
    },
    exitHandler(devices),
    onMessage,
    (vcpu, message) => {
      stderr(`stratovirt: vCPU ${vcpu} thread failed: ${message}`);
      requestEnd(EXIT_ERROR, `vCPU ${vcpu} thread failed: ${message}`);
    },
    (vcpu) => deviceThreads.routesFor(vcpu),
    { pool: vcpuWorkers, startPaused: hooks.startPaused },
  );
  // -S: each vCPU got COMMAND = pause before its start message; this waits for it to settle.
  if (hooks.startPaused) void threads.pause(STOP_TIMEOUT_MS);
  lifecycle.transition(hooks.startPaused ? "paused" : "running", hooks.startPaused ? "-S" : "boot");
  const pause = async (reason: string) => {
    if (ending) throw new LifecycleError("VM is shutting down, cannot pause");
    if (lifecycle.state !== "running") lifecycle.transition("paused"); // throws, naming why
    if (!await threads.pause(STOP_TIMEOUT_MS)) throw new Error("vCPUs did not pause in time");
    lifecycle.transition("paused", reason);
    emit({ name: "STOP" });
  };
  hooks.onRunning?.({
    lifecycle,
    memory: x86.memory,
    pause: () => pause("pause requested"),
    resume: () => {
      if (ending) throw new LifecycleError("VM is shutting down, cannot run");
      if (poweredOff) {
        throw new LifecycleError(
          "the guest has powered off (-no-shutdown kept the VM): a microvm cannot restart it, " +
            "use quit",
        );
      }
      lifecycle.transition("running", "resume requested");
      threads.resume();
      emit({ name: "RESUME" });
    },
    shutdown: requestEnd,
    powerOff,
    serial: devices.chardev,
    vcpuThreadIds: () => threads.threadIds(),
    iothreadIds: () => deviceThreads.iothreadIds(),
    replaceDisk: (slot, disk) => deviceThreads.replaceDisk(slot, disk),
  });

  const status = await ended;
  lifecycle.transition("shutdown", "VM ended");
  if (!await threads.stop(STOP_TIMEOUT_MS)) {
    log.warn("some vCPUs did not leave KVM_RUN in time; exiting anyway");
  }
  threads.terminate();
  // After the vCPUs: no new requests; each device thread finishes the one in hand and closes.
  if (!await deviceThreads.stop(STOP_TIMEOUT_MS)) {
    log.warn("some device threads did not stop in time; exiting anyway");
  }
  for (const [sig, fn] of signals) Deno.removeSignalListener(sig, fn);
  globalThis.removeEventListener("error", restoreTerminal);
  globalThis.removeEventListener("unhandledrejection", restoreTerminal);
  if (devices.chardev) await withTimeout(devices.chardev.close(), STOP_TIMEOUT_MS);
  restoreTerminal();
  return status;
}

/** runMicrovm, then exit the process with its status; a setup error prints and exits 1. */
export async function runMicrovmAndExit(spec: MachineSpec, hooks?: MicrovmHooks): Promise<never> {
  let status = EXIT_ERROR;
  try {
    status = await runMicrovm(spec, hooks);
  } catch (e) {
    restoreTerminal();
    stderr(`stratovirt: ${(e as Error).message}`);
  }
  Deno.exit(status);
}

/**
 * The `accel=test` machine: a microvm without vCPUs or KVM. Guest RAM is plain host memory laid
 * out as the KVM microvm lays it out (or, with -mem-path, that file mapped as a KVM machine maps
 * it, so a client can share it with mem-share=on), the legacy devices sit on the PIO bus and
 * the virtio-mmio devices on the MMIO bus at their usual addresses, and a test client drives all
 * of it through the qtest protocol (protocol.ts) on the `-mod-test` socket, as a guest driver
 * would. Time is a virtual clock the client steps; interrupts are reported to the client.
 *
 * Block I/O runs on io_uring and completes asynchronously; with no event loop here, finished
 * requests are answered before and after each command. By default the machine waits for all
 * I/O in flight there (`settle`), so a QueueNotify's requests are answered, and their interrupt
 * reported, before its reply, as with a synchronous device. With STRATOVIRT_QTEST_IO=poll it
 * only takes what has finished, as a real guest would see it, and the client polls the used
 * ring (the blk-qtest benchmark does, to keep requests in flight). STRATOVIRT_QTEST_IO=wait is
 * `poll`, except that the first guest-memory read of a batch of commands (one socket read)
 * waits for a request to finish when requests are in flight and none was answered since the
 * batch began: a client polling in a loop then waits as a guest waits for its interrupt,
 * instead of spinning, and a notify followed by a read of the used ring sees an answer.
 */
import type { VmConfig } from "../config/vm_config.ts";
import { MEM_BELOW_4G_END, x86MemoryLayout } from "../boot/layout.ts";
import { mmioBus, pioBus } from "../devices/bus.ts";
import { I8042, I8042_PORT_BASE, I8042_PORT_SIZE } from "../devices/legacy/i8042.ts";
import { CmosRtc, RTC_PORT_BASE, RTC_PORT_SIZE } from "../devices/legacy/rtc.ts";
import {
  Serial8250,
  SERIAL_IRQ,
  SERIAL_PORT_BASE,
  SERIAL_PORT_SIZE,
} from "../devices/legacy/serial.ts";
import { GuestMemory } from "../memory/guest_memory.ts";
import { guestMemoryOf, GuestRam } from "../memory/guest_ram.ts";
import { buildVirtioMmioDevices, type VirtioMmioDevices } from "../machine/virtio_devices.ts";
import { log } from "../util/logger.ts";
import { VirtualClock } from "./clock.ts";
import { IrqLines } from "./irq.ts";
import { QtestProtocol, type TestTarget } from "./protocol.ts";
import { openQtestSocket, serveQtest } from "./server.ts";

export class TestMachineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TestMachineError";
  }
}

/** How the machine delivers block completions between commands (see the header). */
export type QtestIoMode = "settle" | "poll" | "wait";

/** STRATOVIRT_QTEST_IO, or "settle". */
export function qtestIoMode(): QtestIoMode {
  let value: string | undefined;
  try {
    value = Deno.env.get("STRATOVIRT_QTEST_IO");
  } catch { /* no env permission: the default */ }
  return value === "poll" || value === "wait" ? value : "settle";
}

export interface TestMachine extends TestTarget {
  readonly virtio: VirtioMmioDevices;
  readonly serial: Serial8250;
  readonly i8042: I8042;
  readonly rtc: CmosRtc;
  /** Releases the device backends. */
  close(): void;
}

/**
 * Zeroed memory starting on a page boundary, as mmap'ed guest RAM does: O_DIRECT block I/O can
 * then use the guest's buffers in place instead of bouncing them (JS buffers are only 16-byte
 * aligned). Unaligned where the address cannot be learnt (no FFI permission).
 */
function pageAlignedBytes(size: number): Uint8Array {
  const PAGE = 4096;
  const raw = new Uint8Array(size + PAGE);
  let skip = 0;
  try {
    const addr = Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(raw)));
    skip = (PAGE - (addr % PAGE)) % PAGE;
  } catch { /* stays unaligned */ }
  return raw.subarray(skip, skip + size);
}

/** Builds the machine of `config` (RAM, buses, legacy and virtio devices); no socket yet. */
export function buildTestMachine(
  config: VmConfig,
  warn: (msg: string) => void = () => {},
  ioMode: QtestIoMode = qtestIoMode(),
): TestMachine {
  if (config.machine.type !== "microvm") {
    throw new TestMachineError(
      `-machine ${config.machine.type}: accel=test builds microvm machines only`,
    );
  }
  if (config.boot.kernel !== null) warn("accel=test: -kernel is not loaded (there are no vCPUs)");
  if (config.memoryBackends.length > 0 || config.numa) {
    warn("accel=test: memory backends and NUMA are ignored");
  }
  const layout = x86MemoryLayout(config.memory.sizeBytes);
  // -mem-path maps RAM from that file as a KVM machine does: with mem-share=on another process
  // (a test driver) can map the same file and reach the rings as a guest does, without a
  // protocol command per access.
  const ram = config.memory.memPath === null ? null : GuestRam.allocate(layout.ramRegions, {
    path: config.memory.memPath,
    share: config.machine.memShare,
    prealloc: config.memory.prealloc,
  });
  const memory = ram ? guestMemoryOf(ram.regions) : new GuestMemory(layout.ramRegions.map((r) => ({
    gpa: r.gpa,
    size: r.size,
    bytes: pageAlignedBytes(r.size),
  })));
  const onFault = (bus: string) => (range: { name: string }, op: string, e: unknown) =>
    log.error(`${bus} ${op} of ${range.name} failed: ${(e as Error).message}`);
  const mmio = mmioBus(onFault("mmio"));
  const pio = pioBus(onFault("pio"));
  const clock = new VirtualClock();
  const irqs = new IrqLines();

  // The guest's wall clock starts at the host's and then moves only with the virtual clock.
  const epochMs = Date.now();
  const serial = new Serial8250({ setIrq: (level) => irqs.setLevel(SERIAL_IRQ, level) });
  const i8042 = new I8042({ onReset: () => log.info("accel=test: the guest asked for a reset") });
  const rtc = new CmosRtc({
    now: () => epochMs + clock.nowMs(),
    memSize: config.memory.sizeBytes,
    gapStart: MEM_BELOW_4G_END,
  });
  // The boot timer's port 0x3ff is also the UART's scratch register; the KVM vCPU loop catches
  // it before the bus. Without a guest to boot there is nothing for it to time.
  pio.insert(SERIAL_PORT_BASE, SERIAL_PORT_SIZE, serial, "serial");
  pio.insert(I8042_PORT_BASE, I8042_PORT_SIZE, i8042, "i8042");
  pio.insert(RTC_PORT_BASE, RTC_PORT_SIZE, rtc, "rtc");

  const virtio = buildVirtioMmioDevices(config, memory, mmio, {
    interruptFor: (slot) => () => irqs.pulse(slot.irq),
    timers: {
      nowMs: () => clock.nowMs(),
      after: (delayMs, fn) => clock.after(BigInt(Math.ceil(delayMs * 1e6)), fn),
    },
  });
  if (virtio.notBuilt.length > 0) {
    virtio.close();
    ram?.unmap();
    const d = virtio.notBuilt[0];
    throw new TestMachineError(`-device ${d.driver},id=${d.id}: not supported by this VMM yet`);
  }
  const settle = ioMode === "settle";
  // Operations answered since the batch of commands began (`wait` mode).
  let answered = 0;
  let closed = false;
  return {
    memory,
    mmio,
    pio,
    clock,
    irqs,
    virtio,
    serial,
    i8042,
    rtc,
    serviceDevices: () => void (answered += virtio.processCompletions(settle)),
    startBatch: () => void (answered = 0),
    awaitDevices: () => {
      if (ioMode === "wait" && answered === 0) answered += virtio.waitForCompletion();
    },
    close: () => {
      if (closed) return;
      closed = true;
      virtio.close();
      // The device backends are done with guest RAM (close drains their I/O).
      ram?.unmap();
    },
  };
}

/**
 * Runs an `accel=test` VM: builds it, serves the `-mod-test` socket until the client hangs up
 * or quits, releases everything. Returns the process exit status (0, or 1 with a message on
 * stderr when the machine or the socket cannot be set up).
 */
export async function runTestMachine(config: VmConfig): Promise<number> {
  const path = config.runtime.modTest;
  if (path === null) {
    console.error("stratovirt: -accel test: needs -mod-test SOCKET (the test client's socket)");
    return 1;
  }
  let machine: TestMachine;
  try {
    machine = buildTestMachine(config, (m) => console.error(`stratovirt: warning: ${m}`));
  } catch (e) {
    console.error(`stratovirt: ${(e as Error).message}`);
    return 1;
  }
  let ownsSocket = false;
  const removeSocket = () => {
    if (!ownsSocket) return;
    try {
      Deno.removeSync(path);
    } catch { /* gone already */ }
  };
  // Killed by the harness: leave no socket file behind (QEMU also exits 0 on SIGTERM).
  const onSignal = () => {
    machine.close();
    removeSocket();
    Deno.exit(0);
  };
  for (const s of STOP_SIGNALS) Deno.addSignalListener(s, onSignal);
  try {
    const opened = await openQtestSocket(path, () => ownsSocket = true);
    try {
      await serveQtest(opened.socket, new QtestProtocol(machine));
    } finally {
      opened.socket.close();
    }
    return 0;
  } catch (e) {
    console.error(`stratovirt: ${(e as Error).message}`);
    return 1;
  } finally {
    for (const s of STOP_SIGNALS) Deno.removeSignalListener(s, onSignal);
    machine.close();
    removeSocket();
  }
}

const STOP_SIGNALS: Deno.Signal[] = ["SIGTERM", "SIGINT"];

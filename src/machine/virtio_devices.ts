/**
 * The virtio-mmio devices of a microvm, built from a VmConfig: each `-device *-device` becomes a
 * device model behind an MmioTransport on the MMIO bus, at the slot StratoVirt gives it. Both
 * machines use this: the KVM microvm (interrupts are irqfd writes) and the `accel=test` machine
 * (interrupts are reported to the test client).
 *
 * Slots follow StratoVirt's x86 microvm: the first MMIO_REPLACEABLE_BLK_NR slots belong to
 * virtio-blk devices (in command-line order), the next MMIO_REPLACEABLE_NET_NR to virtio-net,
 * every other virtio-mmio device after them. Unused replaceable slots are not announced here: the
 * `accel=test` machine has no QMP, so nothing could hot-plug into them (the KVM microvm announces
 * them, empty, when it has -qmp: see iothreads.ts).
 *
 * Today this builds virtio-blk-device; other virtio-mmio drivers are returned in `notBuilt` so
 * the caller can refuse them with a clear message.
 */
import type { VmConfig } from "../config/vm_config.ts";
import type { DeviceConfig } from "../config/device.ts";
import type { BlkDeviceConfig } from "../config/devices/blk.ts";
import type { Bus } from "../devices/bus.ts";
import type { GuestMemory } from "../memory/guest_memory.ts";
import { type BlockDevice, openBlockDevice } from "../devices/virtio/blk/device.ts";
import {
  kernelCmdlineArg,
  microvmMmioSlot,
  MMIO_DEVICE_SIZE,
  MmioTransport,
} from "../devices/virtio/mmio.ts";

/** StratoVirt's x86 microvm reserves these many slots for block, then net devices. */
export const MMIO_REPLACEABLE_BLK_NR = 4;
export const MMIO_REPLACEABLE_NET_NR = 2;

export class VirtioDeviceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "VirtioDeviceError";
  }
}

export interface MmioSlot {
  readonly index: number;
  readonly base: number;
  readonly irq: number;
}

export interface BuiltVirtioDevice {
  /** The -device id. */
  readonly id: string;
  readonly driver: string;
  readonly slot: MmioSlot;
  readonly transport: MmioTransport;
  readonly device: BlockDevice;
}

/** Timers the devices need (the block throttle's retry): real ones, or a virtual clock's. */
export interface DeviceTimers {
  /** Milliseconds, monotonic. */
  nowMs(): number;
  /** Runs `fn` after `delayMs`. */
  after(delayMs: number, fn: () => void): void;
}

export interface VirtioBuildOptions {
  /** The interrupt line of a slot: raising it once per call (an irqfd write). */
  interruptFor: (slot: MmioSlot) => () => void;
  timers?: DeviceTimers;
}

export interface VirtioMmioDevices {
  readonly devices: readonly BuiltVirtioDevice[];
  /** `virtio_mmio.device=512@0xf0100000:5` words, in slot order, for the kernel command line. */
  readonly cmdlineArgs: readonly string[];
  /** Virtio-mmio devices of the config this builder does not make yet. */
  readonly notBuilt: readonly DeviceConfig[];
  /**
   * Answers the block requests whose I/O finished (io_uring backends complete asynchronously;
   * a machine without an event loop for their eventfds calls this, e.g. before each command).
   * With `settle`, first waits until none is in flight. Returns how many operations finished.
   */
  processCompletions(settle: boolean): number;
  /** Waits until some block request in flight finished and answers it (none in flight: 0). */
  waitForCompletion(): number;
  /** Takes the devices off the bus and releases their backends (VM teardown). */
  close(): void;
}

const REAL_TIMERS: DeviceTimers = {
  nowMs: () => performance.now(),
  after: (delayMs, fn) => void setTimeout(fn, delayMs),
};

/**
 * Creates the virtio-mmio devices of `config`, puts their transports on `mmio`, and returns
 * them with their kernel command-line words. Throws VirtioDeviceError (naming the device) when a
 * device cannot be built: no slot left, its drive missing, its image not openable. Devices
 * already built are closed again before the error escapes.
 */
export function buildVirtioMmioDevices(
  config: VmConfig,
  memory: GuestMemory,
  mmio: Bus,
  options: VirtioBuildOptions,
): VirtioMmioDevices {
  const timers = options.timers ?? REAL_TIMERS;
  const built: BuiltVirtioDevice[] = [];
  const notBuilt: DeviceConfig[] = [];
  const close = () => {
    for (const d of built) {
      mmio.remove(d.slot.base);
      d.device.close();
    }
    built.length = 0;
  };
  let blkCount = 0;
  try {
    for (const dev of config.devices) {
      if (dev.transport !== "mmio") continue;
      if (dev.kind !== "blk") {
        notBuilt.push(dev);
        continue;
      }
      if (blkCount >= MMIO_REPLACEABLE_BLK_NR) {
        throw new VirtioDeviceError(
          `-device ${dev.driver},id=${dev.id}: a microvm takes at most ` +
            `${MMIO_REPLACEABLE_BLK_NR} virtio-blk devices`,
        );
      }
      const slot = { index: blkCount, ...microvmMmioSlot(blkCount) };
      blkCount++;
      built.push(buildBlock(config, dev, slot, memory, mmio, options, timers));
    }
  } catch (e) {
    close();
    throw e;
  }
  built.sort((a, b) => a.slot.index - b.slot.index);
  return {
    devices: built,
    cmdlineArgs: built.map((d) => kernelCmdlineArg(d.slot.base, d.slot.irq)),
    notBuilt,
    processCompletions: (settle) => {
      let finished = 0;
      for (const d of built) {
        if (d.device.completionFd === null) continue;
        if (settle) {
          finished += d.device.inFlight;
          d.device.settle();
        } else {
          finished += d.device.processCompletions();
        }
      }
      return finished;
    },
    waitForCompletion: () => {
      const busy = built.find((d) => d.device.inFlight > 0);
      return busy ? busy.device.processCompletions(true) : 0;
    },
    close,
  };
}

function buildBlock(
  config: VmConfig,
  dev: BlkDeviceConfig,
  slot: MmioSlot,
  memory: GuestMemory,
  mmio: Bus,
  options: VirtioBuildOptions,
  timers: DeviceTimers,
): BuiltVirtioDevice {
  const what = `-device ${dev.driver},id=${dev.id}`;
  const drive = config.drives.find((d) => d.id === dev.drive);
  if (!drive) throw new VirtioDeviceError(`${what}: no -drive with id=${dev.drive}`);
  let device: BlockDevice;
  // The transport is made after the device, but the throttle's retry needs it: late binding.
  let transport: MmioTransport | null = null;
  try {
    device = openBlockDevice({
      path: drive.file,
      readonly: drive.readonly,
      direct: drive.direct,
      serial: dev.serial,
      numQueues: dev.numQueues,
      queueSize: dev.queueSize,
      iopsTotal: drive.iopsTotal,
    }, {
      name: `virtio-blk ${dev.id}`,
      now: () => timers.nowMs(),
      onThrottled: (index, delayMs) =>
        timers.after(delayMs, () => {
          if (transport?.activated) transport.device.notify(index);
        }),
    });
  } catch (e) {
    throw new VirtioDeviceError(`${what}: drive ${drive.id}: ${(e as Error).message}`);
  }
  transport = new MmioTransport(device, {
    memory,
    interrupt: options.interruptFor(slot),
    name: `virtio-mmio ${dev.id}`,
  });
  try {
    mmio.insert(slot.base, MMIO_DEVICE_SIZE, transport, `virtio-mmio ${dev.id}`);
  } catch (e) {
    device.close();
    throw new VirtioDeviceError(`${what}: ${(e as Error).message}`);
  }
  return { id: dev.id, driver: dev.driver, slot, transport, device };
}

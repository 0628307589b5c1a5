/**
 * virtio-mmio transport, version 2 (virtio 1.2 §4.2.2): a 0x200-byte register window on the
 * MMIO bus in front of one VirtioDevice. Registers are 32-bit; the device configuration space
 * starts at 0x100 and takes any access size. The guest chooses offsets, sizes and values, so
 * nothing here throws: odd accesses read zero and are ignored on write (logged at debug).
 *
 * The driver's view (what Linux's virtio_mmio does): reset (Status 0), ACKNOWLEDGE, DRIVER,
 * read DeviceFeatures word by word, write DriverFeatures, FEATURES_OK and read it back, set up
 * each queue (QueueSel, QueueNumMax, QueueNum, the three addresses, QueueReady 1), DRIVER_OK.
 * At DRIVER_OK the queues are validated and handed to the device; Status 0 takes them back.
 */
import type { BusDevice } from "../bus.ts";
import type { GuestMemory } from "../../memory/guest_memory.ts";
import { log } from "../../util/logger.ts";
import { feature, FeatureBit, Status } from "./constants.ts";
import type { VirtioDevice, VirtioInterrupt } from "./device.ts";
import { Queue } from "./queue.ts";

export const MMIO_MAGIC = 0x74726976; // "virt"
export const MMIO_VERSION = 2;
/** The spec names no MMIO vendor id; Firecracker and crosvm report 0. */
export const MMIO_VENDOR_ID = 0;
/** Size of one transport window; the device config space is the part from 0x100. */
export const MMIO_DEVICE_SIZE = 0x200;
export const MMIO_CONFIG_OFFSET = 0x100;

/** Register offsets (§4.2.2). */
export const MmioReg = {
  MAGIC_VALUE: 0x000,
  VERSION: 0x004,
  DEVICE_ID: 0x008,
  VENDOR_ID: 0x00c,
  DEVICE_FEATURES: 0x010,
  DEVICE_FEATURES_SEL: 0x014,
  DRIVER_FEATURES: 0x020,
  DRIVER_FEATURES_SEL: 0x024,
  QUEUE_SEL: 0x030,
  QUEUE_NUM_MAX: 0x034,
  QUEUE_NUM: 0x038,
  QUEUE_READY: 0x044,
  QUEUE_NOTIFY: 0x050,
  INTERRUPT_STATUS: 0x060,
  INTERRUPT_ACK: 0x064,
  STATUS: 0x070,
  QUEUE_DESC_LOW: 0x080,
  QUEUE_DESC_HIGH: 0x084,
  QUEUE_DRIVER_LOW: 0x090,
  QUEUE_DRIVER_HIGH: 0x094,
  QUEUE_DEVICE_LOW: 0x0a0,
  QUEUE_DEVICE_HIGH: 0x0a4,
  SHM_SEL: 0x0ac,
  SHM_LEN_LOW: 0x0b0,
  SHM_LEN_HIGH: 0x0b4,
  SHM_BASE_LOW: 0x0b8,
  SHM_BASE_HIGH: 0x0bc,
  CONFIG_GENERATION: 0x0fc,
} as const;

/** InterruptStatus bits. */
export const INT_VRING = 1;
export const INT_CONFIG = 2;

/**
 * StratoVirt's x86 microvm puts virtio-mmio slot n at 0xF010_0000 + n * 0x200 (MEM_LAYOUT
 * "Mmio") and fills the first ones with "replaceable" (hot-pluggable) virtio-blk, then
 * virtio-net devices. It hands out IRQs 5, 6, 7... in slot order; this build skips the ISA IRQs
 * a legacy device of the guest claims: 8 (CMOS RTC: Linux's rtc_cmos fails to load when a
 * virtio-mmio device shares it), 12 (i8042 aux port) and 13 (FPU error). IRQs stay below 16:
 * the MP table routes only the 16 ISA IRQs.
 */
export const MICROVM_MMIO_BASE = 0xf010_0000;
export const MICROVM_MMIO_IRQS: readonly number[] = [5, 6, 7, 9, 10, 11, 14, 15];

/** Address and IRQ of microvm virtio-mmio slot `index` (0-based). */
export function microvmMmioSlot(index: number): { base: number; irq: number } {
  const slots = MICROVM_MMIO_IRQS.length;
  if (!Number.isInteger(index) || index < 0 || index >= slots) {
    throw new RangeError(`virtio-mmio slot ${index} is not in 0..${slots - 1}`);
  }
  return {
    base: MICROVM_MMIO_BASE + index * MMIO_DEVICE_SIZE,
    irq: MICROVM_MMIO_IRQS[index],
  };
}

/**
 * The kernel command-line word announcing one device, as StratoVirt writes it on x86
 * (`{size}@0x{base:08x}:{irq}`): `virtio_mmio.device=512@0xf0100000:5`.
 */
export function kernelCmdlineArg(base: number, irq: number): string {
  return `virtio_mmio.device=${MMIO_DEVICE_SIZE}@0x${base.toString(16).padStart(8, "0")}:${irq}`;
}

export interface MmioTransportOptions {
  memory: GuestMemory;
  /** Raises the device's interrupt line (an irqfd write in the VMM). */
  interrupt: () => void;
  /**
   * A QueueNotify write reached the transport (no ioeventfd took it). Default: the device's
   * `notify`, run on the calling thread.
   */
  onQueueNotify?: (index: number) => void;
  /**
   * Where InterruptStatus lives: pass an Int32Array over a SharedArrayBuffer when the device
   * signals from another Worker than the one decoding MMIO exits. Updated with Atomics.
   */
  interruptStatus?: Int32Array;
  /** For log lines. */
  name?: string;
}

function hex(n: number): string {
  return "0x" + n.toString(16);
}

const DRIVER_SETTABLE = Status.ACKNOWLEDGE | Status.DRIVER | Status.FEATURES_OK |
  Status.DRIVER_OK | Status.FAILED;

export class MmioTransport implements BusDevice {
  readonly queues: Queue[];
  readonly name: string;
  #status = 0;
  #deviceFeaturesSel = 0;
  #driverFeaturesSel = 0;
  #driverFeatures = 0n;
  #queueSel = 0;
  #configGeneration = 0;
  #activated = false;
  #irqStatus: Int32Array;
  readonly #memory: GuestMemory;
  readonly #raise: () => void;
  readonly #onQueueNotify: (index: number) => void;
  readonly #interrupt: VirtioInterrupt;

  constructor(readonly device: VirtioDevice, options: MmioTransportOptions) {
    this.name = options.name ?? `virtio-mmio(${device.deviceType})`;
    this.queues = device.queueMaxSizes.map((n) => new Queue(n));
    this.#memory = options.memory;
    this.#raise = options.interrupt;
    this.#onQueueNotify = options.onQueueNotify ?? ((i) => device.notify(i));
    this.#irqStatus = options.interruptStatus ?? new Int32Array(1);
    this.#interrupt = {
      signalUsedQueue: () => this.#signal(INT_VRING),
      signalConfigChange: () => {
        this.#configGeneration = (this.#configGeneration + 1) >>> 0;
        this.#signal(INT_CONFIG);
      },
      signalNeedsReset: (reason) => this.#needsReset(reason),
    };
  }

  /** The Status register (driver bits plus DEVICE_NEEDS_RESET). */
  get status(): number {
    return this.#status;
  }
  get interruptStatus(): number {
    return Atomics.load(this.#irqStatus, 0);
  }
  /** True between DRIVER_OK (accepted) and reset: the device owns the queues. */
  get activated(): boolean {
    return this.#activated;
  }
  /** Features the driver wrote (not yet accepted until FEATURES_OK). */
  get driverFeatures(): bigint {
    return this.#driverFeatures;
  }
  /** The interrupt hooks handed to the device (the VMM may signal through them too). */
  get interruptHooks(): VirtioInterrupt {
    return this.#interrupt;
  }

  /**
   * The VMM changed the device configuration space (a hot-replaced disk's capacity): bump
   * ConfigGeneration and, once a driver has started on the device, raise the
   * configuration-change interrupt. A driver that has not reached DRIVER_OK yet defers it (Linux
   * handles it when it enables config changes); with no driver there is nobody to tell, and the
   * next one reads the new configuration when it probes.
   */
  signalConfigChange(): void {
    if (this.#status === 0) {
      this.#configGeneration = (this.#configGeneration + 1) >>> 0;
      return;
    }
    this.#interrupt.signalConfigChange();
  }

  read(offset: number, data: Uint8Array): void {
    data.fill(0);
    if (offset >= MMIO_CONFIG_OFFSET) {
      if (offset < MMIO_DEVICE_SIZE) {
        this.#guard("config read", () => this.device.readConfig(offset - MMIO_CONFIG_OFFSET, data));
      }
      return;
    }
    if (data.length !== 4 || offset % 4 !== 0) {
      log.debug(`${this.name}: ignored ${data.length}-byte read at ${hex(offset)}`);
      return;
    }
    const v = this.#readRegister(offset);
    new DataView(data.buffer, data.byteOffset, 4).setUint32(0, v >>> 0, true);
  }

  write(offset: number, data: Uint8Array): void {
    if (offset >= MMIO_CONFIG_OFFSET) {
      if (offset < MMIO_DEVICE_SIZE) {
        this.#guard(
          "config write",
          () => this.device.writeConfig(offset - MMIO_CONFIG_OFFSET, data),
        );
      }
      return;
    }
    if (data.length !== 4 || offset % 4 !== 0) {
      log.debug(`${this.name}: ignored ${data.length}-byte write at ${hex(offset)}`);
      return;
    }
    const v = new DataView(data.buffer, data.byteOffset, 4).getUint32(0, true);
    this.#writeRegister(offset, v);
  }

  #readRegister(offset: number): number {
    const q = this.#selectedQueue();
    switch (offset) {
      case MmioReg.MAGIC_VALUE:
        return MMIO_MAGIC;
      case MmioReg.VERSION:
        return MMIO_VERSION;
      case MmioReg.DEVICE_ID:
        return this.device.deviceType;
      case MmioReg.VENDOR_ID:
        return MMIO_VENDOR_ID;
      case MmioReg.DEVICE_FEATURES: {
        const sel = this.#deviceFeaturesSel;
        if (sel > 1) return 0;
        return Number((this.device.deviceFeatures >> BigInt(32 * sel)) & 0xffff_ffffn);
      }
      case MmioReg.QUEUE_NUM_MAX:
        return q?.maxSize ?? 0;
      case MmioReg.QUEUE_READY:
        return q?.ready ? 1 : 0;
      case MmioReg.INTERRUPT_STATUS:
        return Atomics.load(this.#irqStatus, 0);
      case MmioReg.STATUS:
        return this.#status;
      case MmioReg.SHM_LEN_LOW:
      case MmioReg.SHM_LEN_HIGH:
      case MmioReg.SHM_BASE_LOW:
      case MmioReg.SHM_BASE_HIGH:
        // No shared memory regions: a length of all ones says so (§4.2.2).
        return 0xffff_ffff;
      case MmioReg.CONFIG_GENERATION:
        return this.#configGeneration;
      default:
        log.debug(`${this.name}: read of write-only or unknown register ${hex(offset)}`);
        return 0;
    }
  }

  #writeRegister(offset: number, v: number): void {
    switch (offset) {
      case MmioReg.DEVICE_FEATURES_SEL:
        this.#deviceFeaturesSel = v;
        return;
      case MmioReg.DRIVER_FEATURES:
        return this.#writeDriverFeatures(v);
      case MmioReg.DRIVER_FEATURES_SEL:
        this.#driverFeaturesSel = v;
        return;
      case MmioReg.QUEUE_SEL:
        this.#queueSel = v;
        return;
      case MmioReg.QUEUE_NUM:
      case MmioReg.QUEUE_READY:
      case MmioReg.QUEUE_DESC_LOW:
      case MmioReg.QUEUE_DESC_HIGH:
      case MmioReg.QUEUE_DRIVER_LOW:
      case MmioReg.QUEUE_DRIVER_HIGH:
      case MmioReg.QUEUE_DEVICE_LOW:
      case MmioReg.QUEUE_DEVICE_HIGH:
        return this.#writeQueue(offset, v);
      case MmioReg.QUEUE_NOTIFY:
        return this.#queueNotify(v);
      case MmioReg.INTERRUPT_ACK:
        Atomics.and(this.#irqStatus, 0, ~v);
        return;
      case MmioReg.STATUS:
        return this.#writeStatus(v);
      case MmioReg.SHM_SEL:
        return;
      default:
        log.debug(
          `${this.name}: write of ${hex(v)} to read-only or unknown register ${hex(offset)}`,
        );
    }
  }

  #selectedQueue(): Queue | undefined {
    return this.queues[this.#queueSel];
  }

  #writeDriverFeatures(v: number): void {
    const s = this.#status;
    if (!(s & Status.DRIVER) || (s & Status.FEATURES_OK)) {
      log.warn(`${this.name}: DriverFeatures written in status ${hex(s)}; ignored`);
      return;
    }
    const sel = this.#driverFeaturesSel;
    if (sel > 1) {
      if (v !== 0) {
        log.warn(`${this.name}: driver accepts unknown features ${hex(v)} in word ${sel}`);
      }
      return;
    }
    const shift = BigInt(32 * sel);
    this.#driverFeatures = (this.#driverFeatures & ~(0xffff_ffffn << shift)) |
      (BigInt(v >>> 0) << shift);
  }

  #writeQueue(offset: number, v: number): void {
    const q = this.#selectedQueue();
    const s = this.#status;
    if (!q) {
      log.warn(
        `${this.name}: queue register ${hex(offset)} written for absent queue ${this.#queueSel}`,
      );
      return;
    }
    if (s & Status.DRIVER_OK || !(s & Status.FEATURES_OK)) {
      log.warn(`${this.name}: queue register ${hex(offset)} written in status ${hex(s)}; ignored`);
      return;
    }
    if (offset === MmioReg.QUEUE_READY) {
      q.ready = v === 1;
      return;
    }
    if (q.ready) {
      log.warn(`${this.name}: queue ${this.#queueSel} changed while ready; ignored`);
      return;
    }
    const low = (old: number) => Math.floor(old / 2 ** 32) * 2 ** 32 + v;
    const high = (old: number) => v * 2 ** 32 + (old % 2 ** 32);
    switch (offset) {
      case MmioReg.QUEUE_NUM:
        q.size = v;
        return;
      case MmioReg.QUEUE_DESC_LOW:
        q.descTable = low(q.descTable);
        return;
      case MmioReg.QUEUE_DESC_HIGH:
        q.descTable = high(q.descTable);
        return;
      case MmioReg.QUEUE_DRIVER_LOW:
        q.availRing = low(q.availRing);
        return;
      case MmioReg.QUEUE_DRIVER_HIGH:
        q.availRing = high(q.availRing);
        return;
      case MmioReg.QUEUE_DEVICE_LOW:
        q.usedRing = low(q.usedRing);
        return;
      case MmioReg.QUEUE_DEVICE_HIGH:
        q.usedRing = high(q.usedRing);
        return;
    }
  }

  #queueNotify(index: number): void {
    if (!this.#activated || index >= this.queues.length) {
      log.debug(`${this.name}: QueueNotify ${index} ignored (activated: ${this.#activated})`);
      return;
    }
    this.#guard("queue notify", () => this.#onQueueNotify(index));
  }

  #writeStatus(v: number): void {
    if (v === 0) {
      this.reset();
      return;
    }
    const requested = v & DRIVER_SETTABLE;
    if (requested & Status.FAILED) {
      log.warn(`${this.name}: the driver set FAILED`);
      this.#status |= Status.FAILED;
      return;
    }
    const current = this.#status & DRIVER_SETTABLE;
    if ((requested & current) !== current) {
      log.warn(`${this.name}: status ${hex(v)} clears bits of ${hex(current)}; ignored`);
      return;
    }
    // Each step needs the one before it (§3.1.1).
    const add = (bit: number, needs: number) => {
      if (!(requested & bit) || (this.#status & bit)) return true;
      if ((this.#status & needs) !== needs) {
        log.warn(`${this.name}: status bit ${hex(bit)} set before ${hex(needs)}; ignored`);
        return false;
      }
      this.#status |= bit;
      return true;
    };
    if (!add(Status.ACKNOWLEDGE, 0)) return;
    if (!add(Status.DRIVER, Status.ACKNOWLEDGE)) return;
    if ((requested & Status.FEATURES_OK) && !(this.#status & Status.FEATURES_OK)) {
      if (!(this.#status & Status.DRIVER)) {
        log.warn(`${this.name}: FEATURES_OK before DRIVER; ignored`);
        return;
      }
      if (!this.#acceptFeatures()) return;
    }
    if ((requested & Status.DRIVER_OK) && !(this.#status & Status.DRIVER_OK)) {
      if (!(this.#status & Status.FEATURES_OK)) {
        log.warn(`${this.name}: DRIVER_OK before FEATURES_OK; ignored`);
        return;
      }
      this.#status |= Status.DRIVER_OK;
      this.#activate();
    }
  }

  /** FEATURES_OK: the driver's set must be offered and include VERSION_1 (no legacy mode). */
  #acceptFeatures(): boolean {
    const offered = this.device.deviceFeatures;
    const wanted = this.#driverFeatures;
    const extra = wanted & ~offered;
    if (extra !== 0n) {
      log.warn(`${this.name}: driver accepted features 0x${extra.toString(16)} never offered`);
      return false;
    }
    if (!(wanted & feature(FeatureBit.VERSION_1))) {
      log.warn(`${this.name}: driver did not accept VIRTIO_F_VERSION_1 (legacy is unsupported)`);
      return false;
    }
    this.#guard("feature ack", () => this.device.ackFeatures(wanted));
    this.#status |= Status.FEATURES_OK;
    return true;
  }

  #activate(): void {
    const eventIdx = (this.#driverFeatures & feature(FeatureBit.EVENT_IDX)) !== 0n;
    const indirect = (this.#driverFeatures & feature(FeatureBit.INDIRECT_DESC)) !== 0n;
    for (const [i, q] of this.queues.entries()) {
      q.eventIdx = eventIdx;
      q.indirect = indirect;
      if (!q.ready) continue;
      const problem = q.validate(this.#memory);
      if (problem) {
        this.#needsReset(`queue ${i}: ${problem}`);
        return;
      }
    }
    try {
      this.device.activate(this.queues, this.#memory, this.#interrupt);
      this.#activated = true;
    } catch (e) {
      this.#needsReset(`activation failed: ${(e as Error).message}`);
    }
  }

  /** Status 0: the device gives the queues back and everything negotiated is forgotten. */
  reset(): void {
    this.#guard("reset", () => this.device.reset());
    for (const q of this.queues) q.reset();
    this.#activated = false;
    this.#status = 0;
    this.#deviceFeaturesSel = 0;
    this.#driverFeaturesSel = 0;
    this.#driverFeatures = 0n;
    this.#queueSel = 0;
    Atomics.store(this.#irqStatus, 0, 0);
  }

  #signal(bit: number): void {
    Atomics.or(this.#irqStatus, 0, bit);
    try {
      this.#raise();
    } catch (e) {
      log.error(`${this.name}: raising the interrupt failed: ${(e as Error).message}`);
    }
  }

  #needsReset(reason: string): void {
    if (this.#status & Status.DEVICE_NEEDS_RESET) return;
    log.error(`${this.name}: device needs reset: ${reason}`);
    this.#status |= Status.DEVICE_NEEDS_RESET;
    this.#signal(INT_CONFIG);
  }

  /** Device code runs on guest input; a bug there must not escape into the vCPU exit path. */
  #guard(what: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.#needsReset(`${what} threw: ${(e as Error).message}`);
    }
  }
}

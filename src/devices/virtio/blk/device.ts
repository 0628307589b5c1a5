/**
 * The virtio-blk device model (virtio 1.2 §5.2): features, configuration space, activation and
 * queue processing. Synchronous and host-free apart from its backend: the iothread (or the
 * transport, without ioeventfds) calls `notify(queue)`; completions go out through the
 * `VirtioInterrupt` handed over at activation.
 *
 * Data safety: a request's status byte and used-ring entry are written only after the backend
 * call returned (for FLUSH, after fdatasync), so the driver never sees a completion for data
 * that is not on the backend.
 */
import type { GuestMemory } from "../../../memory/guest_memory.ts";
import { log } from "../../../util/logger.ts";
import { DeviceId, feature, FeatureBit } from "../constants.ts";
import { ActivationError, type VirtioDevice, type VirtioInterrupt } from "../device.ts";
import { type DescriptorChain, type Queue } from "../queue.ts";
import { type BlockBackend, SECTOR_SIZE } from "./backend.ts";
import { openBackend } from "./direct_backend.ts";
import { executeRequest, ID_BYTES, parseRequest, type RequestContext } from "./request.ts";
import { IopsThrottle } from "./throttle.ts";

/** virtio-blk feature bits (§5.2.3). */
export const BlkFeature = {
  SIZE_MAX: 1,
  SEG_MAX: 2,
  GEOMETRY: 4,
  RO: 5,
  BLK_SIZE: 6,
  FLUSH: 9,
  TOPOLOGY: 10,
  CONFIG_WCE: 11,
  MQ: 12,
  DISCARD: 13,
  WRITE_ZEROES: 14,
} as const;

/** Byte offsets in struct virtio_blk_config (§5.2.4). */
export const BlkConfig = {
  CAPACITY: 0,
  SIZE_MAX: 8,
  SEG_MAX: 12,
  GEOMETRY: 16,
  BLK_SIZE: 20,
  TOPOLOGY: 24,
  WRITEBACK: 32,
  NUM_QUEUES: 34,
  MAX_DISCARD_SECTORS: 36,
  MAX_DISCARD_SEG: 40,
  DISCARD_SECTOR_ALIGNMENT: 44,
  MAX_WRITE_ZEROES_SECTORS: 48,
  MAX_WRITE_ZEROES_SEG: 52,
  WRITE_ZEROES_MAY_UNMAP: 56,
  SIZE: 60,
} as const;

export const DEFAULT_QUEUE_SIZE = 256;
export const MAX_QUEUES = 32;
/** The largest discard / write-zeroes request: what fits a u32 byte count (as StratoVirt). */
export const MAX_REQUEST_SECTORS = Math.floor(0xffff_ffff / SECTOR_SIZE);

export interface BlockDeviceOptions {
  backend: BlockBackend;
  /** Default: the backend's own read-only flag. */
  readonly?: boolean;
  /** GET_ID answer (up to 20 bytes, UTF-8); null or absent: all zeroes. */
  serial?: string | null;
  numQueues?: number;
  /** Maximum size of each queue (a power of 2). */
  queueSize?: number;
  /** `throttling.iops-total`, or null for no limit. */
  iopsTotal?: number | null;
  /** Milliseconds clock for the throttle (default performance.now). */
  now?: () => number;
  /**
   * The throttle stopped queue `index` with requests still waiting: call `notify(index)` again
   * after `delayMs` (a timerfd in the iothread).
   */
  onThrottled?: (index: number, delayMs: number) => void;
  /** Offer DISCARD / WRITE_ZEROES on a writable disk (default true). */
  discard?: boolean;
  writeZeroes?: boolean;
  /** For log lines. */
  name?: string;
}

interface Active {
  queues: Queue[];
  memory: GuestMemory;
  interrupt: VirtioInterrupt;
}

export class BlockDevice implements VirtioDevice {
  readonly deviceType = DeviceId.BLOCK;
  readonly queueMaxSizes: readonly number[];
  readonly deviceFeatures: bigint;
  readonly backend: BlockBackend;
  readonly readonly: boolean;
  readonly capacitySectors: bigint;
  readonly name: string;
  readonly #config = new Uint8Array(BlkConfig.SIZE);
  readonly #serial = new Uint8Array(ID_BYTES);
  readonly #throttle: IopsThrottle | null;
  readonly #onThrottled: (index: number, delayMs: number) => void;
  #acked = 0n;
  #active: Active | null = null;
  #broken = false;

  constructor(options: BlockDeviceOptions) {
    const numQueues = options.numQueues ?? 1;
    const queueSize = options.queueSize ?? DEFAULT_QUEUE_SIZE;
    if (!Number.isInteger(numQueues) || numQueues < 1 || numQueues > MAX_QUEUES) {
      throw new RangeError(`virtio-blk: num-queues ${numQueues} is not in 1..${MAX_QUEUES}`);
    }
    if (!Number.isInteger(queueSize) || queueSize < 2 || (queueSize & (queueSize - 1)) !== 0) {
      throw new RangeError(`virtio-blk: queue size ${queueSize} is not a power of 2 >= 2`);
    }
    this.backend = options.backend;
    this.readonly = options.readonly ?? options.backend.readonly;
    this.name = options.name ?? "virtio-blk";
    this.queueMaxSizes = new Array(numQueues).fill(queueSize);
    this.capacitySectors = BigInt(Math.floor(options.backend.size / SECTOR_SIZE));
    const serial = new TextEncoder().encode(options.serial ?? "");
    this.#serial.set(serial.subarray(0, ID_BYTES));
    this.#throttle = options.iopsTotal
      ? new IopsThrottle(options.iopsTotal, options.now ?? (() => performance.now()))
      : null;
    this.#onThrottled = options.onThrottled ?? (() => {});

    let features = feature(FeatureBit.VERSION_1) | feature(FeatureBit.EVENT_IDX) |
      feature(FeatureBit.INDIRECT_DESC) | feature(BlkFeature.SEG_MAX) |
      feature(BlkFeature.BLK_SIZE) | feature(BlkFeature.FLUSH);
    if (this.readonly) features |= feature(BlkFeature.RO);
    if (numQueues > 1) features |= feature(BlkFeature.MQ);
    if (!this.readonly && (options.discard ?? true)) features |= feature(BlkFeature.DISCARD);
    if (!this.readonly && (options.writeZeroes ?? true)) {
      features |= feature(BlkFeature.WRITE_ZEROES);
    }
    this.deviceFeatures = features;

    const c = new DataView(this.#config.buffer);
    c.setBigUint64(BlkConfig.CAPACITY, this.capacitySectors, true);
    // Header and status take two descriptors of a chain no longer than the queue.
    c.setUint32(BlkConfig.SEG_MAX, queueSize - 2, true);
    c.setUint32(BlkConfig.BLK_SIZE, SECTOR_SIZE, true);
    c.setUint16(BlkConfig.NUM_QUEUES, numQueues, true);
    c.setUint32(BlkConfig.MAX_DISCARD_SECTORS, MAX_REQUEST_SECTORS, true);
    c.setUint32(BlkConfig.MAX_DISCARD_SEG, 1, true);
    c.setUint32(BlkConfig.DISCARD_SECTOR_ALIGNMENT, 1, true);
    c.setUint32(BlkConfig.MAX_WRITE_ZEROES_SECTORS, MAX_REQUEST_SECTORS, true);
    c.setUint32(BlkConfig.MAX_WRITE_ZEROES_SEG, 1, true);
  }

  /** Features the driver accepted (0 before FEATURES_OK and after reset). */
  get ackedFeatures(): bigint {
    return this.#acked;
  }
  get activated(): boolean {
    return this.#active !== null;
  }

  ackFeatures(features: bigint): void {
    this.#acked = features & this.deviceFeatures;
  }

  readConfig(offset: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; i++) {
      const o = offset + i;
      data[i] = o >= 0 && o < this.#config.length ? this.#config[o] : 0;
    }
  }

  writeConfig(offset: number, data: Uint8Array): void {
    // Only `writeback` is writable, and only with CONFIG_WCE, which is not offered.
    log.debug(`${this.name}: ignored ${data.length}-byte config write at ${offset}`);
  }

  activate(queues: Queue[], memory: GuestMemory, interrupt: VirtioInterrupt): void {
    if (queues.length !== this.queueMaxSizes.length) {
      throw new ActivationError(
        `expected ${this.queueMaxSizes.length} queues, got ${queues.length}`,
      );
    }
    if (!queues.some((q) => q.ready)) throw new ActivationError("no queue is ready");
    this.#active = { queues, memory, interrupt };
    this.#broken = false;
  }

  reset(): void {
    this.#active = null;
    this.#acked = 0n;
    this.#broken = false;
  }

  /** Releases the backend (VM teardown). */
  close(): void {
    this.reset();
    this.backend.close();
  }

  notify(index: number): void {
    const a = this.#active;
    if (!a || this.#broken) return;
    const queue = a.queues[index];
    if (!queue?.ready) return;
    try {
      this.#process(index, queue, a);
    } catch (e) {
      // A malformed ring (QueueError) or anything unexpected: stop using the queues until
      // the driver resets the device, and tell it so.
      this.#broken = true;
      a.interrupt.signalNeedsReset(`queue ${index}: ${(e as Error).message}`);
    }
  }

  #context(): RequestContext {
    return {
      backend: this.backend,
      capacitySectors: this.capacitySectors,
      readonly: this.readonly,
      serial: this.#serial,
      discard: (this.#acked & feature(BlkFeature.DISCARD)) !== 0n,
      writeZeroes: (this.#acked & feature(BlkFeature.WRITE_ZEROES)) !== 0n,
      maxDiscardSectors: MAX_REQUEST_SECTORS,
      maxDiscardSegments: 1,
      maxWriteZeroesSectors: MAX_REQUEST_SECTORS,
      maxWriteZeroesSegments: 1,
    };
  }

  #process(index: number, queue: Queue, a: Active): void {
    const ctx = this.#context();
    let completed = 0;
    try {
      for (;;) {
        while (queue.pending(a.memory) > 0) {
          if (this.#throttle && !this.#throttle.tryAcquire()) {
            this.#onThrottled(index, this.#throttle.delayMs());
            return;
          }
          const chain = queue.pop(a.memory)!;
          this.#complete(queue, chain, a.memory, ctx);
          completed++;
        }
        if (!queue.enableNotification(a.memory)) break;
      }
    } finally {
      if (completed > 0 && queue.needsNotification(a.memory)) a.interrupt.signalUsedQueue(index);
    }
  }

  #complete(queue: Queue, chain: DescriptorChain, memory: GuestMemory, ctx: RequestContext): void {
    const req = parseRequest(chain, memory);
    if (req.statusAddr === null) {
      // Nowhere to say whether it worked: carrying it out would leave the driver guessing.
      log.warn(`${this.name}: request ${chain.head} has no writable status byte; not executed`);
      queue.addUsed(memory, chain.head, 0);
      return;
    }
    const result = executeRequest(req, memory, ctx);
    memory.writeU8(req.statusAddr, result.status);
    queue.addUsed(memory, chain.head, result.written + 1);
  }
}

/** What `-drive` plus `-device virtio-blk-*` give a block device. */
export interface BlockDeviceConfig {
  path: string;
  readonly: boolean;
  /** O_DIRECT (`direct`, StratoVirt's default on). */
  direct: boolean;
  serial: string | null;
  numQueues: number;
  queueSize?: number;
  iopsTotal: number | null;
}

/** Opens the image and builds the device. Throws BlockIoError when the file cannot be opened. */
export function openBlockDevice(
  config: BlockDeviceConfig,
  extra: Pick<BlockDeviceOptions, "now" | "onThrottled" | "name" | "discard" | "writeZeroes"> = {},
): BlockDevice {
  return new BlockDevice({
    backend: openBackend(config),
    readonly: config.readonly,
    serial: config.serial,
    numQueues: config.numQueues,
    queueSize: config.queueSize,
    iopsTotal: config.iopsTotal,
    ...extra,
  });
}

/**
 * The virtio-blk device model (virtio 1.2 §5.2): features, configuration space, activation and
 * queue processing. Host-free apart from its backend: the iothread (or the transport, without
 * ioeventfds) calls `notify(queue)`; completions go out through the `VirtioInterrupt` handed over
 * at activation.
 *
 * Two kinds of backend. A synchronous `BlockBackend` carries each request out inside `notify`.
 * An `AsyncBlockBackend` (io_uring) gets every available chain of the queue as one batch; the
 * requests complete out of order when the owner calls `processCompletions()` (its completion
 * eventfd became readable), with one interrupt per batch of completions.
 *
 * Data safety: a request's status byte and used-ring entry are written only after its I/O
 * completed successfully. A FLUSH is started only once every write made available before it
 * completed, and answered once fdatasync returned. Reset and close wait for the I/O in flight
 * (the kernel writes guest memory until then) and drop its answers: the rings are gone.
 */
import type { GuestMemory } from "../../../memory/guest_memory.ts";
import { log } from "../../../util/logger.ts";
import { DeviceId, feature, FeatureBit } from "../constants.ts";
import { ActivationError, type VirtioDevice, type VirtioInterrupt } from "../device.ts";
import { type DescriptorChain, type Queue } from "../queue.ts";
import { type AsyncBlockBackend, isAsyncBackend } from "./async_backend.ts";
import { type BlockBackend, SECTOR_SIZE } from "./backend.ts";
import { openBackend } from "./direct_backend.ts";
import {
  type BlkRequest,
  BlkStatus,
  executeRequest,
  ID_BYTES,
  ioFailure,
  parseRequest,
  planRequest,
  type RangeBackend,
  type RequestContext,
  type RequestResult,
} from "./request.ts";
import { IopsThrottle } from "./throttle.ts";
import { openUringBackend } from "./uring_backend.ts";

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
  backend: BlockBackend | AsyncBlockBackend;
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
  readonly name: string;
  #backend: BlockBackend | AsyncBlockBackend;
  #readonly: boolean;
  #capacitySectors: bigint;
  readonly #config = new Uint8Array(BlkConfig.SIZE);
  readonly #serial = new Uint8Array(ID_BYTES);
  readonly #throttle: IopsThrottle | null;
  readonly #onThrottled: (index: number, delayMs: number) => void;
  #acked = 0n;
  #active: Active | null = null;
  #broken = false;
  // Asynchronous backends only:
  #async: AsyncBlockBackend | null;
  /** Bumped by reset: completions of an older generation no longer touch the rings. */
  #generation = 0;
  /** Requests handed to the backend and not answered yet. */
  #inFlight = 0;
  #writeSeq = 0;
  /** Sequence numbers of the writes in flight, oldest first (a Set keeps insertion order). */
  readonly #writesInFlight = new Set<number>();
  /** FLUSHes waiting for the writes up to `barrier` to complete, in arrival order. */
  #waitingFlushes: { barrier: number; start: () => void }[] = [];
  /** Queues with used entries the driver has not been told about. */
  readonly #unsignalled = new Set<number>();

  constructor(options: BlockDeviceOptions) {
    const numQueues = options.numQueues ?? 1;
    const queueSize = options.queueSize ?? DEFAULT_QUEUE_SIZE;
    if (!Number.isInteger(numQueues) || numQueues < 1 || numQueues > MAX_QUEUES) {
      throw new RangeError(`virtio-blk: num-queues ${numQueues} is not in 1..${MAX_QUEUES}`);
    }
    if (!Number.isInteger(queueSize) || queueSize < 2 || (queueSize & (queueSize - 1)) !== 0) {
      throw new RangeError(`virtio-blk: queue size ${queueSize} is not a power of 2 >= 2`);
    }
    this.#backend = options.backend;
    this.#async = isAsyncBackend(options.backend) ? options.backend : null;
    this.#readonly = options.readonly ?? options.backend.readonly;
    this.name = options.name ?? "virtio-blk";
    this.queueMaxSizes = new Array(numQueues).fill(queueSize);
    this.#capacitySectors = BigInt(Math.floor(options.backend.size / SECTOR_SIZE));
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

  get backend(): BlockBackend | AsyncBlockBackend {
    return this.#backend;
  }
  get readonly(): boolean {
    return this.#readonly;
  }
  get capacitySectors(): bigint {
    return this.#capacitySectors;
  }

  /**
   * Hot-replace (QMP device_add / device_del on a microvm slot): serve `backend` from now on and
   * return the old one, which the caller flushes and closes. Capacity, read-only flag and serial
   * follow the new backend; the offered features stay (the driver negotiated them once), so a
   * read-only backend in a slot that offered writes answers writes with IOERR. The caller raises
   * the configuration-change interrupt (MmioTransport.signalConfigChange). Requests the old
   * backend still has in flight are waited for and answered first.
   */
  replaceBackend(
    backend: BlockBackend | AsyncBlockBackend,
    o: { readonly?: boolean; serial?: string | null } = {},
  ): BlockBackend | AsyncBlockBackend {
    this.settle();
    const old = this.#backend;
    this.#backend = backend;
    this.#async = isAsyncBackend(backend) ? backend : null;
    this.#readonly = o.readonly ?? backend.readonly;
    this.#capacitySectors = BigInt(Math.floor(backend.size / SECTOR_SIZE));
    new DataView(this.#config.buffer).setBigUint64(BlkConfig.CAPACITY, this.#capacitySectors, true);
    this.#serial.fill(0);
    this.#serial.set(new TextEncoder().encode(o.serial ?? "").subarray(0, ID_BYTES));
    return old;
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
    this.#generation++;
    this.#drain();
  }

  /** Waits for every request in flight (the answers of an older generation are dropped). */
  #drain(): void {
    const b = this.#async;
    if (!b) return;
    this.#waitingFlushes = [];
    this.#unsignalled.clear();
    try {
      while (b.inFlight > 0) b.poll(true);
    } catch (e) {
      log.error(`${this.name}: waiting for I/O in flight: ${(e as Error).message}`);
    }
    this.#inFlight = 0;
    this.#writesInFlight.clear();
  }

  /**
   * The eventfd that becomes readable when `processCompletions` has work (null if synchronous).
   * Whoever waits on it reads it (resets it) before calling `processCompletions`.
   */
  get completionFd(): number | null {
    return this.#async?.completionFd ?? null;
  }

  /** Requests handed to the backend and not answered yet (0 with a synchronous backend). */
  get inFlight(): number {
    return this.#inFlight;
  }

  /**
   * Answers the requests whose I/O finished (waiting for one first when `wait` and some are in
   * flight) and interrupts the driver once per queue. Returns how many operations finished.
   */
  processCompletions(wait = false): number {
    const b = this.#async;
    if (!b) return 0;
    let ran = 0;
    try {
      ran = b.poll(wait && b.inFlight > 0);
      // FLUSHes released by these completions.
      b.submit();
    } catch (e) {
      log.error(`${this.name}: reaping completions: ${(e as Error).message}`);
    }
    this.#signalUnsignalled();
    return ran;
  }

  /** Waits until no request is in flight, answering each (e.g. the qtest machine's commands). */
  settle(): void {
    while (this.#async && this.#async.inFlight > 0) this.processCompletions(true);
  }

  /** Releases the backend (VM teardown), after the I/O in flight finished. */
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

  #context(): RequestContext<RangeBackend> {
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

  /**
   * Takes every available chain the throttle grants: a synchronous backend answers each at once,
   * an asynchronous one starts them all and gets them as one batch. Interrupts once at the end.
   */
  #process(index: number, queue: Queue, a: Active): void {
    const ctx = this.#context();
    const backend = this.#async;
    try {
      this.#popGranted(
        index,
        queue,
        a,
        backend
          ? (chain) => this.#start(index, queue, chain, a, ctx, backend)
          : (chain) => this.#complete(index, queue, chain, a.memory, ctx),
      );
    } finally {
      if (backend) {
        try {
          backend.submit();
        } catch (e) {
          log.error(`${this.name}: submitting I/O: ${(e as Error).message}`);
        }
      }
      this.#signalUnsignalled();
    }
  }

  /** Hands `take` each available chain, until the ring is empty or the throttle says wait. */
  #popGranted(
    index: number,
    queue: Queue,
    a: Active,
    take: (chain: DescriptorChain) => void,
  ): void {
    for (;;) {
      while (queue.pending(a.memory) > 0) {
        if (this.#throttle && !this.#throttle.tryAcquire()) {
          this.#onThrottled(index, this.#throttle.delayMs());
          return;
        }
        take(queue.pop(a.memory)!);
      }
      if (!queue.enableNotification(a.memory)) return;
    }
  }

  #complete(
    index: number,
    queue: Queue,
    chain: DescriptorChain,
    memory: GuestMemory,
    ctx: RequestContext<RangeBackend>,
  ): void {
    const req = parseRequest(chain, memory);
    if (req.statusAddr === null) {
      // Nowhere to say whether it worked: carrying it out would leave the driver guessing.
      log.warn(`${this.name}: request ${chain.head} has no writable status byte; not executed`);
      queue.addUsed(memory, chain.head, 0);
    } else {
      // Only with a synchronous backend (#process).
      const result = executeRequest(req, memory, ctx as RequestContext);
      memory.writeU8(req.statusAddr, result.status);
      queue.addUsed(memory, chain.head, result.written + 1);
    }
    this.#unsignalled.add(index);
  }
  #start(
    index: number,
    queue: Queue,
    chain: DescriptorChain,
    a: Active,
    ctx: RequestContext<RangeBackend>,
    backend: AsyncBlockBackend,
  ): void {
    const memory = a.memory;
    const req = parseRequest(chain, memory);
    const statusAddr = req.statusAddr;
    if (statusAddr === null) {
      log.warn(`${this.name}: request ${chain.head} has no writable status byte; not executed`);
      queue.addUsed(memory, chain.head, 0);
      this.#unsignalled.add(index);
      return;
    }
    const plan = planRequest(req, memory, ctx);
    if (plan.kind === "done") {
      this.#answer(index, queue, memory, chain.head, statusAddr, plan.result);
      return;
    }
    const generation = this.#generation;
    let writeSeq = 0;
    this.#inFlight++;
    const done = (error: string | null) => {
      // After a reset the rings belong to a new driver setup: only the bookkeeping remains.
      if (generation !== this.#generation) return;
      this.#inFlight--;
      if (writeSeq) {
        this.#writesInFlight.delete(writeSeq);
        this.#startReadyFlushes();
      }
      const result = error === null
        ? { status: BlkStatus.OK, written: plan.kind === "read" ? plan.len : 0 }
        : ioFailure(`${this.name}: ${describe(req)}: ${error}`);
      this.#answer(index, queue, memory, chain.head, statusAddr, result);
    };
    try {
      if (plan.kind === "flush") {
        const start = () => {
          try {
            backend.flush(done);
          } catch (e) {
            done((e as Error).message);
          }
        };
        const barrier = this.#writeSeq;
        if (this.#writesDoneUpTo(barrier)) start();
        else this.#waitingFlushes.push({ barrier, start });
        return;
      }
      const views: Uint8Array[] = [];
      for (let i = 0; i < plan.segments.length; i++) {
        views.push(memory.slice(plan.segments[i].addr, plan.segments[i].len));
      }
      if (plan.kind === "read") {
        backend.readv(views, plan.offset, done);
      } else {
        writeSeq = ++this.#writeSeq;
        this.#writesInFlight.add(writeSeq);
        backend.writev(views, plan.offset, done);
      }
    } catch (e) {
      done((e as Error).message);
    }
  }

  /** Writes a request's status byte and gives its chain back. */
  #answer(
    index: number,
    queue: Queue,
    memory: GuestMemory,
    head: number,
    statusAddr: number,
    result: RequestResult,
  ): void {
    memory.writeU8(statusAddr, result.status);
    queue.addUsed(memory, head, result.written + 1);
    this.#unsignalled.add(index);
  }

  /** True when no write with sequence number <= `barrier` is in flight. */
  #writesDoneUpTo(barrier: number): boolean {
    for (const oldest of this.#writesInFlight) return oldest > barrier;
    return true;
  }

  #startReadyFlushes(): void {
    const waiting = this.#waitingFlushes;
    while (waiting.length > 0 && this.#writesDoneUpTo(waiting[0].barrier)) {
      waiting.shift()!.start();
    }
  }

  /** One interrupt per queue that got used entries, as the driver's EVENT_IDX / flags allow. */
  #signalUnsignalled(): void {
    const a = this.#active;
    if (!a || this.#unsignalled.size === 0) return;
    for (const index of this.#unsignalled) {
      const queue = a.queues[index];
      if (queue?.ready && queue.needsNotification(a.memory)) a.interrupt.signalUsedQueue(index);
    }
    this.#unsignalled.clear();
  }
}

function describe(req: BlkRequest): string {
  return `request ${req.head} (type ${req.type}, sector ${req.sector})`;
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
  /**
   * Serve requests through io_uring, many in flight (default true); the synchronous backend
   * when false or where io_uring cannot be set up. The owner must then call
   * `processCompletions()` when `completionFd` is readable.
   */
  asyncIo?: boolean;
}

/** Opens the image and builds the device. Throws BlockIoError when the file cannot be opened. */
export function openBlockDevice(
  config: BlockDeviceConfig,
  extra: Pick<BlockDeviceOptions, "now" | "onThrottled" | "name" | "discard" | "writeZeroes"> = {},
): BlockDevice {
  const backend = (config.asyncIo ?? true)
    ? openDiskBackend(config, config.numQueues * (config.queueSize ?? DEFAULT_QUEUE_SIZE))
    : openBackend(config);
  return new BlockDevice({
    backend,
    readonly: config.readonly,
    serial: config.serial,
    numQueues: config.numQueues,
    queueSize: config.queueSize,
    iopsTotal: config.iopsTotal,
    ...extra,
  });
}

/**
 * The backend for an image: io_uring with room for `inFlight` requests (every chain of every
 * queue: numQueues * queueSize), or the synchronous one when `asyncIo` is false (`-drive aio=off`)
 * or, with a warning, where io_uring cannot be set up. Throws BlockIoError when the image cannot
 * be opened.
 */
export function openDiskBackend(
  config: { path: string; readonly: boolean; direct: boolean; asyncIo?: boolean },
  inFlight: number,
): BlockBackend | AsyncBlockBackend {
  if (config.asyncIo === false) return openBackend(config);
  return openUringBackend(config, inFlight) ?? openBackend(config);
}

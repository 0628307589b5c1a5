/**
 * Test harness (not used by the VMM): a virtio-blk device over a temporary raw image, behind
 * an MMIO transport, driven like Linux's virtio_mmio + virtio_blk drivers in an in-memory guest.
 */
import { GuestMemory } from "../../../memory/guest_memory.ts";
import { MmioTransport } from "../mmio.ts";
import { type Buffer, DriverRing, GuestAllocator, MmioDriver } from "../test_support.ts";
import type { AsyncBlockBackend } from "./async_backend.ts";
import type { BlockBackend } from "./backend.ts";
import { BlockDevice, openBlockDevice } from "./device.ts";
import { BlkStatus } from "./request.ts";

export const RAM_SIZE = 0x200000;
export const DISK_SIZE = 64 * 1024;

export interface HarnessOptions {
  readonly?: boolean;
  /** O_DIRECT backend (needs the helper). */
  direct?: boolean;
  /**
   * The io_uring backend (needs the helper); each `submit` then waits until every request in
   * flight was answered, so tests read the rings as with the synchronous one. Default false.
   */
  asyncIo?: boolean;
  /** Serve from this backend instead of the temporary image file (which is still made). */
  backend?: BlockBackend | AsyncBlockBackend;
  diskSize?: number;
  numQueues?: number;
  queueSize?: number;
  iopsTotal?: number | null;
  now?: () => number;
  serial?: string | null;
  /** Mask over the device's features (the driver accepts the rest). */
  features?: bigint;
  /** Skip DRIVER_OK (tests that set up rings by hand). */
  noActivate?: boolean;
}

export interface Completion {
  status: number;
  usedLen: number;
  /** Guest bytes of the data buffer after completion (IN / GET_ID). */
  data: Uint8Array;
}

/** A recognisable image: byte i of the disk is (i * 7 + (i >> 9)) & 0xff. */
export function pattern(size: number): Uint8Array {
  const b = new Uint8Array(size);
  for (let i = 0; i < size; i++) b[i] = (i * 7 + (i >> 9)) & 0xff;
  return b;
}

export class BlkHarness {
  readonly path: string;
  readonly memory = GuestMemory.anonymous(RAM_SIZE);
  readonly device: BlockDevice;
  readonly transport: MmioTransport;
  readonly driver: MmioDriver;
  readonly rings: DriverRing[] = [];
  readonly alloc = new GuestAllocator(0x100000);
  readonly throttled: [number, number][] = [];
  readonly initial: Uint8Array;
  negotiated: bigint | null = null;
  irqs = 0;

  constructor(readonly options: HarnessOptions = {}) {
    this.path = Deno.makeTempFileSync({ prefix: "virtio-blk-", suffix: ".img" });
    this.initial = pattern(options.diskSize ?? DISK_SIZE);
    Deno.writeFileSync(this.path, this.initial);
    this.device = options.backend
      ? new BlockDevice({
        backend: options.backend,
        serial: options.serial === undefined ? "stratovirt-blk-0001" : options.serial,
        numQueues: options.numQueues ?? 1,
        queueSize: options.queueSize ?? 16,
        iopsTotal: options.iopsTotal ?? null,
        now: options.now,
        onThrottled: (q, delay) => this.throttled.push([q, delay]),
      })
      : openBlockDevice({
        path: this.path,
        readonly: options.readonly ?? false,
        direct: options.direct ?? false,
        serial: options.serial === undefined ? "stratovirt-blk-0001" : options.serial,
        numQueues: options.numQueues ?? 1,
        queueSize: options.queueSize ?? 16,
        iopsTotal: options.iopsTotal ?? null,
        asyncIo: options.asyncIo ?? false,
      }, {
        now: options.now,
        onThrottled: (q, delay) => this.throttled.push([q, delay]),
      });
    this.transport = new MmioTransport(this.device, {
      memory: this.memory,
      interrupt: () => this.irqs++,
    });
    this.driver = new MmioDriver(this.transport);
    this.activate();
  }

  /** (Re)initialises the device as the Linux driver does at probe time. */
  activate(): void {
    const size = this.options.queueSize ?? 16;
    this.negotiated = this.driver.negotiate(this.options.features ?? ~0n);
    this.rings.length = 0;
    for (let i = 0; i < (this.options.numQueues ?? 1); i++) {
      const ring = DriverRing.at(this.memory, size, 0x1000 + i * 0x4000);
      // A fresh ring, as the driver allocates zeroed ring memory at probe time.
      this.memory.fill(ring.desc, ring.end - ring.desc, 0);
      this.rings.push(ring);
      this.driver.setupQueue(i, ring);
    }
    if (!this.options.noActivate) this.driver.driverOk();
  }

  get ring(): DriverRing {
    return this.rings[0];
  }

  header(type: number, sector: bigint | number, len = 16): number {
    const at = this.alloc.alloc(len);
    this.memory.writeU32(at, type);
    if (len >= 16) this.memory.writeU64(at + 8, BigInt.asUintN(64, BigInt(sector)));
    return at;
  }

  buffer(len: number, fill?: Uint8Array | number): number {
    const at = this.alloc.alloc(len);
    if (fill instanceof Uint8Array) this.memory.write(at, fill);
    else this.memory.fill(at, len, fill ?? 0);
    return at;
  }

  statusByte(): number {
    return this.buffer(1, 0xff);
  }

  /**
   * Publishes a chain on queue `q` and notifies it (as the guest's QueueNotify write); with
   * `asyncIo`, then waits for the answers of everything in flight.
   */
  submit(buffers: Buffer[], q = 0): number {
    const ring = this.rings[q];
    const head = ring.chain(buffers);
    ring.publish(head);
    this.driver.notify(q);
    this.device.settle();
    return head;
  }

  /** A well-formed request: header, one data buffer (if any), status. */
  request(
    type: number,
    sector: bigint | number,
    data: { out?: Uint8Array; inLen?: number } = {},
    q = 0,
  ): Completion {
    const before = this.rings[q].usedIdx;
    const hdr = this.header(type, sector);
    const buffers: Buffer[] = [{ addr: hdr, len: 16 }];
    let dataAddr = 0;
    let dataLen = 0;
    if (data.out) {
      dataLen = data.out.length;
      dataAddr = this.buffer(dataLen, data.out);
      buffers.push({ addr: dataAddr, len: dataLen });
    } else if (data.inLen) {
      dataLen = data.inLen;
      dataAddr = this.buffer(dataLen, 0xee);
      buffers.push({ addr: dataAddr, len: dataLen, write: true });
    }
    const status = this.statusByte();
    buffers.push({ addr: status, len: 1, write: true });
    this.submit(buffers, q);
    const ring = this.rings[q];
    if (ring.usedIdx !== ((before + 1) & 0xffff)) {
      throw new Error(`request not completed (used idx ${ring.usedIdx}, was ${before})`);
    }
    return {
      status: this.memory.readU8(status),
      usedLen: ring.usedEntry(before).len,
      data: dataLen ? this.memory.read(dataAddr, dataLen) : new Uint8Array(),
    };
  }

  disk(): Uint8Array {
    return Deno.readFileSync(this.path);
  }

  close(): void {
    this.device.close();
    Deno.removeSync(this.path);
  }
}

export const OK = BlkStatus.OK;
export const IOERR = BlkStatus.IOERR;
export const UNSUPP = BlkStatus.UNSUPP;

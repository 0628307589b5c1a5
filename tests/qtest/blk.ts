/**
 * virtio-blk requests over the qtest virtio-mmio driver: a header, an optional data buffer and
 * a status byte in guest RAM, one descriptor chain, a notify, and the used ring read back.
 */
import { QtestClient } from "./client.ts";
import {
  GuestAllocator,
  MMIO,
  RemoteRing,
  STATUS,
  VIRTIO_F_VERSION_1,
  VirtioMmioDriver,
} from "./virtio_driver.ts";

export const BLK = { IN: 0, OUT: 1, FLUSH: 4, GET_ID: 8, DISCARD: 11, WRITE_ZEROES: 13 } as const;
export const BLK_S = { OK: 0, IOERR: 1, UNSUPP: 2 } as const;
export const BLK_F = { SEG_MAX: 2, RO: 5, BLK_SIZE: 6, FLUSH: 9, DISCARD: 13, WRITE_ZEROES: 14 };

/** First microvm virtio-mmio slot: where the first virtio-blk-device sits. */
export const SLOT0 = { base: 0xf010_0000, irq: 5 };
/** Guest RAM the tests put rings and buffers in (above the real-mode area). */
export const HEAP_START = 0x10_0000;

export function bit(n: number): bigint {
  return 1n << BigInt(n);
}

export interface BlkResult {
  head: number;
  /** The status byte the device wrote (0xff: left untouched). */
  status: number;
  /** The used-ring length. */
  usedLen: number;
  /** The data buffer after completion (reads and GET_ID). */
  data: Uint8Array;
}

/** A virtio-blk device set up through the protocol: features negotiated, queue 0 live. */
export class BlkDriver {
  constructor(
    readonly qt: QtestClient,
    readonly dev: VirtioMmioDriver,
    readonly ring: RemoteRing,
    readonly alloc: GuestAllocator,
    readonly features: bigint,
  ) {}

  static async setup(
    qt: QtestClient,
    options: { wanted?: bigint; queueSize?: number; slot?: { base: number; irq: number } } = {},
  ): Promise<BlkDriver> {
    const slot = options.slot ?? SLOT0;
    const dev = new VirtioMmioDriver(qt, slot.base, slot.irq);
    const wanted = options.wanted ??
      (VIRTIO_F_VERSION_1 | bit(BLK_F.FLUSH) | bit(BLK_F.DISCARD) | bit(BLK_F.WRITE_ZEROES) |
        bit(BLK_F.BLK_SIZE) | bit(BLK_F.SEG_MAX) | bit(BLK_F.RO));
    const features = await dev.negotiate(wanted);
    if (features === null) throw new Error("the device refused FEATURES_OK");
    const alloc = new GuestAllocator(HEAP_START);
    const ring = await RemoteRing.create(qt, alloc, options.queueSize ?? 16);
    await dev.setupQueue(0, ring);
    await dev.driverOk();
    const status = await dev.status();
    if (!(status & STATUS.DRIVER_OK) || (status & STATUS.DEVICE_NEEDS_RESET)) {
      throw new Error(`DRIVER_OK not accepted: status 0x${status.toString(16)}`);
    }
    return new BlkDriver(qt, dev, ring, alloc, features);
  }

  /**
   * Submits one request and returns what the device wrote back. `payload` is the data of a
   * write (or a discard / write-zeroes segment); `readLen` the size of a read buffer.
   */
  async request(
    type: number,
    sector: bigint,
    options: { payload?: Uint8Array; readLen?: number } = {},
  ): Promise<BlkResult> {
    const { qt, ring } = this;
    const header = this.alloc.alloc(16);
    const commands = [QtestClient.writeCmd(header, requestHeader(type, sector))];
    const buffers: { addr: number; len: number; write?: boolean }[] = [{ addr: header, len: 16 }];
    let dataAddr = -1;
    let dataLen = 0;
    if (options.payload) {
      dataLen = options.payload.length;
      dataAddr = this.alloc.alloc(dataLen);
      commands.push(QtestClient.writeCmd(dataAddr, options.payload));
      buffers.push({ addr: dataAddr, len: dataLen });
    } else if (options.readLen) {
      dataLen = options.readLen;
      dataAddr = this.alloc.alloc(dataLen);
      commands.push(`memset 0x${dataAddr.toString(16)} ${dataLen} 0xa5`);
      buffers.push({ addr: dataAddr, len: dataLen, write: true });
    }
    const statusAddr = this.alloc.alloc(1);
    commands.push(`writeb 0x${statusAddr.toString(16)} 0xff`);
    buffers.push({ addr: statusAddr, len: 1, write: true });
    const chain = ring.chainCommands(buffers);
    commands.push(...chain.commands, ...ring.publishCommands(chain.head));
    commands.push(this.dev.notifyCmd(0));
    await qt.ok(...commands);
    const used = await ring.usedIdx();
    if (used !== ring.availIdx) {
      throw new Error(`used idx ${used} after notify, expected ${ring.availIdx}`);
    }
    const entry = await ring.usedEntry(used - 1);
    const status = await qt.readb(statusAddr);
    const data = options.readLen ? await qt.read(dataAddr, dataLen) : new Uint8Array(0);
    return { head: entry.id, status, usedLen: entry.len, data };
  }
}

/** A 16-byte request header: type, reserved, sector. */
export function requestHeader(type: number, sector: bigint): Uint8Array {
  const h = new Uint8Array(16);
  const v = new DataView(h.buffer);
  v.setUint32(0, type, true);
  v.setBigUint64(8, sector, true);
  return h;
}

/** A 16-byte discard / write-zeroes segment. */
export function segment(sector: bigint, sectors: number, flags = 0): Uint8Array {
  const s = new Uint8Array(16);
  const v = new DataView(s.buffer);
  v.setBigUint64(0, sector, true);
  v.setUint32(8, sectors, true);
  v.setUint32(12, flags, true);
  return s;
}

export { MMIO, STATUS };

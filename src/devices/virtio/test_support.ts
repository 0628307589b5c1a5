/**
 * Test helpers (not used by the VMM): the driver side of a split virtqueue in an in-memory
 * guest, and a virtio-mmio driver that programs the transport the way Linux's virtio_mmio
 * does. Tests build rings and requests with these and look at what the device wrote back.
 */
import type { GuestMemory } from "../../memory/guest_memory.ts";
import { DescFlag, feature, FeatureBit, Status } from "./constants.ts";
import { MmioReg, type MmioTransport } from "./mmio.ts";
import { availRingBytes, descTableBytes, usedRingBytes } from "./queue.ts";

export interface Buffer {
  addr: number;
  len: number;
  write?: boolean;
}

/** A raw descriptor as the driver writes it. */
export interface RawDesc {
  addr: number | bigint;
  len: number;
  flags: number;
  next: number;
}

/** The driver's half of one split ring. */
export class DriverRing {
  availIdx = 0;
  #nextDesc = 0;

  constructor(
    readonly memory: GuestMemory,
    readonly size: number,
    readonly desc: number,
    readonly avail: number,
    readonly used: number,
  ) {}

  /** Places the three parts back to back from `base` (aligned 4 KiB by the caller). */
  static at(memory: GuestMemory, size: number, base: number): DriverRing {
    const desc = base;
    const avail = desc + descTableBytes(size);
    const used = Math.ceil((avail + availRingBytes(size)) / 4096) * 4096;
    return new DriverRing(memory, size, desc, avail, used);
  }

  /** Bytes from `base` the ring occupies. */
  get end(): number {
    return this.used + usedRingBytes(this.size);
  }

  writeDesc(index: number, d: RawDesc, table = this.desc): void {
    const at = table + 16 * index;
    this.memory.writeU64(at, BigInt(d.addr));
    this.memory.writeU32(at + 8, d.len);
    this.memory.writeU16(at + 12, d.flags);
    this.memory.writeU16(at + 14, d.next);
  }

  /** Writes `buffers` as a chain of consecutive free descriptors; returns the head index. */
  chain(buffers: Buffer[]): number {
    const head = this.#nextDesc;
    buffers.forEach((b, i) => {
      const index = (head + i) % this.size;
      const last = i === buffers.length - 1;
      this.writeDesc(index, {
        addr: b.addr,
        len: b.len,
        flags: (b.write ? DescFlag.WRITE : 0) | (last ? 0 : DescFlag.NEXT),
        next: last ? 0 : (index + 1) % this.size,
      });
    });
    this.#nextDesc = (head + buffers.length) % this.size;
    return head;
  }

  /** Writes `buffers` as an indirect table at `table`, referenced by one descriptor. */
  indirectChain(buffers: Buffer[], table: number): number {
    buffers.forEach((b, i) => {
      const last = i === buffers.length - 1;
      this.writeDesc(i, {
        addr: b.addr,
        len: b.len,
        flags: (b.write ? DescFlag.WRITE : 0) | (last ? 0 : DescFlag.NEXT),
        next: last ? 0 : i + 1,
      }, table);
    });
    const head = this.#nextDesc;
    this.writeDesc(head, {
      addr: table,
      len: 16 * buffers.length,
      flags: DescFlag.INDIRECT,
      next: 0,
    });
    this.#nextDesc = (head + 1) % this.size;
    return head;
  }

  /** Makes `head` available and publishes the new avail idx. */
  publish(head: number): void {
    this.memory.writeU16(this.avail + 4 + 2 * (this.availIdx % this.size), head);
    this.availIdx = (this.availIdx + 1) & 0xffff;
    this.memory.writeU16(this.avail + 2, this.availIdx);
  }

  /** Sets avail->idx directly (for tests of bad indices and wrap-around). */
  setAvailIdx(v: number): void {
    this.availIdx = v & 0xffff;
    this.memory.writeU16(this.avail + 2, this.availIdx);
  }

  setAvailFlags(v: number): void {
    this.memory.writeU16(this.avail, v);
  }
  setUsedEvent(v: number): void {
    this.memory.writeU16(this.avail + 4 + 2 * this.size, v);
  }
  get availEvent(): number {
    return this.memory.readU16(this.used + 4 + 8 * this.size);
  }
  get usedIdx(): number {
    return this.memory.readU16(this.used + 2);
  }
  usedEntry(i: number): { id: number; len: number } {
    const at = this.used + 4 + 8 * (i % this.size);
    return { id: this.memory.readU32(at), len: this.memory.readU32(at + 4) };
  }
}

/** Hands out guest addresses for buffers, bump style. */
export class GuestAllocator {
  constructor(public next: number, readonly align = 16) {}
  alloc(len: number): number {
    const at = this.next;
    this.next = Math.ceil((at + Math.max(len, 1)) / this.align) * this.align;
    return at;
  }
}

/** Programs an MmioTransport as Linux's virtio_mmio driver does. */
export class MmioDriver {
  constructor(readonly transport: MmioTransport) {}

  r32(offset: number): number {
    const b = new Uint8Array(4);
    this.transport.read(offset, b);
    return new DataView(b.buffer).getUint32(0, true);
  }
  w32(offset: number, v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v >>> 0, true);
    this.transport.write(offset, b);
  }
  get status(): number {
    return this.r32(MmioReg.STATUS);
  }
  addStatus(bit: number): void {
    this.w32(MmioReg.STATUS, this.status | bit);
  }

  deviceFeatures(): bigint {
    this.w32(MmioReg.DEVICE_FEATURES_SEL, 1);
    const hi = this.r32(MmioReg.DEVICE_FEATURES);
    this.w32(MmioReg.DEVICE_FEATURES_SEL, 0);
    const lo = this.r32(MmioReg.DEVICE_FEATURES);
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  writeDriverFeatures(f: bigint): void {
    this.w32(MmioReg.DRIVER_FEATURES_SEL, 1);
    this.w32(MmioReg.DRIVER_FEATURES, Number((f >> 32n) & 0xffff_ffffn));
    this.w32(MmioReg.DRIVER_FEATURES_SEL, 0);
    this.w32(MmioReg.DRIVER_FEATURES, Number(f & 0xffff_ffffn));
  }

  /**
   * Reset, ACKNOWLEDGE, DRIVER, negotiate (device features ∩ `wanted`), FEATURES_OK and read
   * it back. Returns the negotiated set, or null when the device refused FEATURES_OK.
   */
  negotiate(wanted: bigint = ~0n): bigint | null {
    this.w32(MmioReg.STATUS, 0);
    this.addStatus(Status.ACKNOWLEDGE);
    this.addStatus(Status.DRIVER);
    const f = this.deviceFeatures() & wanted;
    this.writeDriverFeatures(f);
    this.addStatus(Status.FEATURES_OK);
    return this.status & Status.FEATURES_OK ? f : null;
  }

  setupQueue(index: number, ring: DriverRing): void {
    this.w32(MmioReg.QUEUE_SEL, index);
    this.w32(MmioReg.QUEUE_NUM, ring.size);
    const split = (a: number): [number, number] => [a % 2 ** 32, Math.floor(a / 2 ** 32)];
    const [dl, dh] = split(ring.desc);
    const [al, ah] = split(ring.avail);
    const [ul, uh] = split(ring.used);
    this.w32(MmioReg.QUEUE_DESC_LOW, dl);
    this.w32(MmioReg.QUEUE_DESC_HIGH, dh);
    this.w32(MmioReg.QUEUE_DRIVER_LOW, al);
    this.w32(MmioReg.QUEUE_DRIVER_HIGH, ah);
    this.w32(MmioReg.QUEUE_DEVICE_LOW, ul);
    this.w32(MmioReg.QUEUE_DEVICE_HIGH, uh);
    this.w32(MmioReg.QUEUE_READY, 1);
  }

  driverOk(): void {
    this.addStatus(Status.DRIVER_OK);
  }

  notify(index: number): void {
    this.w32(MmioReg.QUEUE_NOTIFY, index);
  }

  ackInterrupt(): number {
    const s = this.r32(MmioReg.INTERRUPT_STATUS);
    this.w32(MmioReg.INTERRUPT_ACK, s);
    return s;
  }
}

/** Features every modern driver wants. */
export const RING_FEATURES = feature(FeatureBit.VERSION_1) | feature(FeatureBit.EVENT_IDX) |
  feature(FeatureBit.INDIRECT_DESC);

/**
 * A virtio-mmio driver over the qtest protocol: the register sequence of Linux's virtio_mmio
 * (reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK, queues, DRIVER_OK) and split rings whose
 * descriptor table, available and used rings live in guest RAM, written through the protocol.
 */
import { QtestClient } from "./client.ts";

export const MMIO = {
  MAGIC_VALUE: 0x000,
  VERSION: 0x004,
  DEVICE_ID: 0x008,
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
  CONFIG: 0x100,
} as const;

export const STATUS = {
  ACKNOWLEDGE: 1,
  DRIVER: 2,
  DRIVER_OK: 4,
  FEATURES_OK: 8,
  DEVICE_NEEDS_RESET: 0x40,
  FAILED: 0x80,
} as const;

export const VIRTIO_F_VERSION_1 = 1n << 32n;
export const DESC_F_NEXT = 1;
export const DESC_F_WRITE = 2;
export const DESC_F_INDIRECT = 4;

/** Hands out guest addresses, bump style. */
export class GuestAllocator {
  constructor(public next: number) {}
  alloc(len: number, align = 16): number {
    const at = Math.ceil(this.next / align) * align;
    this.next = at + Math.max(len, 1);
    return at;
  }
}

export interface Buffer {
  addr: number;
  len: number;
  write?: boolean;
}

/** The driver's half of one split ring, in guest RAM. */
export class RemoteRing {
  availIdx = 0;
  #nextDesc = 0;

  constructor(
    readonly qt: QtestClient,
    readonly size: number,
    readonly desc: number,
    readonly avail: number,
    readonly used: number,
  ) {}

  /** Allocates the three parts (each 4 KiB aligned) and zeroes them. */
  static async create(qt: QtestClient, alloc: GuestAllocator, size: number): Promise<RemoteRing> {
    const desc = alloc.alloc(16 * size, 4096);
    const avail = alloc.alloc(6 + 2 * size, 4096);
    const used = alloc.alloc(6 + 8 * size, 4096);
    await qt.ok(
      `memset 0x${desc.toString(16)} ${16 * size} 0`,
      `memset 0x${avail.toString(16)} ${6 + 2 * size} 0`,
      `memset 0x${used.toString(16)} ${6 + 8 * size} 0`,
    );
    return new RemoteRing(qt, size, desc, avail, used);
  }

  /** Commands writing one raw descriptor. */
  descCommands(index: number, addr: number | bigint, len: number, flags: number, next: number) {
    const at = this.desc + 16 * index;
    return [
      QtestClient.cmd("writeq", at, BigInt(addr)),
      QtestClient.cmd("writel", at + 8, len >>> 0),
      QtestClient.cmd("writew", at + 12, flags),
      QtestClient.cmd("writew", at + 14, next),
    ];
  }

  /** Commands writing `buffers` as a chain of consecutive descriptors; returns the head too. */
  chainCommands(buffers: Buffer[]): { head: number; commands: string[] } {
    const head = this.#nextDesc;
    const commands: string[] = [];
    buffers.forEach((b, i) => {
      const index = (head + i) % this.size;
      const last = i === buffers.length - 1;
      const flags = (b.write ? DESC_F_WRITE : 0) | (last ? 0 : DESC_F_NEXT);
      commands.push(
        ...this.descCommands(index, b.addr, b.len, flags, last ? 0 : (index + 1) % this.size),
      );
    });
    this.#nextDesc = (head + buffers.length) % this.size;
    return { head, commands };
  }

  /** Commands making `head` available and publishing the new avail idx. */
  publishCommands(head: number): string[] {
    const slot = this.avail + 4 + 2 * (this.availIdx % this.size);
    this.availIdx = (this.availIdx + 1) & 0xffff;
    return [
      QtestClient.cmd("writew", slot, head),
      QtestClient.cmd("writew", this.avail + 2, this.availIdx),
    ];
  }

  async usedIdx(): Promise<number> {
    return await this.qt.readw(this.used + 2);
  }

  async usedEntry(i: number): Promise<{ id: number; len: number }> {
    const at = this.used + 4 + 8 * (i % this.size);
    const [id, len] = await this.qt.ok(
      `readl 0x${at.toString(16)}`,
      `readl 0x${(at + 4).toString(16)}`,
    );
    return { id: Number(id), len: Number(len) };
  }
}

/** One virtio-mmio device at `base`, interrupt line `irq`. */
export class VirtioMmioDriver {
  constructor(readonly qt: QtestClient, readonly base: number, readonly irq: number) {}

  async r32(offset: number): Promise<number> {
    return await this.qt.readl(this.base + offset);
  }
  w32Cmd(offset: number, v: number): string {
    return QtestClient.cmd("writel", this.base + offset, v >>> 0);
  }
  async w32(offset: number, v: number): Promise<void> {
    await this.qt.ok(this.w32Cmd(offset, v));
  }
  async status(): Promise<number> {
    return await this.r32(MMIO.STATUS);
  }
  async addStatus(bit: number): Promise<void> {
    await this.w32(MMIO.STATUS, (await this.status()) | bit);
  }
  async reset(): Promise<void> {
    await this.w32(MMIO.STATUS, 0);
  }

  async deviceFeatures(): Promise<bigint> {
    await this.w32(MMIO.DEVICE_FEATURES_SEL, 1);
    const hi = await this.r32(MMIO.DEVICE_FEATURES);
    await this.w32(MMIO.DEVICE_FEATURES_SEL, 0);
    const lo = await this.r32(MMIO.DEVICE_FEATURES);
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  async writeDriverFeatures(f: bigint): Promise<void> {
    await this.qt.ok(
      this.w32Cmd(MMIO.DRIVER_FEATURES_SEL, 1),
      this.w32Cmd(MMIO.DRIVER_FEATURES, Number((f >> 32n) & 0xffff_ffffn)),
      this.w32Cmd(MMIO.DRIVER_FEATURES_SEL, 0),
      this.w32Cmd(MMIO.DRIVER_FEATURES, Number(f & 0xffff_ffffn)),
    );
  }

  /**
   * Reset, ACKNOWLEDGE, DRIVER, accept (device features ∩ wanted), FEATURES_OK, read it back.
   * Returns the accepted set, or null when the device refused FEATURES_OK.
   */
  async negotiate(wanted: bigint): Promise<bigint | null> {
    await this.reset();
    await this.addStatus(STATUS.ACKNOWLEDGE);
    await this.addStatus(STATUS.DRIVER);
    const f = (await this.deviceFeatures()) & wanted;
    await this.writeDriverFeatures(f);
    await this.addStatus(STATUS.FEATURES_OK);
    return (await this.status()) & STATUS.FEATURES_OK ? f : null;
  }

  async setupQueue(index: number, ring: RemoteRing): Promise<void> {
    await this.qt.ok(...this.queueCmds(index, ring, true));
  }

  /**
   * The register writes that give queue `index` its size and ring addresses (64-bit, as bigints
   * too, so tests can write any value), then QueueReady when `ready`.
   */
  queueCmds(
    index: number,
    q: { size: number; desc: number | bigint; avail: number | bigint; used: number | bigint },
    ready: boolean,
  ): string[] {
    const split = (a: number | bigint): [number, number] => {
      const b = BigInt(a);
      return [Number(b & 0xffff_ffffn), Number((b >> 32n) & 0xffff_ffffn)];
    };
    const [dl, dh] = split(q.desc);
    const [al, ah] = split(q.avail);
    const [ul, uh] = split(q.used);
    const cmds = [
      this.w32Cmd(MMIO.QUEUE_SEL, index),
      this.w32Cmd(MMIO.QUEUE_NUM, q.size),
      this.w32Cmd(MMIO.QUEUE_DESC_LOW, dl),
      this.w32Cmd(MMIO.QUEUE_DESC_HIGH, dh),
      this.w32Cmd(MMIO.QUEUE_DRIVER_LOW, al),
      this.w32Cmd(MMIO.QUEUE_DRIVER_HIGH, ah),
      this.w32Cmd(MMIO.QUEUE_DEVICE_LOW, ul),
      this.w32Cmd(MMIO.QUEUE_DEVICE_HIGH, uh),
    ];
    if (ready) cmds.push(this.w32Cmd(MMIO.QUEUE_READY, 1));
    return cmds;
  }

  async driverOk(): Promise<void> {
    await this.addStatus(STATUS.DRIVER_OK);
  }

  notifyCmd(queue: number): string {
    return this.w32Cmd(MMIO.QUEUE_NOTIFY, queue);
  }

  /** Reads and acknowledges InterruptStatus. */
  async ackInterrupt(): Promise<number> {
    const s = await this.r32(MMIO.INTERRUPT_STATUS);
    await this.w32(MMIO.INTERRUPT_ACK, s);
    return s;
  }
}

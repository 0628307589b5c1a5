/**
 * The split virtqueue (virtio 1.2 §2.7) as a device sees it: the driver's descriptor table and
 * available ring, the device's used ring, all in guest RAM.
 *
 * Everything the guest wrote is untrusted. `validate` checks the ring geometry before a device
 * uses the queue; `pop` walks one descriptor chain and refuses anything malformed (addresses
 * outside RAM, loops, bad indirect tables, an available index that jumps too far) with a
 * QueueError, which the device answers by asking for a reset. A chain that `pop` returns is
 * safe to access through `GuestMemory.slice`.
 *
 * Layouts (little-endian):
 *   descriptor (16 bytes, table aligned 16): u64 addr, u32 len, u16 flags, u16 next
 *   avail (aligned 2): u16 flags, u16 idx, u16 ring[size], u16 used_event
 *   used (aligned 4): u16 flags, u16 idx, {u32 id, u32 len} ring[size], u16 avail_event
 */
import { type GuestMemory, u64AsNumber } from "../../memory/guest_memory.ts";
import { DescFlag, VIRTQ_AVAIL_F_NO_INTERRUPT } from "./constants.ts";

/** A descriptor as read from guest RAM, before any check (see descriptorAt). */
interface RawDescriptor {
  /** Where it sits in guest RAM. */
  readonly at: number;
  /** -1 when 2^53 or more. */
  readonly addr: number;
  readonly len: number;
  readonly flags: number;
  readonly next: number;
}

/** The largest queue size a split ring can have (§2.7). */
export const MAX_QUEUE_SIZE = 32768;
export const DESCRIPTOR_SIZE = 16;

/** The guest put something into a queue that a device must not act on. */
export class QueueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "QueueError";
  }
}

/** One buffer of a chain, already checked to lie inside guest RAM. */
export interface Descriptor {
  readonly addr: number;
  readonly len: number;
  /** Device-writable (the device fills it) rather than device-readable. */
  readonly writable: boolean;
}

/** A descriptor chain with indirect tables flattened, in chain order. */
export interface DescriptorChain {
  /** Index of the head descriptor: the id the used ring entry must carry. */
  readonly head: number;
  readonly descriptors: readonly Descriptor[];
}

function hex(n: number | bigint): string {
  return "0x" + n.toString(16);
}

export function descTableBytes(size: number): number {
  return DESCRIPTOR_SIZE * size;
}
export function availRingBytes(size: number): number {
  return 6 + 2 * size;
}
export function usedRingBytes(size: number): number {
  return 6 + 8 * size;
}

/**
 * DataViews over the three ring parts as they were when made: ring accesses, several per
 * request, then cost no region lookup. Made again when the memory, an address or the size
 * changed (the transport sets those fields directly).
 */
interface RingViews {
  readonly memory: GuestMemory;
  readonly descTable: number;
  readonly availRing: number;
  readonly usedRing: number;
  readonly size: number;
  readonly desc: DataView;
  readonly avail: DataView;
  readonly used: DataView;
}

/**
 * Entry `index` of the descriptor table seen through `table`, which starts at guest address
 * `tableGpa`. `addr` is -1 when the guest wrote 2^53 or more (then outside RAM; an error message
 * reads the exact value again from `at`).
 */
function descriptorAt(table: DataView, index: number, tableGpa: number): RawDescriptor {
  const o = DESCRIPTOR_SIZE * index;
  return {
    at: tableGpa + o,
    addr: u64AsNumber(table, o),
    len: table.getUint32(o + 8, true),
    flags: table.getUint16(o + 12, true),
    next: table.getUint16(o + 14, true),
  };
}

function viewOf(memory: GuestMemory, gpa: number, len: number): DataView {
  // GuestMemoryError when the range is not in RAM, as a read through `memory` would throw.
  const bytes = memory.slice(gpa, len);
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export class Queue {
  /** Driver-chosen size (QueueNum); starts at the maximum. */
  size: number;
  ready = false;
  /** Guest physical addresses of the three parts (QueueDesc, QueueDriver, QueueDevice). */
  descTable = 0;
  availRing = 0;
  usedRing = 0;
  /** Negotiated VIRTIO_F_EVENT_IDX / VIRTIO_F_INDIRECT_DESC, set at activation. */
  eventIdx = false;
  indirect = false;

  /** Next available ring slot the device will consume (free-running 16-bit). */
  nextAvail = 0;
  /** Next used ring slot the device will fill (free-running 16-bit). */
  nextUsed = 0;
  /** `nextUsed` when the driver was last interrupted, or null before the first interrupt. */
  #signalledUsed: number | null = null;
  #views: RingViews | null = null;

  constructor(readonly maxSize: number) {
    if (!Number.isInteger(maxSize) || maxSize < 1 || maxSize > MAX_QUEUE_SIZE) {
      throw new RangeError(`queue max size ${maxSize} is not in 1..${MAX_QUEUE_SIZE}`);
    }
    if ((maxSize & (maxSize - 1)) !== 0) {
      throw new RangeError(`queue max size ${maxSize} is not a power of 2`);
    }
    this.size = maxSize;
  }

  /** Back to the state after device reset: not ready, default size, addresses zero. */
  reset(): void {
    this.size = this.maxSize;
    this.ready = false;
    this.descTable = 0;
    this.availRing = 0;
    this.usedRing = 0;
    this.eventIdx = false;
    this.indirect = false;
    this.nextAvail = 0;
    this.nextUsed = 0;
    this.#signalledUsed = null;
    this.#views = null;
  }

  #ring(memory: GuestMemory): RingViews {
    const v = this.#views;
    if (
      v !== null && v.memory === memory && v.descTable === this.descTable &&
      v.availRing === this.availRing && v.usedRing === this.usedRing && v.size === this.size
    ) {
      return v;
    }
    const size = this.size;
    const made: RingViews = {
      memory,
      descTable: this.descTable,
      availRing: this.availRing,
      usedRing: this.usedRing,
      size,
      desc: viewOf(memory, this.descTable, descTableBytes(size)),
      avail: viewOf(memory, this.availRing, availRingBytes(size)),
      used: viewOf(memory, this.usedRing, usedRingBytes(size)),
    };
    this.#views = made;
    return made;
  }

  /** Null when the queue can be used, otherwise what is wrong with what the driver set up. */
  validate(memory: GuestMemory): string | null {
    const n = this.size;
    if (!this.ready) return "queue is not ready";
    if (n < 1 || n > this.maxSize || (n & (n - 1)) !== 0) {
      return `queue size ${n} is not a power of 2 in 1..${this.maxSize}`;
    }
    const parts: [string, number, number, number][] = [
      ["descriptor table", this.descTable, descTableBytes(n), 16],
      ["available ring", this.availRing, availRingBytes(n), 2],
      ["used ring", this.usedRing, usedRingBytes(n), 4],
    ];
    for (const [what, addr, len, align] of parts) {
      if (Number.isSafeInteger(addr) && addr % align !== 0) {
        return `${what} address ${hex(addr)} is not aligned to ${align}`;
      }
      if (!Number.isSafeInteger(addr) || !memory.contains(addr, len)) {
        return `${what} ${hex(addr)}+${hex(len)} is outside guest RAM`;
      }
    }
    return null;
  }

  /** The driver's avail->idx. */
  availIdx(memory: GuestMemory): number {
    return this.#ring(memory).avail.getUint16(2, true);
  }

  /** How many chains the driver has made available and the device has not taken. */
  pending(memory: GuestMemory): number {
    const count = (this.availIdx(memory) - this.nextAvail) & 0xffff;
    if (count > this.size) {
      throw new QueueError(
        `avail idx ${this.availIdx(memory)} is ${count} ahead of the device's ` +
          `${this.nextAvail}, more than the queue size ${this.size}`,
      );
    }
    return count;
  }

  /** Takes the next available chain, or null when there is none. Throws QueueError. */
  pop(memory: GuestMemory): DescriptorChain | null {
    if (this.pending(memory) === 0) return null;
    const slot = this.nextAvail % this.size;
    const head = this.#ring(memory).avail.getUint16(4 + 2 * slot, true);
    const chain = this.#walk(memory, head);
    this.nextAvail = (this.nextAvail + 1) & 0xffff;
    return chain;
  }

  /** Gives chain `head` back to the driver with `len` bytes written into its buffers. */
  addUsed(memory: GuestMemory, head: number, len: number): void {
    const used = this.#ring(memory).used;
    const entry = 4 + 8 * (this.nextUsed % this.size);
    used.setUint32(entry, head, true);
    used.setUint32(entry + 4, len >>> 0, true);
    this.nextUsed = (this.nextUsed + 1) & 0xffff;
    // The entry must be visible before the index that publishes it.
    used.setUint16(2, this.nextUsed, true);
  }

  /**
   * Whether the driver wants an interrupt for the used entries added since the last one
   * (§2.7.10: used_event with EVENT_IDX, else avail->flags NO_INTERRUPT).
   */
  needsNotification(memory: GuestMemory): boolean {
    const newUsed = this.nextUsed;
    const old = this.#signalledUsed;
    this.#signalledUsed = newUsed;
    if (old === newUsed) return false;
    const avail = this.#ring(memory).avail;
    if (!this.eventIdx) return (avail.getUint16(0, true) & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0;
    if (old === null) return true;
    const usedEvent = avail.getUint16(4 + 2 * this.size, true);
    return needEvent(usedEvent, newUsed, old);
  }

  /**
   * With EVENT_IDX, tells the driver to notify when it makes slot `nextAvail` available
   * (avail_event), then reports whether chains arrived meanwhile: the caller keeps
   * processing when true, so a notification racing with this write is never lost.
   */
  enableNotification(memory: GuestMemory): boolean {
    if (this.eventIdx) this.#ring(memory).used.setUint16(4 + 8 * this.size, this.nextAvail, true);
    return this.pending(memory) > 0;
  }

  #walk(memory: GuestMemory, head: number): DescriptorChain {
    if (head >= this.size) {
      throw new QueueError(`chain head ${head} is not below the queue size ${this.size}`);
    }
    const out: Descriptor[] = [];
    let sawWritable = false;
    const push = (d: RawDescriptor, at: string | number) => {
      const writable = (d.flags & DescFlag.WRITE) !== 0;
      if (d.addr < 0 || !memory.contains(d.addr, d.len)) {
        // A descriptor of the ring itself comes as its index; its name is built only for errors.
        const where = typeof at === "number" ? `descriptor ${at} (head ${head})` : at;
        // The guest's address as written (a number would round it above 2^53).
        const written = memory.readU64(d.at);
        throw new QueueError(`${where}: buffer ${hex(written)}+${hex(d.len)} is outside guest RAM`);
      }
      if (!writable && sawWritable) {
        const where = typeof at === "number" ? `descriptor ${at} (head ${head})` : at;
        throw new QueueError(`${where}: a device-readable buffer follows a device-writable one`);
      }
      sawWritable ||= writable;
      out.push({ addr: d.addr, len: d.len, writable });
    };

    let index = head;
    let steps = 0;
    for (;;) {
      if (++steps > this.size) {
        throw new QueueError(`chain at head ${head} is longer than the queue size ${this.size}`);
      }
      const d = descriptorAt(this.#ring(memory).desc, index, this.descTable);
      if (d.flags & DescFlag.INDIRECT) {
        const where = `descriptor ${index} (head ${head})`;
        if (!this.indirect) {
          throw new QueueError(`${where}: INDIRECT without VIRTIO_F_INDIRECT_DESC`);
        }
        if (d.flags & DescFlag.NEXT) throw new QueueError(`${where}: INDIRECT combined with NEXT`);
        this.#walkIndirect(memory, d, where, push);
        break;
      }
      push(d, index);
      if (!(d.flags & DescFlag.NEXT)) break;
      if (d.next >= this.size) {
        throw new QueueError(
          `descriptor ${index} (head ${head}): next ${d.next} is not below the queue size ${this.size}`,
        );
      }
      index = d.next;
    }
    return { head, descriptors: out };
  }

  #walkIndirect(
    memory: GuestMemory,
    table: RawDescriptor,
    where: string,
    push: (d: RawDescriptor, where: string | number) => void,
  ): void {
    const tableLen = table.len;
    if (tableLen === 0 || tableLen % DESCRIPTOR_SIZE !== 0) {
      throw new QueueError(`${where}: indirect table length ${tableLen} is not a multiple of 16`);
    }
    const count = tableLen / DESCRIPTOR_SIZE;
    if (count > this.size) {
      throw new QueueError(
        `${where}: indirect table has ${count} entries, more than the queue size ${this.size}`,
      );
    }
    const base = table.addr;
    if (base < 0 || !memory.contains(base, tableLen)) {
      const written = memory.readU64(table.at);
      throw new QueueError(
        `${where}: indirect table ${hex(written)}+${hex(tableLen)} is outside RAM`,
      );
    }
    const entries = viewOf(memory, base, tableLen);
    let index = 0;
    let steps = 0;
    for (;;) {
      if (++steps > count) throw new QueueError(`${where}: indirect table chain loops`);
      const d = descriptorAt(entries, index, base);
      const at = `${where}, indirect entry ${index}`;
      if (d.flags & DescFlag.INDIRECT) throw new QueueError(`${at}: nested indirect table`);
      push(d, at);
      if (!(d.flags & DescFlag.NEXT)) return;
      if (d.next >= count) {
        throw new QueueError(`${at}: next ${d.next} is outside the ${count}-entry table`);
      }
      index = d.next;
    }
  }
}

/** vring_need_event (§2.7.10): has new_idx moved past event_idx since old_idx? */
export function needEvent(eventIdx: number, newIdx: number, oldIdx: number): boolean {
  return ((newIdx - eventIdx - 1) & 0xffff) < ((newIdx - oldIdx) & 0xffff);
}

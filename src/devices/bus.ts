/**
 * PIO and MMIO dispatch: a set of non-overlapping address ranges, each owned by a device model.
 * A vCPU exit (or a test) hands an address and a byte buffer to `read`/`write`; the bus finds the
 * range holding the first byte by binary search over the sorted range starts and calls the device
 * with the offset inside its range. Addresses are numbers (guest physical addresses fit in 2^53).
 */

/**
 * A device model as the bus sees it. Handlers are synchronous and get the offset within the
 * device's range; `data.length` is the access size (1, 2, 4 or 8 from a vCPU, anything from a
 * test). A read fills all of `data`. An access may run past the end of the range (the bus decodes
 * the first byte only, as wide accesses straddling two devices are not worth splitting): devices
 * handle any offset and size without throwing, because the guest chooses both.
 */
export interface BusDevice {
  read(offset: number, data: Uint8Array): void;
  write(offset: number, data: Uint8Array): void;
}

export class BusError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BusError";
  }
}

export interface BusRange {
  readonly base: number;
  readonly length: number;
  readonly name: string;
  readonly device: BusDevice;
}

/** Called when a device handler throws: the bus answers the access itself and carries on. */
export type DeviceFaultHandler = (range: BusRange, op: "read" | "write", error: unknown) => void;

function hex(n: number): string {
  return "0x" + n.toString(16);
}

export class Bus {
  /** Ranges sorted by base; `#bases` mirrors their bases for a tight binary search. */
  #ranges: BusRange[] = [];
  #bases: number[] = [];

  /**
   * @param name "pio" or "mmio" (used in error messages)
   * @param limit one past the highest address of this address space (0x10000 for PIO)
   */
  constructor(
    readonly name: string,
    readonly limit: number = Number.MAX_SAFE_INTEGER,
    private readonly onFault: DeviceFaultHandler = () => {},
  ) {}

  /** Adds a device at [base, base + length); refuses a range that overlaps one already there. */
  insert(base: number, length: number, device: BusDevice, name: string): void {
    if (!Number.isSafeInteger(base) || base < 0) {
      throw new BusError(`${this.name} bus: ${name}: base ${base} is not a valid address`);
    }
    if (!Number.isSafeInteger(length) || length <= 0) {
      throw new BusError(`${this.name} bus: ${name}: length ${length} must be a positive integer`);
    }
    if (base + length > this.limit) {
      throw new BusError(
        `${this.name} bus: ${name}: range ${hex(base)}+${hex(length)} ends past the ` +
          `address space limit ${hex(this.limit)}`,
      );
    }
    const at = this.#upperBound(base);
    const before = this.#ranges[at - 1];
    const after = this.#ranges[at];
    for (const other of [before, after]) {
      if (other && base < other.base + other.length && other.base < base + length) {
        throw new BusError(
          `${this.name} bus: ${name} at ${hex(base)}..${hex(base + length - 1)} overlaps ` +
            `${other.name} at ${hex(other.base)}..${hex(other.base + other.length - 1)}`,
        );
      }
    }
    this.#ranges.splice(at, 0, { base, length, name, device });
    this.#bases.splice(at, 0, base);
  }

  /** Removes the range starting at `base` (hot-unplug, BAR moves); false when there is none. */
  remove(base: number): boolean {
    const at = this.#upperBound(base) - 1;
    if (at < 0 || this.#bases[at] !== base) return false;
    this.#ranges.splice(at, 1);
    this.#bases.splice(at, 1);
    return true;
  }

  /** The range holding `addr`, if any. */
  find(addr: number): BusRange | undefined {
    const at = this.#upperBound(addr) - 1;
    if (at < 0) return undefined;
    const r = this.#ranges[at];
    return addr - r.base < r.length ? r : undefined;
  }

  /** All ranges in address order (for `info mtree`-style listings and tests). */
  ranges(): readonly BusRange[] {
    return [...this.#ranges];
  }

  /** Dispatches a read; false when no device holds `addr` (the caller picks what the guest sees). */
  read(addr: number, data: Uint8Array): boolean {
    const r = this.find(addr);
    if (!r) return false;
    try {
      r.device.read(addr - r.base, data);
    } catch (e) {
      data.fill(0xff);
      this.onFault(r, "read", e);
    }
    return true;
  }

  /** Dispatches a write; false when no device holds `addr`. */
  write(addr: number, data: Uint8Array): boolean {
    const r = this.find(addr);
    if (!r) return false;
    try {
      r.device.write(addr - r.base, data);
    } catch (e) {
      this.onFault(r, "write", e);
    }
    return true;
  }

  /** Index of the first range whose base is greater than `addr`. */
  #upperBound(addr: number): number {
    const bases = this.#bases;
    let lo = 0;
    let hi = bases.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (bases[mid] <= addr) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** A PIO bus: 64 KiB of I/O ports. */
export function pioBus(onFault?: DeviceFaultHandler): Bus {
  return new Bus("pio", 0x10000, onFault);
}

/** An MMIO bus over the guest physical address space. */
export function mmioBus(onFault?: DeviceFaultHandler): Bus {
  return new Bus("mmio", Number.MAX_SAFE_INTEGER, onFault);
}

/**
 * Byte-wide register files (the legacy ISA devices) see a wide access as consecutive byte
 * accesses, as the ISA bus splits them. Bytes past the device's `size` registers read 0xff.
 */
export function readBytewise(
  offset: number,
  data: Uint8Array,
  size: number,
  readByte: (offset: number) => number,
): void {
  for (let i = 0; i < data.length; i++) {
    const o = offset + i;
    data[i] = o < size ? readByte(o) : 0xff;
  }
}

/** Write counterpart of `readBytewise`: bytes past the device's registers are ignored. */
export function writeBytewise(
  offset: number,
  data: Uint8Array,
  size: number,
  writeByte: (offset: number, value: number) => void,
): void {
  for (let i = 0; i < data.length; i++) {
    const o = offset + i;
    if (o < size) writeByte(o, data[i]);
  }
}

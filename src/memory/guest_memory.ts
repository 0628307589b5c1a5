/**
 * Guest physical memory as device models and loaders see it: a set of RAM regions, each backed by
 * a host ArrayBuffer (an FFI view of the mmap'ed RAM in the VMM, a plain buffer in tests).
 * Every access is bounds-checked: a guest address outside RAM is a GuestMemoryError, never a
 * host fault. Addresses are numbers (guest physical addresses fit in 2^53).
 */

export class GuestMemoryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "GuestMemoryError";
  }
}

export interface RamRegion {
  /** Guest physical address of the first byte. */
  readonly gpa: number;
  /** Length in bytes. */
  readonly size: number;
  /** Host bytes of the region (length === size). */
  readonly bytes: Uint8Array;
}

function hex(n: number): string {
  return "0x" + n.toString(16);
}

/**
 * The little-endian u64 at `offset` of `view` as a number when it is below 2^53, else -1 (an
 * address the guest wrote: one that large is outside RAM anyway).
 */
export function u64AsNumber(view: DataView, offset: number): number {
  const high = view.getUint32(offset + 4, true);
  return high < 0x20_0000 ? high * 0x1_0000_0000 + view.getUint32(offset, true) : -1;
}

export class GuestMemory {
  readonly regions: readonly RamRegion[];
  readonly #views: DataView[];
  /** First and one-past-last guest address of each region, as plain numbers. */
  readonly #starts: number[];
  readonly #ends: number[];
  /** The region that answered the last lookup: accesses cluster (rings, a request's buffers). */
  #last = 0;

  constructor(regions: RamRegion[]) {
    const sorted = [...regions].sort((a, b) => a.gpa - b.gpa);
    for (let i = 0; i < sorted.length; i++) {
      const r = sorted[i];
      if (r.bytes.length !== r.size) {
        throw new GuestMemoryError(`region at ${hex(r.gpa)}: backing is not ${r.size} bytes`);
      }
      if (i > 0 && sorted[i - 1].gpa + sorted[i - 1].size > r.gpa) {
        throw new GuestMemoryError(
          `regions at ${hex(sorted[i - 1].gpa)} and ${hex(r.gpa)} overlap`,
        );
      }
    }
    this.regions = sorted;
    this.#views = sorted.map((r) => new DataView(r.bytes.buffer, r.bytes.byteOffset, r.size));
    this.#starts = sorted.map((r) => r.gpa);
    this.#ends = sorted.map((r) => r.gpa + r.size);
  }

  /** Anonymous RAM for tests: `size` bytes at `gpa`, zero-filled. */
  static anonymous(size: number, gpa = 0): GuestMemory {
    return new GuestMemory([{ gpa, size, bytes: new Uint8Array(size) }]);
  }

  /** Total bytes of RAM. */
  get size(): number {
    return this.regions.reduce((s, r) => s + r.size, 0);
  }

  /** Index of the region holding [gpa, gpa+len), or -1 when the range is not entirely in one. */
  #find(gpa: number, len: number): number {
    if (!Number.isSafeInteger(gpa) || !Number.isSafeInteger(len) || gpa < 0 || len < 0) return -1;
    const last = this.#last;
    if (last < this.#starts.length && gpa >= this.#starts[last] && gpa + len <= this.#ends[last]) {
      return last;
    }
    const starts = this.#starts;
    for (let i = 0; i < starts.length; i++) {
      if (gpa >= starts[i] && gpa + len <= this.#ends[i]) {
        this.#last = i;
        return i;
      }
    }
    return -1;
  }

  #region(gpa: number, len: number): number {
    const i = this.#find(gpa, len);
    if (i < 0) {
      throw new GuestMemoryError(`guest range ${hex(gpa)}+${hex(len)} is outside guest RAM`);
    }
    return i;
  }

  /** True when [gpa, gpa+len) lies inside one RAM region. */
  contains(gpa: number, len: number): boolean {
    return this.#find(gpa, len) >= 0;
  }

  /** Zero-copy view of [gpa, gpa+len); the range must lie inside one region. */
  slice(gpa: number, len: number): Uint8Array {
    const i = this.#region(gpa, len);
    const r = this.regions[i];
    return r.bytes.subarray(gpa - r.gpa, gpa - r.gpa + len);
  }

  /** Copies guest bytes out (the range may span regions only if they are contiguous). */
  read(gpa: number, len: number): Uint8Array {
    if (this.contains(gpa, len)) return this.slice(gpa, len).slice();
    const out = new Uint8Array(len);
    this.readInto(gpa, out);
    return out;
  }

  /** Fills `dst` from guest memory starting at gpa. */
  readInto(gpa: number, dst: Uint8Array): void {
    let done = 0;
    while (done < dst.length) {
      const chunk = this.#chunk(gpa + done, dst.length - done);
      dst.set(chunk, done);
      done += chunk.length;
    }
  }

  /** Writes `src` into guest memory starting at gpa. */
  write(gpa: number, src: Uint8Array): void {
    let done = 0;
    while (done < src.length) {
      const chunk = this.#chunk(gpa + done, src.length - done);
      chunk.set(src.subarray(done, done + chunk.length));
      done += chunk.length;
    }
  }

  /** Fills [gpa, gpa+len) with `value`. */
  fill(gpa: number, len: number, value = 0): void {
    let done = 0;
    while (done < len) {
      const chunk = this.#chunk(gpa + done, len - done);
      chunk.fill(value);
      done += chunk.length;
    }
  }

  /** The longest prefix of [gpa, gpa+len) that lies inside one region. */
  #chunk(gpa: number, len: number): Uint8Array {
    const i = this.#find(gpa, 1);
    if (i < 0) {
      throw new GuestMemoryError(`guest address ${hex(gpa)} is outside guest RAM`);
    }
    const r = this.regions[i];
    const n = Math.min(len, r.gpa + r.size - gpa);
    return r.bytes.subarray(gpa - r.gpa, gpa - r.gpa + n);
  }

  // The accessors look the region up, then read its DataView at the offset (no tuple: these
  // run several times per request on the data path).
  readU8(gpa: number): number {
    const i = this.#region(gpa, 1);
    return this.#views[i].getUint8(gpa - this.#starts[i]);
  }
  readU16(gpa: number): number {
    const i = this.#region(gpa, 2);
    return this.#views[i].getUint16(gpa - this.#starts[i], true);
  }
  readU32(gpa: number): number {
    const i = this.#region(gpa, 4);
    return this.#views[i].getUint32(gpa - this.#starts[i], true);
  }
  readU64(gpa: number): bigint {
    const i = this.#region(gpa, 8);
    return this.#views[i].getBigUint64(gpa - this.#starts[i], true);
  }
  writeU8(gpa: number, value: number): void {
    const i = this.#region(gpa, 1);
    this.#views[i].setUint8(gpa - this.#starts[i], value);
  }
  writeU16(gpa: number, value: number): void {
    const i = this.#region(gpa, 2);
    this.#views[i].setUint16(gpa - this.#starts[i], value, true);
  }
  writeU32(gpa: number, value: number): void {
    const i = this.#region(gpa, 4);
    this.#views[i].setUint32(gpa - this.#starts[i], value, true);
  }
  writeU64(gpa: number, value: bigint): void {
    const i = this.#region(gpa, 8);
    this.#views[i].setBigUint64(gpa - this.#starts[i], value, true);
  }
}

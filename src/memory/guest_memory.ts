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

export class GuestMemory {
  readonly regions: readonly RamRegion[];
  readonly #views: DataView[];

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
    const rs = this.regions;
    for (let i = 0; i < rs.length; i++) {
      const r = rs[i];
      if (gpa >= r.gpa && gpa + len <= r.gpa + r.size) return i;
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

  #view(gpa: number, len: number): [DataView, number] {
    const i = this.#region(gpa, len);
    return [this.#views[i], gpa - this.regions[i].gpa];
  }

  readU8(gpa: number): number {
    const [v, o] = this.#view(gpa, 1);
    return v.getUint8(o);
  }
  readU16(gpa: number): number {
    const [v, o] = this.#view(gpa, 2);
    return v.getUint16(o, true);
  }
  readU32(gpa: number): number {
    const [v, o] = this.#view(gpa, 4);
    return v.getUint32(o, true);
  }
  readU64(gpa: number): bigint {
    const [v, o] = this.#view(gpa, 8);
    return v.getBigUint64(o, true);
  }
  writeU8(gpa: number, value: number): void {
    const [v, o] = this.#view(gpa, 1);
    v.setUint8(o, value);
  }
  writeU16(gpa: number, value: number): void {
    const [v, o] = this.#view(gpa, 2);
    v.setUint16(o, value, true);
  }
  writeU32(gpa: number, value: number): void {
    const [v, o] = this.#view(gpa, 4);
    v.setUint32(o, value, true);
  }
  writeU64(gpa: number, value: bigint): void {
    const [v, o] = this.#view(gpa, 8);
    v.setBigUint64(o, value, true);
  }
}

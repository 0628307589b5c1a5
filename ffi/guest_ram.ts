/**
 * Mapping guest RAM: anonymous or file-backed, shared or private. The host address comes back as a
 * bigint so it can cross to any Worker, where hostBytes() makes that isolate's own view of it.
 */
import {
  MAP_ANONYMOUS,
  MAP_HUGETLB,
  MAP_NORESERVE,
  MAP_POPULATE,
  MAP_PRIVATE,
  MAP_SHARED,
  mmap,
  munmap,
  PROT_READ,
  PROT_WRITE,
} from "./libc.ts";

export interface RamMapOptions {
  /** MAP_SHARED (visible to other mappings of the same file / after fork) instead of private. */
  readonly shared?: boolean;
  /** Fault every page in now (MAP_POPULATE): StratoVirt's mem-prealloc. */
  readonly populate?: boolean;
  /** Anonymous hugetlb pages (MAP_HUGETLB); file-backed hugetlbfs needs no flag. */
  readonly hugetlb?: boolean;
  /** Don't reserve swap for the whole size (MAP_NORESERVE). */
  readonly noReserve?: boolean;
}

function flagsOf(o: RamMapOptions): number {
  return (o.shared ? MAP_SHARED : MAP_PRIVATE) |
    (o.populate ? MAP_POPULATE : 0) |
    (o.hugetlb ? MAP_HUGETLB : 0) |
    (o.noReserve ? MAP_NORESERVE : 0);
}

/** Maps `size` bytes of zeroed anonymous memory, read-write. Returns the host address. */
export function mapAnonymousRam(size: number, options: RamMapOptions = {}): bigint {
  return mmap(0n, size, PROT_READ | PROT_WRITE, flagsOf(options) | MAP_ANONYMOUS);
}

/** Maps `size` bytes of the open file `fd` from `offset`, read-write. Returns the host address. */
export function mapFileRam(
  fd: number,
  size: number,
  offset: number | bigint = 0,
  options: RamMapOptions = { shared: true },
): bigint {
  return mmap(0n, size, PROT_READ | PROT_WRITE, flagsOf(options), fd, offset);
}

/**
 * This isolate's zero-copy bytes of host memory at `address`. Make one per mapping per isolate
 * and keep it (each view counts as external memory for the GC); Atomics.wait does not work on it.
 */
export function hostBytes(address: bigint, size: number): Uint8Array<ArrayBuffer> {
  const ptr = Deno.UnsafePointer.create(address);
  if (ptr === null) throw new RangeError("hostBytes: null address");
  return new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(ptr, size));
}

/** Unmaps RAM. Every view made by hostBytes() must be dropped first: touching one would fault. */
export function unmapRam(address: bigint, size: number): void {
  munmap(address, size);
}

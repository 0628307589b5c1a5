/**
 * Guest RAM for a VM: one host mapping holding all of it (anonymous, or a file / a file created in
 * a hugetlbfs directory for -mem-path), split into the regions of the x86 layout (below the 3 GiB
 * hole, and above 4 GiB), each registered as a KVM memslot.
 *
 * Regions cross to vCPU Workers as plain descriptors (addresses as bigints); every isolate turns
 * them into its own GuestMemory once with `guestMemoryOf` and keeps it (one view per region per
 * isolate: each view counts as external memory for V8's GC).
 */
import { hostBytes, mapAnonymousRam, mapFileRam, unmapRam } from "../../ffi/guest_ram.ts";
import { close, ftruncate, O_CREAT, O_RDWR, open } from "../../ffi/libc.ts";
import type { Vm } from "../../ffi/kvm.ts";
import { GuestMemory } from "./guest_memory.ts";

export interface RamRange {
  readonly gpa: number;
  readonly size: number;
}

/** One RAM region as it crosses isolates: where the guest sees it and where the host has it. */
export interface RamRegionDescriptor {
  readonly slot: number;
  readonly gpa: number;
  readonly size: number;
  readonly hostAddress: bigint;
}

export interface RamBacking {
  /** A file, or a directory (e.g. a hugetlbfs mount) in which an unlinked file is made. */
  readonly path?: string;
  /** MAP_SHARED; file-backed RAM defaults to shared, anonymous RAM to private. */
  readonly share?: boolean;
  /** Populate every page now (MAP_POPULATE). */
  readonly prealloc?: boolean;
}

export class GuestRamError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "GuestRamError";
  }
}

/** The mapped RAM of a VM. */
export class GuestRam {
  private constructor(
    readonly hostAddress: bigint,
    readonly totalSize: number,
    readonly regions: readonly RamRegionDescriptor[],
  ) {}

  /** Maps RAM for `ranges` (guest physical, in layout order) back to back in one mapping. */
  static allocate(ranges: readonly RamRange[], backing: RamBacking = {}): GuestRam {
    const total = ranges.reduce((s, r) => s + r.size, 0);
    const hostAddress = mapBacking(total, backing);
    let offset = 0;
    const regions = ranges.map((r, slot) => {
      const d = { slot, gpa: r.gpa, size: r.size, hostAddress: hostAddress + BigInt(offset) };
      offset += r.size;
      return d;
    });
    return new GuestRam(hostAddress, total, regions);
  }

  /** Registers every region as a KVM memslot. */
  registerWith(vm: Vm): void {
    for (const r of this.regions) {
      vm.setUserMemoryRegion({
        slot: r.slot,
        guestPhysAddr: r.gpa,
        memorySize: r.size,
        userspaceAddr: r.hostAddress,
      });
    }
  }

  /** Releases the mapping. No isolate may touch a view of it afterwards. */
  unmap(): void {
    unmapRam(this.hostAddress, this.totalSize);
  }
}

function mapBacking(size: number, backing: RamBacking): bigint {
  const populate = backing.prealloc ?? false;
  if (!backing.path) {
    try {
      return mapAnonymousRam(size, { shared: backing.share ?? false, populate, noReserve: true });
    } catch (e) {
      throw new GuestRamError(`cannot map ${size} bytes of guest RAM: ${(e as Error).message}`);
    }
  }
  const fd = openBackingFile(backing.path, size);
  try {
    return mapFileRam(fd, size, 0, { shared: backing.share ?? true, populate });
  } catch (e) {
    throw new GuestRamError(
      `cannot map ${size} bytes of guest RAM from ${backing.path}: ${(e as Error).message}`,
    );
  } finally {
    close(fd); // the mapping keeps the file alive
  }
}

/** Opens (creating or growing it) the backing file; a directory gets an unlinked file inside. */
function openBackingFile(path: string, size: number): number {
  let isDir = false;
  try {
    isDir = Deno.statSync(path).isDirectory;
  } catch {
    // Does not exist yet: a file is created.
  }
  const file = isDir ? `${path.replace(/\/$/, "")}/stratovirt_backmem_${Deno.pid}` : path;
  let fd: number;
  try {
    fd = open(file, O_RDWR | O_CREAT, 0o600);
  } catch (e) {
    throw new GuestRamError(`cannot open memory backing ${file}: ${(e as Error).message}`);
  }
  if (isDir) {
    try {
      Deno.removeSync(file);
    } catch { /* already gone */ }
  }
  try {
    const current = isDir ? 0 : Deno.statSync(file).size;
    if (current < size) ftruncate(fd, size);
  } catch (e) {
    close(fd);
    throw new GuestRamError(`cannot size memory backing ${file}: ${(e as Error).message}`);
  }
  return fd;
}

/** This isolate's GuestMemory over `regions`. Make it once per isolate and keep it. */
export function guestMemoryOf(regions: readonly RamRegionDescriptor[]): GuestMemory {
  return new GuestMemory(
    regions.map((r) => ({ gpa: r.gpa, size: r.size, bytes: hostBytes(r.hostAddress, r.size) })),
  );
}

/**
 * What the machine needs to build a microvm: a narrow, already-validated description. The lead
 * converts the parsed command line (VmConfig) into this; tests write it by hand.
 */
import type { Topology } from "../cpu/topology.ts";
import type { LoggerSettings } from "../util/logger.ts";

/** Where guest RAM comes from (StratoVirt's -m / -mem-path / -mem-prealloc / memory backends). */
export interface MemorySpec {
  /** Bytes of guest RAM (a multiple of 4 KiB, at least 2 MiB). */
  readonly size: number;
  /** A file or directory (hugetlbfs mount) to back RAM with; anonymous memory when absent. */
  readonly path?: string;
  /** MAP_SHARED instead of private. File-backed RAM is shared unless this is false. */
  readonly share?: boolean;
  /** Fault every page in before the guest starts. */
  readonly prealloc?: boolean;
}

export type SerialBackendKind = "stdio" | "pty" | "socket" | "file";

/** The host side of the 8250 UART. */
export interface SerialSpec {
  readonly backend: SerialBackendKind;
  /** File path (file) or Unix socket path (socket). */
  readonly path?: string;
  /** Socket backend: listen (StratoVirt requires server and nowait). */
  readonly server?: boolean;
  readonly nowait?: boolean;
  /** Chardev id, for messages (default "serial0"). */
  readonly id?: string;
}

/**
 * One virtio-blk-device: its `-drive` (the image) and `-device` (the guest side) together. Disks
 * take the microvm's virtio-mmio slots in order: disk i is at microvmMmioSlot(i). QMP device_add
 * builds one too, for the free slot it fills.
 */
export interface DiskSpec {
  /** The -device id (names the disk in messages). */
  readonly id: string;
  /** The -drive id. */
  readonly drive: string;
  /** The image file. */
  readonly path: string;
  readonly readonly: boolean;
  /** Open with O_DIRECT (falls back to the page cache where the filesystem refuses it). */
  readonly direct: boolean;
  /** GET_ID answer, up to 20 bytes; null: none. */
  readonly serial: string | null;
  readonly numQueues: number;
  readonly queueSize: number;
  /** IO operations per second allowed, or null for no limit. */
  readonly iopsTotal: number | null;
  /**
   * `-drive aio=`: native or io_uring keep many requests in flight through io_uring (Linux AIO
   * is not built: io_uring serves both); off completes them one at a time.
   */
  readonly asyncIo: boolean;
  /** The `-object iothread` whose thread runs this disk; null: the default device thread. */
  readonly iothread: string | null;
}

/** Virtio-blk devices a microvm takes (StratoVirt's MMIO_REPLACEABLE_BLK_NR block slots). */
export const MAX_DISKS = 4;
/** The queues of an empty hot-plug slot (StratoVirt's microvm hot-plugs single-queue disks). */
export const EMPTY_SLOT_QUEUES = 1;
export const EMPTY_SLOT_QUEUE_SIZE = 256;

export interface MachineSpec {
  /** vCPUs (1..254). */
  readonly cpus: number;
  /** Defaults to `cpus` sockets of one core each. */
  readonly topology?: Topology;
  readonly memory: MemorySpec;
  readonly kernel: string;
  readonly initrd?: string;
  readonly cmdline: string;
  /** null or absent: no serial port. */
  readonly serial?: SerialSpec | null;
  /** Handle I/O port 0x3ff (boot start / complete markers). Default true. */
  readonly bootTimer?: boolean;
  /** The host's /dev/kvm is kvm_pvm: mask what its emulator cannot run. Default: detected. */
  readonly pvm?: boolean;
  /** Logger settings every vCPU Worker initialises with (default: the main thread's). */
  readonly log?: LoggerSettings;
  /** /dev/kvm path (tests). */
  readonly kvmPath?: string;
  /** virtio-blk devices, in slot order (at most MAX_DISKS). */
  readonly disks?: readonly DiskSpec[];
  /**
   * Announce all MAX_DISKS block slots to the guest, the ones no disk takes empty (capacity 0),
   * so QMP device_add can fill them while the guest runs. Without it (no QMP: nobody could plug
   * anything) only the disks' slots exist, and the guest probes no empty devices at boot.
   */
  readonly hotplug?: boolean;
  /** Every `-object iothread` id: each gets its thread, whether or not a disk names it. */
  readonly iothreads?: readonly string[];
}

/** One virtio-blk slot of the machine: its position, the thread serving it, its first disk. */
export interface BlockSlot {
  readonly index: number;
  /** The disk the command line put there, or null for an empty hot-plug slot. */
  readonly disk: DiskSpec | null;
  /** The `-object iothread` serving the slot for its whole life; null: the device thread. */
  readonly iothread: string | null;
  /** Fixed for the slot's life: the guest driver sets its queues up once, at probe time. */
  readonly numQueues: number;
  readonly queueSize: number;
}

/** The block slots `spec` announces, in slot order. */
export function blockSlotsOf(spec: Pick<MachineSpec, "disks" | "hotplug">): BlockSlot[] {
  const disks = spec.disks ?? [];
  const count = spec.hotplug ? MAX_DISKS : disks.length;
  return Array.from({ length: count }, (_, index) => {
    const disk = disks[index] ?? null;
    return {
      index,
      disk,
      iothread: disk?.iothread ?? null,
      numQueues: disk?.numQueues ?? EMPTY_SLOT_QUEUES,
      queueSize: disk?.queueSize ?? EMPTY_SLOT_QUEUE_SIZE,
    };
  });
}

export class MachineSpecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MachineSpecError";
  }
}

/** The topology to use: the spec's, or `cpus` single-core sockets. Checks it adds up. */
export function topologyOf(spec: MachineSpec): Topology {
  const t = spec.topology ?? { sockets: spec.cpus, dies: 1, clusters: 1, cores: 1, threads: 1 };
  const total = t.sockets * t.dies * t.clusters * t.cores * t.threads;
  if (total < spec.cpus) {
    throw new MachineSpecError(
      `topology ${t.sockets} sockets x ${t.dies} dies x ${t.clusters} clusters x ${t.cores} ` +
        `cores x ${t.threads} threads holds ${total} vCPUs, fewer than cpus=${spec.cpus}`,
    );
  }
  return t;
}

/** Checks what the machine relies on; throws MachineSpecError naming the bad field. */
export function validateSpec(spec: MachineSpec): void {
  if (!Number.isInteger(spec.cpus) || spec.cpus < 1 || spec.cpus > 254) {
    throw new MachineSpecError(`cpus must be an integer in 1..254, got ${spec.cpus}`);
  }
  const size = spec.memory?.size;
  if (!Number.isSafeInteger(size) || size < 2 * 1024 * 1024 || size % 4096 !== 0) {
    throw new MachineSpecError(
      `memory size must be a multiple of 4 KiB and at least 2 MiB, got ${size}`,
    );
  }
  if (!spec.kernel) throw new MachineSpecError("no kernel: -kernel is required");
  const s = spec.serial;
  if (s && (s.backend === "file" || s.backend === "socket") && !s.path) {
    throw new MachineSpecError(`serial ${s.backend} backend needs a path`);
  }
  topologyOf(spec);
  validateDisks(spec.disks ?? []);
}

function validateDisks(disks: readonly DiskSpec[]): void {
  if (disks.length > MAX_DISKS) {
    throw new MachineSpecError(
      `a microvm takes at most ${MAX_DISKS} virtio-blk devices, got ${disks.length}`,
    );
  }
  const ids = new Set<string>();
  for (const d of disks) {
    if (!d.id) throw new MachineSpecError("a virtio-blk device needs an id");
    if (ids.has(d.id)) throw new MachineSpecError(`two virtio-blk devices have id=${d.id}`);
    ids.add(d.id);
    if (!d.path) throw new MachineSpecError(`virtio-blk ${d.id}: its drive has no file`);
    if (!Number.isInteger(d.numQueues) || d.numQueues < 1 || d.numQueues > 32) {
      throw new MachineSpecError(`virtio-blk ${d.id}: num-queues ${d.numQueues} is not in 1..32`);
    }
    const q = d.queueSize;
    if (!Number.isInteger(q) || q < 2 || q > 1024 || (q & (q - 1)) !== 0) {
      throw new MachineSpecError(`virtio-blk ${d.id}: queue-size ${q} is not a power of 2 <= 1024`);
    }
  }
}

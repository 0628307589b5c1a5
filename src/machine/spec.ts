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
}

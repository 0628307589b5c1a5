/**
 * What the QMP server needs from the machine. The machine implements `QmpMachine`; the server
 * turns its answers into StratoVirt's wire shapes. Every method may return a value or a Promise.
 * A method refuses by throwing: a `QmpError` keeps its class, anything else (a LifecycleError for
 * `stop` while paused, a config error for a bad `device_add`) is sent as a GenericError with the
 * error's message.
 *
 * Events: the machine calls `QmpServer.emitEvent` when something happens (see events.ts), in
 * particular STOP/RESUME from `pause`/`resume` and RESET/POWERDOWN/DEVICE_DELETED when they take
 * effect. SHUTDOWN for `quit` is sent by the server itself (reason host-qmp-quit) before
 * `quit()` is called; SHUTDOWN for any other reason is the machine's to emit.
 */
import type { VmState } from "../machine/lifecycle.ts";

/** One vCPU slot of the -smp topology (present or, for hotplug, possible). */
export interface QmpCpu {
  /** The vCPU index (`CPU` in query-cpus). */
  readonly index: number;
  /** Whether the vCPU exists now (query-cpus lists only these). */
  readonly present: boolean;
  /** Host thread id of the vCPU (0 if it has no thread yet). */
  readonly threadId: number;
  /** Whether the vCPU is halted (HLT) right now. */
  readonly halted: boolean;
  readonly socketId: number;
  readonly dieId: number;
  readonly coreId: number;
  readonly threadIdInCore: number;
}

export interface QmpIothread {
  readonly id: string;
  readonly threadId: number;
  readonly pollMaxNs?: number;
  readonly pollGrow?: number;
  readonly pollShrink?: number;
}

/** A drive / block backend (query-block, `info block`). */
export interface QmpBlock {
  /** The drive's id (`-drive id=` or blockdev-add's node-name). */
  readonly id: string;
  readonly file: string;
  readonly readOnly: boolean;
  /** Image format: "raw" or "qcow2". */
  readonly format: string;
  readonly direct: boolean;
  /** The device using it, if any (its `-device id=`). */
  readonly attachedTo?: string;
}

/** A chardev (query-chardev, `info chardev`). */
export interface QmpChardev {
  readonly id: string;
  /** QEMU-style description: `pty:/dev/pts/3`, `unix:/path,server`, `file:/path`, `stdio`. */
  readonly filename: string;
  /** Whether a frontend (serial, console) has it open. */
  readonly frontendOpen: boolean;
}

export interface QmpMemoryRegion {
  readonly name: string;
  readonly base: number;
  readonly size: number;
}

export interface QmpMemory {
  /** Guest RAM in bytes. */
  readonly size: number;
  readonly regions: readonly QmpMemoryRegion[];
}

/** device_add's arguments, validated against StratoVirt's schema (names as on the wire). */
export interface DeviceAddArgs {
  readonly id: string;
  readonly driver: string;
  readonly [property: string]: string | number | boolean | undefined;
}

/** blockdev-add's arguments (names as on the wire). */
export interface BlockdevAddArgs {
  readonly "node-name": string;
  readonly file: { readonly driver: string; readonly filename: string; readonly aio?: string };
  readonly media?: string;
  readonly cache?: { readonly "no-flush"?: boolean; readonly direct?: boolean };
  readonly "read-only"?: boolean;
  readonly "detect-zeroes"?: string;
  readonly driver?: string;
  readonly backing?: string;
  readonly discard?: string;
  readonly id?: string;
  readonly options?: string;
  readonly "throttling.iops-total"?: number;
  readonly "l2-cache-size"?: string;
  readonly "refcount-cache-size"?: string;
}

/** netdev_add's arguments (names as on the wire; `fd`/`vhostfd` may name a getfd fd). */
export interface NetdevAddArgs {
  readonly id: string;
  readonly ifname?: string;
  readonly fd?: string;
  readonly fds?: string;
  readonly dnssearch?: string;
  readonly type?: string;
  readonly vhost?: boolean;
  readonly vhostfd?: string;
  readonly vhostfds?: string;
  readonly downscript?: string;
  readonly script?: string;
  readonly queues?: number;
  readonly chardev?: string;
  readonly macnat?: boolean;
}

export interface QmpMachine {
  /** The machine type as given to -machine ("microvm", "q35", "none"). */
  readonly machineType: string;
  /** Whether the VM runs on KVM (query-kvm; `present` is whether /dev/kvm could be used). */
  readonly kvm: { readonly enabled: boolean; readonly present: boolean };

  status(): VmState;
  /** `stop`: pause the vCPUs; emits STOP. Throws (LifecycleError) when not running. */
  pause(): void | Promise<void>;
  /** `cont`: resume the vCPUs; emits RESUME. Throws when not paused. */
  resume(): void | Promise<void>;
  /** `system_powerdown`: press the power button (ACPI); emits POWERDOWN. */
  powerdown(): void | Promise<void>;
  /** `system_reset`: reset the VM (microvm: the same as a shutdown); emits RESET. */
  reset(): void | Promise<void>;
  /**
   * `quit`: the reply and SHUTDOWN (host-qmp-quit) are already written; stop the VM, close the
   * QMP server(s) (`QmpServer.close()`, which flushes what clients have not read) and exit.
   */
  quit(): void | Promise<void>;

  /** Every vCPU slot, present or possible, in index order. */
  cpus(): readonly QmpCpu[];
  iothreads(): readonly QmpIothread[];
  blocks(): readonly QmpBlock[];
  chardevs(): readonly QmpChardev[];
  memory(): QmpMemory;

  addDevice(args: DeviceAddArgs): void | Promise<void>;
  /** Starts removing a device; DEVICE_DELETED is emitted once it is gone. */
  delDevice(id: string): void | Promise<void>;
  addBlockdev(args: BlockdevAddArgs): void | Promise<void>;
  delBlockdev(nodeName: string): void | Promise<void>;
  addNetdev(args: NetdevAddArgs): void | Promise<void>;
  delNetdev(id: string): void | Promise<void>;
  /**
   * `getfd`: keeps `fd` (received with SCM_RIGHTS, now owned by the machine) under `name` for
   * netdev_add's fd=/vhostfd=; a second fd under the same name replaces (and closes) the first.
   */
  getfd(name: string, fd: number): void | Promise<void>;

  /** `balloon` (bytes); absent when there is no balloon device. */
  balloon?(value: number): void | Promise<void>;
  /** `query-balloon`: the guest's actual memory in bytes; absent without a balloon. */
  balloonActual?(): number;
}

/** The one typed, frozen description of the VM that the machine builder consumes. */
import { MachineConfig } from "./machine.ts";
import { SmpConfig } from "./smp.ts";
import { MemoryConfig } from "./memory.ts";
import { MemoryBackendConfig } from "./memory_backend.ts";
import { NumaConfig } from "./numa.ts";
import { IothreadConfig } from "./iothread.ts";
import { RngBackendConfig } from "./rng.ts";
import { DriveConfig, PflashConfig } from "./drive.ts";
import { NetdevConfig } from "./network.ts";
import { ChardevBackend, ChardevConfig } from "./chardev.ts";
import { DeviceConfig } from "./device.ts";
import { GlobalConfig } from "./global.ts";
import { QmpConfig } from "./qmp.ts";
import { IncomingConfig } from "./incoming.ts";
import { RuntimeConfig } from "./runtime.ts";

export interface BootConfig {
  readonly kernel: string | null;
  /** Kernel command line ("" when -append is absent). */
  readonly append: string;
  readonly initrd: string | null;
}

export interface SerialConfig {
  /** The -chardev id when bound with chardev:ID, else null (inline backend). */
  readonly chardev: string | null;
  readonly backend: ChardevBackend;
}

export interface VmConfig {
  /** What main should do: print help, print the version, or build and run the VM. */
  readonly action: "run" | "help" | "version";
  readonly machine: MachineConfig;
  readonly smp: SmpConfig;
  readonly memory: MemoryConfig;
  readonly memoryBackends: readonly MemoryBackendConfig[];
  /** null without -numa. */
  readonly numa: NumaConfig | null;
  readonly boot: BootConfig;
  readonly iothreads: readonly IothreadConfig[];
  readonly rngBackends: readonly RngBackendConfig[];
  /** Block backends (-drive if=none). */
  readonly drives: readonly DriveConfig[];
  /** Flash images (-drive if=pflash), sorted by unit. */
  readonly pflash: readonly PflashConfig[];
  readonly netdevs: readonly NetdevConfig[];
  readonly chardevs: readonly ChardevConfig[];
  /** The legacy serial port, or null without -serial. */
  readonly serial: SerialConfig | null;
  /** In command-line order. */
  readonly devices: readonly DeviceConfig[];
  readonly global: GlobalConfig;
  /** QMP servers from -qmp and -mon. */
  readonly qmp: readonly QmpConfig[];
  readonly incoming: IncomingConfig | null;
  readonly runtime: RuntimeConfig;
  /** Accepted-but-ignored options and properties, for the VMM to log at warn level. */
  readonly warnings: readonly string[];
}

/**
 * The words a vCPU Worker and the main thread share to pause, resume and stop it without
 * postMessage: the main thread writes COMMAND and kicks the vCPU thread out of KVM_RUN; the
 * Worker publishes its thread id and its STATE. Plus the messages the Worker posts (rarely).
 */
import type { RamRegionDescriptor } from "../memory/guest_ram.ts";
import type { VcpuHandle } from "../../ffi/kvm.ts";
import type { LoggerSettings } from "../util/logger.ts";

// Word indices in the control Int32Array.
export const COMMAND = 0;
export const STATE = 1;
export const TID = 2;
const WORDS = 4;

export const enum VcpuCommand {
  Run = 0,
  Pause = 1,
  Stop = 2,
}

export const enum VcpuState {
  Starting = 0,
  Running = 1,
  Paused = 2,
  Stopped = 3,
}

export function createControlBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(WORDS * 4);
}

/** What the main thread sends a vCPU Worker to start it. */
export interface VcpuWorkerInit {
  readonly handle: VcpuHandle;
  readonly regions: readonly RamRegionDescriptor[];
  readonly control: SharedArrayBuffer;
  readonly channel: SharedArrayBuffer;
  /** PIO ranges [base, length] owned by the device thread; other ports are answered locally. */
  readonly pioRanges: readonly (readonly [number, number])[];
  /** Answer the boot-timer port 0x3ff in the Worker. */
  readonly bootTimer: boolean;
  /** The main thread's performance.timeOrigin (boot times are measured from it). */
  readonly originMs: number;
  readonly log: LoggerSettings;
}

/** How a vCPU ended the VM. */
export type VcpuExitKind = "guest-shutdown" | "guest-reset" | "guest-crash" | "error";

export type VcpuMessage =
  | { readonly type: "boot-event"; readonly kind: string; readonly sinceStartMs: number }
  | {
    readonly type: "vm-exit";
    readonly vcpu: number;
    readonly kind: VcpuExitKind;
    readonly message: string;
  }
  | { readonly type: "stopped"; readonly vcpu: number };

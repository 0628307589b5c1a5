/** `-machine` and `-accel`. */
import { ConfigError } from "./error.ts";
import { Props } from "./props.ts";

export type MachineType = "none" | "microvm" | "q35";
export type Accel = "kvm" | "test";

export interface MachineConfig {
  readonly type: MachineType;
  /** Include guest memory in core dumps (default on). */
  readonly dumpGuestCore: boolean;
  /** Guest memory shared with other processes (vhost-user needs it; default off). */
  readonly memShare: boolean;
  readonly accel: Accel;
}

export const MACHINE_TYPES: readonly MachineType[] = ["none", "microvm", "q35"];
const ACCELS: readonly Accel[] = ["kvm", "test"];

export const DEFAULT_MACHINE: MachineConfig = {
  type: "microvm",
  dumpGuestCore: true,
  memShare: false,
  accel: "kvm",
};

/** Parses `-machine`; `accel` is undefined when the option does not set it. */
export function parseMachine(text: string): { machine: MachineConfig; accelGiven: boolean } {
  const p: Props = new Props("-machine", text, "type");
  const type = p.str("type") ?? DEFAULT_MACHINE.type;
  if (type === "virt") {
    p.fail("machine type virt is for aarch64; this x86_64 build supports none, microvm, q35");
  }
  if (!(MACHINE_TYPES as readonly string[]).includes(type)) {
    p.fail(`unknown machine type '${type}'; allowed: ${MACHINE_TYPES.join(", ")}`);
  }
  const dumpGuestCore = p.bool("dump-guest-core", DEFAULT_MACHINE.dumpGuestCore);
  const memShare = p.bool("mem-share", DEFAULT_MACHINE.memShare);
  const accelGiven = p.has("accel");
  const accel = p.choice("accel", ACCELS, DEFAULT_MACHINE.accel);
  if (p.bool("usb", false)) p.fail("usb=on is not supported; only usb=off");
  p.finish(`-machine`);
  return {
    machine: { type: type as MachineType, dumpGuestCore, memShare, accel },
    accelGiven,
  };
}

export function parseAccel(text: string): Accel {
  if (!(ACCELS as readonly string[]).includes(text)) {
    throw new ConfigError("-accel", text, `unknown accelerator; allowed: ${ACCELS.join(", ")}`);
  }
  return text as Accel;
}

/** What every `-device` shares: its driver name, id, and (for PCI drivers) its placement. */
import { parsePciPlacement, PciPlacement } from "../pci.ts";
import { Props } from "../props.ts";

/** mmio: a virtio-mmio device of microvm; pci: a device on q35's PCIe; port/usb: children. */
export type Transport = "mmio" | "pci" | "port" | "usb";

export interface DeviceBase {
  readonly driver: string;
  readonly id: string;
  readonly transport: Transport;
  /** Set exactly when transport is "pci". */
  readonly pci: PciPlacement | null;
}

export interface DeviceContext {
  readonly warn: (msg: string) => void;
}

/** Reads id (required unless a default is given) and, for PCI drivers, bus/addr. */
export function parseBase(
  p: Props,
  driver: string,
  transport: Transport,
  ctx: DeviceContext,
  defaultId?: string,
): DeviceBase {
  const id = defaultId === undefined ? p.required("id") : p.str("id") ?? defaultId;
  const pci = transport === "pci" ? parsePciPlacement(p, ctx.warn) : null;
  return { driver, id, transport, pci };
}

/** `*-pci` drivers sit on PCI, `*-device` ones on virtio-mmio. */
export function virtioTransport(driver: string): Transport {
  return driver.endsWith("-pci") ? "pci" : "mmio";
}

/** libvirt sends properties that do nothing here; accept them and say so. */
export function ignoreProps(p: Props, keys: readonly string[], ctx: DeviceContext): void {
  for (const key of keys) {
    if (p.has(key)) {
      p.str(key);
      ctx.warn(`${p.option} ${p.text}: property '${key}' is ignored`);
    }
  }
}

export const MIN_BOOTINDEX = 0;
export const MAX_BOOTINDEX = 255;

export function parseBootindex(p: Props): number | null {
  return p.int("bootindex", { min: MIN_BOOTINDEX, max: MAX_BOOTINDEX }) ?? null;
}

/** Power-of-two queue size within [min, max]. */
export function parseQueueSize(p: Props, min: number, max: number, fallback: number): number {
  const n = p.int("queue-size", { min, max });
  if (n === undefined) return fallback;
  if ((n & (n - 1)) !== 0) p.fail(`queue-size=${n} must be a power of 2 between ${min} and ${max}`);
  return n;
}

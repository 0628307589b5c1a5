/**
 * PCI placement of a `-device *-pci`: `bus=`, `addr=0xS[.0xF]`, `multifunction=`. The rules
 * that need every device at once (collisions, root port slots, multifunction) are in
 * placement.ts.
 */
import { Props } from "./props.ts";
import { parseHex } from "./values.ts";

/** The q35 root bus. `pci.0` is accepted as another name for it (libvirt, the guidebook). */
export const ROOT_BUS = "pcie.0";
export const MAX_SLOT = 31;
export const MAX_FUNCTION = 7;

export interface PciPlacement {
  /** Bus name: pcie.0 or the id of a pcie-root-port. */
  readonly bus: string;
  readonly slot: number;
  readonly function: number;
  readonly multifunction: boolean;
}

/** `0x3.0x0`, `0x3`, `03.1`: slot and function, hex with or without 0x. */
export function parsePciAddr(text: string): { slot: number; function: number } | undefined {
  const [slotText, fnText, extra] = text.split(".");
  if (extra !== undefined) return undefined;
  const slot = parseHex(slotText);
  const fn = fnText === undefined ? 0 : parseHex(fnText);
  if (slot === undefined || fn === undefined || slot > MAX_SLOT || fn > MAX_FUNCTION) {
    return undefined;
  }
  return { slot, function: fn };
}

export function parsePciPlacement(p: Props, warn: (msg: string) => void): PciPlacement {
  let bus = p.required("bus", "is required for a PCI device (e.g. bus=pcie.0)");
  const addrText = p.required("addr", "is required for a PCI device (e.g. addr=0x3.0x0)");
  const addr = parsePciAddr(addrText);
  if (addr === undefined) {
    p.fail(`addr=${addrText} must be SLOT[.FUNCTION] in hex, slot 0..0x1f, function 0..7`);
  }
  if (bus === "pci.0") {
    warn(`${p.option} ${p.text}: bus=pci.0 taken as ${ROOT_BUS}`);
    bus = ROOT_BUS;
  }
  const multifunction = p.bool("multifunction", false);
  return { bus, ...addr, multifunction };
}

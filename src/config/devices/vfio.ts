/** `-device vfio-pci`: a host PCI device passed through. */
import { Props } from "../props.ts";
import { DeviceBase, DeviceContext, parseBase } from "./common.ts";

export interface VfioDeviceConfig extends DeviceBase {
  readonly kind: "vfio";
  /** Host address as DDDD:BB:SS.F (domain 0000 when omitted), or null when sysfsdev is used. */
  readonly host: string | null;
  /** /sys/bus/pci/devices/... path, or null when host is used. */
  readonly sysfsdev: string | null;
}

export function parseVfio(p: Props, ctx: DeviceContext): VfioDeviceConfig {
  const base = parseBase(p, "vfio-pci", "pci", ctx);
  let host = p.str("host") ?? null;
  const sysfsdev = p.str("sysfsdev") ?? null;
  if ((host === null) === (sysfsdev === null)) p.fail("give exactly one of host= or sysfsdev=");
  if (host !== null) {
    const m = /^(?:([0-9a-f]{4}):)?([0-9a-f]{2}):([0-1][0-9a-f])\.([0-7])$/i.exec(host);
    if (!m) p.fail(`host=${host} must be a host PCI address like 0000:1a:00.3`);
    host = `${(m[1] ?? "0000").toLowerCase()}:${m[2].toLowerCase()}:${m[3].toLowerCase()}.${m[4]}`;
  }
  if (sysfsdev !== null && !sysfsdev.startsWith("/")) {
    p.fail(`sysfsdev=${sysfsdev} must be an absolute path`);
  }
  p.finish("vfio-pci");
  return { ...base, kind: "vfio", host, sysfsdev };
}

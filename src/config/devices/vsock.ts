/** `-device vhost-vsock-device|vhost-vsock-pci`. */
import { Props } from "../props.ts";
import { DeviceBase, DeviceContext, parseBase, virtioTransport } from "./common.ts";

/** CIDs 0..2 are reserved (hypervisor, local, host); u32::MAX is VMADDR_CID_ANY. */
export const MIN_GUEST_CID = 3;
export const MAX_GUEST_CID = 0xffff_fffe;

export interface VsockDeviceConfig extends DeviceBase {
  readonly kind: "vsock";
  readonly guestCid: number;
  /** Already-open /dev/vhost-vsock fd, or null to open it ourselves. */
  readonly vhostFd: number | null;
}

export function parseVsock(driver: string, p: Props, ctx: DeviceContext): VsockDeviceConfig {
  const base = parseBase(p, driver, virtioTransport(driver), ctx);
  const cid = p.int("guest-cid", { min: 0, max: Number.MAX_SAFE_INTEGER });
  if (cid === undefined) p.fail("property 'guest-cid' is required");
  if (cid < MIN_GUEST_CID || cid > MAX_GUEST_CID) {
    p.fail(`guest-cid=${cid} must satisfy 3 <= guest-cid < 4294967295`);
  }
  const vhostFd = p.int("vhostfd", { min: 0, max: 0x7fffffff }) ?? null;
  p.finish(driver);
  return { ...base, kind: "vsock", guestCid: cid, vhostFd };
}

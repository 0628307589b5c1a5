/** `-device virtio-serial-device|virtio-serial-pci` and the `virtconsole` ports on it. */
import { Props } from "../props.ts";
import { DeviceBase, DeviceContext, parseBase, virtioTransport } from "./common.ts";

/** Guest consoles /dev/hvc0../dev/hvc7. */
export const MAX_CONSOLES = 8;

export interface VirtioSerialConfig extends DeviceBase {
  readonly kind: "virtio-serial";
}

export interface VirtconsoleConfig extends DeviceBase {
  readonly kind: "virtconsole";
  /** -chardev id. */
  readonly chardev: string;
}

export function parseVirtioSerial(
  driver: string,
  p: Props,
  ctx: DeviceContext,
): VirtioSerialConfig {
  const base = parseBase(p, driver, virtioTransport(driver), ctx, "virtio-serial0");
  p.finish(driver);
  return { ...base, kind: "virtio-serial" };
}

export function parseVirtconsole(p: Props, ctx: DeviceContext): VirtconsoleConfig {
  const base = parseBase(p, "virtconsole", "port", ctx);
  const chardev = p.required("chardev");
  p.finish("virtconsole");
  return { ...base, kind: "virtconsole", chardev };
}

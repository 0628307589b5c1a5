/** `-device nec-usb-xhci`, `usb-kbd`, `usb-tablet`. */
import { Props } from "./props.ts";
import { DeviceBase, DeviceContext, parseBase } from "./devices/common.ts";

export interface XhciConfig extends DeviceBase {
  readonly kind: "xhci";
}

export interface UsbInputConfig extends DeviceBase {
  readonly kind: "usb-kbd" | "usb-tablet";
}

export function parseXhci(p: Props, ctx: DeviceContext): XhciConfig {
  const base = parseBase(p, "nec-usb-xhci", "pci", ctx);
  p.finish("nec-usb-xhci");
  return { ...base, kind: "xhci" };
}

export function parseUsbInput(
  driver: "usb-kbd" | "usb-tablet",
  p: Props,
  ctx: DeviceContext,
): UsbInputConfig {
  const base = parseBase(p, driver, "usb", ctx);
  p.finish(driver);
  return { ...base, kind: driver };
}

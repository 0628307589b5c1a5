/** `-device pcie-root-port`: a bridge on pcie.0 whose secondary bus is named by its id. */
import { Props } from "../props.ts";
import { DeviceBase, DeviceContext, ignoreProps, parseBase } from "./common.ts";
import { parseHex } from "../values.ts";

export const MAX_ROOT_PORT_NUMBER = 0xff;

export interface RootPortConfig extends DeviceBase {
  readonly kind: "pcie-root-port";
  /** PCIe port number (Link Capabilities), unique per machine. */
  readonly port: number;
}

export function parseRootPort(p: Props, ctx: DeviceContext): RootPortConfig {
  const base = parseBase(p, "pcie-root-port", "pci", ctx);
  const portText = p.required("port");
  const port = parseHex(portText);
  if (port === undefined || port > MAX_ROOT_PORT_NUMBER) {
    p.fail(`port=${portText} must be a hex number from 0x0 to 0xff`);
  }
  ignoreProps(p, ["chassis"], ctx);
  p.finish("pcie-root-port");
  return { ...base, kind: "pcie-root-port", port };
}

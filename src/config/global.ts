/** `-global DRIVER.PROPERTY=VALUE`: only pcie-root-port.fast-unplug exists. */
import { ConfigError } from "./error.ts";
import { parseBool } from "./values.ts";

export interface GlobalConfig {
  /** pcie-root-port.fast-unplug: skip the unplug wait (Kata). */
  readonly pcieRootPortFastUnplug: boolean;
}

export const DEFAULT_GLOBAL: GlobalConfig = { pcieRootPortFastUnplug: false };

export function parseGlobal(text: string, current: GlobalConfig): GlobalConfig {
  const m = /^([^.=]+)\.([^=]+)=(.*)$/.exec(text);
  if (!m) throw new ConfigError("-global", text, "expected DRIVER.PROPERTY=VALUE");
  if (m[1] !== "pcie-root-port" || m[2] !== "fast-unplug") {
    throw new ConfigError(
      "-global",
      text,
      "unknown global property; allowed: pcie-root-port.fast-unplug",
    );
  }
  const value = m[3] === "1" ? true : m[3] === "0" ? false : parseBool(m[3]);
  if (value === undefined) {
    throw new ConfigError("-global", text, "fast-unplug must be 0, 1, on, off, true or false");
  }
  return { ...current, pcieRootPortFastUnplug: value };
}

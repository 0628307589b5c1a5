/** `-device virtio-rng-device|virtio-rng-pci`, fed by an `-object rng-random`. */
import { Props } from "../props.ts";
import { DeviceBase, DeviceContext, parseBase, virtioTransport } from "./common.ts";

/** The limited rate, in bytes per second: 64 <= max-bytes * 1000 / period < 1e9. */
export const MIN_RNG_RATE = 64;
export const MAX_RNG_RATE = 1_000_000_000;
export const MAX_RNG_PERIOD_MS = 0xffff_ffff;

export interface RngDeviceConfig extends DeviceBase {
  readonly kind: "rng";
  /** -object rng-random id. */
  readonly rng: string;
  /** Rate limit: at most maxBytes per periodMs, or null for no limit. */
  readonly limit: { readonly maxBytes: number; readonly periodMs: number } | null;
}

export function parseRng(driver: string, p: Props, ctx: DeviceContext): RngDeviceConfig {
  const base = parseBase(p, driver, virtioTransport(driver), ctx, "rng0");
  const rng = p.required("rng");
  const maxBytes = p.int("max-bytes", { min: 1 });
  const periodMs = p.int("period", { min: 1, max: MAX_RNG_PERIOD_MS });
  if ((maxBytes === undefined) !== (periodMs === undefined)) {
    p.fail("max-bytes and period must be given together");
  }
  let limit = null;
  if (maxBytes !== undefined && periodMs !== undefined) {
    const rate = (maxBytes * 1000) / periodMs;
    if (!(rate >= MIN_RNG_RATE && rate < MAX_RNG_RATE)) {
      p.fail(
        `the rate max-bytes*1000/period = ${rate} bytes/s must be >= ${MIN_RNG_RATE} and < ${MAX_RNG_RATE}`,
      );
    }
    limit = { maxBytes, periodMs };
  }
  if (base.pci && base.pci.function !== 0) {
    p.fail("virtio-rng-pci is a single-function device: the function number must be 0");
  }
  p.finish(driver);
  return { ...base, kind: "rng", rng, limit };
}

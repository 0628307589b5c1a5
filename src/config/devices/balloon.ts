/** `-device virtio-balloon-device|virtio-balloon-pci`. */
import { Props } from "../props.ts";
import { DeviceBase, DeviceContext, parseBase, virtioTransport } from "./common.ts";

export interface BalloonDeviceConfig extends DeviceBase {
  readonly kind: "balloon";
  /** VIRTIO_BALLOON_F_DEFLATE_ON_OOM. */
  readonly deflateOnOom: boolean;
  /** VIRTIO_BALLOON_F_FREE_PAGE_REPORTING. */
  readonly freePageReporting: boolean;
}

export function parseBalloon(driver: string, p: Props, ctx: DeviceContext): BalloonDeviceConfig {
  const base = parseBase(p, driver, virtioTransport(driver), ctx, "balloon0");
  const deflateOnOom = p.bool("deflate-on-oom", false);
  const freePageReporting = p.bool("free-page-reporting", false);
  p.finish(driver);
  return { ...base, kind: "balloon", deflateOnOom, freePageReporting };
}

/** `-device virtio-net-device|virtio-net-pci`. */
import { Props } from "../props.ts";
import {
  DeviceBase,
  DeviceContext,
  ignoreProps,
  parseBase,
  parseQueueSize,
  virtioTransport,
} from "./common.ts";

export const MIN_NET_QUEUE_SIZE = 256;
export const MAX_NET_QUEUE_SIZE = 4096;
export const DEFAULT_NET_QUEUE_SIZE = 256;

export interface NetDeviceConfig extends DeviceBase {
  readonly kind: "net";
  /** -netdev id. */
  readonly netdev: string;
  /** Six bytes, or null to let the device pick one. */
  readonly mac: readonly number[] | null;
  /** Multi-queue feature (VIRTIO_NET_F_MQ). */
  readonly mq: boolean;
  readonly iothread: string | null;
  readonly queueSize: number;
}

/** `12:34:56:78:9A:BC`; a unicast address (group bit clear). */
export function parseMac(text: string): number[] | undefined {
  if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(text)) return undefined;
  const bytes = text.split(":").map((b) => parseInt(b, 16));
  if (bytes[0] & 1) return undefined;
  return bytes;
}

export function parseNet(driver: string, p: Props, ctx: DeviceContext): NetDeviceConfig {
  const base = parseBase(p, driver, virtioTransport(driver), ctx);
  const netdev = p.required("netdev");
  const macText = p.str("mac");
  const mac = macText === undefined ? null : parseMac(macText);
  if (mac === undefined) {
    p.fail(
      `mac=${macText} must be six hex bytes like 12:34:56:78:9A:BC, unicast (even first byte)`,
    );
  }
  const mq = p.bool("mq", false);
  const iothread = p.str("iothread") ?? null;
  const queueSize = parseQueueSize(
    p,
    MIN_NET_QUEUE_SIZE,
    MAX_NET_QUEUE_SIZE,
    DEFAULT_NET_QUEUE_SIZE,
  );
  if (base.pci && base.pci.function !== 0) {
    p.fail("virtio-net-pci is a single-function device: the function number must be 0");
  }
  ignoreProps(p, ["bootindex"], ctx);
  p.finish(driver);
  return { ...base, kind: "net", netdev, mac, mq, iothread, queueSize };
}

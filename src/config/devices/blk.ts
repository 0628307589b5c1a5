/** `-device virtio-blk-device|virtio-blk-pci`. */
import { Props } from "../props.ts";
import {
  DeviceBase,
  DeviceContext,
  ignoreProps,
  parseBase,
  parseBootindex,
  parseQueueSize,
  virtioTransport,
} from "./common.ts";

export const MAX_BLK_QUEUES = 32;
export const DEFAULT_QUEUE_SIZE = 256;
/** Virtio-blk queue sizes StratoVirt allows: powers of 2 in (2, 1024]. */
export const MIN_BLK_QUEUE_SIZE = 4;
export const MAX_BLK_QUEUE_SIZE = 1024;
/** The virtio-blk serial (device id) field is 20 bytes. */
export const MAX_SERIAL_LEN = 20;

export interface BlkDeviceConfig extends DeviceBase {
  readonly kind: "blk";
  /** -drive id. */
  readonly drive: string;
  readonly serial: string | null;
  readonly iothread: string | null;
  readonly numQueues: number;
  readonly queueSize: number;
  /** Firmware boot order (0 first), or null: boot last. */
  readonly bootindex: number | null;
}

export function parseBlk(driver: string, p: Props, ctx: DeviceContext): BlkDeviceConfig {
  const base = parseBase(p, driver, virtioTransport(driver), ctx);
  const drive = p.required("drive");
  const serial = p.str("serial") ?? null;
  if (serial !== null && serial.length > MAX_SERIAL_LEN) {
    p.fail(`serial=${serial} is longer than ${MAX_SERIAL_LEN} characters`);
  }
  const iothread = p.str("iothread") ?? null;
  const numQueues = p.int("num-queues", { min: 1, max: MAX_BLK_QUEUES }) ?? 1;
  const queueSize = parseQueueSize(p, MIN_BLK_QUEUE_SIZE, MAX_BLK_QUEUE_SIZE, DEFAULT_QUEUE_SIZE);
  let bootindex: number | null = null;
  if (base.transport === "pci") {
    bootindex = parseBootindex(p);
  } else if (p.has("bootindex")) {
    parseBootindex(p);
    ctx.warn(`${p.option} ${p.text}: bootindex is ignored on microvm (no firmware)`);
  }
  ignoreProps(p, ["format"], ctx);
  p.finish(driver);
  return { ...base, kind: "blk", drive, serial, iothread, numQueues, queueSize, bootindex };
}

/**
 * Numbers from the virtio 1.2 specification shared by every transport and device: device
 * status bits (§2.1), reserved feature bits (§6), device ids (§5) and ring flags (§2.7).
 */

/** Device status field bits (§2.1). */
export const Status = {
  ACKNOWLEDGE: 0x01,
  DRIVER: 0x02,
  DRIVER_OK: 0x04,
  FEATURES_OK: 0x08,
  DEVICE_NEEDS_RESET: 0x40,
  FAILED: 0x80,
} as const;

/** Device-independent feature bits (§6), as bit numbers. */
export const FeatureBit = {
  INDIRECT_DESC: 28,
  EVENT_IDX: 29,
  VERSION_1: 32,
  ACCESS_PLATFORM: 33,
  RING_PACKED: 34,
} as const;

/** The feature mask for a bit number. */
export function feature(bit: number): bigint {
  return 1n << BigInt(bit);
}

/** Device ids (§5). */
export const DeviceId = {
  NET: 1,
  BLOCK: 2,
  CONSOLE: 3,
  RNG: 4,
  BALLOON: 5,
  VSOCK: 19,
} as const;

/** Split virtqueue descriptor flags (§2.7.5). */
export const DescFlag = {
  NEXT: 1,
  WRITE: 2,
  INDIRECT: 4,
} as const;

/** avail->flags: the driver asks for no interrupts (ignored once EVENT_IDX is negotiated). */
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
/** used->flags: the device asks for no notifications. */
export const VIRTQ_USED_F_NO_NOTIFY = 1;

/**
 * The contract between a virtio transport (mmio.ts; PCI later) and a device model (blk/...).
 * A device is a plain synchronous object: the transport negotiates features and sets up queues,
 * then hands them over at DRIVER_OK with `activate`; the event loop (an iothread woken by an
 * ioeventfd, or the transport itself on a QueueNotify write) calls `notify`; the device reports
 * back only through the `VirtioInterrupt` it was given.
 */
import type { GuestMemory } from "../../memory/guest_memory.ts";
import type { Queue } from "./queue.ts";

/** How a device tells the driver something happened. Never throws. */
export interface VirtioInterrupt {
  /** New entries in the used ring of queue `index` (the device already applied suppression). */
  signalUsedQueue(index: number): void;
  /** The device configuration space changed (bumps ConfigGeneration). */
  signalConfigChange(): void;
  /**
   * The guest handed the device something it cannot work with (a malformed ring): sets
   * DEVICE_NEEDS_RESET and raises a configuration-change interrupt (§2.1.2).
   */
  signalNeedsReset(reason: string): void;
}

/** Activation refused: the transport sets DEVICE_NEEDS_RESET with this message. */
export class ActivationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ActivationError";
  }
}

export interface VirtioDevice {
  /** Virtio device id (DeviceId.BLOCK...). */
  readonly deviceType: number;
  /** Maximum size of each queue; the length is the number of queues. */
  readonly queueMaxSizes: readonly number[];
  /** Features the device offers, VIRTIO_F_VERSION_1 included. */
  readonly deviceFeatures: bigint;
  /** The driver's accepted subset, handed over when FEATURES_OK is accepted. */
  ackFeatures(features: bigint): void;
  /** Device configuration space (§4.2.2 offset 0x100 onward); bytes past its end read 0. */
  readConfig(offset: number, data: Uint8Array): void;
  writeConfig(offset: number, data: Uint8Array): void;
  /**
   * DRIVER_OK: the device owns the queues (validated and ready, or not ready when the driver
   * left them unused) until `reset`. Throws ActivationError to refuse.
   */
  activate(queues: Queue[], memory: GuestMemory, interrupt: VirtioInterrupt): void;
  /** Device reset (status 0): drop the queues, forget negotiated state. */
  reset(): void;
  /** The driver notified queue `index`: process what it made available. Never throws. */
  notify(index: number): void;
}

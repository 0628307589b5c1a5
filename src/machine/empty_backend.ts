/**
 * What an empty hot-plug slot serves (StratoVirt's replaceable virtio-blk with no drive): a disk
 * of 0 sectors. The request layer refuses every read and write as past the end; a flush has
 * nothing to make durable.
 */
import { type BlockBackend, BlockIoError } from "../devices/virtio/blk/backend.ts";

function noMedium(): never {
  throw new BlockIoError("the slot is empty (no drive plugged in)");
}

export const EMPTY_BACKEND: BlockBackend = Object.freeze({
  size: 0,
  readonly: false,
  direct: false,
  readAt: noMedium,
  writeAt: noMedium,
  readv: noMedium,
  writev: noMedium,
  flush: () => {},
  discard: noMedium,
  writeZeroes: noMedium,
  close: () => {},
});

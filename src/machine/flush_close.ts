/**
 * Releasing a block image that leaves its slot (device_del, or device_add replacing it).
 */
import { type AsyncBlockBackend, isAsyncBackend } from "../devices/virtio/blk/async_backend.ts";
import type { BlockBackend } from "../devices/virtio/blk/backend.ts";
import { log } from "../util/logger.ts";

/**
 * Makes what was written to `backend` durable (fdatasync), then releases it. The device already
 * answered every request of it (replaceBackend settles the ones in flight).
 */
export function flushAndClose(backend: BlockBackend | AsyncBlockBackend, what: string): void {
  try {
    if (isAsyncBackend(backend)) {
      let failed: string | null = null;
      backend.flush((error) => failed = error);
      backend.submit();
      while (backend.inFlight > 0) backend.poll(true);
      if (failed) throw new Error(failed);
    } else {
      backend.flush();
    }
  } catch (e) {
    log.error(`${what}: flushing it: ${(e as Error).message}`);
  }
  try {
    backend.close();
  } catch (e) {
    log.warn(`${what}: closing it: ${(e as Error).message}`);
  }
}

/**
 * A device thread (the default one, or an `-object iothread`): a Worker that owns its virtio-mmio
 * transports and virtio-blk devices — they share an isolate, so queue state needs no locking —
 * and its own view of guest RAM, and blocks in a synchronous epoll_wait over:
 * - each queue's ioeventfd (the guest wrote QueueNotify: KVM signalled it, no vCPU exit),
 * - its wake eventfd (a vCPU left an MMIO access to a register window in a DeviceChannel),
 * - a throttle timerfd per disk (the IOPS limit deferred a queue),
 * - its control eventfd (the main thread wants it to stop).
 * Interrupts leave through each slot's irqfd. Requests are answered only after the backend call
 * returned (FLUSH: after fdatasync), so an acknowledged write is in the host file.
 */
/// <reference lib="deno.worker" />
import {
  Epoll,
  EPOLLIN,
  eventfdRead,
  eventfdWrite,
  timerfdCreate,
  timerfdRead,
  timerfdSet,
} from "../../ffi/events.ts";
import { close, gettid } from "../../ffi/libc.ts";
import { DeviceChannelServer, type DeviceRequest } from "../cpu/device_channel.ts";
import { type BlockDevice, openBlockDevice } from "../devices/virtio/blk/device.ts";
import { MMIO_DEVICE_SIZE, MmioTransport } from "../devices/virtio/mmio.ts";
import type { GuestMemory } from "../memory/guest_memory.ts";
import { guestMemoryOf, type RamRegionDescriptor } from "../memory/guest_ram.ts";
import { initLogger, log, type LoggerSettings } from "../util/logger.ts";
import type { DiskSpec } from "./spec.ts";
import type { KvmMmioSlot } from "./virtio_mmio_kvm.ts";

/** What the main thread sends a device Worker to start it. */
export interface DeviceWorkerInit {
  /** For log lines: "iothread io0" or "device thread". */
  readonly name: string;
  readonly regions: readonly RamRegionDescriptor[];
  readonly log: LoggerSettings;
  /** vCPUs write this after leaving a request in their channel. */
  readonly wakeFd: number;
  /** The main thread writes this to stop the Worker. */
  readonly controlFd: number;
  /** One per vCPU. */
  readonly channels: readonly SharedArrayBuffer[];
  readonly disks: readonly { readonly spec: DiskSpec; readonly slot: KvmMmioSlot }[];
}

export type DeviceWorkerMessage =
  | { readonly type: "ready" }
  | { readonly type: "failed"; readonly message: string }
  | { readonly type: "stopped" };

function post(msg: DeviceWorkerMessage): void {
  self.postMessage(msg);
}

interface Disk {
  readonly base: number;
  readonly transport: MmioTransport;
  readonly device: BlockDevice;
  readonly timerFd: number;
  readonly throttled: Set<number>;
}

/** An epoll handler; false stops the thread. */
type Handler = () => boolean;

class DeviceThread {
  readonly #name: string;
  readonly #memory: GuestMemory;
  readonly #epoll: Epoll;
  readonly #disks: Disk[] = [];
  readonly #servers: DeviceChannelServer[];
  readonly #handlers: Handler[] = [];
  readonly #wakeFd: number;

  constructor(init: DeviceWorkerInit) {
    this.#name = init.name;
    this.#wakeFd = init.wakeFd;
    this.#memory = guestMemoryOf(init.regions);
    this.#servers = init.channels.map((c) => new DeviceChannelServer(c));
    this.#epoll = Epoll.create();
    try {
      this.#watch(init.controlFd, () => false);
      this.#watch(init.wakeFd, () => this.#serveChannels());
      for (const d of init.disks) this.#addDisk(d.spec, d.slot);
    } catch (e) {
      this.close();
      throw e;
    }
  }

  #watch(fd: number, handler: Handler): void {
    this.#epoll.add(fd, EPOLLIN, this.#handlers.length);
    this.#handlers.push(handler);
  }

  #addDisk(spec: DiskSpec, slot: KvmMmioSlot): void {
    const timerFd = timerfdCreate();
    const throttled = new Set<number>();
    let device: BlockDevice;
    try {
      device = openBlockDevice({
        path: spec.path,
        readonly: spec.readonly,
        direct: spec.direct,
        serial: spec.serial,
        numQueues: spec.numQueues,
        queueSize: spec.queueSize,
        iopsTotal: spec.iopsTotal,
      }, {
        name: `virtio-blk ${spec.id}`,
        onThrottled: (index, delayMs) => {
          throttled.add(index);
          timerfdSet(timerFd, Math.max(1, Math.ceil(delayMs * 1e6)));
        },
      });
    } catch (e) {
      close(timerFd);
      throw new Error(
        `-device virtio-blk-device,id=${spec.id}: drive ${spec.drive} (${spec.path}): ` +
          (e as Error).message,
      );
    }
    const irqFd = slot.irqFd;
    const transport = new MmioTransport(device, {
      memory: this.#memory,
      interrupt: () => eventfdWrite(irqFd),
      name: `virtio-mmio ${spec.id}`,
    });
    const disk: Disk = { base: slot.base, transport, device, timerFd, throttled };
    this.#disks.push(disk);
    slot.queueFds.forEach((fd, q) =>
      this.#watch(fd, () => {
        eventfdRead(fd);
        device.notify(q);
        return true;
      })
    );
    this.#watch(timerFd, () => {
      timerfdRead(timerFd);
      const queues = [...throttled];
      throttled.clear();
      for (const q of queues) device.notify(q);
      return true;
    });
  }

  /** Answers every vCPU waiting in a channel (one wake may stand for several). */
  #serveChannels(): boolean {
    eventfdRead(this.#wakeFd);
    const handle = (req: DeviceRequest) => this.#mmio(req);
    for (const s of this.#servers) s.serve(handle);
    return true;
  }

  #mmio(req: DeviceRequest): void {
    for (const d of this.#disks) {
      const offset = req.addr - d.base;
      if (offset < 0 || offset >= MMIO_DEVICE_SIZE) continue;
      if (req.isWrite) d.transport.write(offset, req.data);
      else d.transport.read(offset, req.data);
      return;
    }
    if (!req.isWrite) req.data.fill(0);
  }

  /** Serves events until the main thread says stop. */
  run(): void {
    for (;;) {
      for (const ev of this.#epoll.wait(-1)) {
        const handler = this.#handlers[Number(ev.data)];
        let goOn = true;
        try {
          goOn = handler();
        } catch (e) {
          // Device models guard guest input themselves; this is a host-side failure.
          log.error(`${this.#name}: ${(e as Error).message}`);
        }
        if (!goOn) return;
      }
    }
  }

  /** Releases vCPUs waiting on a channel, closes the images (their data is already written). */
  close(): void {
    for (const s of this.#servers) s.close();
    for (const d of this.#disks) {
      try {
        d.device.close();
      } catch (e) {
        log.warn(`${this.#name}: closing ${d.device.name}: ${(e as Error).message}`);
      }
      close(d.timerFd);
    }
    this.#disks.length = 0;
    this.#epoll.close();
  }
}

self.onmessage = (event: MessageEvent<DeviceWorkerInit>) => {
  const init = event.data;
  self.onmessage = null;
  initLogger(init.log, gettid());
  let thread: DeviceThread;
  try {
    thread = new DeviceThread(init);
  } catch (e) {
    post({ type: "failed", message: (e as Error).message });
    return;
  }
  post({ type: "ready" });
  try {
    thread.run();
  } finally {
    thread.close();
    post({ type: "stopped" });
  }
};

/**
 * A device thread (the default one, or an `-object iothread`): a Worker that owns its virtio-mmio
 * transports and virtio-blk devices — they share an isolate, so queue state needs no locking —
 * and its own view of guest RAM, and blocks in a synchronous epoll_wait over:
 * - each queue's ioeventfd (the guest wrote QueueNotify: KVM signalled it, no vCPU exit),
 * - its wake eventfd (a vCPU left an MMIO access to a register window in a DeviceChannel),
 * - a throttle timerfd per disk (the IOPS limit deferred a queue),
 * - its control eventfd (the main thread wants it to stop),
 * - its command eventfd (the main thread left a ReplaceDiskCommand in the command buffer: QMP
 *   device_add / device_del plugs a disk into one of its slots or empties it),
 * - each disk's io_uring completion eventfd (requests in flight finished).
 * Interrupts leave through each slot's irqfd. Requests are answered only after their I/O
 * completed (FLUSH: after the writes before it and fdatasync), so an acknowledged write is in
 * the host file.
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
import { BlockDevice, openDiskBackend } from "../devices/virtio/blk/device.ts";
import { MMIO_DEVICE_SIZE, MmioTransport } from "../devices/virtio/mmio.ts";
import type { GuestMemory } from "../memory/guest_memory.ts";
import { guestMemoryOf, type RamRegionDescriptor } from "../memory/guest_ram.ts";
import { initLogger, log, type LoggerSettings } from "../util/logger.ts";
import { EMPTY_BACKEND } from "./empty_backend.ts";
import { flushAndClose } from "./flush_close.ts";
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
  /** The main thread writes this after leaving a command in `commandBuffer`. */
  readonly commandFd: number;
  /** Int32 [0] = byte length of the ReplaceDiskCommand JSON that starts at byte 8. */
  readonly commandBuffer: SharedArrayBuffer;
  /** One per vCPU. */
  readonly channels: readonly SharedArrayBuffer[];
  /** The block slots this thread serves; `disk` null: an empty hot-plug slot. */
  readonly slots: readonly WorkerSlot[];
}

export interface WorkerSlot {
  readonly index: number;
  readonly disk: DiskSpec | null;
  readonly numQueues: number;
  readonly queueSize: number;
  readonly slot: KvmMmioSlot;
}

/** Plug `disk` into block slot `slot` (null: empty it). Answered by a "replaced" message. */
export interface ReplaceDiskCommand {
  readonly seq: number;
  readonly slot: number;
  readonly disk: DiskSpec | null;
}

export type DeviceWorkerMessage =
  | { readonly type: "ready"; readonly tid: number }
  | { readonly type: "failed"; readonly message: string }
  | { readonly type: "replaced"; readonly seq: number; readonly error: string | null }
  | { readonly type: "stopped" };

function post(msg: DeviceWorkerMessage): void {
  self.postMessage(msg);
}

interface Disk {
  readonly index: number;
  /** Which disk is plugged in now (messages), or null while the slot is empty. */
  id: string | null;
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
  readonly #commandFd: number;
  readonly #commandBuffer: SharedArrayBuffer;

  constructor(init: DeviceWorkerInit) {
    this.#name = init.name;
    this.#wakeFd = init.wakeFd;
    this.#commandFd = init.commandFd;
    this.#commandBuffer = init.commandBuffer;
    this.#memory = guestMemoryOf(init.regions);
    this.#servers = init.channels.map((c) => new DeviceChannelServer(c));
    this.#epoll = Epoll.create();
    try {
      this.#watch(init.controlFd, () => false);
      this.#watch(init.wakeFd, () => this.#serveChannels());
      this.#watch(init.commandFd, () => this.#command());
      for (const s of init.slots) this.#addDisk(s);
    } catch (e) {
      this.close();
      throw e;
    }
  }

  #watch(fd: number, handler: Handler): void {
    this.#epoll.add(fd, EPOLLIN, this.#handlers.length);
    this.#handlers.push(handler);
  }

  #addDisk(s: WorkerSlot): void {
    const { disk: spec, slot } = s;
    const timerFd = timerfdCreate();
    const throttled = new Set<number>();
    let device: BlockDevice;
    try {
      // An empty hot-plug slot is a disk of 0 sectors until device_add fills it.
      device = new BlockDevice({
        backend: spec ? openDiskBackend(spec, s.numQueues * s.queueSize) : EMPTY_BACKEND,
        readonly: spec?.readonly ?? false,
        serial: spec?.serial ?? null,
        numQueues: s.numQueues,
        queueSize: s.queueSize,
        iopsTotal: spec?.iopsTotal ?? null,
        name: `virtio-blk ${spec ? spec.id : `slot ${s.index}`}`,
        onThrottled: (index, delayMs) => {
          throttled.add(index);
          timerfdSet(timerFd, Math.max(1, Math.ceil(delayMs * 1e6)));
        },
      });
    } catch (e) {
      close(timerFd);
      throw new Error(
        `-device virtio-blk-device,id=${spec?.id}: drive ${spec?.drive} (${spec?.path}): ` +
          (e as Error).message,
      );
    }
    const irqFd = slot.irqFd;
    const transport = new MmioTransport(device, {
      memory: this.#memory,
      interrupt: () => eventfdWrite(irqFd),
      name: `virtio-mmio slot ${s.index}`,
    });
    const disk: Disk = {
      index: s.index,
      id: spec?.id ?? null,
      base: slot.base,
      transport,
      device,
      timerFd,
      throttled,
    };
    this.#disks.push(disk);
    slot.queueFds.forEach((fd, q) =>
      this.#watch(fd, () => {
        eventfdRead(fd);
        device.notify(q);
        return true;
      })
    );
    this.#watchCompletions(device);
    this.#watch(timerFd, () => {
      timerfdRead(timerFd);
      const queues = [...throttled];
      throttled.clear();
      for (const q of queues) device.notify(q);
      return true;
    });
  }

  /** An io_uring backend's eventfd: its finished requests are answered from here. */
  #watchCompletions(device: BlockDevice): void {
    const fd = device.completionFd;
    if (fd === null) return;
    this.#watch(fd, () => {
      // A replaced backend's fd is removed from epoll before it closes; this guards a stale event.
      if (device.completionFd !== fd) return true;
      // Reset before reaping: a completion after this read signals the fd again.
      eventfdRead(fd);
      device.processCompletions();
      return true;
    });
  }

  /** A ReplaceDiskCommand from the main thread: run it and answer. */
  #command(): boolean {
    eventfdRead(this.#commandFd);
    const length = Atomics.load(new Int32Array(this.#commandBuffer, 0, 1), 0);
    const bytes = new Uint8Array(this.#commandBuffer, 8, length).slice();
    const command = JSON.parse(new TextDecoder().decode(bytes)) as ReplaceDiskCommand;
    let error: string | null = null;
    try {
      this.#replace(command.slot, command.disk);
    } catch (e) {
      error = (e as Error).message;
    }
    post({ type: "replaced", seq: command.seq, error });
    return true;
  }

  /**
   * Swaps the backend of slot `index`. The new image is opened first (a failure leaves the slot
   * as it was). The device first answers the old backend's requests in flight; then it is
   * flushed (what the guest was told is written becomes durable) and closed before the guest
   * hears of the change through the configuration-change interrupt.
   */
  #replace(index: number, spec: DiskSpec | null): void {
    const d = this.#disks.find((d) => d.index === index);
    if (!d) throw new Error(`${this.#name} has no virtio-blk slot ${index}`);
    const next = spec
      ? openDiskBackend(spec, d.device.queueMaxSizes.reduce((n, q) => n + q, 0))
      : EMPTY_BACKEND;
    const oldFd = d.device.completionFd;
    const old = d.device.replaceBackend(next, {
      readonly: spec?.readonly ?? false,
      serial: spec?.serial ?? null,
    });
    if (oldFd !== null) this.#epoll.remove(oldFd);
    this.#watchCompletions(d.device);
    const was = d.id;
    d.id = spec?.id ?? null;
    flushAndClose(old, `${this.#name}: unplugging ${was}`);
    d.transport.signalConfigChange();
    log.info(
      `${this.#name}: virtio-blk slot ${index}: ` +
        (spec ? `${spec.id} plugged in (${spec.path})` : `${was ?? "nothing"} unplugged`),
    );
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
  post({ type: "ready", tid: gettid() });
  try {
    thread.run();
  } finally {
    thread.close();
    post({ type: "stopped" });
  }
};

/**
 * The main thread's handle on the device threads: one Worker for every `-object iothread` a
 * disk names, plus one default device thread for the disks that name none and for the empty
 * hot-plug slots. Each block slot is a microvm virtio-mmio slot (KVM ioeventfds + irqfd wired
 * here, before any vCPU runs) owned by one thread for the VM's life; vCPUs reach a thread's
 * register windows through one DeviceChannel each. `replaceDisk` plugs a disk into a slot or
 * empties it while the guest runs (QMP device_add / device_del).
 */
import { eventfd, eventfdWrite } from "../../ffi/events.ts";
import type { Vm } from "../../ffi/kvm.ts";
import { close } from "../../ffi/libc.ts";
import {
  closeDeviceChannel,
  createDeviceChannelBuffer,
  type DeviceMmioRoutes,
  type DeviceWindow,
} from "../cpu/device_channel.ts";
import { kernelCmdlineArg, microvmMmioSlot, MMIO_DEVICE_SIZE } from "../devices/virtio/mmio.ts";
import type { RamRegionDescriptor } from "../memory/guest_ram.ts";
import type { LoggerSettings } from "../util/logger.ts";
import type { DeviceWorkerInit, DeviceWorkerMessage, ReplaceDiskCommand } from "./device_worker.ts";
import { type BlockSlot, blockSlotsOf, type DiskSpec } from "./spec.ts";
import { type KvmMmioSlot, unwireKvmMmioSlot, wireKvmMmioSlot } from "./virtio_mmio_kvm.ts";

/** How long a device thread may take to open its images, and to stop. */
const START_TIMEOUT_MS = 30_000;

/** How long a device thread may take to swap a disk (open the new image, sync the old one). */
const REPLACE_TIMEOUT_MS = 30_000;
/** Room for one command (a DiskSpec as JSON) in a thread's command buffer. */
const COMMAND_BYTES = 64 * 1024;

/**
 * The kernel command-line words announcing the block slots of `spec` (slot i for disk i, then
 * the empty hot-plug slots).
 */
export function diskCmdlineArgs(
  spec: { disks?: readonly DiskSpec[]; hotplug?: boolean },
): string[] {
  return blockSlotsOf(spec).map((s) => {
    const { base, irq } = microvmMmioSlot(s.index);
    return kernelCmdlineArg(base, irq);
  });
}

export interface DeviceThreadsOptions {
  readonly vm: Vm;
  readonly disks: readonly DiskSpec[];
  /** Announce every block slot, the free ones empty (MachineSpec.hotplug). */
  readonly hotplug?: boolean;
  /** `-object iothread` ids: those no disk names get an idle thread, as StratoVirt makes one. */
  readonly iothreads?: readonly string[];
  readonly regions: readonly RamRegionDescriptor[];
  readonly cpus: number;
  readonly log: LoggerSettings;
  /** A device thread failed while the VM runs (the VM should end). */
  readonly onError: (thread: string, message: string) => void;
}

interface DeviceThread {
  readonly name: string;
  readonly worker: Worker;
  readonly wakeFd: number;
  readonly controlFd: number;
  readonly channels: readonly SharedArrayBuffer[];
  readonly slots: readonly KvmMmioSlot[];
  /** Resolves when the Worker reports it stopped (or died). */
  readonly stopped: Promise<void>;
  readonly commandFd: number;
  /** Int32 [0] = byte length, then the command as JSON from byte 8. */
  readonly commandBuffer: SharedArrayBuffer;
  /** Commands go one at a time: each waits for the one before. */
  queue: Promise<unknown>;
  /** The answer to the command in hand, by its sequence number. */
  readonly replies: Map<number, (error: string | null) => void>;
  stoppedNow: boolean;
  /** The Worker's host thread id, once it reported ready. */
  tid: number;
}

function iothreadName(id: string): string {
  return `iothread ${id}`;
}

function groupByThread(slots: readonly BlockSlot[]): Map<string, BlockSlot[]> {
  const groups = new Map<string, BlockSlot[]>();
  for (const s of slots) {
    const name = s.iothread === null ? "device thread" : iothreadName(s.iothread);
    const g = groups.get(name) ?? [];
    g.push(s);
    groups.set(name, g);
  }
  return groups;
}

export class DeviceThreads {
  readonly #vm: Vm;
  readonly #threads: DeviceThread[] = [];
  #stopping = false;
  #seq = 0;

  private constructor(vm: Vm) {
    this.#vm = vm;
  }

  /**
   * Wires every disk's slot into KVM and starts the threads; resolves once every image is open.
   * Rejects with an Error naming the device when one cannot be (nothing is left running then).
   */
  /** Host thread id of each `-object iothread`, by id (query-iothreads). */
  iothreadIds(): Map<string, number> {
    const ids = new Map<string, number>();
    for (const t of this.#threads) {
      if (t.name.startsWith("iothread ")) ids.set(t.name.slice("iothread ".length), t.tid);
    }
    return ids;
  }

  static async start(o: DeviceThreadsOptions): Promise<DeviceThreads> {
    const threads = new DeviceThreads(o.vm);
    try {
      const ready: Promise<void>[] = [];
      const slots = blockSlotsOf({ disks: o.disks, hotplug: o.hotplug });
      const groups = groupByThread(slots);
      for (const id of o.iothreads ?? []) {
        if (!groups.has(iothreadName(id))) groups.set(iothreadName(id), []);
      }
      for (const [name, group] of groups) {
        ready.push(threads.#spawn(name, group, o));
      }
      await Promise.all(ready);
    } catch (e) {
      await threads.stop();
      throw e;
    }
    return threads;
  }

  #spawn(name: string, group: readonly BlockSlot[], o: DeviceThreadsOptions): Promise<void> {
    const slots: KvmMmioSlot[] = [];
    let wakeFd = -1;
    let controlFd = -1;
    let commandFd = -1;
    try {
      for (const s of group) slots.push(wireKvmMmioSlot(o.vm, s.index, s.numQueues));
      wakeFd = eventfd();
      controlFd = eventfd();
      commandFd = eventfd();
    } catch (e) {
      for (const s of slots) unwireKvmMmioSlot(o.vm, s);
      for (const fd of [wakeFd, controlFd, commandFd]) if (fd >= 0) close(fd);
      throw e;
    }
    const commandBuffer = new SharedArrayBuffer(8 + COMMAND_BYTES);
    const replies = new Map<number, (error: string | null) => void>();
    const channels = Array.from({ length: o.cpus }, () => createDeviceChannelBuffer());
    const worker = new Worker(new URL("./device_worker.ts", import.meta.url), {
      type: "module",
      name,
    });
    let onReady!: () => void;
    let onFailed!: (e: Error) => void;
    const ready = new Promise<void>((resolve, reject) => {
      onReady = resolve;
      onFailed = reject;
    });
    let onStopped!: () => void;
    const stopped = new Promise<void>((resolve) => onStopped = resolve);
    let started = false;
    const died = (message: string) => {
      for (const c of channels) closeDeviceChannel(c);
      thread.stoppedNow = true;
      for (const answer of replies.values()) answer(`${name} stopped: ${message}`);
      replies.clear();
      onStopped();
      if (!started) onFailed(new Error(message));
      else if (!this.#stopping) o.onError(name, message);
    };
    worker.onmessage = (e: MessageEvent<DeviceWorkerMessage>) => {
      const msg = e.data;
      if (msg.type === "ready") {
        started = true;
        thread.tid = msg.tid;
        onReady();
      } else if (msg.type === "failed") {
        died(msg.message);
      } else if (msg.type === "replaced") {
        replies.get(msg.seq)?.(msg.error);
        replies.delete(msg.seq);
      } else {
        thread.stoppedNow = true;
        for (const answer of replies.values()) answer(`${name} stopped`);
        replies.clear();
        onStopped();
      }
    };
    worker.onerror = (e) => {
      e.preventDefault();
      died(`${name} failed: ${e.message}`);
    };
    const thread: DeviceThread = {
      name,
      worker,
      wakeFd,
      controlFd,
      channels,
      slots,
      stopped,
      commandFd,
      commandBuffer,
      queue: Promise.resolve(),
      replies,
      stoppedNow: false,
      tid: 0,
    };
    this.#threads.push(thread);
    const init: DeviceWorkerInit = {
      name,
      regions: o.regions,
      log: o.log,
      wakeFd,
      controlFd,
      commandFd,
      commandBuffer,
      channels,
      slots: group.map((s, k) => ({
        index: s.index,
        disk: s.disk,
        numQueues: s.numQueues,
        queueSize: s.queueSize,
        slot: slots[k],
      })),
    };
    worker.postMessage(init);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${name} did not start in ${START_TIMEOUT_MS / 1000} s`)),
        START_TIMEOUT_MS,
      );
    });
    return Promise.race([ready, timeout]).finally(() => clearTimeout(timer));
  }

  /** What vCPU `vcpu` needs to send its MMIO exits in the register windows to their thread. */
  routesFor(vcpu: number): DeviceMmioRoutes {
    const windows: DeviceWindow[] = [];
    const links = this.#threads.map((t, link) => {
      for (const s of t.slots) windows.push({ base: s.base, length: MMIO_DEVICE_SIZE, link });
      return { wakeFd: t.wakeFd, channel: t.channels[vcpu] };
    });
    return { links, windows };
  }

  /**
   * Plugs `disk` into block slot `index` (null: empties it) while the guest may be running; the
   * slot's thread opens the new image, swaps it in, flushes and closes the old one, then raises
   * the slot's configuration-change interrupt. Resolves once all of that is done; rejects with
   * the thread's reason (the image cannot be opened: the slot keeps what it had).
   */
  replaceDisk(index: number, disk: DiskSpec | null): Promise<void> {
    const t = this.#threads.find((t) => t.slots.some((s) => s.index === index));
    if (!t) return Promise.reject(new Error(`no virtio-blk slot ${index}`));
    const run = async () => {
      if (t.stoppedNow || this.#stopping) throw new Error(`${t.name} is not running`);
      const seq = ++this.#seq;
      const command: ReplaceDiskCommand = { seq, slot: index, disk };
      const bytes = new TextEncoder().encode(JSON.stringify(command));
      if (bytes.length > COMMAND_BYTES) throw new Error("the disk description is too long");
      new Uint8Array(t.commandBuffer, 8).set(bytes);
      Atomics.store(new Int32Array(t.commandBuffer, 0, 1), 0, bytes.length);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const answered = new Promise<string | null>((resolve) => {
        t.replies.set(seq, resolve);
        timer = setTimeout(
          () => resolve(`${t.name} did not answer in ${REPLACE_TIMEOUT_MS / 1000} s`),
          REPLACE_TIMEOUT_MS,
        );
      });
      eventfdWrite(t.commandFd);
      const error = await answered.finally(() => clearTimeout(timer));
      t.replies.delete(seq);
      if (error !== null) throw new Error(error);
    };
    const result = t.queue.then(run, run);
    t.queue = result.catch(() => {});
    return result;
  }

  /**
   * Stops every thread (each closes its images after the request in hand), then releases the
   * eventfds and KVM registrations. Resolves with whether all stopped within `ms`.
   */
  async stop(ms = 1000): Promise<boolean> {
    this.#stopping = true;
    for (const t of this.#threads) {
      try {
        eventfdWrite(t.controlFd);
      } catch { /* the Worker is gone already */ }
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const all = await Promise.race([
      Promise.all(this.#threads.map((t) => t.stopped)).then(() => true),
      new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(false), ms)),
    ]);
    clearTimeout(timer);
    for (const t of this.#threads) {
      for (const c of t.channels) closeDeviceChannel(c);
      if (all) t.worker.terminate();
      for (const s of t.slots) unwireKvmMmioSlot(this.#vm, s);
      // A Worker that did not stop may still wait on these: leave them to the process exit.
      if (all) { for (const fd of [t.wakeFd, t.controlFd, t.commandFd]) close(fd); }
    }
    this.#threads.length = 0;
    return all;
  }
}

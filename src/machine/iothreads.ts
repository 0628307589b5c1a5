/**
 * The main thread's handle on the device threads: one Worker for every `-object iothread` a
 * disk names, plus one default device thread for the disks that name none. Each disk takes the
 * microvm's virtio-mmio slot of its position (KVM ioeventfds + irqfd wired here, before any
 * vCPU runs); vCPUs reach a thread's register windows through one DeviceChannel each.
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
import type { DeviceWorkerInit, DeviceWorkerMessage } from "./device_worker.ts";
import type { DiskSpec } from "./spec.ts";
import { type KvmMmioSlot, unwireKvmMmioSlot, wireKvmMmioSlot } from "./virtio_mmio_kvm.ts";

/** How long a device thread may take to open its images, and to stop. */
const START_TIMEOUT_MS = 30_000;

/** The kernel command-line words announcing `disks` (slot i for disk i). */
export function diskCmdlineArgs(disks: readonly DiskSpec[]): string[] {
  return disks.map((_, i) => {
    const { base, irq } = microvmMmioSlot(i);
    return kernelCmdlineArg(base, irq);
  });
}

export interface DeviceThreadsOptions {
  readonly vm: Vm;
  readonly disks: readonly DiskSpec[];
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
}

function groupByThread(disks: readonly DiskSpec[]): Map<string, number[]> {
  const groups = new Map<string, number[]>();
  disks.forEach((d, i) => {
    const name = d.iothread === null ? "device thread" : `iothread ${d.iothread}`;
    const g = groups.get(name) ?? [];
    g.push(i);
    groups.set(name, g);
  });
  return groups;
}

export class DeviceThreads {
  readonly #vm: Vm;
  readonly #threads: DeviceThread[] = [];
  #stopping = false;

  private constructor(vm: Vm) {
    this.#vm = vm;
  }

  /**
   * Wires every disk's slot into KVM and starts the threads; resolves once every image is open.
   * Rejects with an Error naming the device when one cannot be (nothing is left running then).
   */
  static async start(o: DeviceThreadsOptions): Promise<DeviceThreads> {
    const threads = new DeviceThreads(o.vm);
    try {
      const ready: Promise<void>[] = [];
      for (const [name, indices] of groupByThread(o.disks)) {
        ready.push(threads.#spawn(name, indices, o));
      }
      await Promise.all(ready);
    } catch (e) {
      await threads.stop();
      throw e;
    }
    return threads;
  }

  #spawn(name: string, indices: readonly number[], o: DeviceThreadsOptions): Promise<void> {
    const slots: KvmMmioSlot[] = [];
    let wakeFd = -1;
    let controlFd = -1;
    try {
      for (const i of indices) slots.push(wireKvmMmioSlot(o.vm, i, o.disks[i].numQueues));
      wakeFd = eventfd();
      controlFd = eventfd();
    } catch (e) {
      for (const s of slots) unwireKvmMmioSlot(o.vm, s);
      for (const fd of [wakeFd, controlFd]) if (fd >= 0) close(fd);
      throw e;
    }
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
      onStopped();
      if (!started) onFailed(new Error(message));
      else if (!this.#stopping) o.onError(name, message);
    };
    worker.onmessage = (e: MessageEvent<DeviceWorkerMessage>) => {
      const msg = e.data;
      if (msg.type === "ready") {
        started = true;
        onReady();
      } else if (msg.type === "failed") {
        died(msg.message);
      } else {
        onStopped();
      }
    };
    worker.onerror = (e) => {
      e.preventDefault();
      died(`${name} failed: ${e.message}`);
    };
    this.#threads.push({ name, worker, wakeFd, controlFd, channels, slots, stopped });
    const init: DeviceWorkerInit = {
      name,
      regions: o.regions,
      log: o.log,
      wakeFd,
      controlFd,
      channels,
      disks: indices.map((i, k) => ({ spec: o.disks[i], slot: slots[k] })),
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
      if (all) { for (const fd of [t.wakeFd, t.controlFd]) close(fd); }
    }
    this.#threads.length = 0;
    return all;
  }
}

/**
 * The main thread's handle on the vCPU Workers: starts one Worker per vCPU, serves each one's
 * ExitChannel with the device buses, and pauses / resumes / stops them through the shared control
 * words plus a kick (SIGRTMIN + immediate_exit) that makes a blocked KVM_RUN return.
 */
import type { Vcpu } from "../../ffi/kvm.ts";
import type { DeviceMmioRoutes } from "../cpu/device_channel.ts";
import { createChannelBuffer, ExitChannelServer, type ExitHandler } from "../cpu/exit_channel.ts";
import {
  COMMAND,
  createControlBuffer,
  STATE,
  TID,
  VcpuCommand,
  type VcpuMessage,
  VcpuState,
  type VcpuWorkerInit,
} from "../cpu/vcpu_control.ts";

type Shared = Omit<VcpuWorkerInit, "handle" | "control" | "channel">;

const VCPU_WORKER_URL = new URL("../cpu/vcpu_worker.ts", import.meta.url);

/**
 * vCPU Workers started ahead of their vCPUs. Creating a Worker's isolate and loading its modules
 * takes tens of ms; started early, that overlaps the main thread's set-up (kernel load, vCPU
 * registers, devices) instead of delaying the first KVM_RUN. Each Worker waits for its start
 * message; `dispose()` ends those no VcpuThreads took.
 */
export class VcpuWorkerPool {
  readonly #idle = new Map<number, Worker>();
  /** Errors of Workers that failed before a VcpuThreads took them. */
  readonly #errors = new Map<Worker, string>();

  /** Starts the Workers of vCPUs 0..count-1 that are not started yet. */
  start(count: number): void {
    for (let id = 0; id < count; id++) {
      if (this.#idle.has(id)) continue;
      const worker = new Worker(VCPU_WORKER_URL, { type: "module", name: `vcpu${id}` });
      worker.onerror = (e) => {
        e.preventDefault();
        this.#errors.set(worker, e.message);
      };
      this.#idle.set(id, worker);
    }
  }

  /** vCPU `id`'s Worker (a new one if none was started for it), with any error it already had. */
  take(id: number): { worker: Worker; error: string | null } {
    const worker = this.#idle.get(id);
    if (!worker) {
      return {
        worker: new Worker(VCPU_WORKER_URL, { type: "module", name: `vcpu${id}` }),
        error: null,
      };
    }
    this.#idle.delete(id);
    return { worker, error: this.#errors.get(worker) ?? null };
  }

  /** Ends the Workers no one took (the VM's set-up failed first). */
  dispose(): void {
    for (const worker of this.#idle.values()) worker.terminate();
    this.#idle.clear();
  }
}

interface VcpuThread {
  readonly vcpu: Vcpu;
  readonly worker: Worker;
  readonly control: Int32Array;
  readonly server: ExitChannelServer;
}

/** Waits without blocking the event loop until `pred` holds or `ms` pass. */
async function waitFor(words: Int32Array, index: number, pred: (v: number) => boolean, ms: number) {
  const deadline = performance.now() + ms;
  for (;;) {
    const v = Atomics.load(words, index);
    if (pred(v)) return true;
    const left = deadline - performance.now();
    if (left <= 0) return false;
    const r = Atomics.waitAsync(words, index, v, Math.min(left, 20));
    if (r.async) await r.value;
  }
}

export class VcpuThreads {
  readonly #threads: VcpuThread[] = [];

  /**
   * Starts a Worker for each vCPU; `onMessage` gets what they post (VM exits, boot events),
   * `handler` serves their PIO/MMIO exits on this thread, except MMIO in the windows of
   * `deviceMmio(vcpu id)`, which go straight to the device Workers. Workers come from
   * `o.pool` when given (started ahead), else are started here. With `o.startPaused` each vCPU
   * is told to pause before its Worker gets its start message, so none enters KVM_RUN.
   */
  constructor(
    vcpus: readonly Vcpu[],
    shared: Shared,
    handler: ExitHandler,
    onMessage: (msg: VcpuMessage) => void,
    onError: (vcpu: number, message: string) => void,
    deviceMmio?: (vcpu: number) => DeviceMmioRoutes,
    o: { readonly pool?: VcpuWorkerPool; readonly startPaused?: boolean } = {},
  ) {
    const pool = o.pool ?? new VcpuWorkerPool();
    for (const vcpu of vcpus) {
      const controlBuffer = createControlBuffer();
      const channel = createChannelBuffer();
      const { worker, error } = pool.take(vcpu.id);
      worker.onmessage = (e: MessageEvent<VcpuMessage>) => onMessage(e.data);
      worker.onerror = (e) => {
        e.preventDefault();
        onError(vcpu.id, e.message);
      };
      if (error !== null) queueMicrotask(() => onError(vcpu.id, error));
      const control = new Int32Array(controlBuffer);
      // A pre-started Worker runs as soon as the start message lands: -S must be set before.
      if (o.startPaused) Atomics.store(control, COMMAND, VcpuCommand.Pause);
      const server = new ExitChannelServer(channel);
      server.serve(handler);
      const init: VcpuWorkerInit & { deviceMmio?: DeviceMmioRoutes } = {
        ...shared,
        handle: vcpu.handle(),
        control: controlBuffer,
        channel,
        deviceMmio: deviceMmio?.(vcpu.id),
      };
      worker.postMessage(init);
      this.#threads.push({ vcpu, worker, control, server });
    }
  }

  #command(cmd: VcpuCommand): void {
    for (const t of this.#threads) {
      Atomics.store(t.control, COMMAND, cmd);
      Atomics.notify(t.control, COMMAND);
      const tid = Atomics.load(t.control, TID);
      // A Worker that has not published its tid has not entered KVM_RUN: it reads COMMAND first.
      if (tid !== 0 && cmd !== VcpuCommand.Run) t.vcpu.kick(tid);
    }
  }

  /** Asks every vCPU to pause; resolves once all are out of KVM_RUN (or `ms` pass). */
  async pause(ms = 1000): Promise<boolean> {
    this.#command(VcpuCommand.Pause);
    return await this.#waitAll((s) => s === VcpuState.Paused || s === VcpuState.Stopped, ms);
  }

  resume(): void {
    this.#command(VcpuCommand.Run);
  }

  /** Each vCPU's host thread id (gettid), in vCPU order; 0 until its Worker has started. */
  threadIds(): number[] {
    return this.#threads.map((t) => Atomics.load(t.control, TID));
  }

  /**
   * Stops every vCPU: sets the command, kicks, repeats the kick until each reports stopped (a kick
   * landing between two KVM_RUN calls is caught by immediate_exit, this covers the rest), then
   * releases any vCPU waiting on its exit channel. Resolves with whether all stopped in `ms`.
   */
  async stop(ms = 1000): Promise<boolean> {
    const deadline = performance.now() + ms;
    for (const t of this.#threads) t.server.close();
    for (;;) {
      this.#command(VcpuCommand.Stop);
      const left = deadline - performance.now();
      if (left <= 0) return false;
      if (await this.#waitAll((s) => s === VcpuState.Stopped, Math.min(left, 50))) return true;
    }
  }

  async #waitAll(pred: (s: number) => boolean, ms: number): Promise<boolean> {
    const results = await Promise.all(
      this.#threads.map((t) => waitFor(t.control, STATE, pred, ms)),
    );
    return results.every((r) => r);
  }

  /** Ends the Workers (only safe once they are out of KVM_RUN). */
  terminate(): void {
    for (const t of this.#threads) {
      if (Atomics.load(t.control, STATE) === VcpuState.Stopped) t.worker.terminate();
    }
  }
}

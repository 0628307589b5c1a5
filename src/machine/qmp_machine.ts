/**
 * The QmpMachine of a KVM microvm: what QMP sees of a running `runMicrovm`. It exists before the
 * VM does (QMP listens from the start, so a client may connect while the kernel is still being
 * read) and is bound to the VM's handle once the vCPU threads exist; until then the VM is
 * "created" (query-status: prelaunch), and stop / cont / system_reset / system_powerdown wait for
 * the VM (a client that sends `cont` as soon as it connects to a -S VM gets it started).
 *
 *   const machine = new MicrovmQmpMachine(config, spec);
 *   const server = new QmpServer(machine);
 *   machine.attachServer(server);
 *   await runMicrovm(spec, { onRunning: (vm) => machine.attach(vm), onEvent: (e) => machine.forward(e) });
 *
 * A microvm has neither ACPI nor firmware, so, as in StratoVirt's microvm, `system_reset` and
 * `system_powerdown` end the VM (the VMM stands in for the guest): system_reset announces
 * SHUTDOWN host-qmp-system-reset; system_powerdown announces POWERDOWN, then SHUTDOWN
 * host-qmp-quit, and like StratoVirt it is refused unless the VM is running. With -no-shutdown both
 * leave the VM paused instead, as a guest poweroff does.
 *
 * Hot-plug (blockdev-add, device_add, device_del, blockdev-del) fills and empties the microvm's
 * virtio-blk slots (block_hotplug.ts decides, the slot's device thread swaps the image); one
 * such command runs at a time. device_del answers once the disk is gone from the slot, after
 * DEVICE_DELETED (StratoVirt's order).
 */
import type { VmConfig } from "../config/mod.ts";
import { x86MemoryLayout } from "../boot/layout.ts";
import { QmpError } from "../qmp/errors.ts";
import { deviceDeletedData } from "../qmp/events.ts";
import type {
  BlockdevAddArgs,
  DeviceAddArgs,
  QmpBlock,
  QmpChardev,
  QmpCpu,
  QmpIothread,
  QmpMachine,
  QmpMemory,
} from "../qmp/machine_api.ts";
import { scmLibc } from "../qmp/scm_libc.ts";
import type { QmpServer } from "../qmp/server.ts";
import { LifecycleError, type VmState } from "./lifecycle.ts";
import type { MachineEvent, MicrovmHandle } from "./microvm.ts";
import { blockSlotsOf, type MachineSpec, topologyOf } from "./spec.ts";
import { BlockHotplug } from "./block_hotplug.ts";

/** Whether /dev/kvm can be opened read-write (query-kvm's `present`). */
function kvmPresent(path = "/dev/kvm"): boolean {
  try {
    Deno.openSync(path, { read: true, write: true }).close();
    return true;
  } catch {
    return false;
  }
}

function notSupported(command: string): never {
  throw new QmpError(
    "GenericError",
    `${command}: hot-plug is not supported by the KVM microvm of this build yet`,
  );
}

export class MicrovmQmpMachine implements QmpMachine {
  readonly machineType = "microvm";
  readonly kvm: { readonly enabled: boolean; readonly present: boolean };
  readonly #config: VmConfig;
  readonly #spec: MachineSpec;
  #vm: MicrovmHandle | null = null;
  readonly #attached: Promise<MicrovmHandle>;
  #resolveAttached!: (vm: MicrovmHandle) => void;
  #server: QmpServer | null = null;
  #quitRequested = false;
  readonly #fds = new Map<string, number>();
  readonly #hotplug: BlockHotplug;
  /** Hot-plug commands run one at a time (each checks, waits for the device thread, records). */
  #hotplugQueue: Promise<unknown> = Promise.resolve();

  constructor(config: VmConfig, spec: MachineSpec) {
    this.#config = config;
    this.#spec = spec;
    this.#hotplug = new BlockHotplug(
      config.drives.map((d) => ({
        id: d.id,
        path: d.file,
        readonly: d.readonly,
        direct: d.direct,
        asyncIo: d.aio !== "off",
        format: d.format,
      })),
      blockSlotsOf(spec),
      config.devices.map((d) => d.id),
    );
    const present = kvmPresent(spec.kvmPath);
    this.kvm = { enabled: present, present };
    this.#attached = new Promise((resolve) => this.#resolveAttached = resolve);
  }

  /** The server events go to (STOP / RESUME / SHUTDOWN / POWERDOWN). */
  attachServer(server: QmpServer): void {
    this.#server = server;
  }

  /** Binds the running VM (MicrovmHooks.onRunning). A quit that came earlier ends it now. */
  attach(vm: MicrovmHandle): void {
    this.#vm = vm;
    this.#resolveAttached(vm);
    if (this.#quitRequested) vm.shutdown(0, "QMP quit before the VM started");
  }

  /** Forwards a machine event to the QMP clients (MicrovmHooks.onEvent). */
  forward(event: MachineEvent): void {
    const server = this.#server;
    if (!server) return;
    if (event.name === "SHUTDOWN") server.emitShutdown(event.reason, event.guest);
    else server.emitEvent(event.name, {});
  }

  /** Closes the fds received with getfd (the process is about to exit). */
  closeFds(): void {
    for (const fd of this.#fds.values()) scmLibc()?.close(fd);
    this.#fds.clear();
  }

  /** The VM, once it exists (a VM that fails to start ends the process instead). */
  async #ready(): Promise<MicrovmHandle> {
    return this.#vm ?? await this.#attached;
  }

  status(): VmState {
    return this.#vm?.lifecycle.state ?? "created";
  }

  async pause(): Promise<void> {
    await (await this.#ready()).pause();
  }

  async resume(): Promise<void> {
    (await this.#ready()).resume();
  }

  async powerdown(): Promise<void> {
    const vm = await this.#ready();
    // StratoVirt's microvm powers down only a running VM (Running -> Shutdown).
    if (vm.lifecycle.state !== "running") {
      throw new LifecycleError(`VM is ${vm.lifecycle.state}, cannot power down`);
    }
    this.#server?.emitEvent("POWERDOWN", {});
    vm.powerOff("host-qmp-quit", false, "QMP system_powerdown (a microvm has no ACPI)");
  }

  async reset(): Promise<void> {
    (await this.#ready()).powerOff(
      "host-qmp-system-reset",
      false,
      "QMP system_reset (a microvm resets by shutting down)",
    );
  }

  async quit(): Promise<void> {
    if (this.#vm) this.#vm.shutdown(0, "QMP quit");
    else this.#quitRequested = true;
    await this.#server?.close();
  }

  cpus(): QmpCpu[] {
    const t = topologyOf(this.#spec);
    const possible = t.sockets * t.dies * t.clusters * t.cores * t.threads;
    const tids = this.#vm?.vcpuThreadIds() ?? [];
    const coresPerDie = t.cores * t.clusters;
    return Array.from({ length: possible }, (_, index) => ({
      index,
      present: index < this.#spec.cpus,
      threadId: tids[index] ?? 0,
      // StratoVirt reports halted: false (KVM's in-kernel LAPIC keeps HLT to itself).
      halted: false,
      socketId: Math.floor(index / (t.threads * coresPerDie * t.dies)),
      dieId: Math.floor(index / (t.threads * coresPerDie)) % t.dies,
      coreId: Math.floor(index / t.threads) % coresPerDie,
      threadIdInCore: index % t.threads,
    }));
  }

  iothreads(): QmpIothread[] {
    const tids = this.#vm?.iothreadIds() ?? new Map<string, number>();
    return this.#config.iothreads.map((t) => ({ id: t.id, threadId: tids.get(t.id) ?? 0 }));
  }

  blocks(): QmpBlock[] {
    return this.#hotplug.blocks();
  }

  chardevs(): QmpChardev[] {
    const out: QmpChardev[] = [];
    const serial = this.#config.serial;
    if (serial) {
      const live = this.#vm?.serial as { readonly path?: string } | null | undefined;
      const b = serial.backend;
      let filename: string;
      if (b.type === "pty") filename = live?.path ? `pty:${live.path}` : "pty";
      else if (b.type === "stdio") filename = "stdio";
      else if (b.type === "file") filename = `file:${b.path}`;
      else filename = `unix:${b.path}${b.server ? ",server=on" : ""}`;
      out.push({ id: serial.chardev ?? "serial0", filename, frontendOpen: this.#vm !== null });
    }
    // Monitors (-mon chardev=ID) are chardevs too; QEMU lists them with the others.
    for (const c of this.#config.chardevs) {
      if (c.id === serial?.chardev || c.type !== "socket") continue;
      if (!this.#config.qmp.some((q) => q.transport === "unix" && q.path === c.path)) continue;
      out.push({ id: c.id, filename: `unix:${c.path},server=on`, frontendOpen: true });
    }
    return out;
  }

  memory(): QmpMemory {
    const layout = x86MemoryLayout(this.#spec.memory.size);
    return {
      size: layout.ramSize,
      regions: layout.ramRegions.map((r, i) => ({
        name: i === 0 ? "ram-below-4g" : "ram-above-4g",
        base: r.gpa,
        size: r.size,
      })),
    };
  }

  /** Runs hot-plug commands one after the other, whatever their outcome. */
  #serialized<T>(fn: () => Promise<T> | T): Promise<T> {
    const run = this.#hotplugQueue.then(fn, fn);
    this.#hotplugQueue = run.catch(() => {});
    return run;
  }

  addDevice(args: DeviceAddArgs): Promise<void> {
    return this.#serialized(async () => {
      const plan = this.#hotplug.planAdd(args);
      const vm = await this.#ready();
      try {
        await vm.replaceDisk(plan.slot, plan.disk);
      } catch (e) {
        throw new QmpError("GenericError", `device_add ${args.id}: ${(e as Error).message}`);
      }
      this.#hotplug.commitAdd(plan);
    });
  }

  delDevice(id: string): Promise<void> {
    return this.#serialized(async () => {
      const slot = this.#hotplug.planDel(id);
      const vm = await this.#ready();
      try {
        await vm.replaceDisk(slot, null);
      } catch (e) {
        throw new QmpError("GenericError", `device_del ${id}: ${(e as Error).message}`);
      }
      this.#hotplug.commitDel(id);
      this.#server?.emitEvent("DEVICE_DELETED", deviceDeletedData(id));
    });
  }

  addBlockdev(args: BlockdevAddArgs): Promise<void> {
    return this.#serialized(async () => {
      const drive = this.#hotplug.planDrive(args);
      // Refused now rather than at device_add: the file must exist and open as asked.
      try {
        const f = await Deno.open(drive.path, { read: true, write: !drive.readonly });
        f.close();
      } catch (e) {
        throw new QmpError(
          "GenericError",
          `blockdev-add ${drive.id}: cannot open ${drive.path}` +
            `${drive.readonly ? " read-only" : " read-write"}: ${(e as Error).message}`,
        );
      }
      this.#hotplug.commitDrive(drive);
    });
  }

  delBlockdev(nodeName: string): Promise<void> {
    return this.#serialized(() => this.#hotplug.removeDrive(nodeName));
  }

  addNetdev(): void {
    notSupported("netdev_add");
  }

  delNetdev(id: string): void {
    throw new QmpError("GenericError", `Netdev ${id} not found`);
  }

  getfd(name: string, fd: number): void {
    const old = this.#fds.get(name);
    if (old !== undefined && old !== fd) scmLibc()?.close(old);
    this.#fds.set(name, fd);
  }
}

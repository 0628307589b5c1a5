/**
 * A QmpMachine for tests: the real Lifecycle, two vCPUs of a -smp 4 topology (two present), a
 * drive, a chardev, an iothread, and device/backend tables that refuse duplicates and unknown
 * ids the way the machine must. Events go through `server.emitEvent`, as the real machine does.
 */
import { Lifecycle, type VmState } from "../../machine/lifecycle.ts";
import { QmpError } from "../errors.ts";
import { deviceDeletedData } from "../events.ts";
import type {
  BlockdevAddArgs,
  DeviceAddArgs,
  NetdevAddArgs,
  QmpBlock,
  QmpChardev,
  QmpCpu,
  QmpIothread,
  QmpMachine,
  QmpMemory,
} from "../machine_api.ts";
import type { QmpServer } from "../server.ts";

export class FakeMachine implements QmpMachine {
  readonly machineType = "microvm";
  readonly kvm = { enabled: true, present: true };
  readonly lifecycle = new Lifecycle();
  server: QmpServer | null = null;
  /** Method calls in order, e.g. "addDevice:net0". */
  readonly calls: string[] = [];
  readonly devices = new Map<string, DeviceAddArgs>();
  readonly blockdevs = new Map<string, BlockdevAddArgs>();
  readonly netdevs = new Map<string, NetdevAddArgs>();
  readonly fds = new Map<string, number>();
  /** Set to make quit() leave the server open (to race commands against shutdown). */
  keepServerOnQuit = false;
  balloonBytes: number | null = null;

  constructor(start: VmState = "running") {
    if (start !== "created") this.lifecycle.transition(start);
  }

  status(): VmState {
    return this.lifecycle.state;
  }

  pause(): void {
    this.lifecycle.transition("paused", "qmp");
    this.calls.push("pause");
    this.server?.emitEvent("STOP", {});
  }

  resume(): void {
    this.lifecycle.transition("running", "qmp");
    this.calls.push("resume");
    this.server?.emitEvent("RESUME", {});
  }

  powerdown(): void {
    this.calls.push("powerdown");
    this.server?.emitEvent("POWERDOWN", {});
  }

  reset(): void {
    this.calls.push("reset");
    this.server?.emitEvent("RESET", { guest: false });
  }

  async quit(): Promise<void> {
    this.calls.push("quit");
    this.lifecycle.transition("shutdown", "qmp");
    if (!this.keepServerOnQuit) await this.server?.close();
  }

  cpus(): QmpCpu[] {
    return [0, 1, 2, 3].map((index) => ({
      index,
      present: index < 2,
      threadId: index < 2 ? 4242 + index : 0,
      halted: index === 1,
      socketId: index >> 1,
      dieId: 0,
      coreId: index & 1,
      threadIdInCore: 0,
    }));
  }

  iothreads(): QmpIothread[] {
    return [{ id: "iothread0", threadId: 5151 }];
  }

  blocks(): QmpBlock[] {
    const fromCmdline: QmpBlock = {
      id: "rootfs",
      file: "/images/rootfs.ext4",
      readOnly: false,
      format: "raw",
      direct: true,
      attachedTo: "blk0",
    };
    const added = [...this.blockdevs.values()].map((b): QmpBlock => ({
      id: b["node-name"],
      file: b.file.filename,
      readOnly: b["read-only"] ?? false,
      format: b.driver ?? "raw",
      direct: b.cache?.direct ?? false,
    }));
    return [fromCmdline, ...added];
  }

  chardevs(): QmpChardev[] {
    return [{ id: "serial0", filename: "pty:/dev/pts/7", frontendOpen: true }];
  }

  memory(): QmpMemory {
    return { size: 128 << 20, regions: [{ name: "ram", base: 0, size: 128 << 20 }] };
  }

  addDevice(args: DeviceAddArgs): void {
    if (this.devices.has(args.id)) {
      throw new QmpError("GenericError", `Device id '${args.id}' is already in use`);
    }
    if (!args.driver.startsWith("virtio-")) {
      throw new QmpError(
        "GenericError",
        `Failed to add device: Driver ${args.driver} is not support`,
      );
    }
    this.calls.push(`addDevice:${args.id}`);
    this.devices.set(args.id, args);
  }

  delDevice(id: string): void {
    if (!this.devices.delete(id)) {
      throw new QmpError("DeviceNotFound", `Device '${id}' not found`);
    }
    this.calls.push(`delDevice:${id}`);
    // The guest acknowledges at once here; a real one takes its time.
    queueMicrotask(() => this.server?.emitEvent("DEVICE_DELETED", deviceDeletedData(id)));
  }

  addBlockdev(args: BlockdevAddArgs): void {
    const id = args["node-name"];
    if (this.blockdevs.has(id)) throw new QmpError("GenericError", `Drive ${id} already exists`);
    this.calls.push(`addBlockdev:${id}`);
    this.blockdevs.set(id, args);
  }

  delBlockdev(nodeName: string): void {
    if (!this.blockdevs.delete(nodeName)) {
      throw new QmpError("GenericError", `Drive ${nodeName} not found`);
    }
    this.calls.push(`delBlockdev:${nodeName}`);
  }

  addNetdev(args: NetdevAddArgs): void {
    if (this.netdevs.has(args.id)) {
      throw new QmpError("GenericError", `Netdev ${args.id} already exists`);
    }
    this.calls.push(`addNetdev:${args.id}`);
    this.netdevs.set(args.id, args);
  }

  delNetdev(id: string): void {
    if (!this.netdevs.delete(id)) throw new QmpError("GenericError", `Netdev ${id} not found`);
    this.calls.push(`delNetdev:${id}`);
  }

  getfd(name: string, fd: number): void {
    this.calls.push(`getfd:${name}`);
    this.fds.set(name, fd);
  }

  balloon(value: number): void {
    if (this.balloonBytes === null) {
      throw new QmpError("DeviceNotActive", "No balloon device has been activated");
    }
    this.balloonBytes = value;
    this.server?.emitEvent("BALLOON_CHANGED", { actual: value });
  }
}

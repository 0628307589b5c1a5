/**
 * The bookkeeping of virtio-blk hot-plug on the microvm (QMP blockdev-add / device_add /
 * device_del / blockdev-del): which drives exist, which slot holds which device. Pure: it checks
 * a request and says what to do (which slot, which DiskSpec); the caller does it (the device
 * thread swaps the image) and then records it with `commit*`. Every refusal is a QmpError
 * GenericError whose message names what is wrong; nothing changes then.
 *
 * As StratoVirt's microvm, hot-plug fills the replaceable block slots: device_add takes the slot
 * `addr` names (or `lun` + 1), else the first free one; device_add's `drive` names the drive
 * (StratoVirt looks the drive up by the device id: that still works when `drive` is absent).
 * A drive outlives the device that used it until blockdev-del, which is refused while a device
 * uses it.
 */
import type { BlockdevAddArgs, DeviceAddArgs, QmpBlock } from "../qmp/machine_api.ts";
import { QmpError } from "../qmp/errors.ts";
import { type BlockSlot, type DiskSpec, MAX_DISKS } from "./spec.ts";

/** A drive (`-drive` or blockdev-add) devices can use. */
export interface HotplugDrive {
  readonly id: string;
  readonly path: string;
  readonly readonly: boolean;
  readonly direct: boolean;
  /** `file.aio` other than off (default: native with O_DIRECT, as for -drive). */
  readonly asyncIo: boolean;
  /** Image format ("raw"). */
  readonly format: string;
}

interface SlotState {
  readonly slot: BlockSlot;
  /** The device in the slot, or null while it is empty. */
  device: { readonly id: string; readonly drive: string } | null;
}

/** What device_add will do: fill `slot` with `disk`. */
export interface PlannedAdd {
  readonly slot: number;
  readonly disk: DiskSpec;
}

/** GET_ID answers 20 bytes (VIRTIO_BLK_ID_BYTES); StratoVirt refuses longer serials. */
const MAX_SERIAL_LEN = 20;

const BLOCK_DRIVERS = new Set(["virtio-blk-device", "virtio-blk-mmio"]);

function refuse(message: string): never {
  throw new QmpError("GenericError", message);
}

/** StratoVirt's str_to_usize: decimal, or hexadecimal with 0x. */
function parseSlotNumber(text: string): number | null {
  const t = text.trim();
  const n = /^0x[0-9a-f]+$/i.test(t) ? parseInt(t.slice(2), 16) : /^\d+$/.test(t) ? Number(t) : NaN;
  return Number.isSafeInteger(n) ? n : null;
}

export class BlockHotplug {
  readonly #drives = new Map<string, HotplugDrive>();
  readonly #slots: SlotState[];
  /** Ids of every device that exists now (virtio-blk or not): device ids are one namespace. */
  readonly #deviceIds: Set<string>;

  /**
   * `drives`: the command line's -drive entries; `slots`: the machine's block slots (disk set
   * for the command line's virtio-blk devices); `deviceIds`: every -device id.
   */
  constructor(
    drives: readonly HotplugDrive[],
    slots: readonly BlockSlot[],
    deviceIds: readonly string[],
  ) {
    for (const d of drives) this.#drives.set(d.id, d);
    this.#slots = slots.map((slot) => ({
      slot,
      device: slot.disk ? { id: slot.disk.id, drive: slot.disk.drive } : null,
    }));
    this.#deviceIds = new Set(deviceIds);
  }

  /** blockdev-add: checks the arguments; the drive to register (the caller checks the file). */
  planDrive(args: BlockdevAddArgs): HotplugDrive {
    const id = args["node-name"];
    if (id === "") refuse("blockdev-add: node-name must not be empty");
    if (this.#drives.has(id)) refuse(`Drive ${id} already exists`);
    if (args.file.driver !== "file") {
      refuse(`blockdev-add ${id}: file.driver '${args.file.driver}' is not supported (use "file")`);
    }
    if (args.file.filename === "") refuse(`blockdev-add ${id}: file.filename must not be empty`);
    const format = args.driver ?? "raw";
    if (format !== "raw") {
      refuse(`blockdev-add ${id}: driver '${format}': only raw images can be hot-plugged`);
    }
    if (args["throttling.iops-total"] !== undefined) {
      refuse(`blockdev-add ${id}: throttling.iops-total is not supported for hot-plugged drives`);
    }
    // StratoVirt opens a hot-plugged drive with O_DIRECT unless cache.direct is false.
    const direct = args.cache?.direct ?? true;
    const aio = args.file.aio;
    if (aio !== undefined && !["native", "io_uring", "off"].includes(aio)) {
      refuse(`blockdev-add ${id}: file.aio '${aio}': expected native, io_uring or off`);
    }
    return {
      id,
      path: args.file.filename,
      readonly: args["read-only"] ?? false,
      direct,
      asyncIo: aio === undefined ? direct : aio !== "off",
      format,
    };
  }

  commitDrive(drive: HotplugDrive): void {
    this.#drives.set(drive.id, drive);
  }

  /** blockdev-del: refused while a device uses the drive. */
  removeDrive(id: string): void {
    if (!this.#drives.has(id)) refuse(`Drive ${id} not found`);
    const user = this.#slots.find((s) => s.device?.drive === id);
    if (user) {
      refuse(`Drive ${id} is in use by device ${user.device!.id}: device_del it first`);
    }
    this.#drives.delete(id);
  }

  /** device_add: which slot to fill with which disk. */
  planAdd(args: DeviceAddArgs): PlannedAdd {
    const what = `device_add ${args.driver},id=${args.id}`;
    if (!BLOCK_DRIVERS.has(args.driver)) {
      if (args.driver.includes("net")) {
        refuse(`${what}: virtio-net hot-plug is not supported by this build yet`);
      }
      if (args.driver.includes("pci")) {
        refuse(`${what}: PCI devices need a q35 machine; a microvm hot-plugs virtio-blk-device`);
      }
      refuse(
        `${what}: unsupported replaceable device type (a microvm hot-plugs virtio-blk-device)`,
      );
    }
    if (args.id === "") refuse(`${what}: id must not be empty`);
    if (this.#deviceIds.has(args.id)) refuse(`${what}: device id ${args.id} is already in use`);
    const driveId = typeof args.drive === "string" ? args.drive : args.id;
    const drive = this.#drives.get(driveId);
    if (!drive) refuse(`${what}: no drive ${driveId} (add it with blockdev-add first)`);
    const user = this.#slots.find((s) => s.device?.drive === driveId);
    if (user) refuse(`${what}: drive ${driveId} is already used by device ${user.device!.id}`);
    const serial = args.serial;
    if (typeof serial === "string" && serial.length > MAX_SERIAL_LEN) {
      refuse(`${what}: serial is longer than ${MAX_SERIAL_LEN} characters`);
    }
    const state = this.#pickSlot(args, what);
    const s = state.slot;
    for (
      const [name, have] of [["num-queues", s.numQueues], ["queue-size", s.queueSize]] as const
    ) {
      const want = args[name];
      if (want !== undefined && want !== have) {
        refuse(`${what}: ${name}=${want}, but slot ${s.index} has ${have} (fixed at boot)`);
      }
    }
    return {
      slot: s.index,
      disk: {
        id: args.id,
        drive: drive.id,
        path: drive.path,
        readonly: drive.readonly,
        direct: drive.direct,
        asyncIo: drive.asyncIo,
        serial: typeof serial === "string" ? serial : null,
        numQueues: s.numQueues,
        queueSize: s.queueSize,
        iopsTotal: null,
        // The slot's thread owns its ioeventfds and register window for the VM's life.
        iothread: s.iothread,
      },
    };
  }

  #pickSlot(args: DeviceAddArgs, what: string): SlotState {
    let wanted: number | null = null;
    if (typeof args.addr === "string") {
      wanted = parseSlotNumber(args.addr);
      if (wanted === null) refuse(`${what}: invalid addr ${args.addr}`);
    } else if (typeof args.lun === "number") {
      wanted = args.lun + 1;
    }
    if (wanted === null) {
      const free = this.#slots.find((s) => s.device === null);
      if (free) return free;
      refuse(
        `${what}: no free virtio-blk slot (the microvm has ${this.#slots.length}, all in use` +
          (this.#slots.length < MAX_DISKS ? "; empty slots exist only with -qmp" : "") + ")",
      );
    }
    const state = this.#slots[wanted];
    if (!state) {
      refuse(
        `${what}: slot ${wanted} does not exist (a maximum of ${this.#slots.length} block ` +
          `replaceable devices are supported)`,
      );
    }
    if (state.device) refuse(`${what}: the slot ${wanted} is occupied already`);
    return state;
  }

  commitAdd(plan: PlannedAdd): void {
    this.#slots[plan.slot].device = { id: plan.disk.id, drive: plan.disk.drive };
    this.#deviceIds.add(plan.disk.id);
  }

  /** device_del: the slot the device is in. */
  planDel(id: string): number {
    const state = this.#slots.find((s) => s.device?.id === id);
    if (!state) refuse(`Device ${id} not found`);
    return state.slot.index;
  }

  commitDel(id: string): void {
    const state = this.#slots.find((s) => s.device?.id === id);
    if (state) state.device = null;
    this.#deviceIds.delete(id);
  }

  /** query-block: every drive, with the device using it. */
  blocks(): QmpBlock[] {
    return [...this.#drives.values()].map((d) => {
      const user = this.#slots.find((s) => s.device?.drive === d.id);
      return {
        id: d.id,
        file: d.path,
        readOnly: d.readonly,
        format: d.format,
        direct: d.direct,
        ...(user ? { attachedTo: user.device!.id } : {}),
      };
    });
  }

  /** Slot index -> device id (null: empty), for tests and messages. */
  occupancy(): (string | null)[] {
    return this.#slots.map((s) => s.device?.id ?? null);
  }
}

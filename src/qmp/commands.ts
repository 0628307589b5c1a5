/**
 * The command table: each QMP command's argument schema and what it does with the machine. Names,
 * argument names and return shapes are StratoVirt's (machine_manager/src/qmp/qmp_schema.rs);
 * return objects go out with their keys sorted, as StratoVirt's serde_json values do.
 * `qmp_capabilities` and `quit` are here for their schemas; the session gives them their
 * protocol meaning (negotiation; reply, SHUTDOWN, then `machine.quit()`).
 */
import { type ArgSchema, checkArgs, NO_ARGS } from "./args.ts";
import { QmpError } from "./errors.ts";
import { QMP_EVENTS } from "./events.ts";
import { humanMonitorCommand } from "./hmp.ts";
import type {
  BlockdevAddArgs,
  DeviceAddArgs,
  NetdevAddArgs,
  QmpCpu,
  QmpMachine,
} from "./machine_api.ts";
import { qmpVersion } from "./version.ts";

export interface CommandContext {
  readonly machine: QmpMachine;
  /** The next fd that arrived with this command over SCM_RIGHTS, now owned by the caller. */
  takeFd(): number | undefined;
  /** Where StratoVirt writes to its log (query-mem's memory layout). */
  log(message: string): void;
}

export interface Command {
  readonly args: ArgSchema;
  run(ctx: CommandContext, args: Record<string, unknown>): unknown;
}

const str = { type: "str" } as const;
const reqStr = { type: "str", required: true } as const;
const bool = { type: "bool" } as const;

const DEVICE_ADD: ArgSchema = {
  fields: {
    id: reqStr,
    driver: reqStr,
    addr: str,
    lun: { type: "uint64" },
    drive: str,
    romfile: str,
    "share-rw": str,
    bus: str,
    mac: str,
    netdev: str,
    chardev: str,
    "disable-modern": str,
    mq: str,
    vectors: str,
    serial: str,
    iothread: str,
    multifunction: bool,
    host: str,
    "num-queues": { type: "uint16" },
    boot_index: { type: "uint8" },
    sysfsdev: str,
    "queue-size": { type: "uint16" },
    port: str,
    backend: str,
    path: str,
    cameradev: str,
    hostbus: str,
    hostaddr: str,
    hostport: str,
    vendorid: str,
    productid: str,
    isobufs: str,
    isobsize: str,
    "cpu-id": { type: "uint8" },
  },
};

const BLOCKDEV_ADD: ArgSchema = {
  fields: {
    "node-name": reqStr,
    file: {
      type: { object: { fields: { driver: reqStr, filename: reqStr, aio: str } } },
      required: true,
    },
    media: str,
    cache: { type: { object: { fields: { "no-flush": bool, direct: bool } } } },
    "read-only": bool,
    "detect-zeroes": str,
    driver: str,
    backing: str,
    discard: str,
    id: str,
    options: str,
    "throttling.iops-total": { type: "uint64" },
    "l2-cache-size": str,
    "refcount-cache-size": str,
  },
};

const NETDEV_ADD: ArgSchema = {
  fields: {
    id: reqStr,
    ifname: str,
    fd: str,
    fds: str,
    dnssearch: str,
    type: str,
    vhost: bool,
    vhostfd: str,
    vhostfds: str,
    downscript: str,
    script: str,
    queues: { type: "uint16" },
    chardev: str,
    macnat: bool,
  },
};

const ID_ONLY: ArgSchema = { fields: { id: reqStr } };

/** Types libvirt probes with qom-list-types, with their parents (StratoVirt's list). */
const QOM_TYPES: readonly [string, string][] = [
  ["ioh3420", "pcie-root-port-base"],
  ["pcie-root-port", "pcie-root-port-base"],
  ["pcie-pci-bridge", "base-pci-bridge"],
  ["pci-bridge", "base-pci-bridge"],
  ["virtio-blk-pci-transitional", "virtio-blk-pci-base"],
  ["memory-backend-file", "memory-backend"],
  ["virtio-rng-device", "virtio-device"],
  ["rng-random", "rng-backend"],
  ["vfio-pci", "pci-device"],
  ["vhost-vsock-device", "virtio-device"],
  ["iothread", "object"],
  ["nec-usb-xhci", "base-xhci"],
  ["usb-tablet", "usb-hid"],
  ["usb-kbd", "usb-hid"],
];

function cpuProps(c: QmpCpu): Record<string, number> {
  // StratoVirt spells the x86 die "die_id" (QEMU: "die-id"); clients of StratoVirt expect that.
  return {
    "socket-id": c.socketId,
    die_id: c.dieId,
    "core-id": c.coreId,
    "thread-id": c.threadIdInCore,
  };
}

function statusInfo(machine: QmpMachine): Record<string, unknown> {
  const state = machine.status();
  const status = state === "created" ? "prelaunch" : state;
  return { singlestep: false, running: state === "running", status };
}

function noBalloon(): never {
  throw new QmpError("DeviceNotActive", "No balloon device has been activated");
}

export const COMMANDS: Readonly<Record<string, Command>> = {
  qmp_capabilities: {
    args: { fields: { enable: { type: { arrayOf: "str" } } } },
    run: (_ctx, args) => {
      const wanted = (args.enable as string[] | undefined) ?? [];
      if (wanted.length > 0) {
        throw new QmpError("GenericError", `Capability ${wanted[0]} not available`);
      }
      return {};
    },
  },
  quit: { args: NO_ARGS, run: () => ({}) },
  stop: { args: NO_ARGS, run: async (ctx) => void await ctx.machine.pause() },
  cont: { args: NO_ARGS, run: async (ctx) => void await ctx.machine.resume() },
  system_powerdown: { args: NO_ARGS, run: async (ctx) => void await ctx.machine.powerdown() },
  system_reset: { args: NO_ARGS, run: async (ctx) => void await ctx.machine.reset() },
  "query-status": { args: NO_ARGS, run: (ctx) => statusInfo(ctx.machine) },
  "query-cpus": {
    args: NO_ARGS,
    run: (ctx) =>
      ctx.machine.cpus().filter((c) => c.present).map((c) => ({
        arch: "x86",
        current: true,
        qom_path: `/machine/unattached/device[${c.index}]`,
        halted: c.halted,
        props: cpuProps(c),
        CPU: c.index,
        thread_id: c.threadId,
      })),
  },
  "query-hotpluggable-cpus": {
    args: NO_ARGS,
    run: (ctx) =>
      ctx.machine.cpus().map((c) => ({
        type: "host-x86-cpu",
        "vcpus-count": 1,
        props: cpuProps(c),
        ...(c.present ? { "qom-path": `/machine/unattached/device[${c.index}]` } : {}),
      })),
  },
  "query-version": { args: NO_ARGS, run: () => qmpVersion() },
  "query-commands": { args: NO_ARGS, run: () => Object.keys(COMMANDS).map((name) => ({ name })) },
  "query-target": { args: NO_ARGS, run: () => ({ arch: "x86_64" }) },
  "query-kvm": {
    args: NO_ARGS,
    run: (ctx) => ({ enabled: ctx.machine.kvm.enabled, present: ctx.machine.kvm.present }),
  },
  "query-machines": {
    args: NO_ARGS,
    run: () =>
      ["none", "microvm", "q35"].map((name) => ({
        "hotpluggable-cpus": false,
        name,
        "numa-mem-supported": false,
        "cpu-max": 255,
        deprecated: false,
      })),
  },
  "query-events": { args: NO_ARGS, run: () => QMP_EVENTS.map((name) => ({ name })) },
  "query-iothreads": {
    args: NO_ARGS,
    run: (ctx) =>
      ctx.machine.iothreads().map((t) => ({
        "poll-shrink": t.pollShrink ?? 0,
        "thread-id": t.threadId,
        "poll-grow": t.pollGrow ?? 0,
        "poll-max-ns": t.pollMaxNs ?? 0,
        id: t.id,
      })),
  },
  "query-block": {
    args: NO_ARGS,
    run: (ctx) =>
      ctx.machine.blocks().map((b) => ({
        device: b.id,
        ...(b.attachedTo ? { qdev: b.attachedTo } : {}),
        locked: false,
        removable: false,
        type: "unknown",
        inserted: {
          file: b.file,
          "node-name": b.id,
          ro: b.readOnly,
          drv: b.format,
          encrypted: false,
          "backing_file_depth": 0,
          "detect_zeroes": "off",
          cache: { writeback: true, direct: b.direct, "no-flush": false },
        },
      })),
  },
  "query-named-block-nodes": { args: NO_ARGS, run: () => [] },
  "query-blockstats": { args: NO_ARGS, run: () => [] },
  "query-block-jobs": { args: NO_ARGS, run: () => [] },
  "query-chardev": {
    args: NO_ARGS,
    run: (ctx) =>
      ctx.machine.chardevs().map((c) => ({
        "frontend-open": c.frontendOpen,
        filename: c.filename,
        label: c.id,
      })),
  },
  "query-mem": {
    args: NO_ARGS,
    run: (ctx) => {
      // StratoVirt answers {} and writes the memory layout to its log.
      const mem = ctx.machine.memory();
      const hex = (n: number) => "0x" + n.toString(16).padStart(16, "0");
      ctx.log(`guest memory: ${mem.size} bytes`);
      for (const r of mem.regions) {
        ctx.log(`  ${hex(r.base)}-${hex(r.base + r.size - 1)} ${r.name}`);
      }
      return {};
    },
  },
  "query-balloon": {
    args: NO_ARGS,
    run: (ctx) => {
      const m = ctx.machine;
      return m.balloonActual ? { actual: m.balloonActual() } : noBalloon();
    },
  },
  balloon: {
    args: { fields: { value: { type: "uint64", required: true } } },
    run: async (ctx, args) => {
      if (!ctx.machine.balloon) return noBalloon();
      await ctx.machine.balloon(args.value as number);
    },
  },
  "query-migrate": { args: NO_ARGS, run: () => ({}) },
  "query-migrate-capabilities": { args: NO_ARGS, run: () => [] },
  "query-command-line-options": {
    args: NO_ARGS,
    run: () => [{
      parameters: [
        { name: "discard", help: "discard operation (unmap|ignore)", type: "string" },
        { name: "detect-zeroes", help: "optimize zero writes (unmap|on|off)", type: "string" },
      ],
      option: "drive",
    }],
  },
  "query-tpm-models": { args: NO_ARGS, run: () => [] },
  "query-tpm-types": { args: NO_ARGS, run: () => [] },
  "query-qmp-schema": { args: NO_ARGS, run: () => ({}) },
  "query-sev-capabilities": { args: NO_ARGS, run: () => ({}) },
  "query-gic-capabilities": { args: NO_ARGS, run: () => [] },
  "qom-list-types": {
    args: { fields: { implements: str, abstract: bool }, open: true },
    run: () => QOM_TYPES.map(([name, parent]) => ({ name, parent })),
  },
  "device-list-properties": {
    args: { fields: { typename: reqStr } },
    run: (_ctx, args) => {
      const typename = args.typename as string;
      const props = [{ name: "disable-legacy", type: "OnOffAuto" }];
      if (typename.includes("virtio-balloon")) props.push({ name: "deflate-on-oom", type: "bool" });
      if (typename.includes("virtio-blk")) props.push({ name: "num-queues", type: "uint16" });
      return props;
    },
  },
  // StratoVirt has no QOM tree: it accepts any arguments and answers with an empty list.
  "qom-list": { args: { fields: { path: str }, open: true }, run: () => [] },
  "qom-get": { args: { fields: { path: str, property: str }, open: true }, run: () => [] },
  getfd: {
    args: { fields: { fdname: reqStr } },
    run: async (ctx, args) => {
      const fd = ctx.takeFd();
      if (fd === undefined) {
        throw new QmpError(
          "GenericError",
          "Invalid SCM message: no file descriptor came with getfd " +
            "(send it as SCM_RIGHTS ancillary data on the unix QMP socket)",
        );
      }
      await ctx.machine.getfd(args.fdname as string, fd);
    },
  },
  device_add: {
    args: DEVICE_ADD,
    run: async (ctx, args) => void await ctx.machine.addDevice(args as DeviceAddArgs),
  },
  device_del: {
    args: ID_ONLY,
    run: async (ctx, args) => void await ctx.machine.delDevice(args.id as string),
  },
  "blockdev-add": {
    args: BLOCKDEV_ADD,
    run: async (ctx, args) =>
      void await ctx.machine.addBlockdev(args as unknown as BlockdevAddArgs),
  },
  "blockdev-del": {
    args: { fields: { "node-name": reqStr } },
    run: async (ctx, args) => void await ctx.machine.delBlockdev(args["node-name"] as string),
  },
  netdev_add: {
    args: NETDEV_ADD,
    run: async (ctx, args) => void await ctx.machine.addNetdev(args as unknown as NetdevAddArgs),
  },
  netdev_del: {
    args: ID_ONLY,
    run: async (ctx, args) => void await ctx.machine.delNetdev(args.id as string),
  },
  "human-monitor-command": {
    args: { fields: { "command-line": reqStr } },
    run: (ctx, args) => humanMonitorCommand(ctx.machine, args["command-line"] as string),
  },
};

/** Looks a command up; CommandNotFound (QEMU's text) when there is none. */
export function findCommand(name: string): Command {
  if (!Object.hasOwn(COMMANDS, name)) {
    throw new QmpError("CommandNotFound", `The command ${name} has not been found`);
  }
  return COMMANDS[name];
}

/** Validates the arguments and runs the command; resolves to the `return` payload. */
export async function runCommand(
  ctx: CommandContext,
  name: string,
  args: Record<string, unknown>,
): Promise<unknown> {
  const command = findCommand(name);
  const checked = checkArgs<Record<string, unknown>>(command.args, args);
  const result = await command.run(ctx, checked);
  return sortKeys(result ?? {});
}

/** StratoVirt's return values are serde_json maps, whose keys come out sorted. */
export function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (typeof v !== "object" || v === null) return v;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v).sort()) out[k] = sortKeys((v as Record<string, unknown>)[k]);
  return out;
}

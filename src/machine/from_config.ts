/**
 * Turns the parsed command line (VmConfig) into what the machine builder takes (MachineSpec),
 * refusing — with the option named — what this build cannot run yet, rather than ignoring it.
 */
import type { VmConfig } from "../config/mod.ts";
import { type DiskSpec, MachineSpec, MAX_DISKS, SerialSpec } from "./spec.ts";
import type { LoggerSettings } from "../util/logger.ts";

export class UnsupportedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UnsupportedError";
  }
}

function serialOf(config: VmConfig): SerialSpec | null {
  const s = config.serial;
  if (!s) return null;
  const b = s.backend;
  const id = s.chardev ?? "serial0";
  switch (b.type) {
    case "stdio":
    case "pty":
      return { backend: b.type, id };
    case "file":
      return { backend: "file", path: b.path, id };
    case "socket":
      return { backend: "socket", path: b.path, server: b.server, nowait: b.server, id };
  }
}

/** The machine spec of a `-machine microvm` line; throws UnsupportedError for what is not built. */
export function microvmSpecOf(config: VmConfig, log: LoggerSettings): MachineSpec {
  if (config.machine.type !== "microvm") {
    throw new UnsupportedError(
      `-machine ${config.machine.type}: only microvm can run in this build (q35 and none are not there yet)`,
    );
  }
  const disks = disksOf(config);
  if (config.boot.kernel === null) {
    throw new UnsupportedError("-kernel: a microvm needs a kernel");
  }
  const smp = config.smp;
  return {
    cpus: smp.cpus,
    topology: {
      sockets: smp.sockets,
      dies: smp.dies,
      clusters: smp.clusters,
      cores: smp.cores,
      threads: smp.threads,
    },
    memory: {
      size: config.memory.sizeBytes,
      path: config.memory.memPath ?? undefined,
      share: config.machine.memShare,
      prealloc: config.memory.prealloc,
    },
    kernel: config.boot.kernel,
    initrd: config.boot.initrd ?? undefined,
    cmdline: config.boot.append,
    serial: serialOf(config),
    bootTimer: true,
    log,
    disks,
    // Empty slots are worth their boot-time probe only when QMP can fill them.
    hotplug: config.qmp.length > 0,
    iothreads: config.iothreads.map((t) => t.id),
  };
}

/**
 * The virtio-blk-device disks, in command-line order (which is their slot order). Any other
 * -device is refused with its name: only virtio-blk runs on the KVM microvm so far.
 */
function disksOf(config: VmConfig): DiskSpec[] {
  const disks: DiskSpec[] = [];
  for (const d of config.devices) {
    if (d.driver !== "virtio-blk-device" || d.kind !== "blk") {
      throw new UnsupportedError(
        `-device ${d.driver},id=${d.id}: only virtio-blk-device is wired into the KVM microvm ` +
          `so far (the others run under -machine microvm,accel=test, or not yet at all)`,
      );
    }
    if (disks.length === MAX_DISKS) {
      throw new UnsupportedError(
        `-device ${d.driver},id=${d.id}: a microvm takes at most ${MAX_DISKS} virtio-blk devices`,
      );
    }
    const drive = config.drives.find((x) => x.id === d.drive);
    // The config checks already resolved drive=; this guards a hand-made VmConfig.
    if (!drive) {
      throw new UnsupportedError(`-device ${d.driver},id=${d.id}: no -drive id=${d.drive}`);
    }
    disks.push({
      id: d.id,
      drive: drive.id,
      path: drive.file,
      readonly: drive.readonly,
      direct: drive.direct,
      serial: d.serial,
      numQueues: d.numQueues,
      queueSize: d.queueSize,
      iopsTotal: drive.iopsTotal,
      asyncIo: drive.aio !== "off",
      iothread: d.iothread,
    });
  }
  return disks;
}

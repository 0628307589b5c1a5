/**
 * Turns the parsed command line (VmConfig) into what the machine builder takes (MachineSpec),
 * refusing — with the option named — what this build cannot run yet, rather than ignoring it.
 */
import type { VmConfig } from "../config/mod.ts";
import type { MachineSpec, SerialSpec } from "./spec.ts";
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
  if (config.devices.length > 0) {
    const d = config.devices[0];
    throw new UnsupportedError(
      `-device ${d.kind}: virtio devices are not wired into the KVM microvm yet ` +
        `(they run under -machine microvm,accel=test)`,
    );
  }
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
  };
}

/**
 * The rules that need the whole command line: unique ids, references that resolve, NUMA
 * coverage, one-of-a-kind devices, what each machine type needs. Turns the raw parse into the
 * final VmConfig.
 */
import { ConfigError } from "./error.ts";
import { errorAt, originOf } from "./origin.ts";
import type { RawConfig } from "./parse.ts";
import { SerialConfig, VmConfig } from "./vm_config.ts";
import { DeviceConfig } from "./device.ts";
import { ChardevConfig } from "./chardev.ts";
import { LOCAL_DISTANCE, NumaConfig, NumaNodeConfig, REMOTE_DISTANCE } from "./numa.ts";
import { checkPlacement } from "./placement.ts";
import { MAX_CONSOLES } from "./devices/console.ts";
import { formatSize } from "./values.ts";
import { QmpConfig } from "./qmp.ts";

/** Ids must be unique within each family (a drive and its device may share a name). */
function checkUnique(family: string, items: readonly { id: string | null }[]): void {
  const seen = new Map<string, object>();
  for (const item of items) {
    if (item.id === null) continue;
    if (seen.has(item.id)) {
      const first = originOf(seen.get(item.id)!);
      throw errorAt(
        item,
        `${family} id '${item.id}' is already used by ${first.option} ${first.value}`,
      );
    }
    seen.set(item.id, item);
  }
}

/** Finds the item with `id` or throws at `user` naming what was looked for. */
function resolve<T extends { id: string | null }>(
  user: object,
  items: readonly T[],
  id: string,
  what: string,
  option: string,
): T {
  const found = items.find((i) => i.id === id);
  if (!found) throw errorAt(user, `${what} '${id}' does not exist (define it with ${option})`);
  return found;
}

/** Each backend serves one frontend: two devices on one drive would corrupt it. */
function claim(claims: Map<object, object>, backend: object, user: object, what: string): void {
  const prior = claims.get(backend);
  if (prior) {
    const o = originOf(prior);
    throw errorAt(user, `${what} is already used by ${o.option} ${o.value}`);
  }
  claims.set(backend, user);
}

function checkNuma(raw: RawConfig): NumaConfig | null {
  const nodes = raw.numa.flatMap((n) => (n.kind === "node" ? [n] : []));
  const dists = raw.numa.flatMap((n) => (n.kind === "dist" ? [n] : []));
  if (nodes.length === 0) {
    if (dists.length > 0) throw errorAt(dists[0], "-numa dist needs -numa node definitions");
    for (const b of raw.memoryBackends) {
      raw.warnings.push(`-object ${originOf(b).value}: memory backend not used by any -numa node`);
    }
    return null;
  }
  const byId = new Map<number, NumaNodeConfig>();
  const cpuOwner = new Map<number, number>();
  const usedBackends = new Map<object, object>();
  let total = 0;
  for (const item of nodes) {
    const node = item.node;
    if (byId.has(node.nodeId)) throw errorAt(item, `NUMA node id ${node.nodeId} is given twice`);
    byId.set(node.nodeId, node);
    for (const cpu of node.cpus) {
      if (cpu >= raw.smp.cpus) {
        throw errorAt(item, `vCPU ${cpu} does not exist (-smp gives ${raw.smp.cpus} vCPUs)`);
      }
      const owner = cpuOwner.get(cpu);
      if (owner !== undefined) throw errorAt(item, `vCPU ${cpu} is already in NUMA node ${owner}`);
      cpuOwner.set(cpu, node.nodeId);
    }
    const backend = resolve(
      item,
      raw.memoryBackends,
      node.memdev,
      "memory backend",
      "-object memory-backend-*",
    );
    claim(usedBackends, backend, item, `memdev ${node.memdev}`);
    total += backend.sizeBytes;
  }
  for (let id = 0; id < nodes.length; id++) {
    if (!byId.has(id)) {
      throw errorAt(
        nodes[nodes.length - 1],
        `NUMA node ids must be 0..${nodes.length - 1}; ${id} is missing`,
      );
    }
  }
  if (cpuOwner.size !== raw.smp.cpus) {
    const missing = [...Array(raw.smp.cpus).keys()].filter((c) => !cpuOwner.has(c));
    throw errorAt(nodes[0], `NUMA nodes must cover every vCPU; vCPU ${missing[0]} is in none`);
  }
  if (total !== raw.memorySize) {
    throw errorAt(
      nodes[0],
      `NUMA node memory adds up to ${formatSize(total)} but -m is ${formatSize(raw.memorySize)}`,
    );
  }
  for (const b of raw.memoryBackends) {
    if (!usedBackends.has(b)) {
      raw.warnings.push(`-object ${originOf(b).value}: memory backend not used by any -numa node`);
    }
  }
  const n = nodes.length;
  const matrix: number[][] = [...Array(n).keys()].map((i) =>
    [...Array(n).keys()].map((j) => (i === j ? LOCAL_DISTANCE : REMOTE_DISTANCE))
  );
  const given = new Set<string>();
  for (const item of dists) {
    const { src, dst, val } = item.dist;
    if (src >= n || dst >= n) {
      throw errorAt(item, `NUMA node ${src >= n ? src : dst} does not exist`);
    }
    const key = `${src},${dst}`;
    if (given.has(key)) throw errorAt(item, `the distance from ${src} to ${dst} is given twice`);
    given.add(key);
    matrix[src][dst] = val;
  }
  return { nodes: [...byId.values()].sort((a, b) => a.nodeId - b.nodeId), distances: matrix };
}

function checkDevices(raw: RawConfig, chardevClaims: Map<object, object>): void {
  const claims = new Map<object, object>();
  const bootindexes = new Map<number, DeviceConfig>();
  const count = (kind: DeviceConfig["kind"]) => raw.devices.filter((d) => d.kind === kind);
  const q35 = raw.machine.type === "q35";

  for (const d of raw.devices) {
    if ("iothread" in d && d.iothread !== null) {
      resolve(d, raw.iothreads, d.iothread, "iothread", "-object iothread,id=");
    }
    switch (d.kind) {
      case "blk": {
        const drive = resolve(d, raw.drives, d.drive, "drive", "-drive id=");
        claim(claims, drive, d, `drive ${d.drive}`);
        if (d.bootindex !== null) {
          const other = bootindexes.get(d.bootindex);
          if (other) throw errorAt(d, `bootindex ${d.bootindex} is already used by ${other.id}`);
          bootindexes.set(d.bootindex, d);
        }
        break;
      }
      case "net": {
        const netdev = resolve(d, raw.netdevs, d.netdev, "netdev", "-netdev");
        claim(claims, netdev, d, `netdev ${d.netdev}`);
        if (netdev.type === "vhost-user" && d.transport !== "pci") {
          throw errorAt(d, "vhost-user netdevs work only with virtio-net-pci");
        }
        if (netdev.type === "tap" && netdev.vhost && d.iothread !== null) {
          raw.warnings.push(`-device ${originOf(d).value}: iothread has no effect with vhost=on`);
        }
        if (d.mq && netdev.queues < 2) {
          raw.warnings.push(`-device ${originOf(d).value}: mq=on with a single queue pair`);
        }
        break;
      }
      case "virtconsole": {
        const chardev = resolve(d, raw.chardevs, d.chardev, "chardev", "-chardev");
        claim(chardevClaims, chardev, d, `chardev ${d.chardev}`);
        requireServerSocket(d, chardev);
        break;
      }
      case "rng": {
        const backend = resolve(d, raw.rngBackends, d.rng, "rng object", "-object rng-random");
        claim(claims, backend, d, `rng object ${d.rng}`);
        break;
      }
    }
  }

  const limits: [DeviceConfig["kind"], number, string][] = [
    ["virtio-serial", 1, "only one virtio-serial device is supported"],
    [
      "virtconsole",
      q35 ? 1 : MAX_CONSOLES,
      q35 ? "only one virtconsole on q35 is supported" : "at most 8 virtconsoles (hvc0..hvc7)",
    ],
    ["vsock", 1, "only one vsock device is supported"],
    ["balloon", 1, "only one balloon device is supported"],
    ["rng", 1, "only one rng device is supported"],
    ["xhci", 1, "only one USB controller is supported"],
    ["usb-kbd", 1, "only one USB keyboard is supported"],
    ["usb-tablet", 1, "only one USB tablet is supported"],
  ];
  for (const [kind, max, text] of limits) {
    const list = count(kind);
    if (list.length > max) throw errorAt(list[max], text);
  }
  const consoles = count("virtconsole");
  if (consoles.length > 0 && count("virtio-serial").length === 0) {
    throw errorAt(
      consoles[0],
      "virtconsole needs a virtio-serial device (-device virtio-serial-...)",
    );
  }
  for (const kind of ["usb-kbd", "usb-tablet"] as const) {
    const list = count(kind);
    if (list.length > 0 && count("xhci").length === 0) {
      throw errorAt(list[0], `${kind} needs a USB controller (-device nec-usb-xhci)`);
    }
  }
  const balloon = count("balloon")[0];
  if (balloon && count("vfio").length > 0) {
    // The guidebook says to avoid it: ballooned pages stay pinned for the assigned device.
    raw.warnings.push(`-device ${originOf(balloon).value}: avoid balloon together with vfio-pci`);
  }
  for (const drive of raw.drives) {
    if (!claims.has(drive)) raw.warnings.push(`-drive ${originOf(drive).value}: no device uses it`);
  }
  for (const netdev of raw.netdevs) {
    if (!claims.has(netdev)) {
      raw.warnings.push(`-netdev ${originOf(netdev).value}: no device uses it`);
    }
  }
  checkUnique("device", raw.devices);
}

function requireServerSocket(user: object, chardev: ChardevConfig): void {
  if (chardev.type === "socket" && !chardev.server) {
    throw errorAt(user, `chardev ${chardev.id} must be a server socket (add server,nowait)`);
  }
}

function checkSerial(raw: RawConfig, chardevClaims: Map<object, object>): SerialConfig | null {
  const spec = raw.serial;
  if (spec === null) return null;
  if (spec.kind === "inline") return { chardev: null, backend: spec.backend };
  const chardev = resolve(spec, raw.chardevs, spec.chardev, "chardev", "-chardev");
  claim(chardevClaims, chardev, spec, `chardev ${spec.chardev}`);
  requireServerSocket(spec, chardev);
  const { id: _id, ...backend } = chardev;
  return { chardev: chardev.id, backend };
}

function checkQmp(raw: RawConfig, chardevClaims: Map<object, object>): QmpConfig[] {
  const out = [...raw.qmp];
  for (const mon of raw.mons) {
    const chardev = resolve(mon, raw.chardevs, mon.chardev, "chardev", "-chardev");
    claim(chardevClaims, chardev, mon, `chardev ${mon.chardev}`);
    if (chardev.type !== "socket" || !chardev.server) {
      throw errorAt(mon, `chardev ${mon.chardev} must be a socket with server,nowait for QMP`);
    }
    out.push({ transport: "unix", path: chardev.path });
  }
  return out;
}

function checkBoot(raw: RawConfig): void {
  const { type, accel } = raw.machine;
  const testMode = (raw.accel?.accel ?? accel) === "test";
  if (raw.initrd !== null && raw.kernel === null) {
    throw new ConfigError("-initrd", raw.initrd, "needs -kernel");
  }
  if (raw.append !== "" && raw.kernel === null) {
    throw new ConfigError("-append", raw.append, "needs -kernel");
  }
  if (type === "microvm" && raw.kernel === null && !testMode) {
    throw new ConfigError("-machine", "microvm", "a microvm needs -kernel (it has no firmware)");
  }
  const units = new Map<number, object>();
  for (const f of raw.pflash) {
    if (type !== "q35") throw errorAt(f, `pflash needs machine q35, not ${type}`);
    if (units.has(f.unit)) throw errorAt(f, `pflash unit ${f.unit} is given twice`);
    units.set(f.unit, f);
  }
  if (units.has(1) && !units.has(0)) {
    throw errorAt(units.get(1)!, "pflash unit 1 (variables) needs unit 0 (firmware code)");
  }
  if (type === "q35" && raw.kernel === null && !units.has(0) && !testMode) {
    throw new ConfigError(
      "-machine",
      "q35",
      "q35 needs -kernel or firmware (-drive if=pflash,unit=0)",
    );
  }
}

function checkRuntime(raw: RawConfig, serial: SerialConfig | null): void {
  const rt = raw.runtime;
  const accel = raw.accel?.accel ?? raw.machine.accel;
  if (rt.modTest !== null && accel !== "test") {
    throw new ConfigError("-mod-test", rt.modTest, "needs -accel test (or -machine accel=test)");
  }
  if (rt.daemonize) {
    if (serial?.backend.type === "stdio") {
      throw new ConfigError("-daemonize", "", "a daemon cannot bind the serial port to stdio");
    }
    const stdio = raw.chardevs.find((c) => c.type === "stdio");
    if (stdio) throw errorAt(stdio, "a daemon (-daemonize) cannot use a stdio chardev");
    if (rt.logging.enabled && rt.logging.file === null) {
      throw new ConfigError("-D", "", "a daemon (-daemonize) cannot log to stderr; give -D FILE");
    }
  }
  const vhostUser = raw.netdevs.find((n) => n.type === "vhost-user");
  if (vhostUser) {
    const nodeBackends = raw.numa.length > 0 && raw.memoryBackends.length > 0;
    const shared = raw.machine.memShare ||
      (nodeBackends && raw.memoryBackends.every((b) => b.share));
    if (!shared) {
      throw errorAt(vhostUser, "vhost-user needs shared guest memory (-machine ...,mem-share=on)");
    }
  }
  for (const n of raw.netdevs) {
    if (n.type === "vhost-user") {
      const chardev = resolve(n, raw.chardevs, n.chardev, "chardev", "-chardev");
      if (chardev.type !== "socket") throw errorAt(n, `chardev ${n.chardev} must be a socket`);
    }
  }
}

export function checkConfig(raw: RawConfig, action: VmConfig["action"]): VmConfig {
  checkUnique("drive", [...raw.drives, ...raw.pflash]);
  checkUnique("netdev", raw.netdevs);
  checkUnique("chardev", raw.chardevs);
  checkUnique("object", [...raw.memoryBackends, ...raw.iothreads, ...raw.rngBackends]);
  const numa = checkNuma(raw);
  const chardevClaims = new Map<object, object>();
  for (const n of raw.netdevs) {
    if (n.type === "vhost-user") {
      const c = resolve(n, raw.chardevs, n.chardev, "chardev", "-chardev");
      claim(chardevClaims, c, n, `chardev ${n.chardev}`);
    }
  }
  checkDevices(raw, chardevClaims);
  checkPlacement(raw.machine.type, raw.devices);
  const serial = checkSerial(raw, chardevClaims);
  const qmp = checkQmp(raw, chardevClaims);
  // -help and -version read nothing else, so the boot requirements do not apply to them.
  if (action === "run") checkBoot(raw);
  checkRuntime(raw, serial);
  for (const c of raw.chardevs) {
    if (!chardevClaims.has(c)) raw.warnings.push(`-chardev ${originOf(c).value}: nothing uses it`);
  }

  return {
    action,
    machine: { ...raw.machine, accel: raw.accel?.accel ?? raw.machine.accel },
    smp: raw.smp,
    memory: { sizeBytes: raw.memorySize, prealloc: raw.prealloc, memPath: raw.memPath },
    memoryBackends: raw.memoryBackends,
    numa,
    boot: { kernel: raw.kernel, append: raw.append, initrd: raw.initrd },
    iothreads: raw.iothreads,
    rngBackends: raw.rngBackends,
    drives: raw.drives,
    pflash: [...raw.pflash].sort((a, b) => a.unit - b.unit),
    netdevs: raw.netdevs,
    chardevs: raw.chardevs,
    serial,
    devices: raw.devices,
    global: raw.global,
    qmp,
    incoming: raw.incoming,
    runtime: raw.runtime,
    warnings: raw.warnings,
  };
}

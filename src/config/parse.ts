/**
 * parseCommandLine: argv → one deeply frozen VmConfig, or a ConfigError naming the option at
 * fault. Pure: no files, environment or clock are read.
 */
import { ConfigError } from "./error.ts";
import { Occurrence, OPTIONS, requestedAction, tokenize } from "./options.ts";
import { remember } from "./origin.ts";
import { deepFreeze } from "./freeze.ts";
import { Props } from "./props.ts";
import { Accel, DEFAULT_MACHINE, MachineConfig, parseAccel, parseMachine } from "./machine.ts";
import { DEFAULT_SMP, parseSmp } from "./smp.ts";
import { DEFAULT_MEMORY, parseMemorySize, parseMemPath } from "./memory.ts";
import { MEMORY_BACKEND_KINDS, MemoryBackendConfig, parseMemoryBackend } from "./memory_backend.ts";
import { IothreadConfig, parseIothread } from "./iothread.ts";
import { parseRngBackend, RngBackendConfig } from "./rng.ts";
import { NumaItem, parseNuma } from "./numa.ts";
import { DriveConfig, parseDrive, PflashConfig } from "./drive.ts";
import { NetdevConfig, parseNetdev } from "./network.ts";
import { ChardevConfig, parseChardev, parseSerial, SerialSpec } from "./chardev.ts";
import { DeviceConfig, parseDevice } from "./device.ts";
import { DEFAULT_GLOBAL, parseGlobal } from "./global.ts";
import { parseMon, parseQmp, QmpConfig } from "./qmp.ts";
import { IncomingConfig, parseIncoming } from "./incoming.ts";
import { DEFAULT_RUNTIME, parseName, parseTrace, requirePath, RuntimeConfig } from "./runtime.ts";
import { VmConfig } from "./vm_config.ts";
import { checkConfig } from "./checks.ts";

/** Everything read from the line, before cross-checks. */
export interface RawConfig {
  machine: MachineConfig;
  /** The accelerator and the option that chose it, or null for the default (kvm). */
  accel: { accel: Accel; option: string; value: string } | null;
  smpGiven: boolean;
  smp: VmConfig["smp"];
  memorySize: number;
  prealloc: boolean;
  memPath: string | null;
  memoryBackends: MemoryBackendConfig[];
  iothreads: IothreadConfig[];
  rngBackends: RngBackendConfig[];
  numa: NumaItem[];
  kernel: string | null;
  append: string;
  initrd: string | null;
  drives: DriveConfig[];
  pflash: PflashConfig[];
  netdevs: NetdevConfig[];
  chardevs: ChardevConfig[];
  serial: SerialSpec | null;
  devices: DeviceConfig[];
  global: VmConfig["global"];
  qmp: QmpConfig[];
  mons: { chardev: string }[];
  incoming: IncomingConfig | null;
  runtime: { -readonly [K in keyof RuntimeConfig]: RuntimeConfig[K] };
  warnings: string[];
}

function emptyRaw(): RawConfig {
  return {
    machine: DEFAULT_MACHINE,
    accel: null,
    smpGiven: false,
    smp: DEFAULT_SMP,
    memorySize: DEFAULT_MEMORY,
    prealloc: false,
    memPath: null,
    memoryBackends: [],
    iothreads: [],
    rngBackends: [],
    numa: [],
    kernel: null,
    append: "",
    initrd: null,
    drives: [],
    pflash: [],
    netdevs: [],
    chardevs: [],
    serial: null,
    devices: [],
    global: DEFAULT_GLOBAL,
    qmp: [],
    mons: [],
    incoming: null,
    runtime: { ...DEFAULT_RUNTIME },
    warnings: [],
  };
}

function parseObject(raw: RawConfig, text: string): void {
  const p: Props = new Props("-object", text, "type");
  const type = p.str("type");
  if (type === undefined) p.fail("the object type is required (first item)");
  if ((MEMORY_BACKEND_KINDS as readonly string[]).includes(type)) {
    const backend = parseMemoryBackend(type as MemoryBackendConfig["kind"], p);
    raw.memoryBackends.push(remember(backend, "-object", text));
  } else if (type === "iothread") {
    raw.iothreads.push(remember(parseIothread(p), "-object", text));
  } else if (type === "rng-random") {
    raw.rngBackends.push(remember(parseRngBackend(p), "-object", text));
  } else {
    p.fail(
      `unknown object type '${type}'; allowed: ${
        [...MEMORY_BACKEND_KINDS, "iothread", "rng-random"].join(", ")
      }`,
    );
  }
}

/** Reads one option occurrence into raw. */
function apply(raw: RawConfig, occ: Occurrence): void {
  const { spec, value } = occ;
  const warn = (msg: string) => raw.warnings.push(msg);
  if (spec.ignored) {
    warn(`${spec.name}${occ.hasValue ? " " + value : ""}: ignored (accepted for libvirt)`);
    return;
  }
  switch (spec.name) {
    case "-machine": {
      const { machine, accelGiven } = parseMachine(value);
      raw.machine = remember(machine, "-machine", value);
      if (accelGiven) setAccel(raw, machine.accel, "-machine", value);
      return;
    }
    case "-accel":
      setAccel(raw, parseAccel(value), "-accel", value);
      return;
    case "-smp":
      raw.smp = remember(parseSmp(value), "-smp", value);
      raw.smpGiven = true;
      return;
    case "-m":
      raw.memorySize = parseMemorySize(value);
      return;
    case "-mem-prealloc":
      raw.prealloc = true;
      return;
    case "-mem-path":
      raw.memPath = parseMemPath(value);
      return;
    case "-object":
      return parseObject(raw, value);
    case "-numa": {
      const nodes = raw.numa.filter((n) => n.kind === "node").length;
      raw.numa.push(remember(parseNuma(value, nodes), "-numa", value));
      return;
    }
    case "-kernel":
      raw.kernel = requirePath("-kernel", value);
      return;
    case "-append":
      raw.append = value;
      return;
    case "-initrd":
      raw.initrd = requirePath("-initrd", value);
      return;
    case "-global":
      raw.global = parseGlobal(value, raw.global);
      return;
    case "-D":
      raw.runtime.logging = { enabled: true, file: occ.hasValue ? value : null };
      return;
    case "-daemonize":
      raw.runtime.daemonize = true;
      return;
    case "-pidfile":
      raw.runtime.pidfile = requirePath("-pidfile", value);
      return;
    case "-name":
      raw.runtime.name = parseName(value, warn);
      return;
    case "-S":
    case "-freeze":
      raw.runtime.freeze = true;
      return;
    case "-no-shutdown":
      raw.runtime.noShutdown = true;
      return;
    case "-incoming":
      raw.incoming = parseIncoming(value);
      return;
    case "-qmp":
      raw.qmp.push(parseQmp(value));
      return;
    case "-mon":
      raw.mons.push(remember(parseMon(value), "-mon", value));
      return;
    case "-drive": {
      const item = parseDrive(value);
      if (item.kind === "block") raw.drives.push(remember(item.drive, "-drive", value));
      else raw.pflash.push(remember(item.pflash, "-drive", value));
      return;
    }
    case "-device":
      raw.devices.push(remember(parseDevice(value, { warn }), "-device", value));
      return;
    case "-netdev":
      raw.netdevs.push(remember(parseNetdev(value), "-netdev", value));
      return;
    case "-chardev":
      raw.chardevs.push(remember(parseChardev(value), "-chardev", value));
      return;
    case "-serial":
      raw.serial = remember(parseSerial(value), "-serial", value);
      return;
    case "-trace":
      raw.runtime.traceEvents = parseTrace(value);
      return;
    case "-disable-seccomp":
      raw.runtime.seccomp = false;
      return;
    case "-mod-test":
      raw.runtime.modTest = requirePath("-mod-test", value);
      return;
  }
  // Every option in OPTIONS is handled above; reaching here is a bug in this file.
  throw new ConfigError(spec.name, value, "option is listed but not handled (internal error)");
}

/** -machine accel= and -accel may both be given, but must agree. */
function setAccel(raw: RawConfig, accel: Accel, option: string, value: string): void {
  if (raw.accel !== null && raw.accel.accel !== accel) {
    throw new ConfigError(
      option,
      value,
      `accelerator ${accel} contradicts ${raw.accel.option} ${raw.accel.value}`,
    );
  }
  raw.accel = { accel, option, value };
}

export function parseCommandLine(argv: readonly string[]): VmConfig {
  const action = requestedAction(argv);
  const raw = emptyRaw();
  if (action === "run") {
    for (const occ of tokenize(argv)) apply(raw, occ);
  }
  return deepFreeze(checkConfig(raw, action));
}

export { OPTIONS };

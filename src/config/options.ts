/**
 * Every option StratoVirt's command line knows, and how each takes its argument. The help text
 * is generated from this table, so an option cannot exist without being listed.
 */
import { ConfigError } from "./error.ts";

export type ArgKind = "none" | "required" | "optional";

export interface OptionSpec {
  readonly name: string;
  readonly arg: ArgKind;
  /** May appear more than once (each occurrence adds one item). */
  readonly repeat: boolean;
  /** Argument synopsis for the help text. */
  readonly synopsis: string;
  readonly help: string;
  /** Accepted for libvirt and otherwise ignored (recorded as a warning). */
  readonly ignored?: boolean;
  /** Another spelling of the same option. */
  readonly alias?: string;
}

function opt(
  name: string,
  arg: ArgKind,
  synopsis: string,
  help: string,
  extra: Partial<OptionSpec> = {},
): OptionSpec {
  return { name, arg, repeat: false, synopsis, help, ...extra };
}
const many = { repeat: true };
const libvirt = { ignored: true, repeat: true };

export const OPTIONS: readonly OptionSpec[] = [
  opt(
    "-machine",
    "required",
    "[type=]none|microvm|q35[,dump-guest-core=on|off][,mem-share=on|off][,accel=kvm|test][,usb=off]",
    "machine type and features (default microvm)",
  ),
  opt("-accel", "required", "kvm|test", "accelerator (test: qtest-style harness, see -mod-test)"),
  opt(
    "-smp",
    "required",
    "[cpus=]n[,maxcpus=n][,sockets=n][,dies=n][,clusters=n][,cores=n][,threads=n]",
    "number of vCPUs (1..254, default 1) and their topology",
  ),
  opt("-m", "required", "[size=]N[K|M|G]", "guest memory size, 256M..512G (default 256M)"),
  opt("-mem-prealloc", "none", "", "allocate all guest memory at start"),
  opt("-mem-path", "required", "/abs/path", "back guest memory with a file or hugetlbfs directory"),
  opt(
    "-object",
    "required",
    "memory-backend-ram|memory-backend-file|memory-backend-memfd,id=,size=[,host-nodes=][,policy=]" +
      "[,mem-path=][,share=][,prealloc=][,dump=] | iothread,id= | rng-random,id=,filename=",
    "memory backend, iothread or rng backend",
    many,
  ),
  opt(
    "-numa",
    "required",
    "node[,nodeid=n],cpus=a-b:c-d,memdev=ID | dist,src=n,dst=n,val=n",
    "NUMA node or distance",
    many,
  ),
  opt("-kernel", "required", "PATH", "guest kernel (ELF vmlinux, PVH or bzImage)"),
  opt("-append", "required", '"CMDLINE"', "kernel command line"),
  opt("-initrd", "required", "PATH", "initial ramdisk"),
  opt("-global", "required", "pcie-root-port.fast-unplug=0|1", "global device property", many),
  opt(
    "-D",
    "optional",
    "[PATH]",
    "log to PATH, or to stderr without one (level: STRATOVIRT_LOG_LEVEL)",
  ),
  opt("-daemonize", "none", "", "run in the background as a daemon"),
  opt("-pidfile", "required", "PATH", "write the process id to PATH"),
  opt("-name", "required", "NAME", "name of the VM"),
  opt("-S", "none", "", "freeze the vCPUs at start (resume with QMP cont)"),
  opt("-freeze", "none", "", "same as -S"),
  opt("-no-shutdown", "none", "", "keep the process when the guest shuts down"),
  opt("-incoming", "required", "file:PATH|unix:PATH|tcp:HOST:PORT", "start from a VM template"),
  opt(
    "-qmp",
    "required",
    "unix:PATH,server,nowait|tcp:HOST:PORT,server,nowait",
    "QMP server socket",
    many,
  ),
  opt(
    "-mon",
    "required",
    "chardev=ID[,id=NAME],mode=control",
    "QMP server on a socket chardev",
    many,
  ),
  opt(
    "-drive",
    "required",
    "id=,file=[,readonly=][,direct=][,throttling.iops-total=][,if=none|pflash][,format=raw]" +
      "[,unit=0|1][,aio=native|io_uring|off]",
    "block backend or pflash image",
    many,
  ),
  opt("-device", "required", "DRIVER[,prop=value...]", "add a device (see the guidebook)", many),
  opt(
    "-netdev",
    "required",
    "tap,id=[,ifname=][,fd=][,fds=a:b][,queues=][,vhost=][,vhostfd=][,vhostfds=] | " +
      "vhost-user,id=,chardev=[,queues=]",
    "network backend",
    many,
  ),
  opt(
    "-chardev",
    "required",
    "stdio|pty|socket|file,id=[,path=][,server][,nowait]",
    "character device backend",
    many,
  ),
  opt(
    "-serial",
    "required",
    "stdio|pty|socket,path=,server,nowait|file,path=|chardev:ID",
    "the legacy serial port (ttyS0)",
  ),
  opt("-trace", "required", "events=FILE", "trace the events listed in FILE"),
  opt("-disable-seccomp", "none", "", "do not install the seccomp syscall filter"),
  opt("-mod-test", "required", "SOCKET", "test harness socket (qtest-style; needs -accel test)"),
  opt("-help", "none", "", "print this help and exit", { alias: "--help" }),
  opt("-version", "none", "", "print the version and exit", { alias: "--version" }),
  // Libvirt passes these; StratoVirt accepts them and they never function.
  opt("-cpu", "required", "MODEL", "ignored (libvirt)", libvirt),
  opt("-overcommit", "required", "...", "ignored (libvirt)", libvirt),
  opt("-uuid", "required", "UUID", "ignored (libvirt)", libvirt),
  opt("-no-user-config", "none", "", "ignored (libvirt)", libvirt),
  opt("-nodefaults", "none", "", "ignored (libvirt)", libvirt),
  opt("-sandbox", "required", "...", "ignored (libvirt)", libvirt),
  opt("-msg", "required", "...", "ignored (libvirt)", libvirt),
  opt("-rtc", "required", "...", "ignored (libvirt)", libvirt),
  opt("-boot", "required", "...", "ignored (libvirt)", libvirt),
  opt("-nographic", "none", "", "ignored (libvirt)", libvirt),
  opt("-realtime", "required", "...", "ignored (libvirt)", libvirt),
  opt("-display", "required", "...", "ignored (libvirt)", libvirt),
  opt("-usb", "none", "", "ignored (libvirt)", libvirt),
];

const BY_NAME = new Map<string, OptionSpec>();
for (const o of OPTIONS) {
  BY_NAME.set(o.name, o);
  if (o.alias) BY_NAME.set(o.alias, o);
}

export interface Occurrence {
  readonly spec: OptionSpec;
  /** The argument, or "" for options without one (and -D without a file). */
  readonly value: string;
  /** Whether an argument was given (distinguishes `-D` from `-D FILE`). */
  readonly hasValue: boolean;
}

/** Splits argv into option occurrences; refuses unknown options and misplaced words. */
export function tokenize(argv: readonly string[]): Occurrence[] {
  const out: Occurrence[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i];
    const spec = BY_NAME.get(word);
    if (!spec) {
      if (word.startsWith("-")) {
        throw new ConfigError(word, "", "unknown option; run -help for the list");
      }
      throw new ConfigError("", "", `unexpected argument '${word}' (options start with '-')`);
    }
    if (!spec.repeat && seen.has(spec.name)) {
      throw new ConfigError(spec.name, "", "given more than once");
    }
    seen.add(spec.name);
    if (spec.arg === "required") {
      if (i + 1 >= argv.length) {
        throw new ConfigError(spec.name, "", `needs an argument: ${spec.synopsis}`);
      }
      out.push({ spec, value: argv[++i], hasValue: true });
    } else if (spec.arg === "optional" && i + 1 < argv.length && !argv[i + 1].startsWith("-")) {
      out.push({ spec, value: argv[++i], hasValue: true });
    } else {
      out.push({ spec, value: "", hasValue: false });
    }
  }
  return out;
}

/**
 * -help or -version anywhere as an option (not as another option's argument) wins over the rest
 * of the line, which is then not read at all, as users expect from `stratovirt ... -help`.
 */
export function requestedAction(argv: readonly string[]): "help" | "version" | "run" {
  let version = false;
  for (let i = 0; i < argv.length; i++) {
    const spec = BY_NAME.get(argv[i]);
    if (spec?.name === "-help") return "help";
    if (spec?.name === "-version") version = true;
    if (spec?.arg === "required") i++;
  }
  return version ? "version" : "run";
}

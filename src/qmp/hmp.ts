/**
 * `human-monitor-command`: the subset of QEMU's HMP that management tools and people use through
 * QMP — `info status|cpus|version|block|chardev|iothreads` and `drive_del ID`. The answer is the
 * text HMP would print, lines ending in "\r\n". Other commands are refused the way StratoVirt
 * refuses them: "Unsupported command: NAME".
 */
import { QmpError } from "./errors.ts";
import type { QmpMachine } from "./machine_api.ts";
import { qmpVersion } from "./version.ts";

const INFO: Record<string, (m: QmpMachine) => string> = {
  status: (m) => {
    const s = m.status();
    return `VM status: ${s === "created" ? "prelaunch" : s}\r\n`;
  },
  cpus: (m) =>
    m.cpus().filter((c) => c.present).map((c, i) =>
      `${i === 0 ? "*" : " "} CPU #${c.index}: thread_id=${c.threadId}${
        c.halted ? " (halted)" : ""
      }\r\n`
    ).join(""),
  version: () => {
    const v = qmpVersion();
    return `${v.qemu.major}.${v.qemu.minor}.${v.qemu.micro} (${v.package})\r\n`;
  },
  block: (m) =>
    m.blocks().map((b) =>
      `${b.id}: ${b.file} (${b.format}${b.readOnly ? ", read-only" : ""})\r\n` +
      (b.attachedTo ? `    Attached to:      ${b.attachedTo}\r\n` : "") +
      `    Cache mode:       writeback${b.direct ? ", direct" : ""}\r\n`
    ).join(""),
  chardev: (m) => m.chardevs().map((c) => `${c.id}: filename=${c.filename}\r\n`).join(""),
  iothreads: (m) => m.iothreads().map((t) => `${t.id}:\r\n  thread_id=${t.threadId}\r\n`).join(""),
};

export async function humanMonitorCommand(machine: QmpMachine, line: string): Promise<string> {
  const words = line.trim().split(/\s+/).filter((w) => w !== "");
  const [name, ...rest] = words;
  if (name === "info") {
    if (rest.length !== 1) {
      throw new QmpError("GenericError", "Invalid number of arguments");
    }
    const show = Object.hasOwn(INFO, rest[0]) ? INFO[rest[0]] : undefined;
    if (!show) {
      throw new QmpError(
        "GenericError",
        `Unsupported command: info ${rest[0]} (supported: ${Object.keys(INFO).join(", ")})`,
      );
    }
    return show(machine);
  }
  if (name === "drive_del") {
    if (rest.length !== 1) throw new QmpError("GenericError", "Invalid number of arguments");
    await machine.delBlockdev(rest[0]);
    return "";
  }
  throw new QmpError("GenericError", `Unsupported command: ${name ?? ""}`);
}

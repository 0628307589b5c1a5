/** `-qmp unix:PATH,server,nowait | tcp:HOST:PORT,server,nowait` and `-mon chardev=ID[,id=NAME],mode=control`. */
import { ConfigError } from "./error.ts";
import { Props } from "./props.ts";

export type QmpConfig =
  | { readonly transport: "unix"; readonly path: string }
  | { readonly transport: "tcp"; readonly host: string; readonly port: number };

/** Parses a `tcp:HOST:PORT` or `unix:PATH` address; undefined when it is neither. */
export function parseSocketAddress(addr: string): QmpConfig | undefined {
  if (addr.startsWith("unix:")) {
    const path = addr.slice(5);
    return path === "" ? undefined : { transport: "unix", path };
  }
  if (addr.startsWith("tcp:")) {
    const m = /^(.*):([0-9]{1,5})$/.exec(addr.slice(4));
    if (!m || m[1] === "") return undefined;
    const port = parseInt(m[2], 10);
    if (port < 1 || port > 65535) return undefined;
    return { transport: "tcp", host: m[1].replace(/^\[(.*)\]$/, "$1"), port };
  }
  return undefined;
}

export function parseQmp(text: string): QmpConfig {
  const p: Props = new Props("-qmp", text, "address");
  const addr = p.required("address");
  const server = p.flag("server");
  const nowait = p.flag("nowait");
  p.finish("-qmp");
  const parsed = parseSocketAddress(addr);
  if (!parsed) {
    throw new ConfigError("-qmp", text, "the address must be unix:PATH or tcp:HOST:PORT");
  }
  if (!server || !nowait) {
    p.fail("server and nowait are required (QMP is always a listening socket)");
  }
  return parsed;
}

/** `-mon`: the chardev to serve QMP on; it must be a server socket (checked once chardevs are known). */
export function parseMon(text: string): { chardev: string } {
  const p: Props = new Props("-mon", text);
  const chardev = p.required("chardev");
  p.str("id"); // the monitor's own name: nothing refers to it
  const mode = p.choice("mode", ["control"] as const);
  if (mode === undefined) p.fail("mode=control is required (only QMP monitors are supported)");
  p.finish("-mon");
  return { chardev };
}

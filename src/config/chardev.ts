/**
 * `-chardev` and `-serial`. A chardev is a host endpoint (stdio, pty, unix socket, output file)
 * that a serial port, a virtconsole, a vhost-user netdev or a QMP monitor uses.
 */
import { ConfigError } from "./error.ts";
import { Props } from "./props.ts";

export type ChardevBackend =
  | { readonly type: "stdio" }
  | { readonly type: "pty" }
  | {
    readonly type: "socket";
    readonly path: string;
    /** Listen (server) or connect (client); StratoVirt servers never wait for a peer. */
    readonly server: boolean;
  }
  | { readonly type: "file"; readonly path: string };

export type ChardevConfig = { readonly id: string } & ChardevBackend;

const BACKENDS = ["stdio", "pty", "socket", "file"] as const;

function parseBackend(p: Props, type: typeof BACKENDS[number]): ChardevBackend {
  switch (type) {
    case "stdio":
    case "pty":
      return { type };
    case "file":
      return { type, path: p.required("path", "is required for a file chardev") };
    case "socket": {
      const path = p.required("path", "is required for a socket chardev");
      const server = p.flag("server");
      const nowait = p.flag("nowait");
      if (server && !nowait) p.fail("a server socket needs nowait (StratoVirt never waits)");
      if (!server && nowait) p.fail("nowait only applies to a server socket; add server");
      return { type, path, server };
    }
  }
}

export function parseChardev(text: string): ChardevConfig {
  const p: Props = new Props("-chardev", text, "backend");
  const type = p.choice("backend", BACKENDS);
  if (type === undefined) p.fail(`the backend is required: ${BACKENDS.join(", ")}`);
  const id = p.required("id");
  const backend = parseBackend(p, type);
  p.finish(`-chardev ${type}`);
  return { id, ...backend };
}

/** What `-serial` is bound to: its own inline backend, or a `-chardev` by id. */
export type SerialSpec =
  | { readonly kind: "inline"; readonly backend: ChardevBackend }
  | { readonly kind: "chardev"; readonly chardev: string };

export function parseSerial(text: string): SerialSpec {
  if (text.startsWith("chardev:")) {
    const id = text.slice("chardev:".length);
    if (id === "") throw new ConfigError("-serial", text, "chardev: needs a chardev id");
    return { kind: "chardev", chardev: id };
  }
  const p: Props = new Props("-serial", text, "backend");
  const type = p.choice("backend", BACKENDS);
  if (type === undefined) p.fail(`the backend is required: ${BACKENDS.join(", ")} or chardev:ID`);
  const backend = parseBackend(p, type);
  if (backend.type === "socket" && !backend.server) p.fail("a serial socket must be server,nowait");
  p.finish(`-serial ${type}`);
  return { kind: "inline", backend };
}

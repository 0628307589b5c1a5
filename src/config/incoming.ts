/** `-incoming`: start from a VM template (snapshot) instead of booting. */
import { ConfigError } from "./error.ts";
import { parseSocketAddress } from "./qmp.ts";

export type IncomingConfig =
  | { readonly kind: "file"; readonly path: string }
  | { readonly kind: "unix"; readonly path: string }
  | { readonly kind: "tcp"; readonly host: string; readonly port: number };

export function parseIncoming(text: string): IncomingConfig {
  if (text.startsWith("file:") && text.length > 5) return { kind: "file", path: text.slice(5) };
  const addr = parseSocketAddress(text);
  if (addr?.transport === "unix") return { kind: "unix", path: addr.path };
  if (addr?.transport === "tcp") return { kind: "tcp", host: addr.host, port: addr.port };
  throw new ConfigError("-incoming", text, "expected file:PATH, unix:PATH or tcp:HOST:PORT");
}

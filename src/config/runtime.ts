/**
 * Process-level options: logging (-D), daemon (-daemonize, -pidfile), name, start frozen (-S),
 * -no-shutdown, -trace, seccomp and the test harness socket. The log level comes from the
 * STRATOVIRT_LOG_LEVEL environment variable, which main reads: the parser stays pure.
 */
import { ConfigError } from "./error.ts";
import { Props } from "./props.ts";

export interface LoggingConfig {
  /** -D given. */
  readonly enabled: boolean;
  /** Log file, or null for stderr. */
  readonly file: string | null;
}

export interface RuntimeConfig {
  readonly logging: LoggingConfig;
  readonly daemonize: boolean;
  readonly pidfile: string | null;
  readonly name: string | null;
  /** -S / -freeze: vCPUs wait for QMP `cont`. */
  readonly freeze: boolean;
  readonly noShutdown: boolean;
  /** -trace events=FILE. */
  readonly traceEvents: string | null;
  /** Install the seccomp filter (off with -disable-seccomp). */
  readonly seccomp: boolean;
  /** -mod-test SOCKET (test harness, with -accel test). */
  readonly modTest: string | null;
}

export const DEFAULT_RUNTIME: RuntimeConfig = {
  logging: { enabled: false, file: null },
  daemonize: false,
  pidfile: null,
  name: null,
  freeze: false,
  noShutdown: false,
  traceEvents: null,
  seccomp: true,
  modTest: null,
};

export function parseTrace(text: string): string {
  const p: Props = new Props("-trace", text);
  const events = p.required("events");
  p.finish("-trace");
  return events;
}

/** `-name NAME` or libvirt's `-name guest=NAME[,debug-threads=on]`. */
export function parseName(text: string, warn: (m: string) => void): string {
  if (!text.startsWith("guest=")) {
    if (text === "") throw new ConfigError("-name", text, "the name is empty");
    return text;
  }
  const p: Props = new Props("-name", text);
  const name = p.required("guest");
  if (p.has("debug-threads")) {
    p.bool("debug-threads", false);
    warn(`-name ${text}: debug-threads is ignored`);
  }
  p.finish("-name");
  return name;
}

export function requirePath(option: string, text: string): string {
  if (text === "") throw new ConfigError(option, text, "the path is empty");
  return text;
}

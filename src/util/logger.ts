/**
 * Logging in StratoVirt's format:
 *   `YYYY-MM-DDTHH:MM:SS.nnnnnnnnn: [pid][tid][file:line]:LEVEL: message`
 * Enabled by `-D` (stderr) or `-D FILE`; the level comes from STRATOVIRT_LOG_LEVEL
 * (trace, debug, info, warn, error; default error). Every Worker calls `initLogger` with the same
 * settings: lines are appended with O_APPEND, one write per line, so threads never interleave.
 */

export const LEVELS = ["error", "warn", "info", "debug", "trace"] as const;
export type LogLevel = typeof LEVELS[number];

export interface LoggerSettings {
  /** null: logging off (no -D); "" : stderr; otherwise a file path. */
  target: string | null;
  level: LogLevel;
}

interface Sink {
  writeSync(p: Uint8Array): number;
  close?(): void;
}

let settings: LoggerSettings = { target: null, level: "error" };
let sink: Sink | null = null;
let threadId = 0;
const encoder = new TextEncoder();

/** Parses STRATOVIRT_LOG_LEVEL; unknown values fall back to the default, as StratoVirt does. */
export function levelFromEnv(value: string | undefined): LogLevel {
  const v = (value ?? "").trim().toLowerCase();
  return (LEVELS as readonly string[]).includes(v) ? v as LogLevel : "error";
}

/** Opens the log target. Throws (a Deno error) if the file cannot be opened for append. */
export function initLogger(s: LoggerSettings, tid = 0): void {
  if (sink && sink !== Deno.stderr) sink.close?.();
  settings = s;
  threadId = tid;
  if (s.target === null) sink = null;
  else if (s.target === "") sink = Deno.stderr;
  else sink = Deno.openSync(s.target, { append: true, create: true, write: true });
}

export function loggerSettings(): LoggerSettings {
  return settings;
}

export function enabled(level: LogLevel): boolean {
  return sink !== null && LEVELS.indexOf(level) <= LEVELS.indexOf(settings.level);
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, "0");
}

/** Local time with nanosecond field, as StratoVirt prints it. */
export function timestamp(now = new Date(), subMs = 0): string {
  const ns = now.getMilliseconds() * 1_000_000 + Math.floor(subMs * 1_000_000);
  return `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}T` +
    `${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())}.${pad(ns, 9)}`;
}

/** `file:line` of the caller of the log function. */
function callSite(): string {
  const stack = new Error().stack?.split("\n") ?? [];
  // [0] "Error", [1] callSite, [2] write, [3] the level function, [4] the caller.
  const frame = stack[4] ?? "";
  const m = frame.match(/([^/\s(]+\.ts):(\d+):\d+\)?$/);
  return m ? `${m[1]}:${m[2]}` : "?:0";
}

/** Formats one log line (exported for tests). */
export function formatLine(level: LogLevel, where: string, msg: string, now = new Date()): string {
  const frac = performance.now() % 1;
  return `${timestamp(now, frac)}: [${Deno.pid}][${threadId || Deno.pid}][${where}]:` +
    `${level.toUpperCase()}: ${msg}\n`;
}

function write(level: LogLevel, msg: string): void {
  if (!enabled(level)) return;
  const line = encoder.encode(formatLine(level, callSite(), msg));
  try {
    sink!.writeSync(line);
  } catch {
    // A full disk or a closed stderr must not take the VM down.
  }
}

export const log = {
  error: (msg: string) => write("error", msg),
  warn: (msg: string) => write("warn", msg),
  info: (msg: string) => write("info", msg),
  debug: (msg: string) => write("debug", msg),
  trace: (msg: string) => write("trace", msg),
};

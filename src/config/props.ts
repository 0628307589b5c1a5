/**
 * StratoVirt's property lists: `-opt [key=]value,key=value,flag`. The first bare token is the
 * option's main value (the device driver, the machine type, the cpu count); later bare tokens
 * are flags (`server`, `nowait`). A literal comma inside a value is written `,,`.
 *
 * `Props` hands out typed values one key at a time and remembers every key it was asked about,
 * so `finish()` can refuse whatever the user wrote that nobody consumed, naming it and listing
 * what the option accepts.
 */
import { ConfigError } from "./error.ts";
import { formatSize, parseBool, parseSize, parseUint } from "./values.ts";

/** Splits on single commas; `,,` stands for a literal comma. */
function splitList(text: string): string[] {
  const parts: string[] = [];
  let cur = "";
  for (let i = 0; i < text.length; i++) {
    if (text[i] === ",") {
      if (text[i + 1] === ",") {
        cur += ",";
        i++;
        continue;
      }
      parts.push(cur);
      cur = "";
    } else {
      cur += text[i];
    }
  }
  parts.push(cur);
  return parts;
}

export interface IntRange {
  min?: number;
  max?: number;
}

export class Props {
  private readonly values = new Map<string, string>();
  private readonly flags = new Set<string>();
  private readonly asked = new Set<string>();

  /**
   * @param option the option with its dash, for messages
   * @param text the option's whole argument
   * @param headKey the key a bare first token stands for (`type`, `cpus`, `driver`); without one,
   *   a bare first token is refused
   */
  constructor(readonly option: string, readonly text: string, headKey?: string) {
    const parts = splitList(text);
    parts.forEach((part, index) => {
      if (part === "") {
        if (index === parts.length - 1 && index > 0) return; // a trailing comma is harmless
        this.fail("empty property (stray comma?)");
      }
      const eq = part.indexOf("=");
      if (eq < 0) {
        if (index === 0 && headKey !== undefined) this.set(headKey, part);
        else if (index === 0) this.fail(`expected key=value, got '${part}'`);
        else if (this.flags.has(part)) this.fail(`'${part}' given twice`);
        else this.flags.add(part);
        return;
      }
      const key = part.slice(0, eq);
      if (key === "") this.fail(`property '${part}' has no name`);
      this.set(key, part.slice(eq + 1));
    });
  }

  private set(key: string, value: string): void {
    if (this.values.has(key)) this.fail(`property '${key}' given twice`);
    this.values.set(key, value);
  }

  /** A ConfigError for this option and its value. */
  error(reason: string): ConfigError {
    return new ConfigError(this.option, this.text, reason);
  }

  fail(reason: string): never {
    throw this.error(reason);
  }

  has(key: string): boolean {
    this.asked.add(key);
    return this.values.has(key) || this.flags.has(key);
  }

  /** The raw string, or undefined. Empty values are refused: `id=` is always a mistake. */
  str(key: string): string | undefined {
    this.asked.add(key);
    if (this.flags.has(key)) this.fail(`property '${key}' needs a value (${key}=...)`);
    const v = this.values.get(key);
    if (v === "") this.fail(`property '${key}' is empty`);
    return v;
  }

  required(key: string, what = "is required"): string {
    const v = this.str(key);
    if (v === undefined) this.fail(`property '${key}' ${what}`);
    return v;
  }

  /** One of a fixed set of words. */
  choice<T extends string>(key: string, allowed: readonly T[], fallback: T): T;
  choice<T extends string>(key: string, allowed: readonly T[]): T | undefined;
  choice<T extends string>(key: string, allowed: readonly T[], fallback?: T): T | undefined {
    const v = this.str(key);
    if (v === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(v)) {
      this.fail(`${key}=${v} is not supported; allowed: ${allowed.join(", ")}`);
    }
    return v as T;
  }

  /** on/off/true/false/yes/no; a bare `key` flag means on. */
  bool(key: string, fallback: boolean): boolean {
    this.asked.add(key);
    if (this.flags.has(key)) return true;
    const v = this.values.get(key);
    if (v === undefined) return fallback;
    const b = parseBool(v);
    if (b === undefined) this.fail(`${key}=${v} is not a boolean; use on|off|true|false`);
    return b;
  }

  /** A bare flag such as `server`; `server=on|off` is accepted too. */
  flag(key: string): boolean {
    return this.bool(key, false);
  }

  int(key: string, range: IntRange = {}): number | undefined {
    const v = this.str(key);
    if (v === undefined) return undefined;
    const n = parseUint(v);
    const { min = 0, max = Number.MAX_SAFE_INTEGER } = range;
    if (n === undefined || n < min || n > max) {
      this.fail(`${key}=${v} must be an integer between ${min} and ${max}`);
    }
    return n;
  }

  /** A size with K/M/G/T suffix (bare number in `defaultUnit`), within [min, max] bytes. */
  size(key: string, range: IntRange = {}, defaultUnit: "B" | "M" = "M"): number | undefined {
    const v = this.str(key);
    if (v === undefined) return undefined;
    const n = parseSize(v, defaultUnit);
    const { min = 0, max = Number.MAX_SAFE_INTEGER } = range;
    if (n === undefined) this.fail(`${key}=${v} is not a size (e.g. 512M, 2G)`);
    if (n < min || n > max) {
      this.fail(`${key}=${v} must be between ${formatSize(min)} and ${formatSize(max)}`);
    }
    return n;
  }

  /** Refuses every given key or flag nobody asked about. Call after reading all properties. */
  finish(what = this.option): void {
    const given = [...this.values.keys(), ...this.flags];
    const unknown = given.filter((k) => !this.asked.has(k));
    if (unknown.length === 0) return;
    const allowed = [...this.asked].sort();
    this.fail(
      `unknown property '${unknown[0]}' for ${what}` +
        (allowed.length ? `; allowed: ${allowed.join(", ")}` : "; it takes no properties"),
    );
  }
}

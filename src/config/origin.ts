/**
 * Remembers which command-line option produced each parsed object, so checks that run after the
 * whole line is read (references, placement, counts) can still name the option and its value.
 */
import { ConfigError } from "./error.ts";

export interface Origin {
  readonly option: string;
  readonly value: string;
}

const origins = new WeakMap<object, Origin>();

/** Records that `obj` came from `option value`; returns obj for chaining. */
export function remember<T extends object>(obj: T, option: string, value: string): T {
  origins.set(obj, { option, value });
  return obj;
}

/** The option that produced obj (or a placeholder when it was built by a default). */
export function originOf(obj: object): Origin {
  return origins.get(obj) ?? { option: "", value: "" };
}

/** A ConfigError naming the option that produced obj. */
export function errorAt(obj: object, reason: string): ConfigError {
  const o = originOf(obj);
  return new ConfigError(o.option, o.value, reason);
}

/** Test helpers for the config parser: shell-like splitting and partial deep matching. */
import { assertEquals } from "../../../tests/lib/assert.ts";
import { ConfigError } from "../error.ts";
import { parseCommandLine } from "../parse.ts";
import { VmConfig } from "../vm_config.ts";

/** Splits a command line the way a shell would for our examples: spaces, "double quotes". */
export function argv(line: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|(\S+)/g;
  for (const m of line.matchAll(re)) out.push(m[1] ?? m[2]);
  return out;
}

export function parse(line: string): VmConfig {
  return parseCommandLine(argv(line));
}

/** The ConfigError a line produces; fails the test when it parses. */
export function refuse(line: string): ConfigError {
  try {
    parse(line);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw new Error(`expected ConfigError for ${line}, got ${e}`);
  }
  throw new Error(`expected ${line} to be refused, but it parsed`);
}

/** Asserts every key in `expected` matches `actual` (recursively); other keys are ignored. */
export function assertPartial(actual: unknown, expected: unknown, path = "config"): void {
  if (expected !== null && typeof expected === "object" && !Array.isArray(expected)) {
    if (actual === null || typeof actual !== "object") {
      throw new Error(`${path}: expected an object, got ${JSON.stringify(actual)}`);
    }
    for (const [k, v] of Object.entries(expected)) {
      assertPartial((actual as Record<string, unknown>)[k], v, `${path}.${k}`);
    }
    return;
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length) {
      throw new Error(`${path}: expected ${expected.length} items, got ${JSON.stringify(actual)}`);
    }
    expected.forEach((v, i) => assertPartial(actual[i], v, `${path}[${i}]`));
    return;
  }
  assertEquals(actual, expected, path);
}

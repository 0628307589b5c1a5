/**
 * Checks a command's `arguments` against its schema. The errors are QEMU's texts, which name the
 * argument (StratoVirt's serde texts are similar: "missing field `id`", "unknown field `x`"):
 *   Parameter 'id' is missing / Parameter 'x' is unexpected /
 *   Invalid parameter type for 'queues', expected: uint16
 * Nested objects are named with dots ('file.filename').
 */
import { QmpError } from "./errors.ts";

export type ArgType =
  | "str"
  | "bool"
  | "uint8"
  | "uint16"
  | "uint32"
  | "uint64"
  | "int"
  | "any"
  | { readonly object: ArgSchema }
  | { readonly arrayOf: ArgType };

export interface ArgField {
  readonly type: ArgType;
  readonly required?: boolean;
}

/** Fields by wire name; `open: true` lets unknown fields through (StratoVirt ignores them). */
export interface ArgSchema {
  readonly fields: Readonly<Record<string, ArgField>>;
  readonly open?: boolean;
}

export const NO_ARGS: ArgSchema = { fields: {} };

const UINT_MAX: Record<string, number> = {
  uint8: 0xff,
  uint16: 0xffff,
  uint32: 0xffff_ffff,
  uint64: Number.MAX_SAFE_INTEGER,
};

/** Validates `args` (already known to be a plain object) and returns it typed as T. */
export function checkArgs<T>(schema: ArgSchema, args: Record<string, unknown>, prefix = ""): T {
  for (const name of Object.keys(args)) {
    if (!Object.hasOwn(schema.fields, name) && !schema.open) {
      throw new QmpError("GenericError", `Parameter '${prefix}${name}' is unexpected`);
    }
  }
  for (const [name, field] of Object.entries(schema.fields)) {
    const value = args[name];
    if (value === undefined || !Object.hasOwn(args, name)) {
      if (field.required) {
        throw new QmpError("GenericError", `Parameter '${prefix}${name}' is missing`);
      }
      continue;
    }
    checkValue(field.type, value, prefix + name);
  }
  return args as T;
}

function checkValue(type: ArgType, value: unknown, path: string): void {
  const bad = (expected: string) =>
    new QmpError("GenericError", `Invalid parameter type for '${path}', expected: ${expected}`);
  if (type === "any") return;
  if (type === "str") {
    if (typeof value !== "string") throw bad("string");
    return;
  }
  if (type === "bool") {
    if (typeof value !== "boolean") throw bad("boolean");
    return;
  }
  if (type === "int") {
    if (typeof value !== "number" || !Number.isSafeInteger(value)) throw bad("integer");
    return;
  }
  if (typeof type === "string") {
    if (
      typeof value !== "number" || !Number.isSafeInteger(value) || value < 0 ||
      value > UINT_MAX[type]
    ) throw bad(type);
    return;
  }
  if ("object" in type) {
    if (!isPlainObject(value)) throw bad("object");
    checkArgs(type.object, value, path + ".");
    return;
  }
  if (!Array.isArray(value)) throw bad("array");
  value.forEach((item, i) => checkValue(type.arrayOf, item, `${path}[${i}]`));
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

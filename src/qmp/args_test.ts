import { assertEquals, assertThrows } from "../../tests/lib/assert.ts";
import { type ArgSchema, checkArgs } from "./args.ts";
import { QmpError } from "./errors.ts";

const schema: ArgSchema = {
  fields: {
    id: { type: "str", required: true },
    n: { type: "uint8" },
    on: { type: "bool" },
    file: { type: { object: { fields: { name: { type: "str", required: true } } } } },
    list: { type: { arrayOf: "str" } },
  },
};

Deno.test("args: valid arguments pass through unchanged", () => {
  const args = { id: "x", n: 255, on: false, file: { name: "f" }, list: ["a"] };
  assertEquals(checkArgs(schema, args), args);
});

Deno.test("args: each failure names the argument", () => {
  const cases: [Record<string, unknown>, string][] = [
    [{}, "Parameter 'id' is missing"],
    [{ id: "x", zz: 1 }, "Parameter 'zz' is unexpected"],
    [{ id: 1 }, "Invalid parameter type for 'id', expected: string"],
    [{ id: "x", n: 256 }, "Invalid parameter type for 'n', expected: uint8"],
    [{ id: "x", n: 1.5 }, "Invalid parameter type for 'n', expected: uint8"],
    [{ id: "x", n: -1 }, "Invalid parameter type for 'n', expected: uint8"],
    [{ id: "x", on: "on" }, "Invalid parameter type for 'on', expected: boolean"],
    [{ id: "x", file: [] }, "Invalid parameter type for 'file', expected: object"],
    [{ id: "x", file: {} }, "Parameter 'file.name' is missing"],
    [{ id: "x", file: { name: "a", b: 1 } }, "Parameter 'file.b' is unexpected"],
    [{ id: "x", list: "a" }, "Invalid parameter type for 'list', expected: array"],
    [{ id: "x", list: ["a", 2] }, "Invalid parameter type for 'list[1]', expected: string"],
  ];
  for (const [args, message] of cases) {
    const e = assertThrows(() => checkArgs(schema, args), QmpError, message) as QmpError;
    assertEquals(e.errorClass, "GenericError");
    assertEquals(e.message, message);
  }
});

Deno.test("args: open schemas let unknown arguments through but still check known ones", () => {
  const open: ArgSchema = { fields: { path: { type: "str" } }, open: true };
  assertEquals(checkArgs(open, { anything: 1 }), { anything: 1 });
  assertThrows(() => checkArgs(open, { path: 1 }), QmpError, "'path'");
});

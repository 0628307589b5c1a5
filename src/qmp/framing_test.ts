import { assertEquals } from "../../tests/lib/assert.ts";
import { type Frame, MessageSplitter } from "./framing.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const texts = (frames: Frame[]) => frames.map((f) => f.kind === "message" ? f.text.trim() : f.kind);

Deno.test("framing: newline-terminated and back-to-back objects", () => {
  const s = new MessageSplitter();
  assertEquals(texts(s.push(enc('{"a":1}\r\n{"b":[2]}{"c":"}"}\n'))), [
    '{"a":1}',
    '{"b":[2]}',
    '{"c":"}"}',
  ]);
  assertEquals(s.pendingBytes, 0);
});

Deno.test("framing: a message split across pushes, braces inside strings and escapes", () => {
  const s = new MessageSplitter();
  assertEquals(s.push(enc('{"a":"x\\"{')), []);
  assertEquals(s.pendingBytes, 10);
  assertEquals(texts(s.push(enc('"}'))), ['{"a":"x\\"{"}']);
});

Deno.test("framing: scalars and garbage end at the newline; blank lines are nothing", () => {
  const s = new MessageSplitter();
  assertEquals(texts(s.push(enc('42\n"s"\nhello world\n\r\n  \n}\n'))), [
    "42",
    '"s"',
    "hello world",
    "}",
  ]);
});

Deno.test("framing: a non-JSON character inside braces ends the message at the newline", () => {
  const s = new MessageSplitter();
  assertEquals(texts(s.push(enc('{"execute": oops {{{\n{"ok":1}\n'))), [
    '{"execute": oops {{{',
    '{"ok":1}',
  ]);
});

Deno.test("framing: over the cap → one tooLong, the rest of the line dropped", () => {
  const s = new MessageSplitter(16);
  assertEquals(s.push(enc('{"a":"' + "x".repeat(20))), [{ kind: "tooLong", limit: 16 }]);
  assertEquals(s.pendingBytes, 0);
  assertEquals(s.push(enc("y".repeat(100))), []);
  assertEquals(s.pendingBytes, 0);
  assertEquals(texts(s.push(enc('"}\n{"b":2}\n'))), ['{"b":2}']);
  // Exactly at the cap is accepted.
  assertEquals(texts(s.push(enc('{"k":"' + "z".repeat(8) + '"}'))), ['{"k":"zzzzzzzz"}']);
});

Deno.test("framing: invalid UTF-8 is reported, not replaced", () => {
  const s = new MessageSplitter();
  assertEquals(s.push(new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x7d])), [{ kind: "badUtf8" }]);
});

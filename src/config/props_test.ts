import { assertEquals, assertThrows } from "../../tests/lib/assert.ts";
import { ConfigError } from "./error.ts";
import { Props } from "./props.ts";

Deno.test("Props: head value, key=value pairs and bare flags", () => {
  const p = new Props("-chardev", "socket,id=c,path=/s,server,nowait", "backend");
  assertEquals(p.str("backend"), "socket");
  assertEquals(p.required("id"), "c");
  assertEquals(p.str("path"), "/s");
  assertEquals(p.flag("server"), true);
  assertEquals(p.flag("nowait"), true);
  assertEquals(p.flag("telnet"), false);
  p.finish();
});

Deno.test("Props: the head may also be spelled key=value", () => {
  const p = new Props("-machine", "type=q35", "type");
  assertEquals(p.str("type"), "q35");
});

Deno.test("Props: ',,' is a literal comma, a trailing comma is harmless", () => {
  const p = new Props("-drive", "id=d,file=/a,,b,");
  assertEquals(p.str("file"), "/a,b");
  assertEquals(p.str("id"), "d");
  p.finish();
});

Deno.test("Props: finish names the first unknown property and lists the known ones", () => {
  const p = new Props("-drive", "id=d,file=/f,cache=none");
  p.str("id");
  p.str("file");
  const e = assertThrows(() => p.finish(), ConfigError) as ConfigError;
  assertEquals(
    e.message,
    "-drive id=d,file=/f,cache=none: unknown property 'cache' for -drive; allowed: file, id",
  );
});

Deno.test("Props: malformed lists are refused", () => {
  assertThrows(() => new Props("-drive", "file"), ConfigError, "expected key=value");
  assertThrows(() => new Props("-drive", ",id=a"), ConfigError);
  assertThrows(() => new Props("-drive", "id=a,id=b"), ConfigError, "given twice");
  assertThrows(() => new Props("-drive", "=a"), ConfigError, "has no name");
  assertThrows(
    () => new Props("-chardev", "socket,server,server", "backend"),
    ConfigError,
    "given twice",
  );
});

Deno.test("Props: typed getters refuse bad values naming the key", () => {
  const p = new Props("-device", "x,n=12,b=maybe,s=3Q,e=,f", "driver");
  assertThrows(
    () => p.int("n", { max: 10 }),
    ConfigError,
    "n=12 must be an integer between 0 and 10",
  );
  assertThrows(() => p.bool("b", false), ConfigError, "b=maybe is not a boolean");
  assertThrows(() => p.size("s"), ConfigError, "s=3Q is not a size");
  assertThrows(() => p.str("e"), ConfigError, "'e' is empty");
  assertThrows(() => p.str("f"), ConfigError, "needs a value");
  assertThrows(() => p.required("missing"), ConfigError, "'missing' is required");
  assertThrows(() => p.choice("driver", ["y", "z"] as const), ConfigError, "allowed: y, z");
});

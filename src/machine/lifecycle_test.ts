import { assertEquals, assertThrows } from "../../tests/lib/assert.ts";
import { Lifecycle, LifecycleError } from "./lifecycle.ts";

Deno.test("lifecycle: created → running ⇄ paused → shutdown, with listeners told", () => {
  const l = new Lifecycle();
  const seen: string[] = [];
  l.onChange((from, to, why) => seen.push(`${from}>${to}:${why}`));
  l.transition("running", "boot");
  l.transition("paused", "qmp");
  l.transition("running", "qmp");
  l.transition("shutdown", "guest");
  assertEquals(seen, [
    "created>running:boot",
    "running>paused:qmp",
    "paused>running:qmp",
    "running>shutdown:guest",
  ]);
});

Deno.test("lifecycle: nonsense transitions are refused and change nothing", () => {
  const l = new Lifecycle();
  l.transition("running");
  assertThrows(() => l.transition("running"), LifecycleError, "VM is running");
  l.transition("paused");
  assertThrows(() => l.transition("paused"), LifecycleError, "cannot pause");
  l.transition("shutdown");
  assertThrows(() => l.transition("running"), LifecycleError, "shut down");
  assertEquals(l.state, "shutdown");
});

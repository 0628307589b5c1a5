import { assertEquals, assertThrows } from "../../tests/lib/assert.ts";
import { VirtualClock, VirtualClockError } from "./clock.ts";

Deno.test("virtual clock: timers fire in deadline order, each seeing its own deadline", () => {
  const c = new VirtualClock();
  const seen: string[] = [];
  c.after(300n, () => seen.push(`b@${c.nowNs}`));
  c.after(100n, () => {
    seen.push(`a@${c.nowNs}`);
    c.after(50n, () => seen.push(`a2@${c.nowNs}`)); // armed by a timer, due before the target
  });
  c.after(1000n, () => seen.push(`late@${c.nowNs}`));
  assertEquals(c.nextDeadlineDelta(), 100n);
  c.advanceTo(500n);
  assertEquals(seen, ["a@100", "a2@150", "b@300"]);
  assertEquals(c.nowNs, 500n);
  assertEquals(c.nextDeadlineDelta(), 500n);
  assertEquals(c.pendingTimers, 1);
});

Deno.test("virtual clock: same deadline fires first come first served; never runs backwards", () => {
  const c = new VirtualClock();
  const seen: number[] = [];
  c.after(10n, () => seen.push(1));
  c.after(10n, () => seen.push(2));
  c.after(-5n, () => seen.push(0));
  c.advanceTo(10n);
  assertEquals(seen, [0, 1, 2]);
  assertEquals(c.nextDeadlineDelta(), null);
  assertThrows(() => c.advanceTo(9n), VirtualClockError, "cannot set the clock back");
  assertEquals(c.nowMs(), 0.00001);
});

import { assert, assertEquals, assertThrows } from "../../../../tests/lib/assert.ts";
import { IopsThrottle } from "./throttle.ts";

Deno.test("throttle: a full bucket grants `limit` operations, then none until one second passes", () => {
  let now = 5000;
  const t = new IopsThrottle(3, () => now);
  assertEquals([t.tryAcquire(), t.tryAcquire(), t.tryAcquire(), t.tryAcquire()], [
    true,
    true,
    true,
    false,
  ]);
  assertEquals(t.delayMs(), 1001);
  now += 1000;
  assert(!t.tryAcquire(), "the window still holds the three grants");
  assertEquals(t.delayMs(), 1);
  now += 1;
  assertEquals(t.delayMs(), 0);
  assert(t.tryAcquire());
});

Deno.test("throttle: delayMs is exactly when the oldest grant expires", () => {
  let now = 0;
  const t = new IopsThrottle(2, () => now);
  assert(t.tryAcquire());
  now = 400;
  assert(t.tryAcquire());
  now = 700;
  assertEquals(t.delayMs(), 301); // the grant at 0 leaves the window at 1001
  now += t.delayMs();
  assert(t.tryAcquire());
  assert(!t.tryAcquire());
  assertEquals(t.delayMs(), 400 + 1001 - now);
});

Deno.test("throttle: no one-second window ever holds more than the limit", () => {
  for (const limit of [1, 7, 100, 1000]) {
    let now = 0;
    let seed = limit;
    const t = new IopsThrottle(limit, () => now);
    const grants: number[] = [];
    for (let step = 0; step < 20000; step++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      now += (seed % 7) / 3; // fractional, sometimes standing still
      if (t.tryAcquire()) grants.push(now);
    }
    // Sliding window over the grant times: [g, g + 1000) must hold at most `limit`.
    let lo = 0;
    for (let hi = 0; hi < grants.length; hi++) {
      while (grants[hi] - grants[lo] >= 1000) lo++;
      assert(hi - lo + 1 <= limit, `limit ${limit}: ${hi - lo + 1} grants in one second`);
    }
    // And the limit is actually reached over the run (within the 1001 ms bookkeeping).
    const seconds = now / 1000;
    assert(
      grants.length >= Math.floor(limit * (seconds - 1) * 0.99),
      `limit ${limit}: ${grants.length}`,
    );
  }
});

Deno.test("throttle: a clock going backwards does not mint tokens", () => {
  let now = 10_000;
  const t = new IopsThrottle(1, () => now);
  assert(t.tryAcquire());
  now = 0;
  assert(!t.tryAcquire());
  now = 11_001;
  assert(t.tryAcquire());
});

Deno.test("throttle: the limit must be a positive integer", () => {
  assertThrows(() => new IopsThrottle(0, () => 0), RangeError);
  assertThrows(() => new IopsThrottle(1.5, () => 0), RangeError);
});

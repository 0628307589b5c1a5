import { assertEquals } from "../../tests/lib/assert.ts";
import { LeakBucket } from "./leak_bucket.ts";

Deno.test("leak bucket: holds `capacity` commands and drains that many per second", () => {
  let now = 5000;
  const b = new LeakBucket(3, () => now);
  assertEquals([b.throttled(), b.throttled(), b.throttled(), b.throttled()], [
    false,
    false,
    false,
    true,
  ]);
  now += 334; // a third of a second drains one
  assertEquals([b.throttled(), b.throttled()], [false, true]);
  now += 10_000;
  assertEquals([b.throttled(), b.throttled(), b.throttled(), b.throttled()], [
    false,
    false,
    false,
    true,
  ]);
});

import { assert, assertEquals } from "../../tests/lib/assert.ts";
import { deviceDeletedData, encodeEvent, qmpTimestamp } from "./events.ts";

Deno.test("events: wire form is event, data, timestamp", () => {
  assertEquals(
    encodeEvent("SHUTDOWN", { guest: true, reason: "guest-shutdown" }, {
      seconds: 1575531524,
      microseconds: 91519,
    }),
    '{"event":"SHUTDOWN","data":{"guest":true,"reason":"guest-shutdown"},' +
      '"timestamp":{"seconds":1575531524,"microseconds":91519}}',
  );
  assertEquals(
    encodeEvent("STOP", {}, { seconds: 1, microseconds: 2 }),
    '{"event":"STOP","data":{},"timestamp":{"seconds":1,"microseconds":2}}',
  );
});

Deno.test("events: timestamps are wall-clock seconds and microseconds", () => {
  const t = qmpTimestamp();
  const now = Date.now() / 1000;
  assert(Math.abs(t.seconds - now) < 5, `${t.seconds} vs ${now}`);
  assert(Number.isInteger(t.microseconds) && t.microseconds >= 0 && t.microseconds < 1e6);
});

Deno.test("events: DEVICE_DELETED names the device and its peripheral path", () => {
  assertEquals(deviceDeletedData("net-0"), { device: "net-0", path: "/machine/peripheral/net-0" });
});

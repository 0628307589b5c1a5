import { assertEquals, assertMatch } from "../../tests/lib/assert.ts";
import { formatLine, initLogger, levelFromEnv, log } from "./logger.ts";

Deno.test("logger: level from STRATOVIRT_LOG_LEVEL, default error", () => {
  assertEquals(levelFromEnv(undefined), "error");
  assertEquals(levelFromEnv("INFO"), "info");
  assertEquals(levelFromEnv("verbose"), "error");
});

Deno.test("logger: line format is StratoVirt's", () => {
  const line = formatLine("info", "serial.rs:42", "hello", new Date(2026, 0, 2, 3, 4, 5, 6));
  assertMatch(
    line,
    /^2026-01-02T03:04:05\.006\d{6}: \[\d+\]\[\d+\]\[serial\.rs:42\]:INFO: hello\n$/,
  );
});

Deno.test("logger: -D FILE gets lines at or above the level, with the caller's file:line", () => {
  const path = Deno.makeTempFileSync();
  try {
    initLogger({ target: path, level: "warn" });
    log.info("not shown");
    log.warn("shown");
    log.error("also shown");
    initLogger({ target: null, level: "error" });
    log.error("logging off");
    const lines = Deno.readTextFileSync(path).trim().split("\n");
    assertEquals(lines.length, 2);
    assertMatch(lines[0], /\[logger_test\.ts:\d+\]:WARN: shown$/);
    assertMatch(lines[1], /:ERROR: also shown$/);
  } finally {
    Deno.removeSync(path);
  }
});

/**
 * Runs one microvm from a MachineSpec given as JSON (the argument, or `@file`), so tests drive the
 * machine as a subprocess they can kill. Prints `BOOT-EVENT <kind> <ms>` on stderr for each
 * boot-timer marker. Exits with the VM's status.
 */
import { runMicrovmAndExit } from "../../src/machine/microvm.ts";
import type { MachineSpec } from "../../src/machine/spec.ts";
import { initLogger, levelFromEnv } from "../../src/util/logger.ts";

const arg = Deno.args[0] ?? "";
const json = arg.startsWith("@") ? Deno.readTextFileSync(arg.slice(1)) : arg;
const spec = JSON.parse(json) as MachineSpec;
const target = Deno.env.get("STRATOVIRT_TEST_LOG");
if (target !== undefined) {
  initLogger({ target, level: levelFromEnv(Deno.env.get("STRATOVIRT_LOG_LEVEL") ?? "info") });
}
await runMicrovmAndExit(spec, {
  onBootEvent: (kind, ms) => console.error(`BOOT-EVENT ${kind} ${ms.toFixed(1)}`),
});

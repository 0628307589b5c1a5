/**
 * Subprocess driver for the pause/resume test: boots the "count" tiny guest (a counter in guest
 * RAM that only a running vCPU advances), then through the MicrovmHandle checks that the counter
 * moves while running, stands still while paused, and moves again after resume. Prints one
 * `PAUSE-CHECK <name> <ok|FAIL> ...` line per step, then ends the VM (status 0 when all passed).
 */
import { type MicrovmHandle, runMicrovm } from "../../src/machine/microvm.ts";
import type { MachineSpec } from "../../src/machine/spec.ts";
import { COUNTER_GPA } from "./tiny_guests.ts";

const spec = JSON.parse(Deno.args[0]) as MachineSpec;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits (bounded) until the counter differs from `from`; returns the new value or null. */
async function advancesFrom(vm: MicrovmHandle, from: number): Promise<number | null> {
  for (let i = 0; i < 500; i++) {
    const now = vm.memory.readU32(COUNTER_GPA);
    if (now !== from) return now;
    await sleep(10);
  }
  return null;
}

let failed = false;
function report(name: string, ok: boolean, detail: string): void {
  if (!ok) failed = true;
  console.log(`PAUSE-CHECK ${name} ${ok ? "ok" : "FAIL"} ${detail}`);
}

async function check(vm: MicrovmHandle): Promise<void> {
  const first = vm.memory.readU32(COUNTER_GPA);
  const running = await advancesFrom(vm, first);
  report("running", running !== null, `counter ${first} -> ${running}`);
  await vm.pause();
  const paused = vm.memory.readU32(COUNTER_GPA);
  await sleep(300);
  const later = vm.memory.readU32(COUNTER_GPA);
  report("paused", paused === later && vm.lifecycle.state === "paused", `${paused} -> ${later}`);
  vm.resume();
  const resumed = await advancesFrom(vm, later);
  report(
    "resumed",
    resumed !== null && vm.lifecycle.state === "running",
    `counter ${later} -> ${resumed}`,
  );
  vm.shutdown(failed ? 1 : 0, "pause check done");
}

let status = 1;
try {
  status = await runMicrovm(spec, {
    onRunning: (vm) => {
      check(vm).catch((e) => {
        report("exception", false, (e as Error).message);
        vm.shutdown(1, "pause check failed");
      });
    },
  });
} catch (e) {
  console.error(`pause_check: ${(e as Error).message}`);
}
Deno.exit(status);

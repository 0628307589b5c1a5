/**
 * CPU placement for the blk-qtest benchmark. Its round trip is strictly serial (driver -> VMM ->
 * driver), and waking a halted vCPU of this host costs far more than a switch on the same CPU,
 * so both ends' main threads go on one CPU. Only the main threads: pinning whole processes makes
 * the V8 / tokio helper threads compete with them.
 */

/**
 * The CPU named by `value` (the CPU env variable): null when unset or empty (no pinning), else a
 * CPU number below `cpus`; throws naming the value otherwise.
 */
export function parseCpu(value: string | undefined, cpus: number): number | null {
  if (value === undefined || value === "") return null;
  if (!/^(0|[1-9][0-9]*)$/.test(value) || Number(value) >= cpus) {
    throw new Error(
      `CPU must be empty (no pinning) or a CPU number 0..${cpus - 1}, got '${value}'`,
    );
  }
  return Number(value);
}

/**
 * Pins the thread whose id is `pid` (a process's main thread) to `cpu` with
 * `taskset -p -c CPU PID`: without -a, taskset changes that one thread, so the process's other
 * threads keep every CPU. Throws naming the command when it fails.
 */
export async function pinMainThread(pid: number, cpu: number): Promise<void> {
  const args = ["-p", "-c", String(cpu), String(pid)];
  const command = `taskset ${args.join(" ")}`;
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("taskset", {
      args,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    })
      .output();
  } catch (e) {
    throw new Error(`${command} could not run (util-linux installed?): ${e}`);
  }
  if (!out.success) {
    const why = new TextDecoder().decode(out.stderr).trim();
    throw new Error(`${command} failed (exit ${out.code})${why ? `: ${why}` : ""}`);
  }
}

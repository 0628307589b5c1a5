/**
 * Runs a MachineSpec through tests/machine/run_spec.ts in a subprocess and collects what it
 * printed. A VM that hangs is killed after `limitMs` (a guard against a stuck test, not a timing
 * assertion: the result says it was killed).
 */
import type { MachineSpec } from "../../src/machine/spec.ts";
import { helperAvailable } from "../../ffi/helper.ts";
import type { Requirement } from "../lib/skip.ts";

const RUN_SPEC = new URL("./run_spec.ts", import.meta.url).pathname;
/** The pause/resume driver (same calling convention as run_spec.ts). */
export const PAUSE_CHECK = new URL("./pause_check.ts", import.meta.url).pathname;

export interface VmRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly killed: boolean;
  /** Wall time from spawn to exit, in ms (reported, never asserted). */
  readonly elapsedMs: number;
  /** Wall time from spawn until `marker` appeared on stdout, if it did. */
  readonly markerMs: number | null;
}

export interface RunOptions {
  readonly limitMs?: number;
  /** Text whose first appearance on stdout is timed. */
  readonly marker?: string;
  readonly env?: Record<string, string>;
  /** Written to the VM's stdin (which is then closed); stdin is empty otherwise. */
  readonly stdin?: string;
  /** Send this signal to the VMM once `signalAfter` appears on its stderr. */
  readonly signal?: Deno.Signal;
  readonly signalAfter?: string;
  /** The driver script (default run_spec.ts). */
  readonly script?: string;
}

async function drain(
  stream: ReadableStream<Uint8Array>,
  onText?: (all: string) => void,
): Promise<string> {
  const decoder = new TextDecoder();
  let all = "";
  for await (const chunk of stream) {
    all += decoder.decode(chunk, { stream: true });
    onText?.(all);
  }
  return all + decoder.decode();
}

export async function runVm(spec: MachineSpec, o: RunOptions = {}): Promise<VmRun> {
  const start = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", o.script ?? RUN_SPEC, JSON.stringify(spec)],
    stdin: o.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: o.env,
  }).spawn();
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }, o.limitMs ?? 60_000);
  if (o.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(o.stdin));
    await w.close();
  }
  let markerMs: number | null = null;
  let signalled = false;
  const [stdout, stderr, status] = await Promise.all([
    drain(child.stdout, (all) => {
      if (markerMs === null && o.marker && all.includes(o.marker)) {
        markerMs = performance.now() - start;
      }
    }),
    drain(child.stderr, (all) => {
      if (!signalled && o.signal && o.signalAfter && all.includes(o.signalAfter)) {
        signalled = true;
        child.kill(o.signal);
      }
    }),
    child.status,
  ]);
  clearTimeout(timer);
  return {
    code: status.code,
    stdout,
    stderr,
    killed,
    elapsedMs: performance.now() - start,
    markerMs,
  };
}

/** The helper library is built. */
export const helperBuilt: Requirement = () => {
  const why = helperAvailable();
  return why ? "the helper library is not built (scripts/build-helper.sh)" : null;
};

/**
 * Runs the VMM exactly as a user types it (`deno run -A main.ts ARGS...`) and collects what it
 * printed, for the virtio-blk tests: a guest marker can trigger a signal (SIGKILL after the
 * guest synced), and a VM that hangs is killed after a limit (a guard, never an assertion).
 */
import type { Requirement } from "../lib/skip.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** The project's guest build when present, else the reference guest. */
export function guestDir(): string {
  const built = Deno.env.get("STRATOVIRT_GUEST_DIR");
  try {
    if (built && Deno.statSync(`${built}/vmlinux`).isFile) return built;
  } catch { /* not built: the reference guest */ }
  return "/work/shared/guest";
}

export const GUEST = guestDir();

const PVM_CMDLINE = "console=ttyS0 panic=-1 noxsave no_int3_selftest " +
  "clearcpuid=popcnt,fsgsbase,invpcid,pcid,erms,fsrm,cx16,bmi1,bmi2,smap,rep_good " +
  "pvm_syscall_fixup rodata=off percpu_alloc=page quiet";

/** The guest's own command line (its `cmdline` file) or the README's, plus `reboot=k`. */
export function guestCmdline(): string {
  let base = PVM_CMDLINE;
  try {
    base = Deno.readTextFileSync(`${GUEST}/cmdline`).trim();
  } catch { /* the reference guest has none */ }
  return `${base} reboot=k`;
}

export function guestFile(name: string): Requirement {
  return () => {
    try {
      Deno.statSync(`${GUEST}/${name}`);
      return null;
    } catch {
      return `guest ${name} not found in ${GUEST}`;
    }
  };
}

export interface VmmRun {
  readonly code: number | null;
  readonly signal: string | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Killed by the hang guard. */
  readonly hung: boolean;
  /** Wall time from spawn to exit, ms (reported, never asserted). */
  readonly elapsedMs: number;
  /** Wall time until `timeMarker` appeared on stdout. */
  readonly markerMs: number | null;
}

export interface VmmOptions {
  readonly limitMs: number;
  readonly timeMarker?: string;
  /** Send `signal` to the VMM once this text appears on its stdout. */
  readonly signalOn?: string;
  readonly signal?: Deno.Signal;
}

async function drain(stream: ReadableStream<Uint8Array>, onText: (all: string) => void) {
  const decoder = new TextDecoder();
  let all = "";
  for await (const chunk of stream) {
    all += decoder.decode(chunk, { stream: true });
    onText(all);
  }
  return all + decoder.decode();
}

export async function runVmm(args: string[], o: VmmOptions): Promise<VmmRun> {
  const start = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let hung = false;
  const guard = setTimeout(() => {
    hung = true;
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, o.limitMs);
  let markerMs: number | null = null;
  let signalled = false;
  const [stdout, stderr, status] = await Promise.all([
    drain(child.stdout, (all) => {
      if (markerMs === null && o.timeMarker && all.includes(o.timeMarker)) {
        markerMs = performance.now() - start;
      }
      if (!signalled && o.signalOn && all.includes(o.signalOn)) {
        signalled = true;
        try {
          child.kill(o.signal ?? "SIGKILL");
        } catch { /* gone */ }
      }
    }),
    drain(child.stderr, () => {}),
    child.status,
  ]);
  clearTimeout(guard);
  return {
    code: status.signal ? null : status.code,
    signal: status.signal,
    stdout,
    stderr,
    hung,
    elapsedMs: performance.now() - start,
    markerMs,
  };
}

export function describe(r: VmmRun): string {
  return `exit ${r.code ?? r.signal}${r.hung ? " (killed: hung)" : ""}\n--- stdout\n${r.stdout}` +
    `\n--- stderr\n${r.stderr}`;
}

export function report(what: string, r: VmmRun): void {
  const mark = r.markerMs === null ? "never" : `${(r.markerMs / 1000).toFixed(1)} s`;
  console.log(`  ${what}: start -> BOOT-OK ${mark}, -> exit ${(r.elapsedMs / 1000).toFixed(1)} s`);
}

/**
 * Runs a guest test, and once more if it fails, printing the first failure in full. Only for
 * tests that check what a guest's user processes computed: on kvm_pvm hosts a guest damages its
 * own user memory now and then, with QEMU too (docs/status.md, known problems), which neither a
 * VMM nor a test can tell from a fault of the device. A fault of ours that shows every time still
 * fails; one that shows now and then is printed here before the second attempt hides it.
 */
export async function withOneRetry(what: string, attempt: () => Promise<void>): Promise<void> {
  try {
    await attempt();
  } catch (first) {
    console.log(
      `  FIRST ATTEMPT FAILED (${what}); trying once more. It failed with:\n${
        (first as Error).stack ?? first
      }`,
    );
    await attempt();
  }
}

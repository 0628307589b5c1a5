/**
 * Starts the VMM the way users do: the single binary `stratovirt`, built once per test run into a
 * temp dir with `scripts/build.sh DIR` (its launcher cache in the same dir, so nothing is left
 * behind), or `deno run -A main.ts` when the build fails. A VM that hangs is killed after
 * `limitMs`: a guard against a stuck test (the result says it was killed), never a timing check.
 */
import { helperAvailable } from "../../ffi/helper.ts";
import type { Requirement } from "../lib/skip.ts";
import { TextLog } from "./text_log.ts";

const ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");

/** The helper library is built (the binary packages it; the VMM cannot run without it). */
export const helperBuilt: Requirement = () => helperAvailable();

interface Launcher {
  /** argv before the StratoVirt options. */
  readonly argv: readonly string[];
  readonly env: Record<string, string>;
}

let launcher: Promise<Launcher> | null = null;
let buildDir: string | null = null;

globalThis.addEventListener("unload", () => {
  if (buildDir) {
    try {
      Deno.removeSync(buildDir, { recursive: true });
    } catch { /* already gone */ }
  }
});

async function buildLauncher(): Promise<Launcher> {
  buildDir = await Deno.makeTempDir({ prefix: "sv-boot-bin-" });
  const r = await new Deno.Command("bash", {
    args: [`${ROOT}/scripts/build.sh`, buildDir],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (r.success) {
    return {
      argv: [`${buildDir}/stratovirt`],
      env: { STRATOVIRT_CACHE: `${buildDir}/cache` },
    };
  }
  console.log(
    `  scripts/build.sh failed, using deno run main.ts:\n${new TextDecoder().decode(r.stderr)}`,
  );
  return {
    argv: [Deno.execPath(), "run", "-A", "--quiet", `${ROOT}/main.ts`],
    env: {},
  };
}

/** How the VMM is started in this test run (built on first use). */
export function stratovirtLauncher(): Promise<Launcher> {
  launcher ??= buildLauncher();
  return launcher;
}

export interface VmResult {
  readonly code: number;
  readonly killed: boolean;
  readonly stdout: string;
  readonly stderr: string;
}

export interface StartOptions {
  /**
   * Kill the VM (SIGKILL) after this long; default 600 s: emulated guest kernels crawl when
   * other VMs share the two CPUs.
   */
  readonly limitMs?: number;
  /** Give the VM a stdin pipe (`write`); otherwise stdin is /dev/null. */
  readonly stdin?: boolean;
  readonly env?: Record<string, string>;
}

/** A running VMM process with its output collected as it comes. */
export class VmProcess {
  readonly stdout = new TextLog();
  readonly stderr = new TextLog();
  #killed = false;
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array> | null;
  /** Resolves when the process has exited and its output is drained. */
  readonly done: Promise<VmResult>;

  constructor(child: Deno.ChildProcess, limitMs: number, stdin: boolean) {
    this.#child = child;
    this.#stdin = stdin ? child.stdin.getWriter() : null;
    const timer = setTimeout(() => {
      this.#killed = true;
      this.kill("SIGKILL");
    }, limitMs);
    this.done = Promise.all([
      pumpAll(this.stdout, child.stdout),
      pumpAll(this.stderr, child.stderr),
      child.status,
    ]).then(([, , status]) => {
      clearTimeout(timer);
      return {
        code: status.code,
        killed: this.#killed,
        stdout: this.stdout.text,
        stderr: this.stderr.text,
      };
    });
  }

  get pid(): number {
    return this.#child.pid;
  }

  /** Writes to the VMM's stdin (the stdio serial backend passes it to the guest). */
  async write(text: string): Promise<void> {
    if (!this.#stdin) throw new Error("the VM was started without a stdin pipe");
    await this.#stdin.write(new TextEncoder().encode(text));
  }

  kill(signal: Deno.Signal): void {
    try {
      this.#child.kill(signal);
    } catch { /* already gone */ }
  }

  /** Everything it printed so far, for assertion messages. */
  describe(): string {
    return `--- stdout\n${this.stdout.text}\n--- stderr\n${this.stderr.text}`;
  }
}

/** Collects a whole stream (chunks of any size) into `log`. */
async function pumpAll(log: TextLog, stream: ReadableStream<Uint8Array>): Promise<void> {
  for await (const chunk of stream) log.append(chunk);
  log.close();
}

/** Starts `stratovirt ARGS...`. */
export async function startVm(args: string[], o: StartOptions = {}): Promise<VmProcess> {
  const l = await stratovirtLauncher();
  const child = new Deno.Command(l.argv[0], {
    args: [...l.argv.slice(1), ...args],
    stdin: o.stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
    env: { ...l.env, ...o.env },
  }).spawn();
  return new VmProcess(child, o.limitMs ?? 600_000, o.stdin ?? false);
}

/** Describes a finished VM for assertion messages. */
export function describeResult(r: VmResult): string {
  return `exit ${r.code}${r.killed ? " (killed: hung)" : ""}\n--- stdout\n${r.stdout}\n` +
    `--- stderr\n${r.stderr}`;
}

/** Prints what a boot measured, for the test log (reported, never asserted). */
export function report(what: string, startedMs: number, bootOkMs: number | null): void {
  const toBoot = bootOkMs === null ? "never" : `${((bootOkMs - startedMs) / 1000).toFixed(1)} s`;
  const toEnd = ((performance.now() - startedMs) / 1000).toFixed(1);
  console.log(`  ${what}: start -> BOOT-OK ${toBoot}, -> end ${toEnd} s`);
}

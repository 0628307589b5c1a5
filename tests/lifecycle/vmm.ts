/**
 * The real program (`deno run -A main.ts ...`) as a subprocess for the lifecycle tests, with its
 * output collected as it comes, and a QMP monitor that keeps the events it reads on the way.
 *
 * Waits are bounded guards against a stuck test, never assertions about speed: every VMM is
 * killed after `limitMs`, which closes its sockets, so a read that would hang fails instead.
 */
import { type Json, QmpClient } from "../qmp/client.ts";
import { helperBuilt } from "../machine/run_vm.ts";
import type { Requirement } from "../lib/skip.ts";

export { helperBuilt };

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `ready` every 20 ms until it holds or `ms` pass; returns whether it held. */
export async function waitUntil(ready: () => boolean, ms = 30_000): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (!ready()) {
    if (performance.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

export function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** A TCP port nobody listens on right now (the parser refuses port 0). */
export function freeTcpPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

export class Vmm {
  stdout = "";
  stderr = "";
  /** Set once the process has exited. */
  exit: Deno.CommandStatus | null = null;
  readonly #child: Deno.ChildProcess;
  readonly #done: Promise<Deno.CommandStatus>;
  readonly #guard: ReturnType<typeof setTimeout>;
  killedByGuard = false;

  private constructor(args: string[], limitMs: number, env: Record<string, string>) {
    this.#child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", MAIN, ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env,
    }).spawn();
    const decoder = () => new TextDecoder();
    const drain = async (s: ReadableStream<Uint8Array>, put: (t: string) => void) => {
      const d = decoder();
      for await (const chunk of s) put(d.decode(chunk, { stream: true }));
    };
    const out = drain(this.#child.stdout, (t) => this.stdout += t);
    const err = drain(this.#child.stderr, (t) => this.stderr += t);
    this.#guard = setTimeout(() => {
      this.killedByGuard = true;
      this.kill("SIGKILL");
    }, limitMs);
    this.#done = Promise.all([out, err, this.#child.status]).then(([, , status]) => {
      clearTimeout(this.#guard);
      this.exit = status;
      return status;
    });
  }

  /** Starts the VMM with `args`; logging at info level goes to stderr unless `env` says otherwise. */
  static start(args: string[], o: { limitMs?: number; env?: Record<string, string> } = {}): Vmm {
    return new Vmm(args, o.limitMs ?? 90_000, { STRATOVIRT_LOG_LEVEL: "info", ...o.env });
  }

  get pid(): number {
    return this.#child.pid;
  }

  kill(signal: Deno.Signal): void {
    try {
      this.#child.kill(signal);
    } catch {
      // exited already
    }
  }

  /** Resolves with the exit status (the guard kills a VMM that never ends). */
  status(): Promise<Deno.CommandStatus> {
    return this.#done;
  }

  /** Ends the VMM if a failed test left it running, and waits for it. */
  async cleanup(): Promise<void> {
    if (!this.exit) this.kill("SIGKILL");
    await this.#done;
  }

  /** Everything it printed, for assertion messages. */
  describe(): string {
    return `exit ${this.exit?.code ?? "(running)"}${this.killedByGuard ? " (killed: hung)" : ""}` +
      `\n--- stdout\n${this.stdout.slice(-2000)}\n--- stderr\n${this.stderr.slice(-4000)}`;
  }
}

/** A QMP client that remembers the events it read while waiting for replies. */
export class Monitor {
  readonly events: Json[] = [];
  #seen = 0;

  private constructor(readonly client: QmpClient, readonly greeting: Json) {}

  /** Connects (waiting for the socket to appear) and negotiates capabilities. */
  static async unix(path: string): Promise<Monitor> {
    if (!await waitUntil(() => exists(path))) throw new Error(`QMP socket ${path} never appeared`);
    // The file exists from bind(); connecting before listen() is refused, so try again.
    let client: QmpClient | null = null;
    for (let i = 0; client === null; i++) {
      try {
        client = await QmpClient.unix(path);
      } catch (e) {
        if (i >= 500) throw e;
        await sleep(20);
      }
    }
    return new Monitor(client, await client.negotiate());
  }

  static async tcp(port: number): Promise<Monitor> {
    let client: QmpClient | null = null;
    for (let i = 0; i < 1500 && client === null; i++) {
      try {
        client = await QmpClient.tcp(port);
      } catch {
        await sleep(20);
      }
    }
    if (!client) throw new Error(`nothing listens on 127.0.0.1:${port}`);
    return new Monitor(client, await client.negotiate());
  }

  async execute(command: string, args?: Json): Promise<Json> {
    const msg: Json = { execute: command };
    if (args !== undefined) msg.arguments = args;
    await this.client.send(JSON.stringify(msg) + "\r\n");
    const { reply, events } = await this.client.reply();
    this.events.push(...events);
    return reply;
  }

  /** The next event called `name` not returned before (reading more if needed). */
  async event(name: string): Promise<Json> {
    for (;;) {
      for (let i = this.#seen; i < this.events.length; i++) {
        if (this.events[i].event === name) {
          this.#seen = i + 1;
          return this.events[i];
        }
      }
      const m = await this.client.next();
      if (m.event !== undefined) this.events.push(m);
    }
  }

  /** Reads until the server closes the connection; returns the events that came. */
  async rest(): Promise<Json[]> {
    for (const m of await this.client.rest()) if (m.event !== undefined) this.events.push(m);
    return this.events;
  }

  /** Event names in arrival order. */
  names(): string[] {
    return this.events.map((e) => e.event);
  }

  close(): void {
    this.client.close();
  }
}

/** The requirements of every test here (besides /dev/kvm). */
export const lifecycleNeeds: Requirement[] = [helperBuilt];

/**
 * Starts a microvm running `kernelCode` (a tiny guest) with 256M, the serial on `serial` and a QMP
 * unix socket, all in a fresh directory; `args` come after those.
 */
export async function startTinyVm(
  kernelCode: Uint8Array,
  args: string[],
  serial = "stdio",
): Promise<{ dir: string; sock: string; vmm: Vmm }> {
  const dir = await Deno.makeTempDir({ prefix: "sv-lifecycle-" });
  const kernel = `${dir}/kernel.bin`;
  const sock = `${dir}/qmp.sock`;
  await Deno.writeFile(kernel, kernelCode);
  const vmm = Vmm.start([
    "-machine",
    "microvm",
    "-m",
    "256M",
    "-kernel",
    kernel,
    "-serial",
    serial,
    "-qmp",
    `unix:${sock},server,nowait`,
    ...args,
  ]);
  return { dir, sock, vmm };
}

/**
 * -daemonize without fork: Deno cannot fork, so the foreground process starts the same program
 * again, detached (a new session: setsid), with stdin/stdout/stderr on /dev/null, and waits on a
 * private unix socket until the daemon reports that its VM is built (exit 0) or why it could not
 * build it (that message on stderr, exit 1). A daemon that dies before reporting counts as failed.
 *
 * The daemon finds the socket through STRATOVIRT_DAEMON_NOTIFY, which it removes from its own
 * environment, so nothing it starts inherits it.
 */

/** Names the notification socket in the daemon's environment. */
export const DAEMON_NOTIFY_ENV = "STRATOVIRT_DAEMON_NOTIFY";

/** How long the foreground process waits for the daemon's report before giving up. */
const REPORT_TIMEOUT_MS = 120_000;

/** One JSON line from the daemon. */
type Report = { readonly ready: true } | { readonly error: string };

/** argv to start this same program again: the launcher, the compiled binary or `deno run`. */
export function selfCommand(args: readonly string[]): { command: string; args: string[] } {
  // Set by the single-binary launcher (docs/build.md): re-running it keeps its flags and cache.
  const launcher = Deno.env.get("STRATOVIRT_EXE");
  if (launcher) return { command: launcher, args: [...args] };
  const exe = Deno.execPath();
  if (!/^deno(\.exe)?$/.test(exe.split("/").pop() ?? "")) return { command: exe, args: [...args] };
  const main = new URL(Deno.mainModule);
  const config = new URL("deno.json", main);
  let configArgs = ["--no-config"];
  try {
    Deno.statSync(config);
    configArgs = ["--config", config.pathname];
  } catch { /* no deno.json beside the entry point */ }
  return {
    command: exe,
    args: [
      "run",
      "-A",
      "--quiet",
      "--no-prompt",
      "--no-lock",
      ...configArgs,
      main.protocol === "file:" ? main.pathname : main.href,
      ...args,
    ],
  };
}

async function readReport(conn: Deno.Conn): Promise<Report | null> {
  const text = await new Response(conn.readable).text();
  const line = text.split("\n")[0];
  if (line === "") return null;
  try {
    return JSON.parse(line) as Report;
  } catch {
    return { error: `the daemon sent an unreadable report: ${line.slice(0, 200)}` };
  }
}

/**
 * The foreground half: starts `args` (the same command line) as a daemon and waits for its
 * report. Returns the exit status for this process: 0 once the daemon's VM is built, 1 with
 * `onError(message)` called otherwise.
 */
export async function startDaemon(
  args: readonly string[],
  onError: (message: string) => void,
): Promise<number> {
  const dir = await Deno.makeTempDir({ prefix: "stratovirt-daemon-" });
  const path = `${dir}/notify.sock`;
  const listener = Deno.listen({ transport: "unix", path });
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const { command, args: argv } = selfCommand(args);
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(command, {
        args: argv,
        env: { [DAEMON_NOTIFY_ENV]: path },
        stdin: "null",
        stdout: "null",
        stderr: "null",
        detached: true,
      }).spawn();
    } catch (e) {
      onError(`-daemonize: cannot start the daemon (${command}): ${(e as Error).message}`);
      return 1;
    }
    type Outcome =
      | { readonly report: Report | null }
      | { readonly exited: Deno.CommandStatus }
      | { readonly timeout: true };
    const reported: Promise<Outcome> = listener.accept().then(readReport).then(
      (report) => ({ report }),
      () => ({ report: null }), // the listener closed: nobody connected
    );
    const exited: Promise<Outcome> = child.status.then((s) => ({ exited: s }));
    const timedOut = new Promise<Outcome>((resolve) => {
      timer = setTimeout(() => resolve({ timeout: true }), REPORT_TIMEOUT_MS);
    });
    let first = await Promise.race([reported, exited, timedOut]);
    if ("exited" in first) {
      // A report wins over the exit it races with: a daemon that failed reports, then exits.
      const exit = first;
      first = await Promise.race([
        reported,
        new Promise<Outcome>((resolve) => setTimeout(() => resolve(exit), 200)),
      ]);
    }
    if ("report" in first && first.report && "ready" in first.report) {
      child.unref();
      return 0;
    }
    if ("report" in first && first.report && "error" in first.report) {
      onError(first.report.error);
    } else if ("timeout" in first) {
      onError(
        `-daemonize: the daemon (pid ${child.pid}) did not report within ` +
          `${REPORT_TIMEOUT_MS / 1000} s; it is left running`,
      );
      child.unref();
    } else {
      const status = "exited" in first ? first.exited : await child.status;
      onError(
        `-daemonize: the daemon exited (${
          status.signal ? `signal ${status.signal}` : `status ${status.code}`
        }) before its VM was built`,
      );
    }
    return 1;
  } finally {
    clearTimeout(timer);
    listener.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** The daemon's half: tells the foreground process how the start went, once. */
export class DaemonReporter {
  #conn: Promise<Deno.UnixConn | null>;
  #sent = false;
  #pending: Promise<void> = Promise.resolve();

  private constructor(path: string) {
    this.#conn = Deno.connect({ transport: "unix", path }).catch(() => null);
  }

  /** The reporter of a process started by startDaemon, or null for any other process. */
  static fromEnv(): DaemonReporter | null {
    const path = Deno.env.get(DAEMON_NOTIFY_ENV);
    if (!path) return null;
    Deno.env.delete(DAEMON_NOTIFY_ENV);
    return new DaemonReporter(path);
  }

  #send(report: Report): Promise<void> {
    if (this.#sent) return this.#pending;
    this.#sent = true;
    this.#pending = this.#conn.then(async (conn) => {
      if (!conn) return;
      try {
        await conn.write(new TextEncoder().encode(JSON.stringify(report) + "\n"));
      } catch { /* the foreground process is gone: nobody to tell */ }
      try {
        conn.close();
      } catch { /* closed already */ }
    });
    return this.#pending;
  }

  /** The VM is built: the foreground process may exit 0. */
  ready(): Promise<void> {
    return this.#send({ ready: true });
  }

  /** The start failed with `message` (only the first report counts). */
  failed(message: string): Promise<void> {
    return this.#send({ error: message });
  }

  /** Before the daemon exits: a daemon that never reported ready tells why it ends. */
  finish(status: number): Promise<void> {
    return this.#send({ error: `-daemonize: the daemon ended with status ${status}` });
  }
}

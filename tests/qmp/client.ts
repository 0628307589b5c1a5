/**
 * A plain QMP client for tests: a Deno socket, lines split on "\r\n", no protocol knowledge
 * beyond that. Every line must end in "\r\n" (the wire format); `line()` fails otherwise.
 */
import { QmpServer, type QmpServerOptions } from "../../src/qmp/server.ts";
import { FakeMachine } from "../../src/qmp/testing/fake_machine.ts";

const decoder = new TextDecoder();
const encoder = new TextEncoder();

// deno-lint-ignore no-explicit-any
export type Json = any;

export class QmpClient {
  #buffered = "";
  readonly #buf = new Uint8Array(64 * 1024);
  #eof = false;

  private constructor(readonly conn: Deno.Conn) {}

  static async unix(path: string): Promise<QmpClient> {
    return new QmpClient(await Deno.connect({ transport: "unix", path }));
  }

  static async tcp(port: number): Promise<QmpClient> {
    return new QmpClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /** The next full line, without its "\r\n"; null at EOF. */
  async line(): Promise<string | null> {
    for (;;) {
      const nl = this.#buffered.indexOf("\n");
      if (nl >= 0) {
        const line = this.#buffered.slice(0, nl);
        this.#buffered = this.#buffered.slice(nl + 1);
        if (!line.endsWith("\r")) throw new Error(`line does not end in \\r\\n: ${line}`);
        return line.slice(0, -1);
      }
      if (this.#eof) {
        if (this.#buffered !== "") throw new Error(`unterminated output: ${this.#buffered}`);
        return null;
      }
      let n: number | null;
      try {
        n = await this.conn.read(this.#buf);
      } catch {
        n = null; // reset by the server counts as EOF here
      }
      if (n === null) this.#eof = true;
      else this.#buffered += decoder.decode(this.#buf.subarray(0, n), { stream: true });
    }
  }

  /** The next message, parsed; throws at EOF. */
  async next(): Promise<Json> {
    const l = await this.line();
    if (l === null) throw new Error("connection closed while a message was expected");
    return JSON.parse(l);
  }

  /** The next message that is not an event (events seen on the way are returned too). */
  async reply(): Promise<{ reply: Json; events: Json[] }> {
    const events: Json[] = [];
    for (;;) {
      const m = await this.next();
      if (m.event === undefined) return { reply: m, events };
      events.push(m);
    }
  }

  async send(text: string | Uint8Array): Promise<void> {
    const bytes = typeof text === "string" ? encoder.encode(text) : text;
    let done = 0;
    while (done < bytes.length) done += await this.conn.write(bytes.subarray(done));
  }

  /** Sends one command and returns its reply (skipping events). */
  async execute(execute: string, args?: Json, id?: Json): Promise<Json> {
    const msg: Json = { execute };
    if (args !== undefined) msg.arguments = args;
    if (id !== undefined) msg.id = id;
    await this.send(JSON.stringify(msg) + "\r\n");
    return (await this.reply()).reply;
  }

  /** Reads the greeting and negotiates capabilities. */
  async negotiate(): Promise<Json> {
    const greeting = await this.next();
    const r = await this.execute("qmp_capabilities");
    if (JSON.stringify(r) !== '{"return":{}}') throw new Error(`negotiation: ${JSON.stringify(r)}`);
    return greeting;
  }

  /** Reads until the server closes; returns what came. */
  async rest(): Promise<Json[]> {
    const out: Json[] = [];
    for (let l = await this.line(); l !== null; l = await this.line()) out.push(JSON.parse(l));
    return out;
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // already closed
    }
  }
}

/**
 * Sockets and pipes this process has open: what QMP opens (listeners, clients, the poller's wake
 * pipe). Other fds are left out because a Worker's runtime (the fd poller's thread) opens its
 * epoll/eventfd and Deno's cache files, and Deno closes those after terminate() returns, on its
 * own schedule. Received fds are checked by path where a test passes them.
 */
export function openFds(): number {
  let n = 0;
  for (const e of Deno.readDirSync("/proc/self/fd")) {
    try {
      const link = Deno.readLinkSync(`/proc/self/fd/${e.name}`);
      if (link.startsWith("socket:") || link.startsWith("pipe:")) n++;
    } catch {
      // the fd readDir itself used, gone already
    }
  }
  return n;
}

/**
 * openFds() once it has come back to `expected`, or after ~2 s whatever it is then. Starting
 * and ending the poller's Worker makes Deno dup and close a socket and pipes of its own a little
 * later; a real leak never comes back, so the caller's equality check still catches it.
 */
export async function settledFds(expected: number): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const n = openFds();
    if (n === expected) return n;
    await new Promise((r) => setTimeout(r, 10));
  }
  return openFds();
}

/** openFds() once it has stayed the same for 5 readings 10 ms apart (a test's baseline). */
export async function stableFds(): Promise<number> {
  let last = openFds();
  let same = 0;
  for (let i = 0; i < 200 && same < 5; i++) {
    await new Promise((r) => setTimeout(r, 10));
    const n = openFds();
    same = n === last ? same + 1 : 0;
    last = n;
  }
  return last;
}

/** Open fds of this process that refer to `path`. */
export function fdsOpenOn(path: string): number {
  let n = 0;
  for (const e of Deno.readDirSync("/proc/self/fd")) {
    try {
      if (Deno.readLinkSync(`/proc/self/fd/${e.name}`) === path) n++;
    } catch {
      // gone already
    }
  }
  return n;
}

/** A fresh temp dir with a server on `dir/qmp.sock` and a fake machine wired to it. */
export async function startServer(
  options: QmpServerOptions = {},
  machine = new FakeMachine(),
): Promise<{ dir: string; path: string; server: QmpServer; machine: FakeMachine }> {
  const dir = await Deno.makeTempDir({ prefix: "qmp-test-" });
  const path = `${dir}/qmp.sock`;
  const server = new QmpServer(machine, options);
  machine.server = server;
  server.listen({ kind: "unix", path });
  return { dir, path, server, machine };
}

export async function stopServer(t: { dir: string; server: QmpServer }): Promise<void> {
  await t.server.close();
  await t.server.quitDone;
  await Deno.remove(t.dir, { recursive: true });
}

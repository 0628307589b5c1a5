/**
 * getfd with real SCM_RIGHTS: a client made of raw fds sends a pipe's write end with the command;
 * the machine gets a working fd, and fds that came with any other command are closed.
 */
import { assert, assertEquals } from "../lib/assert.ts";
import { testWhen } from "../lib/skip.ts";
import { FdPoller } from "../../src/qmp/fd_poller.ts";
import {
  closeFd,
  pipe,
  readFd,
  scmUnavailable,
  sendWithFds,
  unixConnect,
  writeFd,
} from "../../src/qmp/scm_libc.ts";
import { ScmStream } from "../../src/qmp/scm_socket.ts";
import { fdsOpenOn, type Json, settledFds, stableFds, startServer, stopServer } from "./client.ts";

const libc = () => {
  const why = scmUnavailable();
  return why ? `libc.so.6 cannot be opened through FFI: ${why}` : null;
};

/** A QMP client on a raw socket, so it can send fds. */
class FdClient {
  #text = "";
  constructor(readonly stream: ScmStream) {}

  static connect(path: string, poller: FdPoller): FdClient {
    const fd = unixConnect(path);
    if (fd < 0) throw new Error(`connect: errno ${-fd}`);
    return new FdClient(new ScmStream(fd, "test", poller));
  }

  async next(): Promise<Json> {
    for (;;) {
      const nl = this.#text.indexOf("\r\n");
      if (nl >= 0) {
        const line = this.#text.slice(0, nl);
        this.#text = this.#text.slice(nl + 2);
        return JSON.parse(line);
      }
      const input = await this.stream.read();
      if (input === null) throw new Error("server closed the connection");
      this.#text += new TextDecoder().decode(input.bytes);
    }
  }

  /** Sends one command with `fds` attached to its bytes; returns the reply. */
  async execute(execute: string, args: Json, fds: number[] = []): Promise<Json> {
    const bytes = new TextEncoder().encode(JSON.stringify({ execute, arguments: args }) + "\r\n");
    const n = sendWithFds(this.stream.fd, bytes, fds);
    if (n !== bytes.length) throw new Error(`sendmsg: ${n}`);
    return await this.next();
  }
}

function linkOf(fd: number): string {
  return Deno.readLinkSync(`/proc/self/fd/${fd}`);
}

testWhen([libc], "qmp getfd: an fd sent with getfd reaches the machine and works", async () => {
  const before = await stableFds();
  const t = await startServer();
  const poller = new FdPoller();
  const c = FdClient.connect(t.path, poller);
  await c.next(); // greeting
  assertEquals(await c.execute("qmp_capabilities", {}), { return: {} });
  const [r, w] = pipe();
  assertEquals(await c.execute("getfd", { fdname: "tap0" }, [w]), { return: {} });
  assertEquals(t.machine.calls, ["getfd:tap0"]);
  const received = t.machine.fds.get("tap0")!;
  assert(received !== w, "the machine holds its own copy");
  assertEquals(linkOf(received), linkOf(w));
  // The received fd is the pipe's write end: bytes written to it come out of `r`.
  closeFd(w);
  assertEquals(writeFd(received, new TextEncoder().encode("hello")), 5);
  const buf = new Uint8Array(16);
  assertEquals(new TextDecoder().decode(buf.subarray(0, readFd(r, buf))), "hello");
  closeFd(received);
  closeFd(r);
  await c.stream.close();
  await poller.close();
  await stopServer(t);
  assertEquals(await settledFds(before), before);
});

testWhen([libc], "qmp getfd: fds that come with other commands are closed", async () => {
  const t = await startServer();
  const poller = new FdPoller();
  const c = FdClient.connect(t.path, poller);
  await c.next();
  await c.execute("qmp_capabilities", {});
  const [r, w] = pipe();
  const link = linkOf(w); // both ends of a pipe show the same pipe:[inode]
  assertEquals(fdsOpenOn(link), 2);
  assertEquals((await c.execute("query-status", {}, [w])).return.status, "running");
  // The server's copy is gone once the command is answered: only ours are left.
  assertEquals(fdsOpenOn(link), 2);
  // Two fds with one getfd: the first is kept, the second closed.
  const [r2, w2] = pipe();
  assertEquals(await c.execute("getfd", { fdname: "a" }, [w, w2]), { return: {} });
  assertEquals(fdsOpenOn(link), 3);
  assertEquals(fdsOpenOn(linkOf(w2)), 2);
  // A refused getfd (bad arguments) does not keep the fd either.
  assertEquals((await c.execute("getfd", { fdname: 7 }, [w])).error.class, "GenericError");
  assertEquals(fdsOpenOn(link), 3);
  for (const fd of [t.machine.fds.get("a")!, r, w, r2, w2]) closeFd(fd);
  await c.stream.close();
  await poller.close();
  await stopServer(t);
});

testWhen([libc], "qmp getfd: without fd passing (Deno sockets) getfd says no fd came", async () => {
  const t = await startServer({ fdPassing: false });
  const poller = new FdPoller();
  const c = FdClient.connect(t.path, poller);
  await c.next();
  await c.execute("qmp_capabilities", {});
  const [r, w] = pipe();
  const reply = await c.execute("getfd", { fdname: "x" }, [w]);
  assertEquals(reply.error.class, "GenericError");
  assert(reply.error.desc.startsWith("Invalid SCM message"), reply.error.desc);
  assertEquals(t.machine.calls, []);
  closeFd(r);
  closeFd(w);
  await c.stream.close();
  await poller.close();
  await stopServer(t);
});

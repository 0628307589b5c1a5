/**
 * The blocking-wait unix sockets (ffi/unix_socket.ts): a listener takes one client, bytes go both
 * ways, reads and sends never block, waits time out, and a peer's hang-up reads as null.
 */
import { assert, assertEquals, assertThrows } from "../tests/lib/assert.ts";
import { testWhen } from "../tests/lib/skip.ts";
import { helperAvailable } from "./helper.ts";
import { Errno, SysError } from "./libc.ts";
import { POLLIN, POLLOUT, UnixListener, UnixSocket } from "./unix_socket.ts";

const helper = helperAvailable;

/** A connected pair through a listener at a fresh path; `run` gets both ends. */
function withPair(run: (client: UnixSocket, server: UnixSocket) => void): void {
  const dir = Deno.makeTempDirSync({ prefix: "unix-socket-test-" });
  const path = `${dir}/s.sock`;
  const listener = UnixListener.listen(path);
  let client: UnixSocket | null = null;
  let server: UnixSocket | null = null;
  try {
    assertEquals(listener.waitForClient(0), false, "no client yet");
    client = UnixSocket.connect(path);
    assert(listener.waitForClient(1000), "the client is waiting to be accepted");
    server = listener.accept();
    run(client, server);
  } finally {
    client?.close();
    server?.close();
    listener.close();
    Deno.removeSync(dir, { recursive: true });
  }
}

testWhen([helper], "unix socket: bytes both ways; an empty read is 0, not a wait", () => {
  withPair((client, server) => {
    const buf = new Uint8Array(64);
    assertEquals(server.tryRead(buf), 0);
    assertEquals(server.waitFor(POLLIN, 10), false, "the wait times out");
    assertEquals(client.trySend(new TextEncoder().encode("readw 0x10\n")), 11);
    assert(server.waitFor(POLLIN, 1000));
    assertEquals(server.tryRead(buf), 11);
    assertEquals(new TextDecoder().decode(buf.subarray(0, 11)), "readw 0x10\n");
    assert(server.waitFor(POLLOUT, 0), "room to answer");
    assertEquals(server.trySend(new TextEncoder().encode("OK\n")), 3);
    assertEquals(client.tryRead(buf), 3);
  });
});

testWhen([helper], "unix socket: a full peer buffer takes 0 bytes instead of blocking", () => {
  withPair((client) => {
    const chunk = new Uint8Array(1 << 16);
    let sent = 0;
    for (let n = client.trySend(chunk); n > 0; n = client.trySend(chunk)) sent += n;
    assert(sent > 0, "something was sent before the buffer filled");
    assertEquals(client.waitFor(POLLOUT, 10), false, "no room until the peer reads");
  });
});

testWhen([helper], "unix socket: the peer's hang-up reads as null and sending fails EPIPE", () => {
  withPair((client, server) => {
    client.close();
    assert(server.waitFor(POLLIN, 1000), "the hang-up wakes the wait");
    assertEquals(server.tryRead(new Uint8Array(8)), null);
    const e = assertThrows(() => server.trySend(new Uint8Array(8)), SysError) as SysError;
    assertEquals(e.errno, Errno.EPIPE);
  });
});

testWhen([helper], "unix socket: nobody listening, a taken path, a path too long", () => {
  const dir = Deno.makeTempDirSync({ prefix: "unix-socket-test-" });
  try {
    const missing = assertThrows(() => UnixSocket.connect(`${dir}/none`), SysError) as SysError;
    assertEquals(missing.errno, Errno.ENOENT);
    const listener = UnixListener.listen(`${dir}/s`);
    listener.close();
    // The file stays, nobody listens on it.
    const refused = assertThrows(() => UnixSocket.connect(`${dir}/s`), SysError) as SysError;
    assertEquals(refused.errno, Errno.ECONNREFUSED);
    const taken = assertThrows(() => UnixListener.listen(`${dir}/s`), SysError) as SysError;
    assertEquals(taken.message, `listen(${dir}/s) failed: EADDRINUSE`);
    const long = `${dir}/${"x".repeat(120)}`;
    const tooLong = assertThrows(() => UnixListener.listen(long), SysError) as SysError;
    assertEquals(tooLong.errno, Errno.ENAMETOOLONG);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

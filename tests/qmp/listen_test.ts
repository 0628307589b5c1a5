/** Listeners: unix (stale file, mode, removal), tcp, several at once, an accepted connection. */
import { assert, assertEquals, assertThrows } from "../lib/assert.ts";
import { qmpAddress, QmpListenError, QmpServer } from "../../src/qmp/server.ts";
import { FakeMachine } from "../../src/qmp/testing/fake_machine.ts";
import { QmpClient, settledFds, stableFds } from "./client.ts";

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** A socket file as a killed VMM leaves it: a process binds it and dies by SIGKILL. */
async function leaveStaleSocket(path: string): Promise<void> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `Deno.listen({ transport: "unix", path: ${JSON.stringify(path)} }); console.log("up");` +
      "setInterval(() => {}, 1000);",
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.getReader();
  await reader.read(); // "up": the socket is bound
  child.kill("SIGKILL");
  await child.status;
  reader.releaseLock();
  await child.stdout.cancel();
}

function newServer(): { server: QmpServer; machine: FakeMachine } {
  const machine = new FakeMachine();
  const server = new QmpServer(machine);
  machine.server = server;
  return { server, machine };
}

Deno.test("qmp listen: unix socket is 0600, replaces a stale socket, is removed on close", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/api.sock`;
  await leaveStaleSocket(path);
  assert(exists(path) && Deno.lstatSync(path).isSocket);
  const { server } = newServer();
  assertEquals(server.listen({ kind: "unix", path }), { kind: "unix", path });
  assertEquals(Deno.lstatSync(path).mode! & 0o777, 0o600);
  const c = await QmpClient.unix(path);
  await c.negotiate();
  c.close();
  await server.close();
  assert(!exists(path), "socket file removed");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("qmp listen: a path that is not a socket is refused and left alone", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/not-a-socket`;
  await Deno.writeTextFile(path, "precious");
  const { server } = newServer();
  assertThrows(
    () => server.listen({ kind: "unix", path }),
    QmpListenError,
    `'${path}' exists and is not a socket`,
  );
  assertEquals(await Deno.readTextFile(path), "precious");
  assertThrows(
    () => server.listen({ kind: "unix", path: `${dir}/no/such/dir/sock` }),
    QmpListenError,
    `cannot listen on unix:${dir}/no/such/dir/sock`,
  );
  const long = `${dir}/${"s".repeat(120)}`;
  assertThrows(
    () => server.listen({ kind: "unix", path: long }),
    QmpListenError,
    "longer than 107",
  );
  await server.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("qmp listen: tcp on an ephemeral port; a busy port is a clear error", async () => {
  const { server } = newServer();
  const at = server.listen({ kind: "tcp", host: "127.0.0.1", port: 0 });
  assert(at.kind === "tcp" && at.port > 0);
  const c = await QmpClient.tcp(at.port);
  const greeting = await c.negotiate();
  assertEquals(greeting.QMP.capabilities, []);
  assertEquals((await c.execute("query-status")).return.status, "running");
  assertThrows(
    () => server.listen({ kind: "tcp", host: "127.0.0.1", port: at.port }),
    QmpListenError,
    `cannot listen on tcp:127.0.0.1:${at.port}`,
  );
  c.close();
  await server.close();
});

Deno.test("qmp listen: several sockets at once share one machine and its events", async () => {
  const before = await stableFds();
  const dir = await Deno.makeTempDir();
  const { server, machine } = newServer();
  server.listen(qmpAddress({ transport: "unix", path: `${dir}/a.sock` }));
  server.listen({ kind: "unix", path: `${dir}/b.sock` });
  const tcp = server.listen(qmpAddress({ transport: "tcp", host: "127.0.0.1", port: 0 }));
  assert(tcp.kind === "tcp");
  const a = await QmpClient.unix(`${dir}/a.sock`);
  const b = await QmpClient.unix(`${dir}/b.sock`);
  const t = await QmpClient.tcp(tcp.port);
  for (const c of [a, b, t]) await c.negotiate();
  assertEquals(await a.execute("stop"), { return: {} });
  assertEquals((await b.next()).event, "STOP");
  assertEquals((await t.next()).event, "STOP");
  assertEquals((await t.execute("query-status")).return.status, "paused");
  assertEquals(machine.calls, ["pause"]);
  for (const c of [a, b, t]) c.close();
  await server.close();
  assert(!exists(`${dir}/a.sock`) && !exists(`${dir}/b.sock`));
  await Deno.remove(dir, { recursive: true });
  assertEquals(await settledFds(before), before);
});

Deno.test("qmp listen: serve() runs QMP on a connection accepted elsewhere (-mon)", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/mon.sock`;
  const { server } = newServer();
  const chardevListener = Deno.listen({ transport: "unix", path });
  const clientP = QmpClient.unix(path);
  const accepted = await chardevListener.accept();
  const served = server.serve(accepted, "chardev:mon0");
  const c = await clientP;
  await c.negotiate();
  assertEquals((await c.execute("query-target")).return, { arch: "x86_64" });
  assertEquals(server.clientCount, 1);
  await server.close();
  await served;
  assertEquals(await c.rest(), []);
  c.close();
  chardevListener.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("qmp listen: a closed server refuses to listen and serve", async () => {
  const dir = await Deno.makeTempDir();
  const { server } = newServer();
  await server.close();
  await server.close(); // twice is fine
  assertThrows(
    () => server.listen({ kind: "unix", path: `${dir}/x.sock` }),
    QmpListenError,
    "closed",
  );
  assert(!exists(`${dir}/x.sock`));
  await Deno.remove(dir, { recursive: true });
});

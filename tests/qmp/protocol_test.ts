/** QMP over a real unix socket against the fake machine: greeting, negotiation, ids, events. */
import { assert, assertEquals, assertMatch } from "../lib/assert.ts";
import { VERSION } from "../../src/version.ts";
import { type Json, QmpClient, settledFds, stableFds, startServer, stopServer } from "./client.ts";

Deno.test("qmp: greeting is StratoVirt's, as one \\r\\n-terminated line", async () => {
  const t = await startServer();
  const c = await QmpClient.unix(t.path);
  const line = await c.line();
  assertEquals(
    line,
    `{"QMP":{"version":{"qemu":{"micro":1,"minor":0,"major":5},` +
      `"package":"StratoVirt-${VERSION}"},"capabilities":[]}}`,
  );
  c.close();
  await stopServer(t);
});

Deno.test("qmp: commands before qmp_capabilities get QEMU's CommandNotFound", async () => {
  const t = await startServer();
  const c = await QmpClient.unix(t.path);
  await c.next();
  assertEquals(await c.execute("query-status", undefined, 7), {
    error: {
      class: "CommandNotFound",
      desc: "Expecting capabilities negotiation with 'qmp_capabilities'",
    },
    id: 7,
  });
  // Even an unknown command is told to negotiate first.
  assertEquals((await c.execute("no-such-thing")).error.class, "CommandNotFound");
  assertEquals(t.machine.calls, []);
  assertEquals(await c.execute("qmp_capabilities", undefined, "a"), { return: {}, id: "a" });
  assertEquals(await c.execute("query-status"), {
    return: { running: true, singlestep: false, status: "running" },
  });
  assertEquals(await c.execute("qmp_capabilities"), {
    error: {
      class: "CommandNotFound",
      desc: "Capabilities negotiation is already complete, command ignored",
    },
  });
  c.close();
  await stopServer(t);
});

Deno.test("qmp: qmp_capabilities refuses capabilities it did not offer", async () => {
  const t = await startServer();
  const c = await QmpClient.unix(t.path);
  await c.next();
  assertEquals(await c.execute("qmp_capabilities", { enable: ["oob"] }), {
    error: { class: "GenericError", desc: "Capability oob not available" },
  });
  assertEquals(await c.execute("qmp_capabilities", { enable: [] }), { return: {} });
  c.close();
  await stopServer(t);
});

Deno.test("qmp: any JSON id is echoed, on success and on error", async () => {
  const t = await startServer();
  const c = await QmpClient.unix(t.path);
  await c.negotiate();
  for (const id of [1, "x", null, { n: [1, 2] }, [true], 1.5]) {
    assertEquals((await c.execute("query-target", undefined, id)).id, id);
    assertEquals((await c.execute("nope", undefined, id)).id, id);
  }
  const noId = await c.execute("query-target");
  assert(!("id" in noId));
  c.close();
  await stopServer(t);
});

Deno.test("qmp: stop → STOP, cont → RESUME, in order, before the reply", async () => {
  const t = await startServer();
  const c = await QmpClient.unix(t.path);
  await c.negotiate();
  await c.send('{"execute":"stop","id":1}\r\n');
  const stop = await c.next();
  assertEquals(stop.event, "STOP");
  assertEquals(stop.data, {});
  assert(Number.isInteger(stop.timestamp.seconds) && stop.timestamp.seconds > 1.6e9);
  assert(stop.timestamp.microseconds >= 0 && stop.timestamp.microseconds < 1e6);
  assertEquals(await c.next(), { return: {}, id: 1 });
  assertEquals((await c.execute("query-status")).return.status, "paused");
  await c.send('{"execute":"cont","id":2}\r\n');
  assertEquals((await c.next()).event, "RESUME");
  assertEquals(await c.next(), { return: {}, id: 2 });
  assertEquals(t.machine.calls, ["pause", "resume"]);
  c.close();
  await stopServer(t);
});

Deno.test("qmp: lifecycle refusals come back as GenericError with the lifecycle's words", async () => {
  const t = await startServer();
  const c = await QmpClient.unix(t.path);
  await c.negotiate();
  assertEquals(await c.execute("cont"), {
    error: { class: "GenericError", desc: "VM is running, cannot run" },
  });
  await c.execute("stop");
  assertEquals(await c.execute("stop"), {
    error: { class: "GenericError", desc: "VM is paused, cannot pause" },
  });
  c.close();
  await stopServer(t);
});

Deno.test("qmp: events reach every negotiated client and no one else", async () => {
  const t = await startServer();
  const a = await QmpClient.unix(t.path);
  const b = await QmpClient.unix(t.path);
  const quiet = await QmpClient.unix(t.path);
  await a.negotiate();
  await b.negotiate();
  await quiet.next(); // greeting only, never negotiates
  await a.send('{"execute":"system_powerdown"}\r\n');
  assertEquals((await a.next()).event, "POWERDOWN");
  assertEquals(await a.next(), { return: {} });
  assertEquals((await b.next()).event, "POWERDOWN");
  // `quiet` has received nothing past its greeting: its next line is the reply to this.
  await quiet.send('{"execute":"qmp_capabilities"}\r\n');
  assertEquals(await quiet.next(), { return: {} });
  a.close();
  b.close();
  quiet.close();
  await stopServer(t);
});

Deno.test("qmp: quit → reply, SHUTDOWN host-qmp-quit, then the server closes and the socket goes", async () => {
  const t = await startServer();
  const a = await QmpClient.unix(t.path);
  const b = await QmpClient.unix(t.path);
  await a.negotiate();
  await b.negotiate();
  await a.send('{"execute":"quit","id":"q"}\r\n');
  assertEquals(await a.next(), { return: {}, id: "q" });
  const shutdown = await a.next();
  assertEquals(shutdown.event, "SHUTDOWN");
  assertEquals(shutdown.data, { guest: false, reason: "host-qmp-quit" });
  assertEquals(await a.rest(), []);
  const other = await b.rest();
  assertEquals(other.map((m) => [m.event, m.data]), [
    ["SHUTDOWN", { guest: false, reason: "host-qmp-quit" }],
  ]);
  await t.server.quitDone;
  assertEquals(t.machine.status(), "shutdown");
  let gone = false;
  try {
    Deno.lstatSync(t.path);
  } catch (e) {
    gone = e instanceof Deno.errors.NotFound;
  }
  assert(gone, "socket file removed");
  a.close();
  b.close();
  await stopServer(t);
});

Deno.test("qmp: commands racing with quit are refused, the server stays sane", async () => {
  const t = await startServer();
  t.machine.keepServerOnQuit = true;
  const a = await QmpClient.unix(t.path);
  const b = await QmpClient.unix(t.path);
  await a.negotiate();
  await b.negotiate();
  // quit and a burst of commands on another client, without waiting in between
  await Promise.all([
    a.send('{"execute":"quit"}\r\n'),
    b.send('{"execute":"stop"}\r\n{"execute":"query-status"}\r\n{"execute":"quit"}\r\n'),
  ]);
  const replies: Json[] = [];
  while (replies.length < 3) {
    const m = await b.next();
    if (m.event === undefined) replies.push(m);
  }
  for (const r of replies) {
    if (r.error) assertMatch(r.error.desc, /shutting down|cannot/);
  }
  const aQuit = (await a.reply()).reply;
  // Exactly one of the two quits ran.
  const quitReplies = [aQuit, replies[2]].filter((r) => r.return !== undefined);
  assertEquals(quitReplies.length, 1);
  await t.server.quitDone;
  assertEquals(t.machine.calls.filter((c) => c === "quit"), ["quit"]);
  // Once shutting down, nothing else runs.
  assertMatch((await a.execute("query-status")).error.desc, /The VM is shutting down/);
  a.close();
  b.close();
  await stopServer(t);
});

Deno.test("qmp: no fd leaks across clients coming and going", async () => {
  const before = await stableFds();
  const t = await startServer();
  for (let i = 0; i < 20; i++) {
    const c = await QmpClient.unix(t.path);
    await c.negotiate();
    await c.execute("query-status");
    c.close();
  }
  await stopServer(t);
  assertEquals(await settledFds(before), before);
});

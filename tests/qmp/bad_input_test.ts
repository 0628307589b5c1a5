/**
 * Hostile and broken clients: each gets an error or is dropped, the server keeps serving others,
 * and no file descriptor is left behind.
 */
import { assert, assertEquals, assertMatch } from "../lib/assert.ts";
import { type Json, QmpClient, settledFds, stableFds, startServer, stopServer } from "./client.ts";

async function negotiated(options = {}) {
  const t = await startServer(options);
  const c = await QmpClient.unix(t.path);
  await c.negotiate();
  return { t, c };
}

/** A second client can still negotiate and run a command. */
async function serverStillServes(path: string): Promise<void> {
  const other = await QmpClient.unix(path);
  await other.negotiate();
  assertEquals(await other.execute("query-target"), { return: { arch: "x86_64" } });
  other.close();
}

Deno.test("qmp bad input: malformed JSON is a GenericError, the session goes on", async () => {
  const { t, c } = await negotiated();
  for (const text of ['{"execute": }', "not json at all", '{"execute":"stop",}', "{'a':1}"]) {
    await c.send(text + "\r\n");
    const r = await c.next();
    assertEquals(r.error.class, "GenericError", text);
    assertMatch(r.error.desc, /^JSON parse error, /, text);
    assert(!("id" in r));
  }
  assertEquals(await c.execute("query-target"), { return: { arch: "x86_64" } });
  assertEquals(t.machine.calls, []);
  c.close();
  await stopServer(t);
});

Deno.test("qmp bad input: a bad character ends the message at the newline, not at a brace", async () => {
  const { t, c } = await negotiated();
  // Unbalanced, so brace counting alone would wait forever.
  await c.send('{"execute": oops\r\n');
  assertMatch((await c.next()).error.desc, /^JSON parse error/);
  // A raw newline inside a string is invalid JSON too.
  await c.send('{"execute": "query-\nstatus"}\r\n');
  assertMatch((await c.next()).error.desc, /^JSON parse error/);
  assertMatch((await c.next()).error.desc, /^JSON parse error/); // the tail: status"}
  assertEquals((await c.execute("query-target")).return, { arch: "x86_64" });
  c.close();
  await stopServer(t);
});

Deno.test("qmp bad input: JSON that is not an object", async () => {
  const { t, c } = await negotiated();
  for (const text of ["42", '"query-status"', "[1,2]", "null", "true", "}"]) {
    await c.send(text + "\n");
    const r = await c.next();
    if (text === "}") assertMatch(r.error.desc, /^JSON parse error/);
    else {assertEquals(r, {
        error: { class: "GenericError", desc: "QMP input must be a JSON object" },
      });}
  }
  c.close();
  await stopServer(t);
});

Deno.test("qmp bad input: invalid UTF-8 is refused", async () => {
  const { t, c } = await negotiated();
  const bytes = new TextEncoder().encode('{"execute":"query-status","id":"\xff"}\n');
  const bad = new Uint8Array([...bytes.subarray(0, 32), 0xff, 0xfe, ...bytes.subarray(32)]);
  await c.send(bad);
  assertEquals(await c.next(), {
    error: { class: "GenericError", desc: "QMP input is not valid UTF-8" },
  });
  assertEquals((await c.execute("query-target")).return, { arch: "x86_64" });
  c.close();
  await stopServer(t);
});

Deno.test("qmp bad input: objects back to back, and one split byte by byte", async () => {
  const { t, c } = await negotiated();
  await c.send('{"execute":"query-target","id":1}{"execute":"query-kvm","id":2}  \n\n\r\n');
  assertEquals((await c.next()).id, 1);
  assertEquals((await c.next()).id, 2);
  const text = '{"execute":"query-status","arguments":{},"id":"{\\"}"}\r\n';
  for (const ch of text) await c.send(ch);
  assertEquals(await c.next(), {
    return: { running: true, singlestep: false, status: "running" },
    id: '{"}',
  });
  c.close();
  await stopServer(t);
});

Deno.test("qmp bad input: a message over the cap is refused as soon as it crosses it", async () => {
  const cap = 4096;
  const { t, c } = await negotiated({ maxMessageBytes: cap });
  // No newline yet: the error must come without the server buffering the whole message.
  await c.send('{"execute":"query-status","id":"' + "a".repeat(cap));
  assertEquals(await c.next(), {
    error: {
      class: "GenericError",
      desc: `QMP input exceeds ${cap} bytes in one message; it was discarded`,
    },
  });
  // The rest of that line is discarded; the next line is a fresh message.
  await c.send("b".repeat(3 * cap) + '"}\r\n{"execute":"query-target"}\r\n');
  assertEquals(await c.next(), { return: { arch: "x86_64" } });
  // Just under the cap is fine.
  const pad = "x".repeat(cap - 60);
  assertEquals(await c.execute("query-target", undefined, pad), {
    return: { arch: "x86_64" },
    id: pad,
  });
  c.close();
  await stopServer(t);
});

Deno.test("qmp bad input: the default cap is 1 MiB", async () => {
  const { t, c } = await negotiated();
  await c.send('{"execute":"query-status","id":"' + "a".repeat(1 << 20) + '"}\r\n');
  assertEquals(
    (await c.next()).error.desc,
    `QMP input exceeds ${1 << 20} bytes in one message; it was discarded`,
  );
  assertEquals(await c.execute("query-target"), { return: { arch: "x86_64" } });
  c.close();
  await stopServer(t);
});

Deno.test("qmp bad input: half a line then disconnect; the server goes on, no fd leak", async () => {
  const before = await stableFds();
  const logged: string[] = [];
  const t = await startServer({ log: (m: string) => logged.push(m) });
  const c = await QmpClient.unix(t.path);
  await c.negotiate();
  await c.send('{"execute":"sto');
  c.close();
  await serverStillServes(t.path);
  assertEquals(t.machine.calls, []);
  await stopServer(t);
  assert(logged.some((l) => l.includes("in the middle of a message")), logged.join("\n"));
  assertEquals(await settledFds(before), before);
});

Deno.test("qmp bad input: a client that disconnects before reading its greeting", async () => {
  const before = await stableFds();
  const t = await startServer();
  for (let i = 0; i < 10; i++) (await QmpClient.unix(t.path)).close();
  await serverStillServes(t.path);
  await stopServer(t);
  assertEquals(await settledFds(before), before);
});

Deno.test("qmp bad input: 100 clients at once", async () => {
  const before = await stableFds();
  const t = await startServer();
  const clients = await Promise.all(
    Array.from({ length: 100 }, () => QmpClient.unix(t.path)),
  );
  await Promise.all(clients.map((c) => c.negotiate()));
  assertEquals(t.server.clientCount, 100);
  const replies = await Promise.all(
    clients.map((c, i) => c.execute("query-status", undefined, i)),
  );
  replies.forEach((r: Json, i) =>
    assertEquals(r, { return: { running: true, singlestep: false, status: "running" }, id: i })
  );
  // One event reaches all hundred.
  await clients[0].execute("stop");
  const stops = await Promise.all(clients.slice(1).map((c) => c.next()));
  assertEquals(new Set(stops.map((m) => m.event)), new Set(["STOP"]));
  for (const c of clients) c.close();
  await stopServer(t);
  assertEquals(await settledFds(before), before);
});

Deno.test("qmp bad input: a client that never reads is dropped, others are served", async () => {
  const before = await stableFds();
  const logged: string[] = [];
  const t = await startServer({
    maxOutputBytes: 64 * 1024,
    maxCommandsPerSecond: 0, // every command gets its full reply
    log: (m: string) => logged.push(m),
  });
  const c = await QmpClient.unix(t.path);
  await c.negotiate();
  // ~5 MB of replies, far beyond the socket buffer plus the 64 KiB allowance.
  await c.send('{"execute":"query-commands"}\n'.repeat(3000));
  // Reading now drains what was written, then EOF: the server hung up.
  let replies = 0;
  for (let l = await c.line(); l !== null; l = await c.line()) replies++;
  assert(replies < 3000, `${replies} replies`);
  assert(logged.some((l) => l.includes("does not read its replies")), logged.join("\n"));
  await serverStillServes(t.path);
  c.close();
  await stopServer(t);
  assertEquals(await settledFds(before), before);
});

Deno.test("qmp bad input: more than 100 commands a second are throttled, as StratoVirt does", async () => {
  let now = 0;
  const { t, c } = await negotiated({ clock: () => now });
  // qmp_capabilities was the first of the hundred.
  const burst = '{"execute":"query-target"}\n'.repeat(99) + '{"execute":"stop","id":"late"}\n';
  await c.send(burst);
  for (let i = 0; i < 99; i++) assertEquals(await c.next(), { return: { arch: "x86_64" } });
  assertEquals(await c.next(), {
    error: {
      class: "OperationThrottled",
      desc: "More than 100 requests received during 1 second",
    },
    id: "late",
  });
  assertEquals(t.machine.calls, []);
  now += 1000; // a second later the bucket has drained
  assertEquals(await c.execute("stop"), { return: {} });
  assertEquals(t.machine.calls, ["pause"]);
  // Other clients have their own bucket.
  await serverStillServes(t.path);
  c.close();
  await stopServer(t);
});

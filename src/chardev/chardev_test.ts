import fs from "node:fs";
import { assert, assertEquals, assertMatch, assertThrows } from "../../tests/lib/assert.ts";
import { command, type Requirement, testWhen } from "../../tests/lib/skip.ts";
import { ChardevError } from "./chardev.ts";
import { createChardev } from "./create.ts";
import type { PtyChardev } from "./pty.ts";
import type { SocketChardev } from "./socket.ts";

/** The host can allocate pseudo-terminals (devpts mounted, /dev/ptmx usable). */
const ptys: Requirement = () => {
  try {
    fs.closeSync(fs.openSync("/dev/ptmx", fs.constants.O_RDWR | fs.constants.O_NOCTTY));
    return null;
  } catch (e) {
    return `no pseudo-terminals here (/dev/ptmx: ${(e as Error).message})`;
  }
};

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Collects input until `n` bytes have arrived. */
function inputCollector() {
  const got: number[] = [];
  let waiter: { n: number; resolve: () => void } | null = null;
  return {
    receive(bytes: Uint8Array) {
      got.push(...bytes);
      if (waiter && got.length >= waiter.n) waiter.resolve();
    },
    until(n: number): Promise<string> {
      if (got.length >= n) return Promise.resolve(dec.decode(new Uint8Array(got)));
      return new Promise((resolve) => {
        waiter = { n, resolve: () => resolve(dec.decode(new Uint8Array(got))) };
      });
    },
  };
}

async function readAtLeast(conn: Deno.Conn, n: number): Promise<string> {
  const out: number[] = [];
  const buf = new Uint8Array(1024);
  while (out.length < n) {
    const k = await conn.read(buf);
    if (k === null) break;
    out.push(...buf.subarray(0, k));
  }
  return dec.decode(new Uint8Array(out));
}

Deno.test("chardev file: output is appended to the file, created if missing", async () => {
  const dir = Deno.makeTempDirSync();
  const path = `${dir}/console.log`;
  try {
    Deno.writeTextFileSync(path, "before\n");
    const dev = createChardev({ backend: "file", id: "f0", path }, { log: () => {} });
    dev.write(enc.encode("hello "));
    dev.write(enc.encode("guest\n"));
    await dev.close();
    assertEquals(Deno.readTextFileSync(path), "before\nhello guest\n");
    dev.write(enc.encode("after close is dropped"));
    await dev.close();
    const fresh = createChardev({ backend: "file", id: "f1", path: `${dir}/new.log` });
    fresh.write(enc.encode("x"));
    await fresh.close();
    assertEquals(Deno.readTextFileSync(`${dir}/new.log`), "x");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("chardev file: a path that cannot be opened is a ChardevError naming it", () => {
  assertThrows(
    () => createChardev({ backend: "file", id: "f0", path: "/nonexistent/dir/log" }),
    ChardevError,
    "chardev 'f0': cannot open file '/nonexistent/dir/log'",
  );
});

Deno.test("chardev config: missing or inconsistent properties are clear errors", () => {
  assertThrows(() => createChardev({ backend: "file", id: "a" }), ChardevError, "needs 'path'");
  assertThrows(
    () => createChardev({ backend: "socket", id: "s", server: true, nowait: true }),
    ChardevError,
    "needs 'path'",
  );
  assertThrows(
    () => createChardev({ backend: "socket", id: "s", path: "/tmp/x.sock", server: true }),
    ChardevError,
    "Argument 'server' and 'nowait' are both required for chardev 's'",
  );
  assertThrows(
    // deno-lint-ignore no-explicit-any
    () => createChardev({ backend: "tcp" as any, id: "t" }),
    ChardevError,
    "unknown backend 'tcp'",
  );
});

Deno.test("chardev socket: a client exchanges bytes both ways, one client at a time", async () => {
  const dir = Deno.makeTempDirSync();
  const path = `${dir}/serial.sock`;
  const logs: string[] = [];
  const dev = createChardev(
    { backend: "socket", id: "s0", path, server: true, nowait: true },
    { log: (m) => logs.push(m) },
  ) as SocketChardev;
  try {
    assertEquals(Deno.statSync(path).mode! & 0o777, 0o600);
    const input = inputCollector();
    dev.onInput((b) => input.receive(b));
    // Output before any client is kept for the first one.
    dev.write(enc.encode("boot log\n"));
    const client = await Deno.connect({ transport: "unix", path });
    assertEquals(await readAtLeast(client, 9), "boot log\n");
    dev.write(enc.encode("login: "));
    assertEquals(await readAtLeast(client, 7), "login: ");
    await client.write(enc.encode("root\n"));
    assertEquals(await input.until(5), "root\n");

    // A second client waits until the first leaves, then gets the line.
    const second = await Deno.connect({ transport: "unix", path });
    client.close();
    const input2 = second.write(enc.encode("2"));
    await input2;
    assertEquals(await input.until(6), "root\n2");
    dev.write(enc.encode("hi 2"));
    assertEquals(await readAtLeast(second, 4), "hi 2");
    second.close();
    assert(logs.some((l) => l.includes("connection opened")), logs.join("\n"));
  } finally {
    await dev.close();
  }
  // The socket file is gone after close.
  assertThrows(() => Deno.statSync(path), Deno.errors.NotFound);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("chardev socket: a stale socket file is replaced, other files are refused", async () => {
  const dir = Deno.makeTempDirSync();
  const path = `${dir}/stale.sock`;
  try {
    // Leave a socket file behind as a crashed VMM would (exiting without closing the listener).
    const leave = `Deno.listen({ transport: "unix", path: ${
      JSON.stringify(path)
    } }); Deno.exit(0);`;
    await new Deno.Command(Deno.execPath(), { args: ["eval", leave] }).output();
    assert(Deno.lstatSync(path).isSocket, "stale socket file left behind");
    const dev = createChardev(
      { backend: "socket", id: "s1", path, server: true, nowait: true },
      { log: () => {} },
    );
    const client = await Deno.connect({ transport: "unix", path });
    dev.write(enc.encode("ok"));
    assertEquals(await readAtLeast(client, 2), "ok");
    client.close();
    await dev.close();

    Deno.writeTextFileSync(`${dir}/plain`, "user data");
    assertThrows(
      () =>
        createChardev({
          backend: "socket",
          id: "s2",
          path: `${dir}/plain`,
          server: true,
          nowait: true,
        }),
      ChardevError,
      "exists and is not a socket",
    );
    assertEquals(Deno.readTextFileSync(`${dir}/plain`), "user data");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

testWhen(
  [ptys],
  "chardev pty: the slave side exchanges bytes with the VMM, in raw mode",
  async () => {
    const logs: string[] = [];
    const dev = createChardev({ backend: "pty", id: "p0" }, {
      log: (m) => logs.push(m),
    }) as PtyChardev;
    assertMatch(dev.path, /^\/dev\/pts\/\d+$/);
    assertEquals(logs, [`Pty path is: "${dev.path}"`]);
    const slave = fs.openSync(dev.path, fs.constants.O_RDWR | fs.constants.O_NOCTTY);
    try {
      const input = inputCollector();
      dev.onInput((b) => input.receive(b));
      fs.writeSync(slave, "typed\n");
      // Raw mode: the newline arrives as is (no ICRNL/echo games).
      assertEquals(await input.until(6), "typed\n");
      dev.write(enc.encode("guest says\n"));
      await dev.flush();
      const buf = new Uint8Array(64);
      const n = fs.readSync(slave, buf);
      assertEquals(dec.decode(buf.subarray(0, n)), "guest says\n", "no ONLCR translation");
    } finally {
      // Closing every slave descriptor ends the VMM's pending master read (EIO).
      fs.closeSync(slave);
      await dev.close();
    }
  },
);

Deno.test("chardev stdio: input from a pipe reaches the device, output reaches stdout", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./testdata/stdio_echo.ts", import.meta.url).pathname],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(enc.encode("abc\n"));
  await writer.close();
  const out = await child.output();
  assertEquals(dec.decode(out.stderr), "");
  assertEquals(dec.decode(out.stdout), "raw=false\n<ABC\n>");
  assertEquals(out.code, 0);
});

testWhen(
  [command("script"), command("stty")],
  "chardev stdio: a terminal stdin goes raw and is restored afterwards",
  async () => {
    // `script` gives the child a pty as its terminal; stty reports the mode around the run.
    const script = new URL("./testdata/stdio_echo.ts", import.meta.url).pathname;
    const inner = `stty -a | grep -o -- '-\\?icanon' ; ` +
      `${Deno.execPath()} run -A ${script} --tty ; ` +
      `stty -a | grep -o -- '-\\?icanon'`;
    const out = await new Deno.Command("script", {
      args: ["-qec", inner, "/dev/null"],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = dec.decode(out.stdout).replaceAll("\r", "");
    assertEquals(out.code, 0, text + dec.decode(out.stderr));
    const lines = text.split("\n").filter((l) => l.length > 0);
    assertEquals(lines[0], "icanon", text);
    assert(lines.includes("raw=true"), text);
    assert(lines.includes("in raw: -icanon"), text);
    assert(lines.includes("restored: icanon"), text);
    assertEquals(lines[lines.length - 1], "icanon", "terminal restored: " + text);
  },
);

Deno.test("chardev socket: input is held until the device has room, none is lost", async () => {
  const dir = Deno.makeTempDirSync();
  const path = `${dir}/flow.sock`;
  const dev = createChardev(
    { backend: "socket", id: "s3", path, server: true, nowait: true },
    { log: () => {} },
  );
  try {
    const client = await Deno.connect({ transport: "unix", path });
    let got = "";
    let room = 0;
    let offered = 0;
    dev.onInput((bytes) => {
      offered++;
      const n = Math.min(room, bytes.length);
      got += dec.decode(bytes.subarray(0, n));
      room -= n;
      return n;
    });
    await client.write(enc.encode("0123456789"));
    // The device takes at most 3 bytes per resume; wait for the bytes to be offered at all.
    for (let turn = 0; turn < 2000 && got.length < 10; turn++) {
      if (offered === 0) {
        await new Promise((r) => setTimeout(r, 1));
        continue;
      }
      room = 3;
      dev.resumeInput();
      await new Promise((r) => setTimeout(r, 0));
    }
    assertEquals(got, "0123456789");
    client.close();
  } finally {
    await dev.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

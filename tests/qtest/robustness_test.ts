/**
 * Bad input through the `-accel test` harness: malformed virtqueues (the catalogue in
 * malformed_cases.ts), nonsense register writes and nonsense protocol lines. Each must leave the
 * VMM process alive and answering, the device either failing the request or flagging
 * DEVICE_NEEDS_RESET, the disk file unchanged, and a reset must bring the device back.
 * Also the session's end: quit, hang-up, the socket file, a bad configuration.
 */
import { assert, assertEquals, assertMatch } from "../lib/assert.ts";
import { QtestClient } from "./client.ts";
import { BLK, BLK_S, BlkDriver, HEAP_START, MMIO, SLOT0, STATUS } from "./blk.ts";
import { GuestAllocator, RemoteRing, VirtioMmioDriver } from "./virtio_driver.ts";
import {
  goodWrite,
  IMAGE_FILL,
  IMAGE_SIZE,
  MALFORMED_CASES,
  type MalformedCase,
  type Outcome,
  QUEUE_SIZE,
  type QueueCase,
  type QueueRegisters,
  REFUSAL_LOG,
  type RingCase,
  type Submission,
  WANTED,
} from "./malformed_cases.ts";

const MAIN_TS = new URL("../../main.ts", import.meta.url).pathname;

async function makeImage(): Promise<string> {
  const path = await Deno.makeTempFile({ prefix: "qtest-bad-", suffix: ".img" });
  await Deno.writeFile(path, new Uint8Array(IMAGE_SIZE).fill(IMAGE_FILL));
  return path;
}

/** Null while the image file still holds IMAGE_FILL everywhere, else what changed. */
async function imageChange(path: string): Promise<string | null> {
  const bytes = await Deno.readFile(path);
  if (bytes.length !== IMAGE_SIZE) return `the file is ${bytes.length} bytes`;
  const i = bytes.findIndex((b) => b !== IMAGE_FILL);
  return i < 0 ? null : `byte ${i} is 0x${bytes[i].toString(16)}`;
}

const blkArgs = (path: string, drive = "") => [
  "-drive",
  `id=d0,file=${path}${drive}`,
  "-device",
  "virtio-blk-device,id=blk0,drive=d0",
];

/** The VMM's log file (`-D FILE`, appended a line per write), read a case at a time. */
class LogTail {
  #offset = 0;
  constructor(readonly path: string) {}
  async next(): Promise<string[]> {
    const bytes = await Deno.readFile(this.path).catch(() => new Uint8Array(0));
    const text = new TextDecoder().decode(bytes.subarray(this.#offset));
    this.#offset = bytes.length;
    return text.split("\n").filter((l) => l !== "");
  }
}

/** Whether `lines` say why the device refused case `c` (its outcome's prefix, then `why`). */
function logsReason(lines: string[], c: MalformedCase): boolean {
  const prefix = REFUSAL_LOG[c.expect];
  return lines.some((l) => {
    const at = l.indexOf(prefix);
    if (at < 0) return false;
    const rest = l.slice(at + prefix.length);
    return typeof c.why === "string" ? rest.includes(c.why) : c.why.test(rest);
  });
}

/** A VMM logging warnings and errors to `logPath` (the level comes from its environment). */
async function startLogging(args: string[], logPath: string): Promise<QtestClient> {
  const before = Deno.env.get("STRATOVIRT_LOG_LEVEL");
  Deno.env.set("STRATOVIRT_LOG_LEVEL", "warn");
  try {
    return await QtestClient.start(["-D", logPath, ...args]);
  } finally {
    if (before === undefined) Deno.env.delete("STRATOVIRT_LOG_LEVEL");
    else Deno.env.set("STRATOVIRT_LOG_LEVEL", before);
  }
}

/** What the device did with `sub`, read back from the status register and the rings. */
async function outcomeOf(blk: BlkDriver, sub: Submission): Promise<Outcome> {
  const status = await blk.qt.readb(sub.statusAddr);
  const used = await blk.ring.usedIdx();
  if ((await blk.dev.status()) & STATUS.DEVICE_NEEDS_RESET) {
    // It said so with a configuration-change interrupt, and answered nothing.
    assertEquals((await blk.dev.r32(MMIO.INTERRUPT_STATUS)) & 2, 2, "config interrupt");
    assertEquals(used, 0, "used idx after NEEDS_RESET");
    assertEquals(status, 0xff, "status byte after NEEDS_RESET");
    return "needs-reset";
  }
  assertEquals(used, 1, "the request was completed");
  const entry = await blk.ring.usedEntry(0);
  assertEquals(entry.id, sub.head, "used id");
  if (entry.len === 0) {
    assertEquals(status, 0xff, "status byte of a chain given back unexecuted");
    return "not-executed";
  }
  if (status === BLK_S.OK) return "ok";
  assertEquals(entry.len, 1, "used length of a failed request: the status byte only");
  if (status === BLK_S.IOERR) return "ioerr";
  if (status === BLK_S.UNSUPP) return "unsupp";
  throw new Error(`status byte 0x${status.toString(16)}`);
}

/** A device set up normally, given the malformed submission, notified. */
async function runRingCase(qt: QtestClient, c: RingCase): Promise<Outcome> {
  const blk = await BlkDriver.setup(qt, { wanted: c.wanted ?? WANTED, queueSize: QUEUE_SIZE });
  const sub = c.build(blk);
  await qt.ok(...sub.commands, blk.dev.notifyCmd(0));
  const outcome = await outcomeOf(blk, sub);
  if (outcome === "needs-reset") {
    // Until the reset the device leaves the queue alone: a good write over descriptors 0-2,
    // notified now, must not run (the disk check follows).
    await qt.ok(...goodWrite(blk).commands, blk.dev.notifyCmd(0));
    assertEquals(await blk.ring.usedIdx(), 0, "used idx after a notify in NEEDS_RESET");
  }
  return outcome;
}

/**
 * Features negotiated, a good ring in RAM but the registers spoilt, DRIVER_OK: the device must
 * refuse there. A good write is then put in the real ring and notified; it must not run.
 */
async function runQueueCase(qt: QtestClient, c: QueueCase): Promise<Outcome> {
  const dev = new VirtioMmioDriver(qt, SLOT0.base, SLOT0.irq);
  const features = await dev.negotiate(WANTED);
  assert(features !== null, "FEATURES_OK accepted");
  const alloc = new GuestAllocator(HEAP_START);
  const ring = await RemoteRing.create(qt, alloc, QUEUE_SIZE);
  await dev.w32(MMIO.QUEUE_SEL, 0);
  const maxSize = await dev.r32(MMIO.QUEUE_NUM_MAX);
  const good: QueueRegisters = {
    size: QUEUE_SIZE,
    desc: BigInt(ring.desc),
    avail: BigInt(ring.avail),
    used: BigInt(ring.used),
    ready: true,
  };
  const q = { ...good, ...c.queue(good, maxSize) };
  await qt.ok(...dev.queueCmds(0, q, q.ready));
  await dev.driverOk();
  const refused = ((await dev.status()) & STATUS.DEVICE_NEEDS_RESET) !== 0;
  const blk = new BlkDriver(qt, dev, ring, alloc, features);
  const sub = goodWrite(blk);
  await qt.ok(...sub.commands, dev.notifyCmd(0));
  const outcome = await outcomeOf(blk, sub);
  return refused ? outcome : "accepted";
}

/** The device answers through io_uring by default, synchronously with aio=off: both paths. */
const BACKENDS: [string, string][] = [["io_uring", ""], ["synchronous", ",direct=off,aio=off"]];

for (const [backend, drive] of BACKENDS) {
  Deno.test(`qtest robustness: malformed rings never take the VMM down nor touch the disk (${backend})`, () =>
    malformedSession(drive));
}

/** Every case of MALFORMED_CASES, one after the other, in one VMM. */
async function malformedSession(drive: string): Promise<void> {
  assert(MALFORMED_CASES.length >= 35, `${MALFORMED_CASES.length} cases`);
  const expected: Record<string, Outcome> = {};
  for (const c of MALFORMED_CASES) {
    assert(!(c.name in expected), `case name "${c.name}" is used twice`);
    expected[c.name] = c.expect;
  }
  const img = await makeImage();
  const logDir = await Deno.makeTempDir({ prefix: "qtest-bad-log-" });
  try {
    await runAllCases(img, drive, new LogTail(`${logDir}/vmm.log`), expected);
  } finally {
    await Deno.remove(img);
    await Deno.remove(logDir, { recursive: true });
  }
}

/** One VMM on `img`: each case, then its checks; the outcomes are compared at the end. */
async function runAllCases(
  img: string,
  drive: string,
  log: LogTail,
  expected: Record<string, Outcome>,
): Promise<void> {
  const qt = await startLogging(blkArgs(img, drive), log.path);
  const outcomes: Record<string, Outcome> = {};
  let failed = true;
  try {
    for (const c of MALFORMED_CASES) {
      try {
        const outcome = "build" in c ? await runRingCase(qt, c) : await runQueueCase(qt, c);
        outcomes[c.name] = outcome;
        assert(await qt.alive(), "the VMM answers after the malformed submission");
        assertEquals(await imageChange(img), null, `the disk file changed (outcome ${outcome})`);
        const lines = await log.next();
        if (outcome === c.expect) {
          assert(logsReason(lines, c), `the VMM logs "${c.why}"; it logged:\n${lines.join("\n")}`);
        }
        // Reset and start over: the device serves a good request again.
        const good = await BlkDriver.setup(qt);
        const r = await good.request(BLK.IN, 0n, { readLen: 512 });
        assertEquals(r.status, BLK_S.OK, "a good read after the reset");
        assertEquals(r.data, new Uint8Array(512).fill(IMAGE_FILL), "data of the good read");
      } catch (e) {
        throw new Error(`malformed case "${c.name}": ${(e as Error).message}`, { cause: e });
      }
    }
    failed = false;
  } finally {
    const exit = await qt.close();
    if (!failed) assertEquals(exit.code, 0, exit.stderr);
  }
  // The process survived and the disk is intact; what each case did is pinned too.
  assertEquals(outcomes, expected);
  assertEquals(await imageChange(img), null, "the disk file after every case");
}

Deno.test("qtest robustness: nonsense protocol lines get FAIL and the session goes on", async () => {
  const img = await makeImage();
  const qt = await QtestClient.start(blkArgs(img));
  try {
    const bad = [
      "",
      "frobnicate 1 2",
      "readl",
      "readl 0x1000 0x2000",
      "readl zzz",
      "readq 0x1fffffffffffff0",
      "writeb 0x1000 0x100",
      "writel 0x1000 -1",
      "write 0x1000 4 0x123",
      "write 0x1000 1 0xaabb",
      "write 0x1000 4 nothex",
      "b64write 0x1000 1 !!!",
      "memset 0x1000 99999999999 0",
      "read 0xffffff0 0x20",
      "readl 0xe0000000",
      "inb 0x10000",
      "outb 0x80 0x1ff",
      "clock_step -5",
      "clock_set abc",
      "query_intx 99999",
    ];
    const replies = await qt.pipeline(bad);
    replies.forEach((r, i) => assertMatch(r, /^FAIL \S/, `reply to '${bad[i]}'`));
    // Register writes a driver should never make: every offset of the window, odd sizes.
    const base = SLOT0.base;
    const junk: string[] = [];
    for (let off = 0; off < 0x200; off += 4) {
      junk.push(QtestClient.cmd("writel", base + off, 0xffff_ffff));
      junk.push(QtestClient.cmd("writeb", base + off + 1, 0xff));
      junk.push(QtestClient.cmd("writeq", base + off, 0xdead_beef_dead_beefn));
      junk.push(`readq 0x${(base + off).toString(16)}`);
    }
    for (const r of await qt.pipeline(junk)) assertMatch(r, /^OK/);
    assert(await qt.alive());
    // The device still works after a reset.
    const blk = await BlkDriver.setup(qt);
    assertEquals((await blk.request(BLK.IN, 1n, { readLen: 512 })).status, BLK_S.OK);
  } finally {
    const exit = await qt.close();
    assertEquals(exit.code, 0, exit.stderr);
  }
  await Deno.remove(img);
});

Deno.test("qtest session: quit answers OK and the VMM exits 0", async () => {
  const qt = await QtestClient.start([]);
  assertEquals(await qt.raw("quit"), "OK");
  const exit = await qt.close();
  assertEquals(exit.code, 0);
});

Deno.test("qtest session: with nobody listening the VMM listens, and removes the socket at the end", async () => {
  const dir = await Deno.makeTempDir({ prefix: "qtest-listen-" });
  const sock = `${dir}/vmm.sock`;
  // A stale socket file from an earlier run is replaced.
  Deno.listen({ transport: "unix", path: sock }).close();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN_TS, "-accel", "test", "-mod-test", sock, "-m", "256M"],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let conn: Deno.UnixConn | null = null;
  for (let i = 0; i < 200 && conn === null; i++) {
    try {
      conn = await Deno.connect({ transport: "unix", path: sock });
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  assert(conn !== null, "the VMM listens on the socket");
  await conn.write(new TextEncoder().encode("outb 0x70 0x0a\ninb 0x71\n"));
  const buf = new Uint8Array(64);
  let text = "";
  while (text.split("\n").length < 3) {
    const n = await conn.read(buf);
    if (n === null) break;
    text += new TextDecoder().decode(buf.subarray(0, n));
  }
  assertEquals(text, "OK\nOK 0x0026\n"); // RTC register A: 32.768 kHz base, 1.024 kHz rate
  conn.close();
  const status = await child.status;
  const stderr = await new Response(child.stderr).text();
  assertEquals(status.code, 0, stderr);
  let exists = true;
  try {
    await Deno.lstat(sock);
  } catch {
    exists = false;
  }
  assertEquals(exists, false, "socket file removed");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("qtest session: a drive that cannot be opened is a clear error, exit 1", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      MAIN_TS,
      "-accel",
      "test",
      "-mod-test",
      "/tmp/unused-qtest.sock",
      "-drive",
      "id=d0,file=/nonexistent/disk.img",
      "-device",
      "virtio-blk-device,id=blk0,drive=d0",
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  assertEquals(out.code, 1);
  assertMatch(
    new TextDecoder().decode(out.stderr),
    /^stratovirt: -device virtio-blk-device,id=blk0: drive d0: .*\/nonexistent\/disk\.img/,
  );
});

Deno.test("qtest session: SIGTERM while waiting for a client removes the socket, exit 0", async () => {
  const dir = await Deno.makeTempDir({ prefix: "qtest-term-" });
  const sock = `${dir}/vmm.sock`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN_TS, "-accel", "test", "-mod-test", sock],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let listening = false;
  for (let i = 0; i < 200 && !listening; i++) {
    try {
      listening = (await Deno.lstat(sock)).isSocket === true;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  assert(listening, "the VMM listens");
  child.kill("SIGTERM");
  const status = await child.status;
  const stderr = await new Response(child.stderr).text();
  assertEquals(status.code, 0, stderr);
  assertEquals(await Deno.lstat(sock).then(() => true, () => false), false, "socket removed");
  await Deno.remove(dir, { recursive: true });
});

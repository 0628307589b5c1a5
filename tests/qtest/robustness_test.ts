/**
 * Bad input through the `-accel test` harness: malformed virtqueues, nonsense register writes
 * and nonsense protocol lines. Each must leave the VMM process alive and answering, the device
 * either failing the request or flagging DEVICE_NEEDS_RESET, and a reset must bring it back.
 * Also the session's end: quit, hang-up, the socket file, a bad configuration.
 */
import { assert, assertEquals, assertMatch } from "../lib/assert.ts";
import { QtestClient } from "./client.ts";
import { BLK, BLK_S, BlkDriver, MMIO, SLOT0, STATUS } from "./blk.ts";
import { DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE } from "./virtio_driver.ts";

const IMAGE_SIZE = 1 << 20;
const RAM = 256 * 1024 * 1024;
const MAIN_TS = new URL("../../main.ts", import.meta.url).pathname;

/** What the device does with each malformed submission (virtio 1.2 §2.1.2: a ring it cannot
 * trust flags DEVICE_NEEDS_RESET; a well-formed request it cannot serve fails in its status). */
const EXPECTED: Record<string, Outcome> = {
  "data buffer outside guest RAM": "needs-reset",
  "data buffer in the MMIO hole": "needs-reset",
  "descriptor address near 2^64": "needs-reset",
  "chain that loops on itself": "needs-reset",
  "next index past the queue": "needs-reset",
  "avail head past the queue": "needs-reset",
  "avail idx jumps beyond the queue size": "needs-reset",
  "header shorter than 16 bytes": "ioerr",
  "no writable status byte": "needs-reset",
  "indirect table of odd length": "needs-reset",
  "unknown request type": "unsupp",
};

async function makeImage(): Promise<string> {
  const path = await Deno.makeTempFile({ prefix: "qtest-bad-", suffix: ".img" });
  await Deno.writeFile(path, new Uint8Array(IMAGE_SIZE).fill(0x5a));
  return path;
}

const blkArgs = (path: string) => [
  "-drive",
  `id=d0,file=${path}`,
  "-device",
  "virtio-blk-device,id=blk0,drive=d0",
];

type Outcome = "needs-reset" | "ioerr" | "unsupp" | "not-executed";

/**
 * Builds a malformed submission with `build` (given a live device), notifies, and reports what
 * the device did. Then checks the VMM answers, resets, and serves a good read.
 */
async function malformed(
  qt: QtestClient,
  build: Build,
): Promise<Outcome> {
  const blk = await BlkDriver.setup(qt);
  const { commands, statusAddr } = build(blk);
  const replies = await qt.pipeline([...commands, blk.dev.notifyCmd(0)]);
  for (const r of replies) assertEquals(r, "OK");
  assert(await qt.alive(), "the VMM answers after the malformed ring");
  let outcome: Outcome;
  if ((await blk.dev.status()) & STATUS.DEVICE_NEEDS_RESET) {
    outcome = "needs-reset";
    // It said so with a configuration-change interrupt.
    assertEquals((await blk.dev.r32(MMIO.INTERRUPT_STATUS)) & 2, 2);
  } else {
    assertEquals(await blk.ring.usedIdx(), blk.ring.availIdx, "the request was completed");
    const status = statusAddr === undefined ? 0xff : await qt.readb(statusAddr);
    outcome = status === BLK_S.IOERR
      ? "ioerr"
      : status === BLK_S.UNSUPP
      ? "unsupp"
      : status === 0xff
      ? "not-executed"
      : (() => {
        throw new Error(`unexpected status ${status}`);
      })();
  }
  // Reset and start over: the device serves a good request again.
  const good = await BlkDriver.setup(qt);
  const r = await good.request(BLK.IN, 0n, { readLen: 512 });
  assertEquals(r.status, BLK_S.OK);
  assertEquals(r.data, new Uint8Array(512).fill(0x5a));
  return outcome;
}

/** A read request whose parts are laid out normally; `patch` edits the raw descriptors. */
function readRequest(
  blk: BlkDriver,
  patch: (descs: { addr: number | bigint; len: number; flags: number; next: number }[]) => void,
  options: { availHead?: number; availIdx?: number; type?: number } = {},
) {
  const hdr = blk.alloc.alloc(16);
  const data = blk.alloc.alloc(512);
  const statusAddr = blk.alloc.alloc(1);
  const descs = [
    { addr: hdr, len: 16, flags: DESC_F_NEXT, next: 1 },
    { addr: data, len: 512, flags: DESC_F_NEXT | DESC_F_WRITE, next: 2 },
    { addr: statusAddr, len: 1, flags: DESC_F_WRITE, next: 0 },
  ];
  patch(descs);
  const commands = [
    `memset 0x${hdr.toString(16)} 16 0`,
    QtestClient.cmd("writel", hdr, options.type ?? BLK.IN),
    `writeb 0x${statusAddr.toString(16)} 0xff`,
  ];
  descs.forEach((d, i) =>
    commands.push(...blk.ring.descCommands(i, d.addr, d.len, d.flags, d.next))
  );
  const head = options.availHead ?? 0;
  commands.push(...blk.ring.publishCommands(head));
  if (options.availIdx !== undefined) {
    commands.push(QtestClient.cmd("writew", blk.ring.avail + 2, options.availIdx));
  }
  return { commands, statusAddr };
}

type Build = (blk: BlkDriver) => { commands: string[]; statusAddr?: number };

const CASES: [string, Build][] = [
  ["data buffer outside guest RAM", (blk) => readRequest(blk, (d) => d[1].addr = RAM + 0x1000)],
  ["data buffer in the MMIO hole", (blk) => readRequest(blk, (d) => d[1].addr = SLOT0.base)],
  [
    "descriptor address near 2^64",
    (blk) => readRequest(blk, (d) => d[1].addr = 0xffff_ffff_ffff_f000n),
  ],
  ["chain that loops on itself", (blk) => readRequest(blk, (d) => d[1].next = 1)],
  ["next index past the queue", (blk) => readRequest(blk, (d) => d[1].next = 999)],
  ["avail head past the queue", (blk) => readRequest(blk, () => {}, { availHead: 200 })],
  [
    "avail idx jumps beyond the queue size",
    (blk) => readRequest(blk, () => {}, { availIdx: 1000 }),
  ],
  ["header shorter than 16 bytes", (blk) => readRequest(blk, (d) => d[0].len = 8)],
  ["no writable status byte", (blk) => readRequest(blk, (d) => d[2].flags = 0)],
  [
    "indirect table of odd length",
    (blk) => readRequest(blk, (d) => Object.assign(d[0], { flags: DESC_F_INDIRECT, len: 20 })),
  ],
  ["unknown request type", (blk) => readRequest(blk, () => {}, { type: 0x77 })],
];

Deno.test("qtest robustness: malformed rings never take the VMM down", async () => {
  const img = await makeImage();
  const qt = await QtestClient.start(blkArgs(img));
  const outcomes: Record<string, Outcome> = {};
  try {
    for (const [name, build] of CASES) {
      try {
        outcomes[name] = await malformed(qt, build);
      } catch (e) {
        throw new Error(`${name}: ${(e as Error).message}`);
      }
    }
    // Queue addresses outside RAM are refused at DRIVER_OK.
    const blk = await BlkDriver.setup(qt);
    await blk.dev.reset();
    await blk.dev.addStatus(STATUS.ACKNOWLEDGE);
    await blk.dev.addStatus(STATUS.DRIVER);
    await blk.dev.writeDriverFeatures(1n << 32n);
    await blk.dev.addStatus(STATUS.FEATURES_OK);
    await qt.ok(
      QtestClient.cmd("writel", SLOT0.base + MMIO.QUEUE_NUM, 16),
      QtestClient.cmd("writel", SLOT0.base + MMIO.QUEUE_DESC_LOW, 0xfff0_0000),
      QtestClient.cmd("writel", SLOT0.base + MMIO.QUEUE_READY, 1),
    );
    await blk.dev.addStatus(STATUS.DRIVER_OK);
    assert((await blk.dev.status()) & STATUS.DEVICE_NEEDS_RESET, "NEEDS_RESET at DRIVER_OK");
    assert(await qt.alive());
  } finally {
    const exit = await qt.close();
    assertEquals(exit.code, 0, exit.stderr);
  }
  // What each case did: the point is that the process survived, but the outcome is pinned too.
  assertEquals(outcomes, EXPECTED);
  await Deno.remove(img);
});

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

/**
 * virtio-blk through the `-accel test` harness: a VMM process without vCPUs, driven over the
 * qtest socket the way a guest driver drives the device. Every result is checked against the
 * backing file on the host. No KVM needed.
 */
import { Buffer } from "node:buffer";
import { assert, assertEquals, assertMatch } from "../lib/assert.ts";
import { QtestClient } from "./client.ts";
import { bit, BLK, BLK_F, BLK_S, BlkDriver, MMIO, segment, SLOT0, STATUS } from "./blk.ts";
import { VIRTIO_F_VERSION_1, VirtioMmioDriver } from "./virtio_driver.ts";

const IMAGE_SIZE = 1 << 20;

/** A backing file with a recognisable pattern: byte i is (i * 7 + i >> 9) & 0xff. */
async function makeImage(size = IMAGE_SIZE): Promise<{ path: string; bytes: Uint8Array }> {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 7 + (i >> 9)) & 0xff;
  const path = await Deno.makeTempFile({ prefix: "qtest-blk-", suffix: ".img" });
  await Deno.writeFile(path, bytes);
  return { path, bytes };
}

function blkArgs(path: string, drive = "", device = ""): string[] {
  return [
    "-drive",
    `id=d0,file=${path}${drive}`,
    "-device",
    `virtio-blk-device,id=blk0,drive=d0${device}`,
  ];
}

function random(n: number): Uint8Array {
  const b = new Uint8Array(n);
  crypto.getRandomValues(b);
  return b;
}

/** Runs `fn` against a fresh VMM and checks it exits 0 when the test hangs up. */
async function withVmm(
  args: string[],
  fn: (qt: QtestClient) => Promise<void>,
): Promise<void> {
  const qt = await QtestClient.start(args);
  let failed = true;
  try {
    await fn(qt);
    failed = false;
  } finally {
    const exit = await qt.close();
    if (!failed) assertEquals(exit.code, 0, `VMM stderr: ${exit.stderr}`);
  }
}

Deno.test("qtest blk: identification registers and config space", async () => {
  const img = await makeImage();
  await withVmm(blkArgs(img.path, "", ",serial=abc,queue-size=64"), async (qt) => {
    const dev = new VirtioMmioDriver(qt, SLOT0.base, SLOT0.irq);
    assertEquals(await dev.r32(MMIO.MAGIC_VALUE), 0x74726976);
    assertEquals(await dev.r32(MMIO.VERSION), 2);
    assertEquals(await dev.r32(MMIO.DEVICE_ID), 2);
    // capacity in 512-byte sectors, then blk_size at offset 20
    assertEquals(await qt.readq(SLOT0.base + MMIO.CONFIG), BigInt(IMAGE_SIZE / 512));
    assertEquals(await qt.readl(SLOT0.base + MMIO.CONFIG + 20), 512);
    await dev.w32(MMIO.QUEUE_SEL, 0);
    assertEquals(await dev.r32(MMIO.QUEUE_NUM_MAX), 64);
    // The second slot is empty: nothing answers there.
    assertMatch(await qt.raw(`readl 0x${(SLOT0.base + 0x200).toString(16)}`), /^FAIL no RAM/);
  });
  await Deno.remove(img.path);
});

Deno.test("qtest blk: feature negotiation accepts a subset and refuses what was not offered", async () => {
  const img = await makeImage();
  await withVmm(blkArgs(img.path), async (qt) => {
    const dev = new VirtioMmioDriver(qt, SLOT0.base, SLOT0.irq);
    const offered = await dev.deviceFeatures();
    for (
      const f of [VIRTIO_F_VERSION_1, bit(BLK_F.FLUSH), bit(BLK_F.DISCARD), bit(BLK_F.BLK_SIZE)]
    ) {
      assert((offered & f) !== 0n, `feature 0x${f.toString(16)} offered`);
    }
    assertEquals(offered & bit(BLK_F.RO), 0n);
    assertEquals(
      await dev.negotiate(VIRTIO_F_VERSION_1 | bit(BLK_F.FLUSH)),
      VIRTIO_F_VERSION_1 | bit(BLK_F.FLUSH),
    );
    // Without VERSION_1 (legacy) FEATURES_OK does not stick.
    assertEquals(await dev.negotiate(bit(BLK_F.FLUSH)), null);
    // A feature never offered (RO on a writable disk) is refused too.
    await dev.reset();
    await dev.addStatus(STATUS.ACKNOWLEDGE);
    await dev.addStatus(STATUS.DRIVER);
    await dev.writeDriverFeatures(VIRTIO_F_VERSION_1 | bit(BLK_F.RO));
    await dev.addStatus(STATUS.FEATURES_OK);
    assertEquals((await dev.status()) & STATUS.FEATURES_OK, 0);
  });
  await Deno.remove(img.path);
});

Deno.test("qtest blk: queue setup, DRIVER_OK, then reads return the file's bytes", async () => {
  const img = await makeImage();
  await withVmm(blkArgs(img.path), async (qt) => {
    const blk = await BlkDriver.setup(qt);
    await qt.ok(`writel 0x${(SLOT0.base + MMIO.QUEUE_SEL).toString(16)} 0`);
    assertEquals(await blk.dev.r32(MMIO.QUEUE_READY), 1);
    for (const [sector, len] of [[0n, 512], [7n, 4096], [100n, 3 * 512]] as const) {
      const r = await blk.request(BLK.IN, sector, { readLen: len });
      assertEquals(r.status, BLK_S.OK);
      assertEquals(r.usedLen, len + 1);
      const off = Number(sector) * 512;
      assertEquals(r.data, img.bytes.slice(off, off + len));
    }
    // Past the end of the disk: IOERR, the buffer untouched.
    const past = await blk.request(BLK.IN, BigInt(IMAGE_SIZE / 512), { readLen: 512 });
    assertEquals(past.status, BLK_S.IOERR);
  });
  await Deno.remove(img.path);
});

for (const direct of ["on", "off"]) {
  Deno.test(`qtest blk: writes land in the file byte for byte (direct=${direct})`, async () => {
    const img = await makeImage();
    await withVmm(blkArgs(img.path, `,direct=${direct}`), async (qt) => {
      const blk = await BlkDriver.setup(qt);
      const a = random(8192);
      const b = random(512);
      assertEquals((await blk.request(BLK.OUT, 3n, { payload: a })).status, BLK_S.OK);
      assertEquals((await blk.request(BLK.OUT, 2047n, { payload: b })).status, BLK_S.OK);
      assertEquals((await blk.request(BLK.FLUSH, 0n)).status, BLK_S.OK);
      const expected = img.bytes.slice();
      expected.set(a, 3 * 512);
      expected.set(b, 2047 * 512);
      assertEquals(await Deno.readFile(img.path), expected);
      // And the device reads back what it wrote.
      const r = await blk.request(BLK.IN, 3n, { readLen: 8192 });
      assertEquals(r.data, a);
    });
    await Deno.remove(img.path);
  });
}

Deno.test("qtest blk: GET_ID returns the serial, zero-padded to 20 bytes", async () => {
  const img = await makeImage();
  await withVmm(blkArgs(img.path, "", ",serial=qtest-disk-1"), async (qt) => {
    const blk = await BlkDriver.setup(qt);
    const r = await blk.request(BLK.GET_ID, 0n, { readLen: 20 });
    assertEquals(r.status, BLK_S.OK);
    const expected = new Uint8Array(20);
    expected.set(new TextEncoder().encode("qtest-disk-1"));
    assertEquals(r.data, expected);
  });
  await Deno.remove(img.path);
});

Deno.test("qtest blk: write-zeroes clears the range in the file, discard succeeds", async () => {
  const img = await makeImage();
  await withVmm(blkArgs(img.path), async (qt) => {
    const blk = await BlkDriver.setup(qt);
    assert((blk.features & bit(BLK_F.WRITE_ZEROES)) !== 0n);
    const wz = await blk.request(BLK.WRITE_ZEROES, 0n, { payload: segment(16n, 8) });
    assertEquals(wz.status, BLK_S.OK);
    const dis = await blk.request(BLK.DISCARD, 0n, { payload: segment(64n, 8) });
    assertEquals(dis.status, BLK_S.OK);
    // A segment past the end of the disk is an error, not a crash.
    const bad = await blk.request(BLK.DISCARD, 0n, { payload: segment(BigInt(IMAGE_SIZE), 8) });
    assertEquals(bad.status, BLK_S.IOERR);
    const file = await Deno.readFile(img.path);
    assertEquals(file.slice(16 * 512, 24 * 512), new Uint8Array(8 * 512));
    assertEquals(file.slice(0, 16 * 512), img.bytes.slice(0, 16 * 512));
    assertEquals(file.slice(24 * 512, 64 * 512), img.bytes.slice(24 * 512, 64 * 512));
  });
  await Deno.remove(img.path);
});

Deno.test("qtest blk: a readonly drive offers RO, refuses writes and leaves the file unchanged", async () => {
  const img = await makeImage();
  await withVmm(blkArgs(img.path, ",readonly=on"), async (qt) => {
    const blk = await BlkDriver.setup(qt);
    assert((blk.features & bit(BLK_F.RO)) !== 0n);
    assertEquals(blk.features & bit(BLK_F.DISCARD), 0n);
    assertEquals((await blk.request(BLK.OUT, 0n, { payload: random(4096) })).status, BLK_S.IOERR);
    const wz = await blk.request(BLK.WRITE_ZEROES, 0n, { payload: segment(0n, 8) });
    assert(wz.status !== BLK_S.OK, `write-zeroes status ${wz.status}`);
    const r = await blk.request(BLK.IN, 0n, { readLen: 4096 });
    assertEquals(r.data, img.bytes.slice(0, 4096));
  });
  assertEquals(await Deno.readFile(img.path), img.bytes);
  await Deno.remove(img.path);
});

Deno.test("qtest blk: completions raise IRQ 5, seen as IRQ lines, query_intx and InterruptStatus", async () => {
  const img = await makeImage();
  await withVmm(blkArgs(img.path), async (qt) => {
    // Without EVENT_IDX every completion interrupts (unless the driver suppresses it).
    const blk = await BlkDriver.setup(qt, { wanted: VIRTIO_F_VERSION_1 });
    await qt.ok("irq_intercept_in ioapic");
    assertEquals(await qt.queryIntx(SLOT0.irq), false);
    await blk.request(BLK.IN, 0n, { readLen: 512 });
    assertEquals(qt.irqEvents, [`IRQ raise ${SLOT0.irq}`]);
    assertEquals(await qt.queryIntx(SLOT0.irq), true);
    assertEquals(await blk.dev.ackInterrupt(), 1); // VIRTIO_MMIO_INT_VRING
    assertEquals(await qt.eoiIntx(SLOT0.irq), true);
    assertEquals(await qt.queryIntx(SLOT0.irq), false);
    // The driver asks for no interrupts (VIRTQ_AVAIL_F_NO_INTERRUPT): none comes.
    await qt.writew(blk.ring.avail, 1);
    await blk.request(BLK.IN, 1n, { readLen: 512 });
    assertEquals(qt.irqEvents.length, 1);
    assertEquals(await qt.queryIntx(SLOT0.irq), false);
  });
  await Deno.remove(img.path);
});

Deno.test("qtest blk: reset returns the device to its initial state and it works again", async () => {
  const img = await makeImage();
  await withVmm(blkArgs(img.path), async (qt) => {
    const blk = await BlkDriver.setup(qt);
    assertEquals((await blk.request(BLK.IN, 0n, { readLen: 512 })).status, BLK_S.OK);
    await blk.dev.reset();
    assertEquals(await blk.dev.status(), 0);
    await blk.dev.w32(MMIO.QUEUE_SEL, 0);
    assertEquals(await blk.dev.r32(MMIO.QUEUE_READY), 0);
    assertEquals(await blk.dev.r32(MMIO.INTERRUPT_STATUS), 0);
    // A notify after reset does nothing: the used ring does not move.
    const before = await blk.ring.usedIdx();
    await qt.ok(blk.dev.notifyCmd(0));
    assertEquals(await blk.ring.usedIdx(), before);
    const again = await BlkDriver.setup(qt);
    const r = await again.request(BLK.IN, 5n, { readLen: 1024 });
    assertEquals(r.data, img.bytes.slice(5 * 512, 7 * 512));
  });
  await Deno.remove(img.path);
});

Deno.test("qtest blk: iops throttling follows the virtual clock", async () => {
  const img = await makeImage();
  await withVmm(blkArgs(img.path, ",throttling.iops-total=2"), async (qt) => {
    const blk = await BlkDriver.setup(qt);
    const commands: string[] = [];
    const statusAddrs: number[] = [];
    for (let i = 0; i < 4; i++) {
      const hdr = blk.alloc.alloc(16);
      const data = blk.alloc.alloc(512);
      const status = blk.alloc.alloc(1);
      statusAddrs.push(status);
      commands.push(`memset 0x${hdr.toString(16)} 16 0`, `writeb 0x${status.toString(16)} 0xff`);
      const chain = blk.ring.chainCommands([
        { addr: hdr, len: 16 },
        { addr: data, len: 512, write: true },
        { addr: status, len: 1, write: true },
      ]);
      commands.push(...chain.commands, ...blk.ring.publishCommands(chain.head));
    }
    await qt.ok(...commands, blk.dev.notifyCmd(0));
    assertEquals(await blk.ring.usedIdx(), 2);
    // Half a second later the window still holds two grants.
    await qt.clockStep(500_000_000n);
    assertEquals(await blk.ring.usedIdx(), 2);
    // With no argument the clock jumps to the throttle's retry timer.
    const now = await qt.clockStep();
    assert(now > 500_000_000n && now <= 1_001_000_000n, `clock at ${now}`);
    assertEquals(await blk.ring.usedIdx(), 4);
    for (const s of statusAddrs) assertEquals(await qt.readb(s), BLK_S.OK);
  });
  await Deno.remove(img.path);
});

Deno.test("qtest blk: STRATOVIRT_QTEST_IO=wait, a read after the notify waits for the request", async () => {
  const img = await makeImage();
  const before = Deno.env.get("STRATOVIRT_QTEST_IO");
  Deno.env.set("STRATOVIRT_QTEST_IO", "wait"); // the VMM inherits it
  try {
    await withVmm(blkArgs(img.path), async (qt) => {
      const blk = await BlkDriver.setup(qt);
      const hdr = blk.alloc.alloc(16);
      const data = blk.alloc.alloc(1024);
      const status = blk.alloc.alloc(1);
      const chain = blk.ring.chainCommands([
        { addr: hdr, len: 16 },
        { addr: data, len: 1024, write: true },
        { addr: status, len: 1, write: true },
      ]);
      await qt.ok(
        `memset 0x${hdr.toString(16)} 16 0`,
        QtestClient.cmd("writeq", hdr + 8, 3),
        `writeb 0x${status.toString(16)} 0xff`,
        ...chain.commands,
        ...blk.ring.publishCommands(chain.head),
      );
      // One batch: the notify, then the used idx, which waits for the read to finish (as a
      // guest waits for its interrupt), then the request's status and data.
      const replies = await qt.ok(
        blk.dev.notifyCmd(0),
        `readw 0x${(blk.ring.used + 2).toString(16)}`,
        `readb 0x${status.toString(16)}`,
        `read 0x${data.toString(16)} 1024`,
      );
      assertEquals(Number(replies[1]), 1, "the used idx after waiting");
      assertEquals(Number(replies[2]), BLK_S.OK);
      assertEquals(
        replies[3],
        "0x" + Buffer.from(img.bytes.slice(3 * 512, 5 * 512)).toString("hex"),
      );
    });
  } finally {
    if (before === undefined) Deno.env.delete("STRATOVIRT_QTEST_IO");
    else Deno.env.set("STRATOVIRT_QTEST_IO", before);
    await Deno.remove(img.path);
  }
});

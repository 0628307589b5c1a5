/**
 * The io_uring backend on real files, alone and behind the device (through the MMIO harness):
 * batches, vectored transfers, O_DIRECT with aligned and unaligned guest buffers, the end of
 * the image, fallocate ranges, and the completion eventfd.
 */
import { assert, assertEquals, assertMatch } from "../../../../tests/lib/assert.ts";
import { testWhen } from "../../../../tests/lib/skip.ts";
import { helperAvailable } from "../../../../ffi/helper.ts";
import { Epoll, EPOLLIN } from "../../../../ffi/events.ts";
import { RequestType } from "./request.ts";
import { BlkHarness, IOERR, OK, pattern } from "./test_harness.ts";
import { UringBackend } from "./uring_backend.ts";

/** null when an io_uring can be set up here. */
function uringAvailable(): string | null {
  const missing = helperAvailable();
  if (missing) return missing;
  const path = Deno.makeTempFileSync();
  try {
    new UringBackend({ path, readonly: true, direct: false, entries: 1 }).close();
    return null;
  } catch (e) {
    return `io_uring cannot be set up here: ${(e as Error).message}`;
  } finally {
    Deno.removeSync(path);
  }
}

const needs = [() => uringAvailable()];

function image(size: number): { path: string; bytes: Uint8Array } {
  const path = Deno.makeTempFileSync({ prefix: "uring-", suffix: ".img" });
  const bytes = pattern(size);
  Deno.writeFileSync(path, bytes);
  return { path, bytes };
}

/** Runs `poll(true)` until every callback ran. */
function drain(b: UringBackend): void {
  while (b.inFlight > 0) b.poll(true);
}

testWhen(needs, "uring: a batch of reads and writes completes with the right bytes", () => {
  const { path, bytes } = image(1 << 20);
  const b = new UringBackend({ path, readonly: false, direct: false, entries: 8 });
  try {
    const results: (string | null)[] = [];
    const reads = Array.from({ length: 20 }, () => [new Uint8Array(1024), new Uint8Array(3072)]);
    reads.forEach((r, i) => b.readv(r, i * 8192, (e) => results.push(e)));
    const out = [new Uint8Array(512).fill(1), new Uint8Array(1536).fill(2)];
    b.writev(out, 4096 * 100, (e) => results.push(e));
    // More operations than ring slots: the rest wait for room.
    b.submit();
    drain(b);
    assertEquals(results.length, 21);
    assert(results.every((e) => e === null), `errors: ${results}`);
    reads.forEach((r, i) => {
      assertEquals(r[0], bytes.subarray(i * 8192, i * 8192 + 1024));
      assertEquals(r[1], bytes.subarray(i * 8192 + 1024, i * 8192 + 4096));
    });
    const disk = Deno.readFileSync(path);
    assertEquals(disk.subarray(409600, 409600 + 512), out[0]);
    assertEquals(disk.subarray(409600 + 512, 409600 + 2048), out[1]);
  } finally {
    b.close();
    Deno.removeSync(path);
  }
});

testWhen(needs, "uring: the completion eventfd becomes readable when I/O finished", () => {
  const { path } = image(65536);
  const b = new UringBackend({ path, readonly: true, direct: false, entries: 4 });
  try {
    let done = false;
    b.readv([new Uint8Array(512)], 0, () => done = true);
    b.submit();
    // Block in epoll until the completion signals the eventfd, without reaping.
    const epoll = Epoll.create(1);
    try {
      epoll.add(b.completionFd, EPOLLIN, 7);
      assertEquals(epoll.wait(-1).map((e) => e.data), [7n]);
    } finally {
      epoll.close();
    }
    assert(!done, "no callback runs before poll");
    b.poll();
    assert(done);
  } finally {
    b.close();
    Deno.removeSync(path);
  }
});

testWhen(needs, "uring: a read past the end of a shrunken image fails, not returns junk", () => {
  const { path } = image(65536);
  const b = new UringBackend({ path, readonly: false, direct: false, entries: 4 });
  try {
    // The image shrinks under the VMM: the last 1.5 KiB are gone.
    Deno.truncateSync(path, 65536 - 1536);
    const results: (string | null)[] = [];
    const buf = new Uint8Array(2048).fill(0xee);
    b.readv([buf], 65536 - 2048, (e) => results.push(e));
    b.submit();
    drain(b);
    assertEquals(results.length, 1);
    assertMatch(results[0] ?? "", /end of file/);
  } finally {
    b.close();
    Deno.removeSync(path);
  }
});

testWhen(needs, "uring: discard and write-zeroes read back as zeroes", () => {
  const { path, bytes } = image(1 << 20);
  const b = new UringBackend({ path, readonly: false, direct: false, entries: 4 });
  try {
    b.discard(65536, 65536);
    b.writeZeroes(512 * 3, 1024);
    const disk = Deno.readFileSync(path);
    assertEquals(disk.length, bytes.length, "the image keeps its size");
    assertEquals(disk.subarray(65536, 131072), new Uint8Array(65536));
    assertEquals(disk.subarray(1536, 2560), new Uint8Array(1024));
    assertEquals(disk.subarray(0, 1536), bytes.subarray(0, 1536));
    assertEquals(disk.subarray(2560, 65536), bytes.subarray(2560, 65536));
  } finally {
    b.close();
    Deno.removeSync(path);
  }
});

testWhen(needs, "uring: a read-only image refuses writes", () => {
  const { path } = image(65536);
  const b = new UringBackend({ path, readonly: true, direct: false, entries: 4 });
  try {
    let threw = false;
    try {
      b.writev([new Uint8Array(512)], 0, () => {});
    } catch {
      threw = true;
    }
    assert(threw);
    assertEquals(b.inFlight, 0);
  } finally {
    b.close();
    Deno.removeSync(path);
  }
});

for (const direct of [false, true]) {
  const mode = direct ? "direct=on" : "direct=off";
  testWhen(needs, `uring device ${mode}: write, flush, read back through the rings`, () => {
    const h = new BlkHarness({ asyncIo: true, direct, diskSize: 1 << 20 });
    try {
      assert(h.device.completionFd !== null, "the device runs on io_uring");
      const data = new Uint8Array(4096).map((_, i) => (i * 5) & 0xff);
      assertEquals(h.request(RequestType.OUT, 8, { out: data }).status, OK);
      assertEquals(h.request(RequestType.FLUSH, 0).status, OK);
      const back = h.request(RequestType.IN, 8, { inLen: 4096 });
      assertEquals(back.status, OK);
      assertEquals(back.usedLen, 4097);
      assertEquals(back.data, data);
      // Unaligned guest buffers (the harness's allocator packs them): bounced under O_DIRECT.
      h.buffer(3);
      const odd = new Uint8Array(1536).fill(0x3c);
      assertEquals(h.request(RequestType.OUT, 100, { out: odd }).status, OK);
      h.buffer(5);
      assertEquals(h.request(RequestType.IN, 100, { inLen: 1536 }).data, odd);
      assertEquals(
        h.request(RequestType.WRITE_ZEROES, 0, {
          out: segment(8n, 8),
        }).status,
        OK,
      );
      assertEquals(h.request(RequestType.IN, 8, { inLen: 4096 }).data, new Uint8Array(4096));
      assertEquals(h.request(RequestType.IN, (1 << 20) / 512, { inLen: 512 }).status, IOERR);
      const expected = h.initial.slice();
      expected.set(odd, 100 * 512);
      expected.fill(0, 8 * 512, 16 * 512);
      assertEquals(h.disk(), expected);
    } finally {
      h.close();
    }
  });
}

testWhen(needs, "uring device: many requests in one notify, answered out of order", () => {
  const h = new BlkHarness({ asyncIo: true, diskSize: 1 << 20, queueSize: 64 });
  try {
    const statuses: number[] = [];
    const datas: number[] = [];
    for (let k = 0; k < 16; k++) {
      const hdr = h.header(RequestType.IN, k * 8);
      const data = h.buffer(4096, 0);
      const st = h.statusByte();
      h.ring.publish(h.ring.chain([
        { addr: hdr, len: 16 },
        { addr: data, len: 4096, write: true },
        { addr: st, len: 1, write: true },
      ]));
      statuses.push(st);
      datas.push(data);
    }
    h.driver.notify(0);
    h.device.settle();
    assertEquals(h.ring.usedIdx, 16);
    const ids = Array.from({ length: 16 }, (_, i) => h.ring.usedEntry(i).id).sort((a, b) => a - b);
    assertEquals(ids, Array.from({ length: 16 }, (_, k) => 3 * k));
    for (let k = 0; k < 16; k++) {
      assertEquals(h.memory.readU8(statuses[k]), OK);
      assertEquals(h.memory.read(datas[k], 4096), h.initial.subarray(k * 4096, (k + 1) * 4096));
    }
    assertEquals(h.device.inFlight, 0);
  } finally {
    h.close();
  }
});

testWhen(needs, "uring device: reset with reads in flight waits for them", () => {
  const h = new BlkHarness({ asyncIo: true, direct: true, diskSize: 4 << 20, queueSize: 64 });
  try {
    for (let k = 0; k < 20; k++) {
      h.ring.publish(h.ring.chain([
        { addr: h.header(RequestType.IN, k * 256), len: 16 },
        { addr: h.buffer(4096, 0), len: 4096, write: true },
        { addr: h.statusByte(), len: 1, write: true },
      ]));
    }
    h.driver.notify(0);
    h.driver.w32(0x70, 0); // STATUS = 0: reset
    assertEquals(h.device.inFlight, 0);
    assertEquals(h.ring.usedIdx, 0, "nothing written into the reset rings");
    h.activate();
    assertEquals(h.request(RequestType.IN, 1, { inLen: 512 }).data, h.initial.subarray(512, 1024));
  } finally {
    h.close();
  }
});

function segment(sector: bigint, sectors: number): Uint8Array {
  const s = new Uint8Array(16);
  const v = new DataView(s.buffer);
  v.setBigUint64(0, sector, true);
  v.setUint32(8, sectors, true);
  return s;
}

Deno.test("uring: without the helper library the device falls back to the synchronous backend", async () => {
  const script = `
    import { openBlockDevice } from ${JSON.stringify(new URL("./device.ts", import.meta.url).href)};
    const path = Deno.makeTempFileSync();
    Deno.writeFileSync(path, new Uint8Array(65536));
    const d = openBlockDevice({
      path, readonly: false, direct: false, serial: null, numQueues: 1, iopsTotal: null,
    });
    console.log(d.completionFd === null ? "sync" : "async", String(d.capacitySectors));
    d.close();
    Deno.removeSync(path);
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", script],
    env: { STRATOVIRT_HELPER: "/nonexistent/libstratovirt_helper.so" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  assertEquals(text, "sync 128", new TextDecoder().decode(out.stderr));
});

import { assert, assertEquals, assertThrows } from "../../../../tests/lib/assert.ts";
import { testWhen } from "../../../../tests/lib/skip.ts";
import { helperAvailable } from "../../../../ffi/helper.ts";
import { BlockIoError, MemoryBackend } from "./backend.ts";
import { DirectFileBackend, openBackend } from "./direct_backend.ts";

const helper = () => helperAvailable();

/** O_DIRECT works on the filesystem holding the temp dir (not on every tmpfs). */
const directTmp = () => {
  const path = Deno.makeTempFileSync();
  try {
    new DirectFileBackend(path, true).close();
    return null;
  } catch (e) {
    return `O_DIRECT unavailable in the temp dir: ${(e as Error).message}`;
  } finally {
    Deno.removeSync(path);
  }
};

function image(size: number): { path: string; bytes: Uint8Array } {
  const bytes = new Uint8Array(size).map((_, i) => (i * 131 + (i >> 12)) & 0xff);
  const path = Deno.makeTempFileSync({ prefix: "blk-direct-", suffix: ".img" });
  Deno.writeFileSync(path, bytes);
  return { path, bytes };
}

/** The open(2) flags this process holds `path` with (several fds: any with O_DIRECT wins). */
function openFlags(path: string): number[] {
  const out: number[] = [];
  for (const e of Deno.readDirSync("/proc/self/fd")) {
    try {
      if (Deno.readLinkSync(`/proc/self/fd/${e.name}`) !== path) continue;
      const info = Deno.readTextFileSync(`/proc/self/fdinfo/${e.name}`);
      out.push(parseInt(/flags:\s+([0-7]+)/.exec(info)![1], 8));
    } catch { /* the fd closed meanwhile */ }
  }
  return out;
}

const O_DIRECT = 0o40000;

testWhen(
  [helper, directTmp],
  "direct backend: opens with O_DIRECT; aligned I/O round-trips",
  () => {
    const { path, bytes } = image(1 << 20);
    const b = openBackend({ path, readonly: false, direct: true });
    try {
      assert(b.direct);
      assert(
        openFlags(path).some((f) => (f & O_DIRECT) !== 0 && (f & 3) === 2),
        "no O_DIRECT rw fd",
      );
      const dst = new Uint8Array(4096);
      b.readAt(dst, 8192);
      assertEquals(dst, bytes.subarray(8192, 8192 + 4096));
      const src = new Uint8Array(2048).fill(0x3c);
      b.writeAt(src, 512);
      b.flush();
      bytes.set(src, 512);
      assertEquals(Deno.readFileSync(path), bytes);
    } finally {
      b.close();
      Deno.removeSync(path);
    }
  },
);

testWhen(
  [helper, directTmp],
  "direct backend: unaligned buffers, offsets and vectors match a byte model",
  () => {
    const size = 3 * (1 << 20) + 4096;
    const { path, bytes } = image(size);
    const model = new MemoryBackend(bytes.slice());
    const b = new DirectFileBackend(path, false);
    try {
      let seed = 7;
      const rand = (n: number) => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
      for (let round = 0; round < 60; round++) {
        // Up to 1.5 MiB so transfers cross the bounce buffer; odd offsets force read-modify-write.
        const len = 1 + rand(round % 10 === 0 ? 1536 * 1024 : 9000);
        const offset = rand(size - len);
        const cuts = [0, ...Array.from({ length: rand(4) }, () => rand(len)), len].sort((x, y) =>
          x - y
        );
        const parts = cuts.slice(1).map((end, i) => new Uint8Array(end - cuts[i]));
        if (rand(2)) {
          for (const p of parts) p.forEach((_, i) => (p[i] = rand(256)));
          b.writev(parts, offset);
          model.writev(parts, offset);
        } else {
          b.readv(parts, offset);
          const want = parts.map((p) => new Uint8Array(p.length));
          model.readv(want, offset);
          assertEquals(parts, want, `round ${round}: read ${len} at ${offset}`);
        }
      }
      b.writeZeroes(1000, 5000);
      model.writeZeroes(1000, 5000);
      assertEquals(Deno.readFileSync(path), model.bytes);
    } finally {
      b.close();
      Deno.removeSync(path);
    }
  },
);

testWhen([helper, directTmp], "direct backend: read-only refuses writes; range checks", () => {
  const { path, bytes } = image(8192);
  const b = new DirectFileBackend(path, true);
  try {
    assertThrows(() => b.writeAt(new Uint8Array(512), 0), BlockIoError, "read-only");
    assertThrows(() => b.readAt(new Uint8Array(512), 8192 - 100), BlockIoError, "outside");
    assertEquals(Deno.readFileSync(path), bytes);
  } finally {
    b.close();
    Deno.removeSync(path);
  }
  assertThrows(() => b.readAt(new Uint8Array(1), 0), BlockIoError, "closed");
});

testWhen([helper], "direct backend: a missing image is a BlockIoError naming it", () => {
  assertThrows(
    () => openBackend({ path: "/nonexistent/disk.img", readonly: true, direct: true }),
    BlockIoError,
    "/nonexistent/disk.img",
  );
});

import { assertEquals, assertThrows } from "../../../../tests/lib/assert.ts";
import { BlockIoError, FileBackend } from "./backend.ts";

function tempImage(bytes: Uint8Array): string {
  const path = Deno.makeTempFileSync({ prefix: "blk-backend-", suffix: ".img" });
  Deno.writeFileSync(path, bytes);
  return path;
}

Deno.test("file backend: size, read, write, flush, zeroes", () => {
  const initial = new Uint8Array(3 * 1024 * 1024).map((_, i) => (i * 31) & 0xff);
  const path = tempImage(initial);
  const b = new FileBackend({ path, readonly: false });
  try {
    assertEquals(b.size, initial.length);
    const dst = new Uint8Array(1000);
    b.readAt(dst, 12345);
    assertEquals(dst, initial.subarray(12345, 13345));
    b.writeAt(new Uint8Array([1, 2, 3]), 7);
    b.flush();
    // More than one zero chunk (1 MiB) at an odd offset.
    b.writeZeroes(100, 1024 * 1024 + 5000);
    b.discard(initial.length - 512, 512);
    const expected = initial.slice();
    expected.set([1, 2, 3], 7);
    expected.fill(0, 100, 100 + 1024 * 1024 + 5000);
    expected.fill(0, initial.length - 512);
    assertEquals(Deno.readFileSync(path), expected);
  } finally {
    b.close();
    Deno.removeSync(path);
  }
});

Deno.test("file backend: out-of-range access and writes to a read-only image are refused", () => {
  const path = tempImage(new Uint8Array(4096).fill(9));
  const b = new FileBackend({ path, readonly: true });
  try {
    assertThrows(
      () => b.readAt(new Uint8Array(512), 4096 - 256),
      BlockIoError,
      "outside the image",
    );
    assertThrows(() => b.readAt(new Uint8Array(1), -1), BlockIoError);
    assertThrows(() => b.writeAt(new Uint8Array(1), 0), BlockIoError, "read-only");
    assertThrows(() => b.writeZeroes(0, 512), BlockIoError, "read-only");
    b.flush(); // a no-op on a read-only image
    assertEquals(Deno.readFileSync(path), new Uint8Array(4096).fill(9));
  } finally {
    b.close();
    Deno.removeSync(path);
  }
  assertThrows(() => b.readAt(new Uint8Array(1), 0), BlockIoError, "closed");
});

Deno.test("file backend: a missing image is a BlockIoError naming the path", () => {
  assertThrows(
    () => new FileBackend({ path: "/nonexistent/disk.img", readonly: false }),
    BlockIoError,
    "/nonexistent/disk.img",
  );
});

import { assertEquals } from "../../tests/lib/assert.ts";
import { OutputQueue } from "./output_queue.ts";

Deno.test("output queue: many small pushes coalesce into few host writes, in order", async () => {
  const writes: number[][] = [];
  const q = new OutputQueue((bytes) => {
    writes.push([...bytes]);
    return Promise.resolve(bytes.length);
  });
  for (let i = 0; i < 100; i++) q.push(new Uint8Array([i]));
  await q.flush();
  assertEquals(writes.flat(), Array.from({ length: 100 }, (_, i) => i));
  assertEquals(writes.length < 100, true, `${writes.length} writes`);
});

Deno.test("output queue: partial writes are completed", async () => {
  const got: number[] = [];
  const q = new OutputQueue((bytes) => {
    got.push(bytes[0]);
    return Promise.resolve(1);
  });
  q.push(new Uint8Array([1, 2, 3, 4, 5]));
  await q.flush();
  assertEquals(got, [1, 2, 3, 4, 5]);
});

Deno.test("output queue: without a sink the newest bytes are kept up to the limit", async () => {
  const q = new OutputQueue(null, 10);
  for (let i = 0; i < 25; i++) q.push(new Uint8Array([i]));
  assertEquals(q.queued, 10);
  assertEquals(q.dropped, 15);
  const got: number[] = [];
  q.setSink((bytes) => {
    got.push(...bytes);
    return Promise.resolve(bytes.length);
  });
  await q.flush();
  assertEquals(got, [15, 16, 17, 18, 19, 20, 21, 22, 23, 24]);
});

Deno.test("output queue: the caller's buffer is copied", async () => {
  const got: number[] = [];
  const q = new OutputQueue((bytes) => {
    got.push(...bytes);
    return Promise.resolve(bytes.length);
  });
  const buf = new Uint8Array([7]);
  q.push(buf);
  buf[0] = 8;
  q.push(buf);
  await q.flush();
  assertEquals(got, [7, 8]);
});

Deno.test("output queue: a failing sink is reported and the queue keeps accepting", async () => {
  const errors: string[] = [];
  const q = new OutputQueue(
    () => Promise.reject(new Error("EPIPE")),
    1 << 20,
    (e) => errors.push((e as Error).message),
  );
  q.push(new Uint8Array([1]));
  await q.flush();
  q.setSink(null);
  q.push(new Uint8Array([2]));
  await q.flush();
  assertEquals(errors, ["EPIPE"]);
  assertEquals(q.queued, 1);
});

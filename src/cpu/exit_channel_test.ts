import { assertEquals } from "../../tests/lib/assert.ts";
import { createChannelBuffer, ExitChannelServer, ExitKind } from "./exit_channel.ts";

Deno.test("exit channel: a Worker's exits reach the device thread and reads come back", async () => {
  const sab = createChannelBuffer();
  const server = new ExitChannelServer(sab);
  const seen: string[] = [];
  const serving = server.serve((req) => {
    seen.push(`${req.kind}:${req.addr.toString(16)}:${[...req.data].join(",")}`);
    if (req.kind === ExitKind.PioIn) req.data.fill(0x5a);
    if (req.kind === ExitKind.MmioRead) req.data.set([1, 2, 3, 4, 5, 6, 7, 8]);
  });
  const worker = new Worker(new URL("./exit_channel_test_worker.ts", import.meta.url), {
    type: "module",
  });
  const result = await new Promise<number[]>((resolve) => {
    worker.onmessage = (e) => resolve(e.data);
    worker.postMessage(sab);
  });
  worker.terminate();
  server.close();
  await serving;
  assertEquals(seen, [
    "1:3f8:65",
    "0:3fd:0",
    "3:1d0000000:9,8,7,6",
    "2:f0000000:0,0,0,0,0,0,0,0",
  ]);
  assertEquals(result, [0x5a, 1, 2, 3, 4, 5, 6, 7, 8]);
});

Deno.test("exit channel: close releases a blocked vCPU", async () => {
  const sab = createChannelBuffer();
  const server = new ExitChannelServer(sab);
  server.close();
  const worker = new Worker(new URL("./exit_channel_test_worker.ts", import.meta.url), {
    type: "module",
  });
  const result = await new Promise<unknown>((resolve) => {
    worker.onmessage = (e) => resolve(e.data);
    worker.postMessage(sab);
  });
  worker.terminate();
  assertEquals(result, "closed");
});

Deno.test("exit channel: a handler that closes the channel leaves it closed for the vCPU", async () => {
  const sab = createChannelBuffer();
  const server = new ExitChannelServer(sab);
  let calls = 0;
  const serving = server.serve(() => {
    calls++;
    server.close(); // the VM goes down while the first exit is being handled
  });
  const worker = new Worker(new URL("./exit_channel_test_worker.ts", import.meta.url), {
    type: "module",
  });
  // With the bug, the Worker's second exit waits forever: fail after 10 s instead of hanging.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const result = await Promise.race([
    new Promise<unknown>((resolve) => {
      worker.onmessage = (e) => resolve(e.data);
      worker.postMessage(sab);
    }),
    new Promise<unknown>((resolve) => timer = setTimeout(() => resolve("hung"), 10_000)),
  ]);
  clearTimeout(timer);
  worker.terminate();
  await serving;
  // The first call saw Closed instead of Done and stopped: no second exit was sent (it would hang).
  assertEquals(result, "closed");
  assertEquals(calls, 1);
});

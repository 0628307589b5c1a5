import { assertEquals } from "../../tests/lib/assert.ts";
import { helperAvailable } from "../../ffi/helper.ts";
import { Epoll, EPOLLIN, eventfd, eventfdRead } from "../../ffi/events.ts";
import { close } from "../../ffi/libc.ts";
import { createDeviceChannelBuffer, DeviceChannelServer } from "./device_channel.ts";
import { testWhen } from "../../tests/lib/skip.ts";

const helperBuilt = () => helperAvailable() ? "the helper library is not built" : null;

function startClient(channel: SharedArrayBuffer, wakeFd: number): Promise<unknown> {
  const worker = new Worker(new URL("./device_channel_test_worker.ts", import.meta.url), {
    type: "module",
  });
  return new Promise((resolve) => {
    worker.onmessage = (e) => {
      worker.terminate();
      resolve(e.data);
    };
    worker.postMessage({ channel, wakeFd });
  });
}

testWhen(
  [helperBuilt],
  "device channel: each exit wakes the device thread's epoll; reads come back to the vCPU",
  async () => {
    const channel = createDeviceChannelBuffer();
    const server = new DeviceChannelServer(channel);
    const wakeFd = eventfd();
    const epoll = Epoll.create();
    epoll.add(wakeFd, EPOLLIN, 1);
    const result = startClient(channel, wakeFd);
    // Plays the device Worker: block in epoll_wait, serve on each wake (here, on the main
    // thread of a test, a bounded wait).
    const seen: string[] = [];
    let register = 0;
    while (seen.length < 3) {
      const events = epoll.wait(10_000);
      if (events.length === 0) break;
      eventfdRead(wakeFd);
      server.serve((req) => {
        seen.push(`${req.isWrite ? "w" : "r"}:${req.addr.toString(16)}:${req.data.length}`);
        if (req.isWrite) register = req.data[0];
        else if (req.data.length === 4) req.data.set([register, 0, 0, 0]);
        else req.data.set([1, 2, 3, 4, 5, 6, 7, 8]);
      });
    }
    assertEquals(await result, [7, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
    assertEquals(seen, ["w:f0100070:4", "r:f0100070:4", "r:1f0100100:8"]);
    epoll.close();
    close(wakeFd);
  },
);

testWhen([helperBuilt], "device channel: closing it releases a waiting vCPU", async () => {
  const channel = createDeviceChannelBuffer();
  const wakeFd = eventfd();
  const epoll = Epoll.create();
  epoll.add(wakeFd, EPOLLIN, 1);
  const result = startClient(channel, wakeFd);
  // The request arrives; the device thread goes down instead of answering it.
  assertEquals(epoll.wait(10_000).length, 1);
  new DeviceChannelServer(channel).close();
  assertEquals(await result, "closed");
  epoll.close();
  close(wakeFd);
});

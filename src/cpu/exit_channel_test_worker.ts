/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
// Test Worker for exit_channel_test.ts: plays a vCPU sending a few exits.
import { ExitChannelClient, ExitKind } from "./exit_channel.ts";

self.onmessage = (e: MessageEvent<SharedArrayBuffer>) => {
  const c = new ExitChannelClient(e.data);
  if (!c.call(ExitKind.PioOut, 0x3f8, new Uint8Array([65]))) {
    self.postMessage("closed");
    return;
  }
  const lsr = new Uint8Array(1);
  c.call(ExitKind.PioIn, 0x3fd, lsr);
  c.call(ExitKind.MmioWrite, 0x1d0000000, new Uint8Array([9, 8, 7, 6]));
  const q = new Uint8Array(8);
  c.call(ExitKind.MmioRead, 0xf0000000, q);
  self.postMessage([...lsr, ...q]);
};

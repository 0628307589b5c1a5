/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
// Test Worker for device_channel_test.ts: plays a vCPU sending MMIO exits to a device Worker.
import { DeviceChannelClient } from "./device_channel.ts";

self.onmessage = (e: MessageEvent<{ channel: SharedArrayBuffer; wakeFd: number }>) => {
  const c = new DeviceChannelClient(e.data.channel, e.data.wakeFd);
  if (!c.call(true, 0xf0100070, new Uint8Array([7, 0, 0, 0]))) {
    self.postMessage("closed");
    return;
  }
  const status = new Uint8Array(4);
  c.call(false, 0xf0100070, status);
  const config = new Uint8Array(8);
  c.call(false, 0x1_f010_0100, config);
  self.postMessage([...status, ...config]);
};

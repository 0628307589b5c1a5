/**
 * The thread that waits on QMP's raw socket fds: a blocking poll(2) over the fds the main thread
 * asked about, plus a wake-up pipe. Each readiness is reported once ({fd, revents}); the main
 * thread asks again when it wants more. Every message from the main thread comes with one byte
 * on the pipe, so after a wake-up the loop waits until that many messages have arrived.
 */
/// <reference lib="deno.worker" />
import { EINTR, poll, POLLIN, POLLOUT, readFd } from "./scm_libc.ts";

type Request =
  | { op: "init"; wakeFd: number }
  | { op: "watch"; fd: number; events: number }
  | { op: "forget"; fd: number }
  | { op: "exit" };

const masks = new Map<number, number>();
let wakeFd = -1;
let exiting = false;
let received = 0;
let messageArrived: (() => void) | null = null;

self.onmessage = (e: MessageEvent<Request>) => {
  const r = e.data;
  if (r.op === "init") {
    wakeFd = r.wakeFd;
    void loop();
    return;
  }
  received++;
  if (r.op === "watch") masks.set(r.fd, (masks.get(r.fd) ?? 0) | r.events);
  else if (r.op === "forget") {
    masks.delete(r.fd);
    self.postMessage({ op: "forgot", fd: r.fd });
  } else exiting = true;
  messageArrived?.();
};

async function loop(): Promise<void> {
  const drain = new Uint8Array(512);
  let expected = 0;
  while (!exiting) {
    const fds = [wakeFd, ...masks.keys()];
    const pollfds = new Uint8Array(8 * fds.length);
    const view = new DataView(pollfds.buffer);
    fds.forEach((fd, i) => {
      view.setInt32(i * 8, fd, true);
      view.setInt16(i * 8 + 4, i === 0 ? POLLIN : masks.get(fd)!, true);
    });
    const n = poll(pollfds, fds.length, -1);
    if (n < 0 && n !== -EINTR) {
      self.postMessage({ op: "failed", errno: -n });
      break;
    }
    for (let i = 1; i < fds.length; i++) {
      const revents = view.getInt16(i * 8 + 6, true);
      if (revents === 0) continue;
      const fd = fds[i];
      const left = (masks.get(fd) ?? 0) & ~revents;
      // Errors and hang-ups are reported once; the main thread decides what to do.
      if (left === 0 || (revents & ~(POLLIN | POLLOUT)) !== 0) masks.delete(fd);
      else masks.set(fd, left);
      self.postMessage({ op: "ready", fd, revents });
    }
    if (view.getInt16(6, true) !== 0) {
      for (;;) {
        const got = readFd(wakeFd, drain);
        if (got <= 0) break;
        expected += got;
      }
    }
    while (received < expected && !exiting) {
      await new Promise<void>((resolve) => messageArrived = resolve);
      messageArrived = null;
    }
  }
  self.postMessage({ op: "exited" });
  self.close();
}

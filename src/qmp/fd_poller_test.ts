import { assert, assertEquals } from "../../tests/lib/assert.ts";
import { testWhen } from "../../tests/lib/skip.ts";
import { FdPoller } from "./fd_poller.ts";
import { closeFd, pipe, POLLIN, POLLOUT, readFd, scmUnavailable, writeFd } from "./scm_libc.ts";

const libc = () => scmUnavailable() ? `libc.so.6 through FFI: ${scmUnavailable()}` : null;

testWhen([libc], "fd poller: readiness is reported once per wait", async () => {
  const poller = new FdPoller();
  const [r, w] = pipe();
  assert((await poller.wait(w, POLLOUT)) & POLLOUT, "an empty pipe is writable");
  const readable = poller.wait(r, POLLIN);
  writeFd(w, new Uint8Array([7]));
  assert((await readable) & POLLIN);
  const buf = new Uint8Array(4);
  assertEquals(readFd(r, buf), 1);
  assertEquals(buf[0], 7);
  // Nothing to read now: a wait stays pending until forget() ends it with 0.
  const pending = poller.wait(r, POLLIN);
  await poller.forget(r);
  assertEquals(await pending, 0);
  closeFd(r);
  closeFd(w);
  await poller.close();
});

testWhen([libc], "fd poller: a hang-up wakes a reader; close() ends every wait", async () => {
  const poller = new FdPoller();
  const [r, w] = pipe();
  const hup = poller.wait(r, POLLIN);
  closeFd(w);
  assert((await hup) !== 0);
  const [r2, w2] = pipe();
  const pending = poller.wait(r2, POLLIN);
  await poller.close();
  assertEquals(await pending, 0);
  assertEquals(await poller.wait(r2, POLLIN), 0);
  for (const fd of [r, r2, w2]) closeFd(fd);
});

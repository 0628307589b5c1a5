/**
 * The helper's system-call wrappers through ffi/: errors become SysError with the right errno,
 * guest RAM views share memory, and eventfd / timerfd / epoll deliver what was signalled.
 */
import { assert, assertEquals, assertThrows } from "../tests/lib/assert.ts";
import { testWhen } from "../tests/lib/skip.ts";
import { helperAvailable } from "./helper.ts";
import {
  close,
  Errno,
  F_GETFD,
  fcntl,
  FD_CLOEXEC,
  ftruncate,
  memfdCreate,
  O_RDONLY,
  open,
  pread,
  pwrite,
  read,
  SysError,
  write,
} from "./libc.ts";
import { hostBytes, mapAnonymousRam, mapFileRam, unmapRam } from "./guest_ram.ts";
import {
  Epoll,
  EPOLLIN,
  eventfd,
  eventfdRead,
  eventfdWrite,
  timerfdCreate,
  timerfdRead,
  timerfdSet,
} from "./events.ts";

const helper = helperAvailable;

testWhen([helper], "libc: a failing call throws SysError naming the call and errno", () => {
  const e = assertThrows(() => open("/nonexistent/stratovirt", O_RDONLY), SysError) as SysError;
  assertEquals(e.errno, Errno.ENOENT);
  assertEquals(e.message, "open(/nonexistent/stratovirt) failed: ENOENT");
  const bad = assertThrows(() => close(-1), SysError) as SysError;
  assertEquals(bad.errno, Errno.EBADF);
});

testWhen([helper], "libc: read, write, pread and pwrite move bytes through an fd", () => {
  const fd = memfdCreate("stratovirt-test");
  try {
    assertEquals(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    assertEquals(write(fd, new Uint8Array([1, 2, 3])), 3);
    assertEquals(pwrite(fd, new Uint8Array([9]), 10), 1);
    const buf = new Uint8Array(11);
    assertEquals(pread(fd, buf, 0), 11);
    assertEquals([...buf], [1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 9]);
    // read() continues at the file offset write() left (3); pread/pwrite did not move it.
    const rest = new Uint8Array(16).fill(0xff);
    assertEquals(read(fd, rest), 8);
    assertEquals([...rest.subarray(0, 8)], [0, 0, 0, 0, 0, 0, 0, 9]);
  } finally {
    close(fd);
  }
});

testWhen([helper], "guest ram: two views of one anonymous mapping see each other's writes", () => {
  const size = 1 << 20;
  const addr = mapAnonymousRam(size);
  const a = hostBytes(addr, size);
  const b = hostBytes(addr, size);
  a[12345] = 0xab;
  assertEquals(b[12345], 0xab);
  assertEquals(b[0], 0); // anonymous memory starts zeroed
  unmapRam(addr, size);
});

testWhen([helper], "guest ram: a shared file mapping writes through to the file", () => {
  const fd = memfdCreate("stratovirt-ram");
  const size = 64 * 1024;
  try {
    ftruncate(fd, size);
    const addr = mapFileRam(fd, size);
    hostBytes(addr, size).set([7, 8, 9], 4096);
    const back = new Uint8Array(3);
    pread(fd, back, 4096);
    assertEquals([...back], [7, 8, 9]);
    unmapRam(addr, size);
  } finally {
    close(fd);
  }
});

testWhen([helper], "events: eventfd counts writes and epoll reports it with its data", () => {
  const efd = eventfd();
  const ep = Epoll.create();
  try {
    assertEquals(eventfdRead(efd), null); // empty non-blocking eventfd
    assertEquals(ep.wait(0), []);
    ep.add(efd, EPOLLIN, 0x1234_5678_9abcn);
    eventfdWrite(efd, 2);
    eventfdWrite(efd);
    assertEquals(ep.wait(-1), [{ events: EPOLLIN, data: 0x1234_5678_9abcn }]);
    assertEquals(eventfdRead(efd), 3n);
    ep.remove(efd);
  } finally {
    ep.close();
    close(efd);
  }
});

testWhen([helper], "events: an armed timerfd wakes epoll and counts its expirations", () => {
  const tfd = timerfdCreate();
  const ep = Epoll.create();
  try {
    ep.add(tfd, EPOLLIN, 7);
    timerfdSet(tfd, 1_000_000); // one shot after 1 ms
    const ready = ep.wait(-1);
    assertEquals(ready.map((e) => e.data), [7n]);
    const n = timerfdRead(tfd);
    assert(n !== null && n >= 1n, `expirations: ${n}`);
    timerfdSet(tfd, 0); // disarmed: nothing more arrives
    assertEquals(timerfdRead(tfd), null);
  } finally {
    ep.close();
    close(tfd);
  }
});

/**
 * The few libc calls QMP needs to receive file descriptors (getfd): Deno's sockets cannot read
 * SCM_RIGHTS ancillary data, so the unix QMP socket is opened, read and written here with
 * non-blocking system calls. Struct layouts are x86_64 Linux (msghdr 56 bytes, cmsghdr header 16,
 * sockaddr_un 110, pollfd 8). Calls return -errno instead of throwing, like the kernel.
 */

export const AF_UNIX = 1;
export const SOCK_STREAM = 1;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;
export const MSG_DONTWAIT = 0x40;
export const MSG_NOSIGNAL = 0x4000;
export const MSG_CTRUNC = 0x8;
export const MSG_CMSG_CLOEXEC = 0x40000000;
export const SOL_SOCKET = 1;
export const SCM_RIGHTS = 1;
export const POLLIN = 0x1;
export const POLLOUT = 0x4;
export const POLLERR = 0x8;
export const POLLHUP = 0x10;
export const POLLNVAL = 0x20;
export const EINTR = 4;
export const EAGAIN = 11;

/** Most fds accepted with one message (QEMU takes one per getfd; more are closed). */
export const MAX_FDS_PER_MESSAGE = 16;

const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  listen: { parameters: ["i32", "i32"], result: "i32" },
  accept4: { parameters: ["i32", "pointer", "pointer", "i32"], result: "i32" },
  recvmsg: { parameters: ["i32", "buffer", "i32"], result: "isize" },
  sendmsg: { parameters: ["i32", "buffer", "i32"], result: "isize" },
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  pipe2: { parameters: ["buffer", "i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let libc: Libc | null = null;
let loadError: string | null = null;

/** libc, or null (with `scmUnavailable()` saying why) when FFI is not allowed or fails. */
export function scmLibc(): Libc | null {
  if (libc || loadError) return libc;
  try {
    libc = Deno.dlopen("libc.so.6", SYMBOLS).symbols;
  } catch (e) {
    loadError = (e as Error).message;
  }
  return libc;
}

export function scmUnavailable(): string | null {
  scmLibc();
  return loadError;
}

function lib(): Libc {
  const l = scmLibc();
  if (!l) throw new Error(`libc.so.6 cannot be used: ${loadError}`);
  return l;
}

function errno(): number {
  const p = lib().__errno_location();
  return p ? new Deno.UnsafePointerView(p).getInt32() : 0;
}

/** rc, or -errno when rc is -1. */
function ret(rc: number | bigint): number {
  const n = Number(rc);
  return n === -1 ? -errno() : n;
}

const encoder = new TextEncoder();

function sockaddrUn(path: string): Uint8Array {
  const bytes = encoder.encode(path);
  if (bytes.length >= 108) throw new Error(`unix socket path is longer than 107 bytes: ${path}`);
  const addr = new Uint8Array(110);
  new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
  addr.set(bytes, 2);
  return addr;
}

function address(buf: Uint8Array): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf as Uint8Array<ArrayBuffer>)));
}

/** A non-blocking, close-on-exec unix stream socket listening on `path`; -errno on failure. */
export function unixListen(path: string, backlog = 128): number {
  const l = lib();
  const fd = ret(l.socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd < 0) return fd;
  const addr = sockaddrUn(path);
  let rc = ret(l.bind(fd, addr, addr.length));
  if (rc === 0) rc = ret(l.listen(fd, backlog));
  if (rc < 0) {
    l.close(fd);
    return rc;
  }
  return fd;
}

/** A non-blocking unix stream socket connected to `path` (test clients); -errno on failure. */
export function unixConnect(path: string): number {
  const l = lib();
  const fd = ret(l.socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd < 0) return fd;
  const addr = sockaddrUn(path);
  const rc = ret(l.connect(fd, addr, addr.length));
  if (rc < 0) {
    l.close(fd);
    return rc;
  }
  return fd;
}

/** Accepts a connection as a non-blocking, close-on-exec fd; -EAGAIN when none waits. */
export function accept(listenFd: number): number {
  return ret(lib().accept4(listenFd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC));
}

export interface Received {
  /** Bytes read (0 at EOF), or -errno. */
  readonly n: number;
  /** File descriptors that came with them (close-on-exec). */
  readonly fds: number[];
}

/** recvmsg(2) without blocking, collecting SCM_RIGHTS fds. */
export function recvWithFds(fd: number, buf: Uint8Array): Received {
  const control = new Uint8Array(16 + MAX_FDS_PER_MESSAGE * 4);
  const iov = new Uint8Array(16);
  const iovView = new DataView(iov.buffer);
  iovView.setBigUint64(0, address(buf), true);
  iovView.setBigUint64(8, BigInt(buf.length), true);
  const msg = new Uint8Array(56);
  const m = new DataView(msg.buffer);
  m.setBigUint64(16, address(iov), true);
  m.setBigUint64(24, 1n, true);
  m.setBigUint64(32, address(control), true);
  m.setBigUint64(40, BigInt(control.length), true);
  const n = ret(lib().recvmsg(fd, msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC));
  if (n < 0) return { n, fds: [] };
  return { n, fds: parseRights(control, Number(m.getBigUint64(40, true))) };
}

/** The fds in every SCM_RIGHTS control message of `control[0, length)`. */
function parseRights(control: Uint8Array, length: number): number[] {
  const view = new DataView(control.buffer);
  const fds: number[] = [];
  let at = 0;
  while (at + 16 <= length) {
    const len = Number(view.getBigUint64(at, true));
    if (len < 16 || at + len > length) break;
    if (view.getInt32(at + 8, true) === SOL_SOCKET && view.getInt32(at + 12, true) === SCM_RIGHTS) {
      for (let p = at + 16; p + 4 <= at + len; p += 4) fds.push(view.getInt32(p, true));
    }
    at += (len + 7) & ~7;
  }
  return fds;
}

/** sendmsg(2) of `bytes` with `fds` as SCM_RIGHTS, not blocking; bytes sent or -errno. */
export function sendWithFds(fd: number, bytes: Uint8Array, fds: readonly number[]): number {
  const iov = new Uint8Array(16);
  const iovView = new DataView(iov.buffer);
  iovView.setBigUint64(0, address(bytes), true);
  iovView.setBigUint64(8, BigInt(bytes.length), true);
  const msg = new Uint8Array(56);
  const m = new DataView(msg.buffer);
  m.setBigUint64(16, address(iov), true);
  m.setBigUint64(24, 1n, true);
  let control: Uint8Array | null = null;
  if (fds.length > 0) {
    const len = 16 + fds.length * 4;
    control = new Uint8Array((len + 7) & ~7);
    const c = new DataView(control.buffer);
    c.setBigUint64(0, BigInt(len), true);
    c.setInt32(8, SOL_SOCKET, true);
    c.setInt32(12, SCM_RIGHTS, true);
    fds.forEach((f, i) => c.setInt32(16 + i * 4, f, true));
    m.setBigUint64(32, address(control), true);
    m.setBigUint64(40, BigInt(control.length), true);
  }
  return ret(lib().sendmsg(fd, msg, MSG_DONTWAIT | MSG_NOSIGNAL));
}

/** send(2) without blocking and without SIGPIPE; bytes sent or -errno. */
export function sendNow(fd: number, bytes: Uint8Array): number {
  return ret(lib().send(fd, bytes, BigInt(bytes.length), MSG_DONTWAIT | MSG_NOSIGNAL));
}

export function closeFd(fd: number): void {
  lib().close(fd);
}

/** A non-blocking close-on-exec pipe: [read end, write end]. */
export function pipe(): [number, number] {
  const fds = new Int32Array(2);
  const rc = ret(lib().pipe2(new Uint8Array(fds.buffer), O_NONBLOCK | O_CLOEXEC));
  if (rc < 0) throw new Error(`pipe2 failed: errno ${-rc}`);
  return [fds[0], fds[1]];
}

export function writeFd(fd: number, bytes: Uint8Array): number {
  return ret(lib().write(fd, bytes, BigInt(bytes.length)));
}

export function readFd(fd: number, buf: Uint8Array): number {
  return ret(lib().read(fd, buf, BigInt(buf.length)));
}

/** poll(2) over `pollfds` (8 bytes each: fd, events, revents); blocks up to timeoutMs (-1: ever). */
export function poll(pollfds: Uint8Array, count: number, timeoutMs: number): number {
  return ret(lib().poll(pollfds, BigInt(count), timeoutMs));
}

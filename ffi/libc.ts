/**
 * System calls through the helper, as exceptions: every wrapper throws a SysError naming the call
 * and the errno when the kernel says no. Calls that a caller must be able to see fail without
 * an exception (KVM_RUN's EINTR, EAGAIN on non-blocking fds) live in the typed APIs that use them.
 */
import { cString, helper } from "./helper.ts";

/** errno values (x86_64 Linux) that callers act on. */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  EINVAL: 22,
  ENOSPC: 28,
  ENOSYS: 38,
  ENOTSUP: 95,
  E2BIG: 7,
  ENXIO: 6,
  EPIPE: 32,
  ENAMETOOLONG: 36,
  EADDRINUSE: 98,
  ECONNRESET: 104,
  ECONNREFUSED: 111,
} as const;

const ERRNO_NAMES = new Map<number, string>(Object.entries(Errno).map(([k, v]) => [v, k]));

/** "EINTR" for 4; "errno 123" for values without a name here. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
}

/** A system call failed: `errno` is positive, `call` names what was attempted. */
export class SysError extends Error {
  constructor(readonly call: string, readonly errno: number) {
    super(`${call} failed: ${errnoName(errno)}`);
    this.name = "SysError";
  }
}

/** Returns `rc` when it is not an error, else throws SysError(call, -rc). */
export function check(rc: number, call: string): number {
  if (rc < 0) throw new SysError(call, -rc);
  return rc;
}

/** check() for the i64 results (sizes, addresses) that Deno returns as bigint. */
export function checkBig(rc: number | bigint, call: string): bigint {
  const v = BigInt(rc);
  if (v < 0n) throw new SysError(call, Number(-v));
  return v;
}

// open(2) / fcntl(2) / mmap(2) / madvise(2) constants, x86_64.
export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_TRUNC = 0o1000;
export const O_APPEND = 0o2000;
export const O_NONBLOCK = 0o4000;
export const O_DIRECT = 0o40000;
export const O_CLOEXEC = 0o2000000;
export const F_GETFD = 1;
export const F_SETFD = 2;
export const F_GETFL = 3;
export const F_SETFL = 4;
export const FD_CLOEXEC = 1;
export const PROT_NONE = 0;
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const PROT_EXEC = 4;
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;
export const MAP_NORESERVE = 0x4000;
export const MAP_POPULATE = 0x8000;
export const MAP_HUGETLB = 0x40000;
export const MADV_DONTNEED = 4;
export const MADV_REMOVE = 9;
export const MADV_DONTFORK = 10;
export const MADV_MERGEABLE = 12;
export const MADV_HUGEPAGE = 14;
export const MADV_NOHUGEPAGE = 15;
export const MADV_DONTDUMP = 16;
export const MFD_CLOEXEC = 1;
export const MFD_ALLOW_SEALING = 2;
export const MFD_HUGETLB = 4;

/** open(2); O_CLOEXEC is always added so no fd leaks into a spawned helper process. */
export function open(path: string, flags: number, mode = 0): number {
  return check(helper().sv_open(cString(path), flags | O_CLOEXEC, mode), `open(${path})`);
}

export function close(fd: number): void {
  check(helper().sv_close(fd), `close(${fd})`);
}

/** ioctl with a pointer argument: the kernel reads and/or fills `arg`. Returns the result. */
export function ioctlPtr(
  fd: number,
  request: number,
  arg: BufferSource | null,
  what: string,
): number {
  return check(helper().sv_ioctl_ptr(fd, BigInt(request), arg), what);
}

/** ioctl with an integer (or address) argument. Returns the result. */
export function ioctlInt(fd: number, request: number, arg: number | bigint, what: string): number {
  return check(helper().sv_ioctl_u64(fd, BigInt(request), BigInt(arg)), what);
}

export function read(fd: number, buf: Uint8Array): number {
  return Number(checkBig(helper().sv_read(fd, buf, BigInt(buf.byteLength)), `read(${fd})`));
}

export function write(fd: number, buf: Uint8Array): number {
  return Number(checkBig(helper().sv_write(fd, buf, BigInt(buf.byteLength)), `write(${fd})`));
}

export function pread(fd: number, buf: Uint8Array, offset: number | bigint): number {
  return Number(
    checkBig(helper().sv_pread(fd, buf, BigInt(buf.byteLength), BigInt(offset)), `pread(${fd})`),
  );
}

export function pwrite(fd: number, buf: Uint8Array, offset: number | bigint): number {
  return Number(
    checkBig(helper().sv_pwrite(fd, buf, BigInt(buf.byteLength), BigInt(offset)), `pwrite(${fd})`),
  );
}

export function fcntl(fd: number, cmd: number, arg: number | bigint = 0): number {
  return check(helper().sv_fcntl(fd, cmd, BigInt(arg)), `fcntl(${fd}, ${cmd})`);
}

export function ftruncate(fd: number, length: number | bigint): void {
  check(helper().sv_ftruncate(fd, BigInt(length)), `ftruncate(${fd})`);
}

export function memfdCreate(name: string, flags = MFD_CLOEXEC): number {
  return check(helper().sv_memfd_create(cString(name), flags), `memfd_create(${name})`);
}

/** mmap(2); returns the host address. `addr` 0 lets the kernel choose. */
export function mmap(
  addr: bigint,
  length: number | bigint,
  prot: number,
  flags: number,
  fd = -1,
  offset: number | bigint = 0,
): bigint {
  return checkBig(
    helper().sv_mmap(addr, BigInt(length), prot, flags, fd, BigInt(offset)),
    `mmap(${length} bytes)`,
  );
}

/** munmap(2). Never while a Deno view of the range is alive: touching it would fault. */
export function munmap(addr: bigint, length: number | bigint): void {
  check(helper().sv_munmap(addr, BigInt(length)), `munmap(0x${addr.toString(16)})`);
}

export function madvise(addr: bigint, length: number | bigint, advice: number): void {
  check(helper().sv_madvise(addr, BigInt(length), advice), `madvise(${advice})`);
}

export function getpid(): number {
  return helper().sv_getpid();
}

/** Lets another runnable thread of this CPU run first (a polling loop's courtesy). */
export function schedYield(): void {
  check(helper().sv_sched_yield(), "sched_yield");
}

/** The calling thread's kernel id (a Worker's own tid when called inside it). */
export function gettid(): number {
  return helper().sv_gettid();
}

export function tgkill(tgid: number, tid: number, signal: number): void {
  check(helper().sv_tgkill(tgid, tid, signal), `tgkill(${tid}, ${signal})`);
}

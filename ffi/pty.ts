/**
 * libc's pseudo-terminal calls, for the pty chardev backend: unlock a master, name its slave,
 * and put a terminal in raw mode. Raw bindings, no policy. File descriptors are plain numbers
 * (open them through `node:fs`, whose descriptors are the process's real ones).
 */

const symbols = {
  posix_openpt: { parameters: ["i32"], result: "i32" },
  grantpt: { parameters: ["i32"], result: "i32" },
  unlockpt: { parameters: ["i32"], result: "i32" },
  ptsname_r: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  tcgetattr: { parameters: ["i32", "buffer"], result: "i32" },
  tcsetattr: { parameters: ["i32", "i32", "buffer"], result: "i32" },
  cfmakeraw: { parameters: ["buffer"], result: "void" },
  isatty: { parameters: ["i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

let lib: Deno.DynamicLibrary<typeof symbols> | undefined;

function libc(): Deno.DynamicLibrary<typeof symbols>["symbols"] {
  lib ??= Deno.dlopen("libc.so.6", symbols);
  return lib.symbols;
}

/** open(2) flags for posix_openpt. */
export const O_RDWR = 0o2;
export const O_NOCTTY = 0o400;
export const O_CLOEXEC = 0o2000000;

/** tcsetattr's "apply now" action. */
const TCSANOW = 0;
/** glibc's struct termios is 60 bytes on x86_64; a little slack costs nothing. */
const TERMIOS_SIZE = 64;

export class PtyError extends Error {
  constructor(call: string, readonly errno: number) {
    super(`${call} failed (errno ${errno})`);
    this.name = "PtyError";
  }
}

/** errno of the last libc call on this thread; read it right after the call. */
function errno(): number {
  const p = libc().__errno_location();
  return p === null ? 0 : new Deno.UnsafePointerView(p).getInt32();
}

function check(call: string, rc: number): number {
  if (rc < 0) throw new PtyError(call, errno());
  return rc;
}

/** Opens a new pty master. The descriptor is not known to Deno's I/O; prefer opening /dev/ptmx. */
export function posixOpenpt(flags: number = O_RDWR | O_NOCTTY | O_CLOEXEC): number {
  return check("posix_openpt", libc().posix_openpt(flags));
}

export function grantpt(masterFd: number): void {
  check("grantpt", libc().grantpt(masterFd));
}

export function unlockpt(masterFd: number): void {
  check("unlockpt", libc().unlockpt(masterFd));
}

/** Path of the slave side of a pty master, e.g. "/dev/pts/3". */
export function ptsname(masterFd: number): string {
  const buf = new Uint8Array(256);
  const rc = libc().ptsname_r(masterFd, buf, BigInt(buf.length));
  // ptsname_r returns the error number itself rather than -1.
  if (rc !== 0) throw new PtyError("ptsname_r", rc);
  const end = buf.indexOf(0);
  return new TextDecoder().decode(buf.subarray(0, end < 0 ? buf.length : end));
}

/** Puts a terminal in raw mode (cfmakeraw: no echo, no line editing, no signals, 8-bit). */
export function setRawMode(fd: number): void {
  const termios = new Uint8Array(TERMIOS_SIZE);
  check("tcgetattr", libc().tcgetattr(fd, termios));
  libc().cfmakeraw(termios);
  check("tcsetattr", libc().tcsetattr(fd, TCSANOW, termios));
}

export function isatty(fd: number): boolean {
  return libc().isatty(fd) === 1;
}

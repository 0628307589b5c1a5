/**
 * The Zig helper library (helper/): its symbol table and where to find it. Every function
 * returns the result or -errno; ffi/libc.ts turns those into exceptions.
 *
 * Each isolate (main thread, every Worker) opens the library for itself: FFI handles cannot be
 * passed between Workers, but file descriptors and addresses (numbers, bigints) can.
 */

/** Symbols exported by libstratovirt_helper.so (see helper/src/*.zig). */
export const HELPER_SYMBOLS = {
  sv_open: { parameters: ["buffer", "u32", "u32"], result: "i32" },
  sv_close: { parameters: ["i32"], result: "i32" },
  sv_ioctl_ptr: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  sv_ioctl_u64: { parameters: ["i32", "u64", "u64"], result: "i32" },
  sv_read: { parameters: ["i32", "buffer", "u64"], result: "i64" },
  sv_write: { parameters: ["i32", "buffer", "u64"], result: "i64" },
  sv_pread: { parameters: ["i32", "buffer", "u64", "u64"], result: "i64" },
  sv_pwrite: { parameters: ["i32", "buffer", "u64", "u64"], result: "i64" },
  sv_fcntl: { parameters: ["i32", "i32", "u64"], result: "i32" },
  sv_ftruncate: { parameters: ["i32", "u64"], result: "i32" },
  sv_memfd_create: { parameters: ["buffer", "u32"], result: "i32" },
  sv_mmap: { parameters: ["u64", "u64", "u32", "u32", "i32", "u64"], result: "i64" },
  sv_munmap: { parameters: ["u64", "u64"], result: "i32" },
  sv_madvise: { parameters: ["u64", "u64", "u32"], result: "i32" },
  sv_getpid: { parameters: [], result: "i32" },
  sv_sched_yield: { parameters: [], result: "i32" },
  sv_gettid: { parameters: [], result: "i32" },
  sv_tgkill: { parameters: ["i32", "i32", "i32"], result: "i32" },
  sv_kvm_run: { parameters: ["i32", "u64"], result: "i32" },
  sv_kick_signal: { parameters: [], result: "i32" },
  sv_kick_init: { parameters: [], result: "i32" },
  sv_kick: { parameters: ["i32"], result: "i32" },
  sv_epoll_create: { parameters: [], result: "i32" },
  sv_epoll_ctl: { parameters: ["i32", "i32", "i32", "u32", "u64"], result: "i32" },
  sv_epoll_wait: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32" },
  sv_eventfd: { parameters: ["u32", "u32"], result: "i32" },
  sv_eventfd_write: { parameters: ["i32", "u64"], result: "i32" },
  sv_eventfd_read: { parameters: ["i32"], result: "i64" },
  sv_timerfd_create: { parameters: ["i32", "u32"], result: "i32" },
  sv_timerfd_settime: { parameters: ["i32", "u32", "u64", "u64"], result: "i32" },
  sv_uring_create: { parameters: ["u32", "i32"], result: "i64" },
  sv_uring_destroy: { parameters: ["u64"], result: "void" },
  sv_uring_submit: { parameters: ["u64", "buffer", "u32"], result: "i32" },
  sv_uring_reap: { parameters: ["u64", "buffer", "u32", "u32"], result: "i32" },
  sv_fallocate: { parameters: ["i32", "i32", "u64", "u64"], result: "i32" },
  sv_fdatasync: { parameters: ["i32"], result: "i32" },
  sv_unix_connect: { parameters: ["buffer"], result: "i32" },
  sv_unix_listen: { parameters: ["buffer"], result: "i32" },
  sv_unix_accept: { parameters: ["i32"], result: "i32" },
  sv_poll_one: { parameters: ["i32", "i16", "i32"], result: "i32" },
  sv_send_nowait: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  sv_recv_nowait: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  sv_layout: { parameters: ["buffer"], result: "i64" },
  sv_layout_count: { parameters: [], result: "u32" },
  sv_layout_name: { parameters: ["u32"], result: "pointer" },
  sv_uapi_dir: { parameters: [], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

export type HelperSymbols = Deno.DynamicLibrary<typeof HELPER_SYMBOLS>["symbols"];

/** The library is missing or does not export what this file expects. */
export class HelperLoadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HelperLoadError";
  }
}

/** Path of the helper: $STRATOVIRT_HELPER, else helper/zig-out/lib/ under the repository root. */
export function helperPath(): string {
  const fromEnv = Deno.env.get("STRATOVIRT_HELPER");
  if (fromEnv) return fromEnv;
  const root = new URL("../", import.meta.url);
  return new URL("helper/zig-out/lib/libstratovirt_helper.so", root).pathname;
}

let symbols: HelperSymbols | null = null;

/** The helper's symbols, opened on first use in this isolate. */
export function helper(): HelperSymbols {
  if (symbols) return symbols;
  const path = helperPath();
  try {
    symbols = Deno.dlopen(path, HELPER_SYMBOLS).symbols;
  } catch (e) {
    throw new HelperLoadError(
      `cannot load the stratovirt helper library ${path}: ${(e as Error).message} ` +
        "(build it with scripts/build-helper.sh, or point STRATOVIRT_HELPER at it)",
    );
  }
  return symbols;
}

/** null when the helper loads here, else a one-line reason (for test requirements). */
export function helperAvailable(): string | null {
  try {
    helper();
    return null;
  } catch {
    return `the helper library ${helperPath()} cannot be loaded (run scripts/build-helper.sh)`;
  }
}

const encoder = new TextEncoder();

/** A NUL-terminated copy of `s` for `buffer` parameters that take a C string. */
export function cString(s: string): Uint8Array<ArrayBuffer> {
  if (s.includes("\0")) throw new TypeError(`string contains a NUL byte: ${JSON.stringify(s)}`);
  return encoder.encode(s + "\0");
}

//! The vCPU kick: a do-nothing SIGRTMIN handler installed without SA_RESTART, so a signal sent
//! with tgkill to a thread blocked in KVM_RUN makes the ioctl return EINTR instead of resuming.
const std = @import("std");
const linux = std.os.linux;

extern "c" fn __libc_current_sigrtmin() c_int;

fn ignoreSignal(_: c_int) callconv(.C) void {}

/// The signal used for kicks: glibc's SIGRTMIN (34 with NPTL, which keeps 32 and 33).
export fn sv_kick_signal() i32 {
    return __libc_current_sigrtmin();
}

/// Installs the handler process-wide; returns the signal number or -errno. Idempotent.
export fn sv_kick_init() i32 {
    const sig = __libc_current_sigrtmin();
    var action = linux.Sigaction{
        .handler = .{ .handler = ignoreSignal },
        .mask = linux.empty_sigset,
        .flags = 0, // no SA_RESTART: the interrupted KVM_RUN must come back with EINTR
    };
    const rc: isize = @bitCast(linux.sigaction(@intCast(sig), &action, null));
    if (rc < 0) return @intCast(rc);
    return sig;
}

/// Sends the kick signal to thread `tid` of this process; 0 or -errno.
export fn sv_kick(tid: i32) i32 {
    const pid: usize = linux.syscall0(.getpid);
    const rc = linux.syscall3(.tgkill, pid, @bitCast(@as(isize, tid)), @intCast(__libc_current_sigrtmin()));
    return @truncate(@as(isize, @bitCast(rc)));
}

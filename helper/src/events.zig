//! epoll, eventfd and timerfd for the iothreads: a synchronous epoll_wait blocks a Worker, never
//! the main event loop.
const std = @import("std");
const linux = std.os.linux;

fn fdArg(fd: i32) usize {
    return @bitCast(@as(isize, fd));
}

fn ret(rc: usize) i64 {
    return @bitCast(@as(u64, rc));
}

/// For calls whose result is an int in C (fds, ioctl results): Deno returns i32 as a number,
/// where an i64 result would cost a BigInt per call.
fn ret32(rc: usize) i32 {
    return @truncate(@as(isize, @bitCast(rc)));
}

/// epoll_create1(EPOLL_CLOEXEC).
export fn sv_epoll_create() i32 {
    return ret32(linux.syscall1(.epoll_create1, linux.EPOLL.CLOEXEC));
}

/// epoll_ctl with the event built here: callers pass the mask and the 64-bit user data.
export fn sv_epoll_ctl(epfd: i32, op: i32, fd: i32, events: u32, data: u64) i32 {
    var ev = linux.epoll_event{ .events = events, .data = .{ .u64 = data } };
    return ret32(linux.syscall4(.epoll_ctl, fdArg(epfd), fdArg(op), fdArg(fd), @intFromPtr(&ev)));
}

/// Waits (synchronously) for up to `max` events written to `out` as packed 12-byte
/// struct epoll_event records; returns the count or -errno. timeout_ms -1 waits forever.
export fn sv_epoll_wait(epfd: i32, out: ?*anyopaque, max: i32, timeout_ms: i32) i32 {
    return ret32(linux.syscall4(.epoll_wait, fdArg(epfd), @intFromPtr(out), fdArg(max), fdArg(timeout_ms)));
}

export fn sv_eventfd(initval: u32, flags: u32) i32 {
    return ret32(linux.syscall2(.eventfd2, initval, flags));
}

/// Adds `value` to the eventfd counter; 0 or -errno.
export fn sv_eventfd_write(fd: i32, value: u64) i32 {
    var v = value;
    const rc = ret32(linux.syscall3(.write, fdArg(fd), @intFromPtr(&v), 8));
    return if (rc < 0) rc else 0;
}

/// Reads and resets the eventfd counter: the counter (>= 1), or -errno (-EAGAIN when empty
/// and non-blocking). Counters never reach 2^63 in practice.
export fn sv_eventfd_read(fd: i32) i64 {
    var v: u64 = 0;
    const rc = ret(linux.syscall3(.read, fdArg(fd), @intFromPtr(&v), 8));
    return if (rc < 0) rc else @intCast(v);
}

export fn sv_timerfd_create(clockid: i32, flags: u32) i32 {
    return ret32(linux.syscall2(.timerfd_create, fdArg(clockid), flags));
}

/// Arms (or with zeros disarms) a timerfd: first expiry after `initial_ns`, then every
/// `interval_ns` (0 = one shot). `flags` may hold TFD_TIMER_ABSTIME.
export fn sv_timerfd_settime(fd: i32, flags: u32, initial_ns: u64, interval_ns: u64) i32 {
    const ns_per_s = 1_000_000_000;
    const spec = linux.itimerspec{
        .it_interval = .{ .tv_sec = @intCast(interval_ns / ns_per_s), .tv_nsec = @intCast(interval_ns % ns_per_s) },
        .it_value = .{ .tv_sec = @intCast(initial_ns / ns_per_s), .tv_nsec = @intCast(initial_ns % ns_per_s) },
    };
    return ret32(linux.syscall4(.timerfd_settime, fdArg(fd), flags, @intFromPtr(&spec), 0));
}

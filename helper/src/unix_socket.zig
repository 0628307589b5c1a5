//! Unix stream sockets with blocking calls, for a loop that must answer a peer without going
//! through the event loop (the `-accel test` qtest server: every command is a round trip, and
//! an event-loop wake-up costs more than the command).
const std = @import("std");
const linux = std.os.linux;

fn fdArg(fd: i32) usize {
    return @bitCast(@as(isize, fd));
}

fn ret32(rc: usize) i32 {
    return @truncate(@as(isize, @bitCast(rc)));
}

fn errno(e: linux.E) i32 {
    return -@as(i32, @intCast(@intFromEnum(e)));
}

/// sockaddr_un for `path`, or ENAMETOOLONG when it does not fit (with its NUL).
fn addressOf(path: [*:0]const u8, out: *linux.sockaddr.un) ?i32 {
    const bytes = std.mem.span(path);
    out.* = .{ .family = linux.AF.UNIX, .path = undefined };
    if (bytes.len >= out.path.len) return errno(.NAMETOOLONG);
    @memset(&out.path, 0);
    @memcpy(out.path[0..bytes.len], bytes);
    return null;
}

/// A new stream socket, with `addr` filled for `path`: the fd, or -errno.
fn socketFor(path: [*:0]const u8, addr: *linux.sockaddr.un) i32 {
    if (addressOf(path, addr)) |e| return e;
    return ret32(linux.syscall3(.socket, linux.AF.UNIX, linux.SOCK.STREAM | linux.SOCK.CLOEXEC, 0));
}

/// A socket connected to `path`: the fd, or -errno (ENOENT / ECONNREFUSED: nobody listens).
export fn sv_unix_connect(path: [*:0]const u8) i32 {
    var addr: linux.sockaddr.un = undefined;
    const fd = socketFor(path, &addr);
    if (fd < 0) return fd;
    const rc = ret32(linux.syscall3(.connect, fdArg(fd), @intFromPtr(&addr), @sizeOf(linux.sockaddr.un)));
    if (rc < 0) {
        _ = linux.syscall1(.close, fdArg(fd));
        return rc;
    }
    return fd;
}

/// A socket bound to `path` (which must not exist) and listening for one client: the fd, or -errno.
export fn sv_unix_listen(path: [*:0]const u8) i32 {
    var addr: linux.sockaddr.un = undefined;
    const fd = socketFor(path, &addr);
    if (fd < 0) return fd;
    var rc = ret32(linux.syscall3(.bind, fdArg(fd), @intFromPtr(&addr), @sizeOf(linux.sockaddr.un)));
    if (rc == 0) rc = ret32(linux.syscall2(.listen, fdArg(fd), 1));
    if (rc < 0) {
        _ = linux.syscall1(.close, fdArg(fd));
        return rc;
    }
    return fd;
}

/// accept4(fd, NULL, NULL, SOCK_CLOEXEC): the connection's fd, or -errno.
export fn sv_unix_accept(fd: i32) i32 {
    return ret32(linux.syscall4(.accept4, fdArg(fd), 0, 0, linux.SOCK.CLOEXEC));
}

/// Waits up to `timeout_ms` (-1: forever) for `events` (POLLIN, POLLOUT) on `fd`. Returns the
/// events that happened (POLLHUP / POLLERR included), 0 on timeout, or -errno (-EINTR when a
/// signal cut the wait).
export fn sv_poll_one(fd: i32, events: i16, timeout_ms: i32) i32 {
    var pfd = [1]linux.pollfd{.{ .fd = fd, .events = events, .revents = 0 }};
    const rc = ret32(linux.syscall3(.poll, @intFromPtr(&pfd), 1, fdArg(timeout_ms)));
    if (rc <= 0) return rc;
    return pfd[0].revents;
}

/// send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT): bytes sent, or -errno (EAGAIN when the
/// peer's buffer is full, EPIPE when it hung up; never a SIGPIPE). An i32 result (a number in
/// Deno, where i64 costs a BigInt per call): `len` is below 2^31.
export fn sv_send_nowait(fd: i32, buf: ?*const anyopaque, len: u32) i32 {
    return ret32(linux.syscall6(.sendto, fdArg(fd), @intFromPtr(buf), len, linux.MSG.NOSIGNAL | linux.MSG.DONTWAIT, 0, 0));
}

/// recv(fd, buf, len, MSG_DONTWAIT): bytes received (0: the peer hung up), or -errno (EAGAIN:
/// nothing yet). `len` is below 2^31.
export fn sv_recv_nowait(fd: i32, buf: ?*anyopaque, len: u32) i32 {
    return ret32(linux.syscall6(.recvfrom, fdArg(fd), @intFromPtr(buf), len, linux.MSG.DONTWAIT, 0, 0));
}

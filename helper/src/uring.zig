//! io_uring for the block devices: a batch of vectored reads / writes / fdatasyncs goes in with
//! one call, completions come out many at a time, and an eventfd registered with the ring wakes
//! the device thread's epoll loop when some are ready. A ring is an opaque handle (a heap
//! address) the caller passes back; every call returns a count or -errno.
const std = @import("std");
const linux = std.os.linux;
const IO_Uring = linux.IO_Uring;

/// One operation of a batch, as the caller lays it out (40 bytes, little-endian).
const BlkOp = extern struct {
    /// OP_READV, OP_WRITEV or OP_FDATASYNC.
    opcode: u32,
    fd: i32,
    /// Address of `iovcnt` struct iovec (ignored by fdatasync).
    iovecs: u64,
    iovcnt: u32,
    _pad: u32,
    offset: u64,
    /// Comes back in the completion.
    user_data: u64,
};

comptime {
    std.debug.assert(@sizeOf(BlkOp) == 40);
    std.debug.assert(@sizeOf(linux.io_uring_cqe) == 16);
}

const OP_READV: u32 = 0;
const OP_WRITEV: u32 = 1;
const OP_FDATASYNC: u32 = 2;

fn errno(e: linux.E) i32 {
    return -@as(i32, @intCast(@intFromEnum(e)));
}

/// Zig's IO_Uring reports errors by name; callers here want the errno back.
fn errnoOf(err: anyerror) i32 {
    return switch (err) {
        error.SystemResources, error.OutOfMemory => errno(.NOMEM),
        error.PermissionDenied => errno(.PERM),
        error.ProcessFdQuotaExceeded, error.SystemFdQuotaExceeded => errno(.MFILE),
        error.SystemOutdated => errno(.NOSYS),
        error.SignalInterrupt => errno(.INTR),
        error.CompletionQueueOvercommitted => errno(.BUSY),
        error.SubmissionQueueFull => errno(.AGAIN),
        error.FileDescriptorInvalid => errno(.BADF),
        else => errno(.INVAL),
    };
}

fn ringOf(handle: u64) *IO_Uring {
    return @ptrFromInt(handle);
}

/// Sets up a ring of `entries` (a power of 2, 1..4096) submission slots and, when `event_fd` is
/// not negative, registers it to be signalled on every completion. Returns the handle or -errno.
export fn sv_uring_create(entries: u32, event_fd: i32) i64 {
    if (entries == 0 or entries > 4096) return errno(.INVAL);
    const ring = std.heap.c_allocator.create(IO_Uring) catch return errno(.NOMEM);
    ring.* = IO_Uring.init(@intCast(entries), 0) catch |err| {
        std.heap.c_allocator.destroy(ring);
        return errnoOf(err);
    };
    if (event_fd >= 0) {
        ring.register_eventfd(event_fd) catch |err| {
            ring.deinit();
            std.heap.c_allocator.destroy(ring);
            return errnoOf(err);
        };
    }
    return @intCast(@intFromPtr(ring));
}

/// Releases the ring. Operations still in flight finish in the kernel: the caller drains first.
export fn sv_uring_destroy(handle: u64) void {
    const ring = ringOf(handle);
    ring.deinit();
    std.heap.c_allocator.destroy(ring);
}

fn prepare(ring: *IO_Uring, op: *const BlkOp) !void {
    const sqe = try ring.get_sqe();
    switch (op.opcode) {
        OP_READV => linux.io_uring_prep_rw(.READV, sqe, op.fd, op.iovecs, op.iovcnt, op.offset),
        OP_WRITEV => linux.io_uring_prep_rw(.WRITEV, sqe, op.fd, op.iovecs, op.iovcnt, op.offset),
        OP_FDATASYNC => linux.io_uring_prep_fsync(sqe, op.fd, linux.IORING_FSYNC_DATASYNC),
        else => linux.io_uring_prep_nop(sqe),
    }
    sqe.user_data = op.user_data;
}

/// Entries per io_uring_enter. The kernel plugs a larger batch (holds its requests back from
/// the disk until the whole batch is prepared); with two at a time the disk starts on the first
/// request at once and works while the rest go in, as with fio, which submits that way too.
const ENTER_MAX: u32 = 2;

/// Queues `count` operations from `ops` and has the kernel take them, ENTER_MAX per call.
/// Returns how many it took (all of them unless an error cut it short), or -errno when it took
/// none. The iovec arrays are read during this call (IORING_FEAT_SUBMIT_STABLE).
export fn sv_uring_submit(handle: u64, ops: [*]const BlkOp, count: u32) i32 {
    const ring = ringOf(handle);
    var taken: u32 = 0;
    while (taken < count) {
        const n = @min(count - taken, ENTER_MAX);
        var i: u32 = 0;
        while (i < n) : (i += 1) {
            // Empty: every earlier entry was taken; the caller keeps at most `entries` in flight.
            prepare(ring, &ops[taken + i]) catch |err| return if (taken > 0) @intCast(taken) else errnoOf(err);
        }
        const took = ring.submit() catch |err| return if (taken > 0) @intCast(taken) else errnoOf(err);
        if (took == 0) return if (taken > 0) @intCast(taken) else errno(.AGAIN);
        taken += took;
        // Entries the kernel did not take yet go in with the next call.
        if (took < n) return @intCast(taken);
    }
    return @intCast(taken);
}

/// Copies up to `max` completions (struct io_uring_cqe: u64 user_data, i32 res, u32 flags) to
/// `out`. With `wait_nr` > 0 it first blocks until that many are ready. Returns the count, 0
/// when a signal interrupted the wait, or -errno.
export fn sv_uring_reap(handle: u64, out: [*]linux.io_uring_cqe, max: u32, wait_nr: u32) i32 {
    const ring = ringOf(handle);
    const n = ring.copy_cqes(out[0..max], wait_nr) catch |err| switch (err) {
        error.SignalInterrupt => return 0,
        else => return errnoOf(err),
    };
    return @intCast(n);
}

/// fallocate(2): punch-hole / zero-range for DISCARD and WRITE_ZEROES (synchronous).
export fn sv_fallocate(fd: i32, mode: i32, offset: u64, len: u64) i32 {
    const rc = linux.syscall4(.fallocate, @bitCast(@as(isize, fd)), @bitCast(@as(isize, mode)), offset, len);
    return @truncate(@as(isize, @bitCast(rc)));
}

/// fdatasync(2), for backends without a ring.
export fn sv_fdatasync(fd: i32) i32 {
    const rc = linux.syscall1(.fdatasync, @bitCast(@as(isize, fd)));
    return @truncate(@as(isize, @bitCast(rc)));
}

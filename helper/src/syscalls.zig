//! Plain system calls as raw syscalls: the kernel's `-errno` convention passes straight through.
const std = @import("std");
const linux = std.os.linux;

/// Sign-extends a file descriptor for the syscall argument registers.
fn fdArg(fd: i32) usize {
    return @bitCast(@as(isize, fd));
}

/// The raw syscall return value: the result, or -errno in [-4095, -1].
fn ret(rc: usize) i64 {
    return @bitCast(@as(u64, rc));
}

/// For calls whose result is an int in C (fds, ioctl results): Deno returns i32 as a number,
/// where an i64 result would cost a BigInt per call.
fn ret32(rc: usize) i32 {
    return @truncate(@as(isize, @bitCast(rc)));
}

export fn sv_open(path: [*:0]const u8, flags: u32, mode: u32) i32 {
    return ret32(linux.syscall4(.openat, fdArg(linux.AT.FDCWD), @intFromPtr(path), flags, mode));
}

export fn sv_close(fd: i32) i32 {
    return ret32(linux.syscall1(.close, fdArg(fd)));
}

/// ioctl whose argument is a pointer to a buffer (a struct the kernel reads or fills).
export fn sv_ioctl_ptr(fd: i32, request: u64, arg: ?*anyopaque) i32 {
    return ret32(linux.syscall3(.ioctl, fdArg(fd), request, @intFromPtr(arg)));
}

/// ioctl whose argument is an integer (or an address passed as an integer).
export fn sv_ioctl_u64(fd: i32, request: u64, arg: u64) i32 {
    return ret32(linux.syscall3(.ioctl, fdArg(fd), request, arg));
}

export fn sv_read(fd: i32, buf: ?*anyopaque, len: u64) i64 {
    return ret(linux.syscall3(.read, fdArg(fd), @intFromPtr(buf), len));
}

export fn sv_write(fd: i32, buf: ?*const anyopaque, len: u64) i64 {
    return ret(linux.syscall3(.write, fdArg(fd), @intFromPtr(buf), len));
}

export fn sv_pread(fd: i32, buf: ?*anyopaque, len: u64, offset: u64) i64 {
    return ret(linux.syscall4(.pread64, fdArg(fd), @intFromPtr(buf), len, offset));
}

export fn sv_pwrite(fd: i32, buf: ?*const anyopaque, len: u64, offset: u64) i64 {
    return ret(linux.syscall4(.pwrite64, fdArg(fd), @intFromPtr(buf), len, offset));
}

export fn sv_fcntl(fd: i32, cmd: i32, arg: u64) i32 {
    return ret32(linux.syscall3(.fcntl, fdArg(fd), fdArg(cmd), arg));
}

export fn sv_ftruncate(fd: i32, len: u64) i32 {
    return ret32(linux.syscall2(.ftruncate, fdArg(fd), len));
}

export fn sv_memfd_create(name: [*:0]const u8, flags: u32) i32 {
    return ret32(linux.syscall2(.memfd_create, @intFromPtr(name), flags));
}

/// Returns the mapped address (below 2^47, so it never looks like an errno) or -errno.
export fn sv_mmap(addr: u64, len: u64, prot: u32, flags: u32, fd: i32, offset: u64) i64 {
    return ret(linux.syscall6(.mmap, addr, len, prot, flags, fdArg(fd), offset));
}

export fn sv_munmap(addr: u64, len: u64) i32 {
    return ret32(linux.syscall2(.munmap, addr, len));
}

export fn sv_madvise(addr: u64, len: u64, advice: u32) i32 {
    return ret32(linux.syscall3(.madvise, addr, len, advice));
}

export fn sv_getpid() i32 {
    return @intCast(linux.syscall0(.getpid));
}

/// sched_yield(2): lets another runnable thread of this CPU go first.
export fn sv_sched_yield() i32 {
    return ret32(linux.syscall0(.sched_yield));
}

export fn sv_gettid() i32 {
    return @intCast(linux.syscall0(.gettid));
}

export fn sv_tgkill(tgid: i32, tid: i32, sig: i32) i32 {
    return ret32(linux.syscall3(.tgkill, fdArg(tgid), fdArg(tid), fdArg(sig)));
}

/// KVM_RUN in one call: the exit reason read from the vCPU's kvm_run area, or -errno
/// (-EINTR after a kick). `run` is the address of the mmap'ed kvm_run structure.
export fn sv_kvm_run(vcpu_fd: i32, run: u64) i32 {
    const KVM_RUN: u64 = 0xae80;
    const rc = ret32(linux.syscall3(.ioctl, fdArg(vcpu_fd), KVM_RUN, 0));
    if (rc < 0) return rc;
    // exit_reason sits at offset 8 of struct kvm_run (checked by the layout test).
    const reason: *const volatile u32 = @ptrFromInt(run + 8);
    return @intCast(reason.*);
}
